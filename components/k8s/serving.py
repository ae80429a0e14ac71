"""What the regional and the edge inference servers share: the Open Inference Protocol
container, the model they load and the key they verify it with, and their disruption budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.k8s.labels import metadata
from components.k8s.pods import Resources, container, http_probe
from components.k8s.target import Target
from workloads import contract

SERVER_APP = "server"
EDGE_APP = "edge"
KEYS_VOLUME = "keys"
MAX_UNAVAILABLE = 1  # never blocks a node drain, keeps n-1 replicas serving during one


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where a region's servers find their signed artifacts and how they verify them."""

    registry_url: pulumi.Input[str]  # the model registry (its CDN's URL)
    trusted_key_config_map: pulumi.Input[str]  # the ConfigMap holding the signing public key
    identity: WorkloadIdentity  # may read the model registry, nothing else


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
