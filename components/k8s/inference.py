"""The regional inference server: Deployment, public Service, HPA, PDB and NetworkPolicy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.labels import metadata
from components.k8s.monitoring import scrape_annotations
from components.k8s.security import Resources, container, http_probe, pod_spec
from components.k8s.services import load_balancer_address, service
from components.k8s.target import Target
from workloads import contract

SERVER_APP = "server"
EDGE_APP = "edge"
KEYS_VOLUME = "keys"
SERVER_RESOURCES = Resources("1", "2Gi", "2", "4Gi")
MAX_UNAVAILABLE = 1  # never blocks a node drain, keeps n-1 replicas serving during one


def service_account(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    identity: WorkloadIdentity,
    parent: pulumi.Resource,
) -> k8s.core.v1.ServiceAccount:
    """The pod's identity: the cloud role annotation, and no API token (none is needed)."""
    return k8s.core.v1.ServiceAccount(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "identity"), identity.annotations),
        automount_service_account_token=False,
        opts=target.opts(parent),
    )


def trusted_key_volume(config_map: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=KEYS_VOLUME,
        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
            name=config_map,
            items=[k8s.core.v1.KeyToPathArgs(key=contract.TRUSTED_KEY_FILE, path=contract.TRUSTED_KEY_FILE)],
        ),
    )


def trusted_key_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=KEYS_VOLUME, mount_path=contract.KEYS_MOUNT, read_only=True)


def model_env(target: Target, registry_url: pulumi.Input[str], variant: str) -> dict[str, pulumi.Input[str]]:
    """What every server needs to find, verify and split traffic between model versions."""
    canary = target.config.inference.canary
    env: dict[str, pulumi.Input[str]] = {
        contract.ENV_REGION: target.region.name,
        contract.ENV_MODEL_NAME: contract.MODEL_NAME,
        contract.ENV_MODEL_VARIANT: variant,
        contract.ENV_REGISTRY_URL: registry_url,
        contract.ENV_TRUSTED_KEY: f"{contract.KEYS_MOUNT}/{contract.TRUSTED_KEY_FILE}",
        contract.ENV_STABLE_VERSION: canary.stable,
        contract.ENV_CANDIDATE_WEIGHT: str(canary.weight),
    }
    if canary.candidate is not None:
        env[contract.ENV_CANDIDATE_VERSION] = canary.candidate
    return env


def batching_env(target: Target) -> dict[str, pulumi.Input[str]]:
    inference = target.config.inference
    return {
        contract.ENV_MAX_BATCH_SIZE: str(inference.max_batch_size),
        contract.ENV_MAX_BATCH_WAIT_MS: f"{inference.max_batch_wait_ms:g}",
        contract.ENV_QUEUE_CAPACITY: str(inference.queue_capacity),
    }


def server_container(
    app: str, image: pulumi.Input[str], resources: Resources, environment: Mapping[str, pulumi.Input[str]]
) -> k8s.core.v1.ContainerArgs:
    """An Open Inference Protocol server: probes on the contract's health paths."""
    return container(
        app,
        image,
        resources=resources,
        probes=(
            http_probe(contract.LIVENESS_PATH, contract.HTTP_PORT),
            http_probe(contract.READINESS_PATH, contract.HTTP_PORT, period=5),
        ),
        # Loading and verifying a model can take a while: no liveness kill meanwhile.
        startup=http_probe(contract.LIVENESS_PATH, contract.HTTP_PORT, period=5, failures=60),
        environment=environment,
        ports={"http": contract.HTTP_PORT},
        mounts=[trusted_key_mount()],
    )


def disruption_budget(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    parent: pulumi.Resource,
    selector: Mapping[str, str] | None = None,
) -> k8s.policy.v1.PodDisruptionBudget:
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "availability")),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=MAX_UNAVAILABLE,
            selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels=dict(selector) if selector is not None else target.selector(app)
            ),
        ),
        opts=target.opts(parent),
    )


class RegionalInference(pulumi.ComponentResource):
    """The region's GPU inference server behind a LoadBalancer, scaled on CPU by an HPA."""

    endpoint: pulumi.Output[str]
    service_url: str  # in-cluster URL, the edge servers' upstream

    def __init__(
        self,
        name: str,
        target: Target,
        image: pulumi.Input[str],
        registry_url: pulumi.Input[str],
        identity: WorkloadIdentity,
        trusted_key_config_map: pulumi.Input[str],
        gpus: int,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("meridian:k8s:RegionalInference", name, None, opts)
        inference = target.config.inference
        account = service_account(f"{name}-sa", SERVER_APP, target, SERVER_APP, identity, self)
        environment = {
            **model_env(target, registry_url, contract.REGIONAL_MODEL_VARIANT),
            **batching_env(target),
        }
        resources = replace(SERVER_RESOURCES, gpus=gpus)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(SERVER_APP, target.namespace, target.labels(SERVER_APP, "inference")),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # No replicas: the HPA owns the count; setting it here would fight the HPA.
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=target.selector(SERVER_APP)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=target.labels(SERVER_APP, "inference"), annotations=scrape_annotations()
                    ),
                    spec=pod_spec(
                        [server_container(SERVER_APP, image, resources, environment)],
                        service_account=account.metadata.name,
                        volumes=[trusted_key_volume(trusted_key_config_map)],
                        gpu=gpus > 0,
                    ),
                ),
            ),
            opts=target.opts(self),
        )
        svc = service(
            f"{name}-service", SERVER_APP, target, SERVER_APP, {"http": contract.HTTP_PORT}, public=True, parent=self
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=metadata(SERVER_APP, target.namespace, target.labels(SERVER_APP, "autoscaling")),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
                ),
                min_replicas=inference.min_replicas,
                max_replicas=inference.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=inference.target_cpu_utilization
                            ),
                        ),
                    )
                ],
            ),
            opts=target.opts(self),
        )
        disruption_budget(f"{name}-pdb", SERVER_APP, target, SERVER_APP, self)
        netpol.allow(
            f"{name}-netpol",
            SERVER_APP,
            target.namespace,
            target.selector(SERVER_APP),
            target.labels(SERVER_APP, "network"),
            # Public: clients through the load balancer, the region's edge servers, scrapers.
            ingress=[
                netpol.Rule([netpol.anywhere(), netpol.pods(target.selector(EDGE_APP))], [contract.HTTP_PORT])
            ],
            egress=[netpol.Rule([netpol.public_internet()], [netpol.HTTPS_PORT])]
            + netpol.cloud_identity_rules(target.region.cloud),
            opts=target.opts(self),
        )
        self.endpoint = load_balancer_address(svc)
        self.service_url = f"http://{target.service_host(SERVER_APP)}:{contract.HTTP_PORT}"
        self.register_outputs({"endpoint": self.endpoint, "serviceUrl": self.service_url})
