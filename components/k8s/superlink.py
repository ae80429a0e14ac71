"""The home region's SuperLink (with its ServerApp subprocess) behind its TLS gateway, and the
federated run it serves (components/k8s/federated_run.py). components/k8s/flower.py says why
the SuperLink binds loopback and the gateway splits Fleet from Control."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import ModelRegistry, WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.federated_run import FederatedRunArgs, federated_run_jobs
from components.k8s.flower import (
    CONTROL_SERVICE,
    FLEET_SERVICE,
    FLOWER_ENV,
    STATE_MOUNT,
    SUPERLINK_APP,
    SUPERNODE_APP,
    flower_probes,
    health_address,
)
from components.k8s.labels import metadata
from components.k8s.monitors import scraped
from components.k8s.pods import Resources, container, pod_spec, read_only_mount, secret_volume, tcp_probe
from components.k8s.services import load_balancer_address, service
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

STATE_SIZE = "5Gi"
# SuperNode registrations live in the SuperLink's database: it is kept on a volume, so a
# restarted SuperLink still admits the registered nodes.
DATABASE = f"{STATE_MOUNT}/superlink.db"

SUPERLINK_RESOURCES = Resources("500m", "1Gi", "2", "4Gi")
GATEWAY_RESOURCES = Resources("100m", "128Mi", "500m", "256Mi")


@dataclass(frozen=True, kw_only=True)
class SuperLinkArgs:
    target: Target  # the home region's
    image: pulumi.Input[str]  # the trainer image
    trust: FederationTrust  # signs the SuperLink's certificate; knows every node key
    identity: WorkloadIdentity  # the trainer's cloud identity at home
    # The home's global registry: where the ServerApp publishes each run's global model, signed
    # by its signer (workloads/trainer/publish.py).
    global_models: ModelRegistry


class SuperLink(pulumi.ComponentResource):
    """The home region's SuperLink (with its ServerApp subprocess) and the node registrations."""

    address: pulumi.Output[str]  # "<load balancer host>:<fleet port>", for the other regions
    internal_address: str  # the Fleet Service inside the home cluster, for the home SuperNode

    def __init__(self, name: str, args: SuperLinkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:SuperLink", name, None, opts)
        target, trust = args.target, args.trust
        workload = Workload(target, SUPERLINK_APP, self)
        account = workload.service_account(f"{name}-sa", args.identity)
        fleet = service(
            f"{name}-fleet-service",
            FLEET_SERVICE,
            target,
            SUPERLINK_APP,
            {"fleet": contract.SUPERLINK_FLEET_PORT},
            public=True,
            parent=self,
        )
        service(
            f"{name}-control-service",
            CONTROL_SERVICE,
            target,
            SUPERLINK_APP,
            {"control": contract.SUPERLINK_CONTROL_PORT},
            public=False,
            parent=self,
        )
        public_host = load_balancer_address(fleet)
        self.internal_address = f"{target.service_host(FLEET_SERVICE)}:{contract.SUPERLINK_FLEET_PORT}"
        in_cluster = [
            name_
            for svc in (FLEET_SERVICE, CONTROL_SERVICE)
            for name_ in (
                svc,
                f"{svc}.{target.namespace_name}",
                f"{svc}.{target.namespace_name}.svc",
                target.service_host(svc),
            )
        ]
        cert_pem, key_pem = trust.load_balancer_certificate(f"{name}-tls", public_host, in_cluster, self)
        tls_secret = workload.secret(
            f"{name}-tls-secret",
            "superlink-tls",
            {contract.TLS_CERT_FILE: cert_pem, contract.TLS_KEY_FILE: key_pem, contract.TLS_CA_FILE: trust.ca_cert_pem},
            secret_type="kubernetes.io/tls",
        )
        # The global model's signer: a KMS key ref, or a PEM key mounted from this Secret
        # (key_ref = contract.SIGNING_KEY_PATH) on an existing cluster, which has no KMS.
        signer = args.global_models.signer
        publishing = contract.global_publish_env(args.global_models.store_url, signer.key_ref)
        signing_pem = signer.private_key_pem
        signing_volumes: list[k8s.core.v1.VolumeArgs] = []
        signing_mounts: list[k8s.core.v1.VolumeMountArgs] = []
        if signing_pem is not None:
            signing_secret = workload.secret(
                f"{name}-signing-secret", "artifact-signing", {contract.SIGNING_KEY_FILE: signing_pem}
            )
            signing_volumes.append(secret_volume("signing", signing_secret.metadata.name, [contract.SIGNING_KEY_FILE]))
            signing_mounts.append(read_only_mount("signing", contract.KEYS_MOUNT))
        state = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-state",
            metadata=metadata("superlink-state", target.namespace, target.labels(SUPERLINK_APP, "state")),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": STATE_SIZE}),
            ),
            opts=target.opts(self),
        )
        ca_file, cert_file, key_file = (
            f"{contract.CERTS_MOUNT}/{f}" for f in (contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE)
        )
        superlink = container(
            SUPERLINK_APP,
            args.image,
            resources=SUPERLINK_RESOURCES,
            probes=flower_probes(),
            command=["flower-superlink"],
            args=[
                "--ssl-ca-certfile",
                ca_file,
                "--ssl-certfile",
                cert_file,
                "--ssl-keyfile",
                key_file,
                "--enable-supernode-auth",
                "--disable-runtime-dependency-installation",  # else `uv sync` per run
                "--host",
                "127.0.0.1",
                "--port",
                str(contract.SUPERLINK_SERVERAPPIO_PORT),
                "--database",
                DATABASE,
                "--health-server-address",
                health_address(),
            ],
            environment={
                **FLOWER_ENV,
                contract.ENV_REGION: target.region.name,
                contract.ENV_MODEL_NAME: contract.MODEL_NAME,
                **publishing,
            },
            ports={"health": contract.FLOWER_HEALTH_PORT, "metrics": contract.TRAINER_METRICS_PORT},
            mounts=[
                read_only_mount("tls", contract.CERTS_MOUNT),
                *signing_mounts,
                k8s.core.v1.VolumeMountArgs(name="state", mount_path=STATE_MOUNT),
            ],
        )
        gateway = container(
            "gateway",
            args.image,
            resources=GATEWAY_RESOURCES,
            probes=(tcp_probe(contract.SUPERLINK_FLEET_PORT), tcp_probe(contract.SUPERLINK_CONTROL_PORT, period=5)),
            command=["python", "-m", contract.SUPERLINK_GATEWAY_MODULE],
            args=[
                "--upstream",
                f"https://127.0.0.1:{contract.SUPERLINK_SERVERAPPIO_PORT}",
                "--route",
                f"{contract.SUPERLINK_FLEET_PORT}={contract.FLEET_PATH_PREFIX}",
                "--route",
                f"{contract.SUPERLINK_CONTROL_PORT}={contract.CONTROL_PATH_PREFIX}",
                "--certfile",
                cert_file,
                "--keyfile",
                key_file,
                "--ca-certfile",
                ca_file,
            ],
            ports={"fleet": contract.SUPERLINK_FLEET_PORT, "control": contract.SUPERLINK_CONTROL_PORT},
            mounts=[read_only_mount("tls", contract.CERTS_MOUNT)],
        )
        tls_files = (contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE)
        superlink_deployment = workload.deployment(
            f"{name}-deployment",
            pod_spec(
                [superlink, gateway],
                service_account=account.metadata.name,
                volumes=[
                    secret_volume("tls", tls_secret.metadata.name, tls_files),
                    *signing_volumes,
                    k8s.core.v1.VolumeArgs(
                        name="state",
                        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                            claim_name=state.metadata.name
                        ),
                    ),
                ],
            ),
            component="federation",
            replicas=1,  # one federation state; a second SuperLink would split the nodes
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),  # RWO state volume
        )
        workload.allow_traffic(
            f"{name}-netpol",
            ingress=[
                netpol.Rule(
                    [netpol.anywhere(), netpol.pods(target.selector(SUPERNODE_APP))], [contract.SUPERLINK_FLEET_PORT]
                ),
                netpol.Rule([netpol.this_namespace()], [contract.SUPERLINK_CONTROL_PORT]),
                scraped(contract.TRAINER_METRICS_PORT),  # the ServerApp's metrics
            ],
            egress=netpol.cloud_apis(target.region.cloud),
        )
        federated_run_jobs(
            name,
            FederatedRunArgs(
                target=target, image=args.image, trust=trust, tls_secret=tls_secret, superlink=superlink_deployment
            ),
            self,
        )
        self.address = public_host.apply(lambda host: f"{host}:{contract.SUPERLINK_FLEET_PORT}")
        self.register_outputs({"address": self.address, "internalAddress": self.internal_address})
