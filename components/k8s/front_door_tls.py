"""The inference servers' and edges' certificates, from the stack's CA (FederationTrust).

- A `kubernetes` region has no cloud load balancer that terminates TLS (no ACM, no
  Google-managed certificate): its servers and edges serve HTTPS on their public port
  themselves (contract.ENV_TLS_CERT_FILE/KEY_FILE), each with a certificate of the stack's CA
  for its public names (the servers: `<region>.<domain>` and `inference.<domain>`; an edge site:
  `<site>.<region>.<domain>`: components/front_door.py) and its load balancer's address, which
  is known only once its Service exists (the `load_balancer_certificate` pattern of trust.py).
  Callers verify it with the stack's CA certificate (FederationTrust.ca_cert_pem).
- A region with edge sites: its servers take the edges' escalations on contract.ESCALATION_PORT,
  behind an in-cluster Service of that port alone (ESCALATION_SERVICE), with mutual TLS: their
  certificate names that Service, and a client must present a certificate of the stack's CA
  (contract.ENV_ESCALATION_CLIENT_CA_FILE); each edge site presents its own client certificate
  (FederationTrust.client_certificate: client authentication only; its common name is the
  site's app, the escalating edge the region sees) and verifies the servers' against the CA.
Private keys are pulumi-tls's, secrets in the stack's state; they reach the pods as Kubernetes
Secrets mounted read-only. Certificates renew 30 days before they expire (trust.py) and the
files change in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.catalog import Cloud
from components.config import Region
from components.k8s.pods import SecretFiles
from components.k8s.serving import PodAdditions
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

ESCALATION_SERVICE = "server-escalation"  # ClusterIP: the servers' escalation port, for the edges
# Files of the servers' and edges' TLS Secrets.
PUBLIC_CERT, PUBLIC_KEY = "public.crt", "public.key"
ESCALATION_CERT, ESCALATION_KEY = "escalation.crt", "escalation.key"
CLIENT_CERT, CLIENT_KEY = contract.TLS_CERT_FILE, contract.TLS_KEY_FILE
CA = contract.TLS_CA_FILE
PUBLIC_VOLUME = "front-door-tls"
ESCALATION_VOLUME = "escalation-tls"


def serves_https(region: Region) -> bool:
    """The region's pods terminate the public TLS themselves (no cloud certificate there)."""
    return region.cloud is Cloud.KUBERNETES


def escalation_url(target: Target) -> str:
    """Where the region's edges escalate: the servers' mutual-TLS port (contract.ENV_UPSTREAM_URL)."""
    return f"https://{target.service_host(ESCALATION_SERVICE)}:{contract.ESCALATION_PORT}"


def _service_names(target: Target, service: str) -> list[str]:
    """Every name a pod of the cluster may use for a Service of the region's namespace."""
    namespace = target.namespace_name
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", target.service_host(service)]


def _mounted(
    workload: Workload,
    name: str,
    secret_name: str,
    pems: dict[str, pulumi.Input[str]],
    mounts: list[tuple[str, str, dict[str, str]]],
) -> list[SecretFiles]:
    """One Secret of these PEMs, mounted as (volume, directory, {variable: file}) each."""
    secret = workload.secret(f"{name}-tls-secret", secret_name, pems)
    return [SecretFiles(secret.metadata.name, volume, mount, files) for volume, mount, files in mounts]


def server_tls(
    workload: Workload, trust: FederationTrust, name: str, public_hosts: Sequence[pulumi.Input[str]] | None
) -> PodAdditions:
    """The regional servers': the public listener's certificate for `public_hosts` (given in a
    `kubernetes` region only), and the escalation listener where the region has edge sites."""
    target, parent = workload.target, workload.parent
    pems: dict[str, pulumi.Input[str]] = {}
    files: dict[str, str] = {}
    environment: dict[str, pulumi.Input[str]] = {}
    ports: dict[str, int] = {}
    if public_hosts is not None:
        pems[PUBLIC_CERT], pems[PUBLIC_KEY] = trust.server_certificate(f"{name}-public", public_hosts, parent)
        files |= {contract.ENV_TLS_CERT_FILE: PUBLIC_CERT, contract.ENV_TLS_KEY_FILE: PUBLIC_KEY}
    if target.region.edge_sites:
        pems[ESCALATION_CERT], pems[ESCALATION_KEY] = trust.server_certificate(
            f"{name}-escalation", _service_names(target, ESCALATION_SERVICE), parent
        )
        pems[CA] = trust.ca_cert_pem
        files |= {
            contract.ENV_ESCALATION_CERT_FILE: ESCALATION_CERT,
            contract.ENV_ESCALATION_KEY_FILE: ESCALATION_KEY,
            contract.ENV_ESCALATION_CLIENT_CA_FILE: CA,
        }
        environment[contract.ENV_ESCALATION_PORT] = str(contract.ESCALATION_PORT)
        ports["escalation"] = contract.ESCALATION_PORT
    if not pems:
        return PodAdditions()
    mounted = _mounted(
        workload, name, f"{workload.app}-tls", pems, [(PUBLIC_VOLUME, contract.FRONT_DOOR_TLS_MOUNT, files)]
    )
    return PodAdditions(environment, mounted, ports, https=public_hosts is not None)


def edge_tls(
    workload: Workload,
    trust: FederationTrust,
    name: str,
    app: str,
    public_hosts: Sequence[pulumi.Input[str]] | None,
) -> PodAdditions:
    """One edge site's (`app`): its client certificate for escalating to its region, and its
    public listener's certificate for `public_hosts` (given in a `kubernetes` region only)."""
    pems: dict[str, pulumi.Input[str]] = {CA: trust.ca_cert_pem}
    pems[CLIENT_CERT], pems[CLIENT_KEY] = trust.client_certificate(f"{name}-client", app, workload.parent)
    mounts = [
        (
            ESCALATION_VOLUME,
            contract.ESCALATION_TLS_MOUNT,
            {
                contract.ENV_UPSTREAM_CA_FILE: CA,
                contract.ENV_UPSTREAM_CERT_FILE: CLIENT_CERT,
                contract.ENV_UPSTREAM_KEY_FILE: CLIENT_KEY,
            },
        )
    ]
    if public_hosts is not None:
        pems[PUBLIC_CERT], pems[PUBLIC_KEY] = trust.server_certificate(f"{name}-public", public_hosts, workload.parent)
        mounts.append(
            (
                PUBLIC_VOLUME,
                contract.FRONT_DOOR_TLS_MOUNT,
                {contract.ENV_TLS_CERT_FILE: PUBLIC_CERT, contract.ENV_TLS_KEY_FILE: PUBLIC_KEY},
            )
        )
    return PodAdditions(files=_mounted(workload, name, f"{app}-tls", pems, mounts), https=public_hosts is not None)
