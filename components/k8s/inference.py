"""The regional inference server: Deployment, public HTTPS exposure, the edges' escalation
Service, ScaledObject, PDB and NetworkPolicy.

Its ports and who may reach each (NetworkPolicy): HTTP_PORT, public (through the load
balancer or the Gateway; every caller needs a credential); ESCALATION_PORT, mutual TLS, from the region's
edge pods only (regions with edge sites); ADMIN_PORT, from the region's canary controller only
(where one runs); METRICS_PORT, from the cluster's Prometheus only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_kubernetes as k8s

from components.front_door import FrontDoor, global_host
from components.k8s import network_policy as netpol
from components.k8s.autoscaling import scaled_object, server_policy
from components.k8s.exposure import expose
from components.k8s.front_door_tls import ESCALATION_SERVICE, escalation_url, server_tls, serves_https
from components.k8s.monitors import scraped
from components.k8s.pods import Resources
from components.k8s.services import service
from components.k8s.serving import (
    EDGE_APP,
    SERVER_APP,
    ModelSource,
    PodAdditions,
    admin_ingress,
    disruption_budget,
    server_pod,
)
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

SERVER_RESOURCES = Resources("1", "2Gi", "2", "4Gi")


def batching_env(target: Target) -> dict[str, pulumi.Input[str]]:
    inference = target.config.inference
    return {
        contract.ENV_MAX_BATCH_SIZE: str(inference.max_batch_size),
        contract.ENV_CUDA_MAX_BATCH_SIZE: str(inference.cuda_max_batch_size),
        contract.ENV_MAX_BATCH_WAIT_MS: f"{inference.max_batch_wait_ms:g}",
        contract.ENV_QUEUE_CAPACITY: str(inference.queue_capacity),
    }


@dataclass(frozen=True, kw_only=True)
class RegionalInferenceArgs:
    target: Target
    image: pulumi.Input[str]  # the server image
    models: ModelSource
    gpus: int  # per pod; 0 where the region has none
    callers: PodAdditions  # the callers' credentials and limits (components/k8s/callers.py)
    trust: FederationTrust  # the stack's CA: the escalation listener's and, in a `kubernetes` region, the public one's
    front_door: FrontDoor  # the region's public names and TLS material
    autoscaler: Sequence[pulumi.Resource] = ()  # what the ScaledObject waits for: KEDA's release


class RegionalInference(pulumi.ComponentResource):
    """The region's GPU inference server behind HTTPS at `<region>.<domain>` and
    `inference.<domain>` (components/k8s/exposure.py), scaled by KEDA on in-flight requests,
    p99 latency and CPU (components/k8s/autoscaling.py)."""

    endpoint: pulumi.Output[str]  # what the region's public names resolve to
    escalation_url: str  # in-cluster URL of the escalation port, the edge servers' upstream

    def __init__(self, name: str, args: RegionalInferenceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:RegionalInference", name, None, opts)
        target = args.target
        workload = Workload(target, SERVER_APP, self)
        account = workload.service_account(f"{name}-sa", args.models.identity)
        self.endpoint = expose(
            f"{name}-service",
            SERVER_APP,
            target,
            SERVER_APP,
            args.front_door,
            [args.front_door.region_host, global_host(target.config)],
            parent=self,
        )
        public_hosts = (
            [args.front_door.region_host, global_host(target.config), self.endpoint]
            if serves_https(target.region)
            else None
        )
        additions = (
            args.callers + server_tls(workload, args.trust, name, public_hosts) + PodAdditions(batching_env(target))
        )
        server = workload.deployment(
            f"{name}-deployment",
            server_pod(
                workload,
                args.image,
                replace(SERVER_RESOURCES, gpus=args.gpus),
                models=args.models,
                variant=contract.REGIONAL_MODEL_VARIANT,
                additions=additions,
                service_account=account.metadata.name,
                gpu=args.gpus > 0,
            ),
            component="inference",
            # No replicas: the ScaledObject owns the count; setting it here would fight KEDA's HPA.
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
            ),
            gated_by_pipeline=True,  # ready once the region's first model is published
        )
        if target.region.edge_sites:  # in-cluster only: the escalation port is never behind the load balancer
            service(
                f"{name}-escalation-service",
                ESCALATION_SERVICE,
                target,
                SERVER_APP,
                {"escalation": contract.ESCALATION_PORT},
                public=False,
                parent=self,
            )
        scaled_object(
            f"{name}-scaling",
            target,
            SERVER_APP,
            SERVER_APP,
            server,
            server_policy(target),
            parent=self,
            depends_on=list(args.autoscaler),
        )
        disruption_budget(f"{name}-pdb", workload, SERVER_APP)
        workload.allow_traffic(
            f"{name}-netpol",
            # Public: clients through the load balancer; escalations: the region's edge servers;
            # admin: the canary controller; metrics: the cluster's Prometheus only.
            ingress=[
                netpol.Rule([netpol.anywhere()], [contract.HTTP_PORT]),
                *(
                    [netpol.Rule([netpol.pods(target.selector(EDGE_APP))], [contract.ESCALATION_PORT])]
                    if target.region.edge_sites
                    else []
                ),
                *admin_ingress(target, args.models),
                scraped(),
            ],
            egress=[*netpol.cloud_apis(target.region.cloud), *netpol.oidc_issuer(target.config.auth)],
        )
        self.escalation_url = escalation_url(target)
        self.register_outputs({"endpoint": self.endpoint, "escalationUrl": self.escalation_url})
