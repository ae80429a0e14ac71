"""What the regional and the edge inference servers share: the Open Inference Protocol
container, the model they load and the key they verify it with, its listeners (public, admin,
metrics; what the callers and the certificates add: PodAdditions), and their disruption budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.labels import metadata
from components.k8s.pods import Resources, SecretFiles, container, http_probe, pod_spec, read_only_mount
from components.k8s.target import Target
from components.k8s.workload import Workload
from workloads import contract

SERVER_APP = "server"
EDGE_APP = "edge"
CANARY_APP = contract.MetricsApp.CANARY.value  # the canary controller (components/k8s/canary.py)
ADMIN_PORT_NAME = "admin"  # the servers' and edges' container port of contract.ADMIN_PORT
KEYS_VOLUME = "keys"
MAX_UNAVAILABLE = 1  # never blocks a node drain, keeps n-1 replicas serving during one


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where a region's servers find their signed artifacts, how they verify them, and who
    may switch the versions they serve."""

    registry_url: pulumi.Input[str]  # the model registry (its CDN's URL)
    trusted_key_config_map: pulumi.Input[str]  # the ConfigMap holding the signing public key
    identity: WorkloadIdentity  # may read the model registry, nothing else
    # The repository API's bearer token (the canary controller's, components/k8s/canary.py);
    # None: the API stays off.
    admin_token: SecretFiles | None = None


@dataclass(frozen=True)
class PodAdditions:
    """What a server pod gets beyond its model: environment, Secret files and ports (the
    callers' credentials: components/k8s/callers.py; certificates and the escalation listener:
    components/k8s/front_door_tls.py). `https`: its public port serves HTTPS itself."""

    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    files: Sequence[SecretFiles] = ()
    ports: Mapping[str, int] = field(default_factory=dict)
    https: bool = False

    def __add__(self, other: PodAdditions) -> PodAdditions:
        return PodAdditions(
            {**self.environment, **other.environment},
            [*self.files, *other.files],
            {**self.ports, **other.ports},
            self.https or other.https,
        )


def _admin(target: Target, token: SecretFiles | None) -> PodAdditions:
    """The repository API on its own port, where a canary controller drives it (the token's
    holder); no token, no listener."""
    if token is None:
        return PodAdditions()
    grace = target.config.auth.admin_token.grace_seconds
    return PodAdditions(
        {contract.ENV_ADMIN_PORT: str(contract.ADMIN_PORT), contract.ENV_ADMIN_TOKEN_GRACE_S: str(grace)},
        [token],
        {ADMIN_PORT_NAME: contract.ADMIN_PORT},
    )


def admin_ingress(target: Target, models: ModelSource) -> list[netpol.Rule]:
    """Who may reach a server's admin port: the region's canary controller, and only it."""
    if models.admin_token is None:
        return []
    return [netpol.Rule([netpol.pods(target.selector(CANARY_APP))], [contract.ADMIN_PORT])]


def _trusted_key_volume(config_map: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=KEYS_VOLUME,
        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
            name=config_map,
            items=[k8s.core.v1.KeyToPathArgs(key=contract.TRUSTED_KEY_FILE, path=contract.TRUSTED_KEY_FILE)],
        ),
    )


def _model_env(target: Target, registry_url: pulumi.Input[str], variant: str) -> dict[str, pulumi.Input[str]]:
    """What every server needs to find, verify and split traffic between model versions."""
    canary = target.config.inference.canary
    env: dict[str, pulumi.Input[str]] = {
        contract.ENV_REGION: target.region.name,
        contract.ENV_METRICS_PORT: str(contract.METRICS_PORT),
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


def _server_container(
    app: str, image: pulumi.Input[str], resources: Resources, pod: PodAdditions
) -> k8s.core.v1.ContainerArgs:
    """An Open Inference Protocol server: probes on the contract's health paths (open, no
    credential), over HTTPS where the public port serves it."""
    https = pod.https
    return container(
        app,
        image,
        resources=resources,
        probes=(
            http_probe(contract.LIVENESS_PATH, contract.HTTP_PORT, https=https),
            http_probe(contract.READINESS_PATH, contract.HTTP_PORT, period=5, https=https),
        ),
        # Loading and verifying a model can take a while: no liveness kill meanwhile.
        startup=http_probe(contract.LIVENESS_PATH, contract.HTTP_PORT, period=5, failures=60, https=https),
        environment=pod.environment,
        secret_files=pod.files,
        # /metrics on a port of its own, which no Service exposes (components/k8s/monitors.py)
        ports={"http": contract.HTTP_PORT, "metrics": contract.METRICS_PORT, **pod.ports},
        mounts=[read_only_mount(KEYS_VOLUME, contract.KEYS_MOUNT)],
    )


def server_pod(
    workload: Workload,
    image: pulumi.Input[str],
    resources: Resources,
    *,
    models: ModelSource,
    variant: str,
    additions: PodAdditions,
    service_account: pulumi.Input[str],
    gpu: bool = False,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[k8s.core.v1.TolerationArgs] = (),
) -> k8s.core.v1.PodSpecArgs:
    """One server that loads `variant` of the region's model, verified with the trusted key,
    its repository API on the admin port where the region's canary controller drives it;
    `additions` is what is the server's own."""
    pod = PodAdditions(_model_env(workload.target, models.registry_url, variant)) + additions
    pod += _admin(workload.target, models.admin_token)
    return pod_spec(
        [_server_container(workload.app, image, resources, pod)],
        service_account=service_account,
        volumes=[_trusted_key_volume(models.trusted_key_config_map), *(f.volume() for f in pod.files)],
        gpu=gpu,
        node_selector=node_selector,
        tolerations=tolerations,
    )


def disruption_budget(
    resource_name: str, workload: Workload, name: str, selector: Mapping[str, str] | None = None
) -> k8s.policy.v1.PodDisruptionBudget:
    target = workload.target
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(workload.app, "availability")),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=MAX_UNAVAILABLE,
            selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels=dict(selector) if selector is not None else target.selector(workload.app)
            ),
        ),
        opts=target.opts(workload.parent),
    )
