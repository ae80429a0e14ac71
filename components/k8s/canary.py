"""The region's canary analysis controller (workloads/canary, from the server image).

With `inference.canary.analysis`, every new `latest` model version enters the region's servers
and edges as a candidate at `weight` percent; this one-replica controller reads the region's
live metrics from the cluster's Prometheus, decides, and promotes or rolls back through the
servers' repository API. What it needs from the cluster, and nothing more:
- the admin token of that API: generated here (pulumi-random), one Secret that the servers,
  the edges and the controller mount as a file (ENV_ADMIN_TOKEN_FILE); without analysis nobody gets a token
  and the API stays off (no listener without a caller: an admin port that nothing uses is
  surface without a purpose). The token is regenerated when the stack's
  `auth.adminToken.rotation` changes (the RandomPassword's keeper); the servers re-read the file
  and accept the replaced token for `auth.adminToken.graceSeconds` more, so the controller,
  which reads the new file a moment later, never meets a refusal;
- every replica's address: headless Services (one A record per ready pod) selecting the
  servers and the edges on their admin port (contract.ADMIN_PORT: the repository API is there,
  never on the public port), named in `--targets` as `dns+http://` (workloads/canary/targets.py);
- the network: out to those pods' admin port and to the cluster's Prometheus; in, only the
  Prometheus scraping its own metrics port.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster_access import WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.labels import metadata
from components.k8s.monitoring import PROMETHEUS_PORT, PROMETHEUS_URL
from components.k8s.monitors import scraped, scrapers
from components.k8s.pods import Resources, SecretFiles, container, http_probe, pod_spec
from components.k8s.serving import ADMIN_PORT_NAME, CANARY_APP, EDGE_APP, SERVER_APP
from components.k8s.target import Target
from components.k8s.workload import Workload
from workloads import contract

ADMIN_TOKEN_SECRET = "serving-admin-token"
ADMIN_TOKEN_KEY = "token"
ADMIN_TOKEN_LENGTH = 48
CANARY_RESOURCES = Resources("50m", "128Mi", "500m", "256Mi")


def replicas_service(app: str) -> str:
    """The headless Service listing every ready pod of `app` (server or edge)."""
    return f"{app}-replicas"


@dataclass(frozen=True, kw_only=True)
class CanaryControllerArgs:
    target: Target
    image: pulumi.Input[str]  # the server image


class CanaryController(pulumi.ComponentResource):
    """Judges each candidate version of one region's model and applies the decision."""

    admin_token: SecretFiles  # what the servers and edges mount, named by ENV_ADMIN_TOKEN_FILE

    def __init__(self, name: str, args: CanaryControllerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:CanaryController", name, None, opts)
        target = args.target
        analysis = target.config.inference.canary.analysis
        if analysis is None:
            raise ValueError(f"region {target.region.name}: no inference.canary.analysis to run")
        workload = Workload(target, CANARY_APP, self)
        token = random.RandomPassword(
            f"{name}-admin-token",
            length=ADMIN_TOKEN_LENGTH,
            special=False,
            # A changed keeper replaces the password: bumping the rotation rotates the token.
            keepers={"rotation": str(target.config.auth.admin_token.rotation)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret = workload.secret(f"{name}-admin-token-secret", ADMIN_TOKEN_SECRET, {ADMIN_TOKEN_KEY: token.result})
        self.admin_token = SecretFiles(
            secret.metadata.name,
            "admin-token",
            contract.ADMIN_TOKEN_MOUNT,
            {contract.ENV_ADMIN_TOKEN_FILE: ADMIN_TOKEN_KEY},
        )

        driven = [SERVER_APP, *([EDGE_APP] if target.region.edge_sites else [])]
        for app in driven:
            k8s.core.v1.Service(
                f"{name}-{app}-replicas",
                metadata=metadata(replicas_service(app), target.namespace, target.labels(app, "discovery")),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    cluster_ip="None",  # headless: DNS answers with every ready pod's address
                    selector=target.selector(app),
                    ports=[
                        k8s.core.v1.ServicePortArgs(
                            name=ADMIN_PORT_NAME, port=contract.ADMIN_PORT, target_port=ADMIN_PORT_NAME, protocol="TCP"
                        )
                    ],
                ),
                opts=target.opts(self),
            )
        targets = ",".join(
            f"dns+http://{target.service_host(replicas_service(app))}:{contract.ADMIN_PORT}" for app in driven
        )
        account = workload.service_account(f"{name}-sa", WorkloadIdentity())  # no cloud access
        workload.deployment(
            f"{name}-deployment",
            pod_spec(
                [
                    container(
                        CANARY_APP,
                        args.image,
                        resources=CANARY_RESOURCES,
                        probes=(
                            http_probe(contract.METRICS_PATH, contract.METRICS_PORT),
                            http_probe(contract.METRICS_PATH, contract.METRICS_PORT, period=5),
                        ),
                        command=list(contract.CANARY_COMMAND),
                        args=contract.canary_args(
                            prometheus=PROMETHEUS_URL,
                            region=target.region.name,
                            model=contract.MODEL_NAME,
                            targets=targets,
                            analysis=analysis,
                        ),
                        environment={contract.ENV_METRICS_PORT: str(contract.METRICS_PORT)},
                        secret_files=[self.admin_token],
                        ports={"metrics": contract.METRICS_PORT},
                    )
                ],
                service_account=account.metadata.name,
                volumes=[self.admin_token.volume()],
            ),
            component="canary-analysis",
            replicas=1,
            # Never two controllers deciding at once, even during a rollout.
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
        )
        workload.allow_traffic(
            f"{name}-netpol",
            ingress=[scraped()],
            egress=[
                netpol.Rule([netpol.pods(target.selector(app)) for app in driven], [contract.ADMIN_PORT]),
                netpol.Rule([scrapers()], [PROMETHEUS_PORT]),
            ],
        )
        self.register_outputs({"targets": targets})
