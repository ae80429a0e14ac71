"""The global view: one Prometheus, the home's, that holds every region's series, so that the
home's Grafana (and anyone querying the home's Prometheus) sees the whole fleet.

Why remote-write to the home, and not federation or Thanos: the home's Prometheus and Grafana
exist already (components/k8s/monitoring.py); remote-write needs nothing more in any cluster
but a receiver at home, while federation would make the home scrape every region over the
internet (each region's Prometheus exposed publicly, read-only but complete), and Thanos
would add a query layer, sidecars and an object store per cloud for the same answer. Every
other cluster's Prometheus keeps its own series, rules and alerts and sends a copy home
(MonitoringStack: `remoteWrite`); the series carry their `region` and `app` target labels and
the sending Prometheus's external `cluster` label, so nothing collides at home.

The home's Prometheus receives (`enableRemoteWriteReceiver`) but stays inside its cluster:
only this gateway (workloads/trainer/gateway.py, trainer image) faces the internet, on a
LoadBalancer of one port (contract.METRICS_RECEIVER_PORT), and
- admits only clients with a certificate of the federation CA issued for client
  authentication (mutual TLS, FederationTrust.client_certificate: one per other cluster); the
  others are refused in the TLS handshake, before any request;
- forwards exactly `POST /api/v1/write` to the home Prometheus, plain http inside the cluster;
  every other path (queries, federation, the admin API) answers 404, so nothing of the home's
  series can be read back this way;
- may reach nothing but the home's Prometheus pods on their port (NetworkPolicy).
It is not a metrics port (nothing is scraped there), so the rule meridian-metrics-private does
not apply; being public is acceptable because mutual TLS is the gate, as the SuperLink's Fleet
port is gated by TLS and node authentication.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.cluster_access import WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.monitoring import PROMETHEUS_PORT, PROMETHEUS_URL
from components.k8s.monitors import scrapers
from components.k8s.pods import Resources, container, pod_spec, read_only_mount, secret_volume, tcp_probe
from components.k8s.services import load_balancer_address, service
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

METRICS_RECEIVER_APP = "metrics-receiver"  # the pods' name label, the Service's and Secret's name
PORT_NAME = "remote-write"
# A stream of compressed batches, passed through without buffering whole requests.
RECEIVER_RESOURCES = Resources("100m", "128Mi", "1", "512Mi")


@dataclass(frozen=True, kw_only=True)
class MetricsReceiverArgs:
    target: Target  # the home region's
    image: pulumi.Input[str]  # the trainer image: the gateway
    trust: FederationTrust  # signs the receiver's certificate and every client's


class MetricsReceiver(pulumi.ComponentResource):
    """The home's one way in for the other clusters' remote-writes, gated by mutual TLS."""

    address: pulumi.Output[str]  # "<load balancer host>:<METRICS_RECEIVER_PORT>", for the other clusters

    def __init__(self, name: str, args: MetricsReceiverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:MetricsReceiver", name, None, opts)
        target, trust = args.target, args.trust
        workload = Workload(target, METRICS_RECEIVER_APP, self)
        public = service(
            f"{name}-service",
            METRICS_RECEIVER_APP,
            target,
            METRICS_RECEIVER_APP,
            {PORT_NAME: contract.METRICS_RECEIVER_PORT},
            public=True,
            parent=self,
        )
        public_host = load_balancer_address(public)
        in_cluster = [METRICS_RECEIVER_APP, target.service_host(METRICS_RECEIVER_APP)]
        cert_pem, key_pem = trust.load_balancer_certificate(f"{name}-tls", public_host, in_cluster, self)
        tls_files = (contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE)
        tls_secret = workload.secret(
            f"{name}-tls-secret",
            f"{METRICS_RECEIVER_APP}-tls",
            {contract.TLS_CERT_FILE: cert_pem, contract.TLS_KEY_FILE: key_pem, contract.TLS_CA_FILE: trust.ca_cert_pem},
            secret_type="kubernetes.io/tls",
        )
        ca_file, cert_file, key_file = (f"{contract.CERTS_MOUNT}/{f}" for f in tls_files)
        gateway = container(
            METRICS_RECEIVER_APP,
            args.image,
            resources=RECEIVER_RESOURCES,
            probes=(tcp_probe(contract.METRICS_RECEIVER_PORT), tcp_probe(contract.METRICS_RECEIVER_PORT, period=5)),
            command=["python", "-m", contract.SUPERLINK_GATEWAY_MODULE],
            args=[
                "--upstream",
                PROMETHEUS_URL,
                "--route",
                f"{contract.METRICS_RECEIVER_PORT}={contract.METRICS_RECEIVE_ROUTE}",
                "--client-ca-certfile",
                ca_file,
                "--certfile",
                cert_file,
                "--keyfile",
                key_file,
            ],
            ports={PORT_NAME: contract.METRICS_RECEIVER_PORT},
            mounts=[read_only_mount("tls", contract.CERTS_MOUNT)],
        )
        account = workload.service_account(f"{name}-sa", WorkloadIdentity())  # no cloud access
        workload.deployment(
            f"{name}-deployment",
            pod_spec(
                [gateway],
                service_account=account.metadata.name,
                volumes=[secret_volume("tls", tls_secret.metadata.name, tls_files)],
            ),
            component="monitoring",
            # One home Prometheus behind it; the senders keep their samples in their WAL and
            # retry while it restarts.
            replicas=1,
        )
        workload.allow_traffic(
            f"{name}-netpol",
            # From anywhere: the senders are other clouds' NAT addresses; mutual TLS is the gate.
            ingress=[netpol.Rule([netpol.anywhere()], [contract.METRICS_RECEIVER_PORT])],
            egress=[netpol.Rule([scrapers()], [PROMETHEUS_PORT])],  # the home Prometheus, only
        )
        self.address = public_host.apply(lambda host: f"{host}:{contract.METRICS_RECEIVER_PORT}")
        self.register_outputs({"address": self.address})
