"""The typed stack config: `meridian:*` keys of `stacks/Pulumi.<stack>.yaml`.

Every rule is checked here, before a single resource is registered, and every error names the
stack file and the field path (`regions[2].gpu.max`) and says what is allowed. This module
needs only pydantic and PyYAML, so the Pulumi program, the workloads' launcher and the
operator CLI all read the same stacks.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.catalog import (
    CPU_MACHINES,
    DEFAULT_EDGE_MACHINE,
    DEFAULT_SYSTEM_MACHINE,
    GPU_MACHINES,
    REGIONS,
    Accelerator,
    Cloud,
    Residency,
    edge_location_belongs,
    gcp_gpu_zones,
)
from workloads.contract import (
    CUDA_MAX_BATCH_SIZE,
    FEDERATION_DEFAULTS,
    SECURE_AGGREGATION_REFUSED,
    Compression,
    Downlink,
    Strategy,
    privacy_conflicts,
)

NAMESPACE = "meridian"
# Secret config, read by the program as Pulumi secrets (never validated or printed here):
# `apiKeys`: {<id>: <secret>} for the ids of `auth.apiKeys`.
SECRET_KEYS = frozenset({"apiKeys"})
STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$")


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-32 lowercase letters, digits and '-', starting with a letter"
        )
    return value


Name = Annotated[str, AfterValidator(_dns_label)]


def field_error(field: str, message: str) -> ValueError:
    """An error about a sub-field, so the reported path ends at that field (`gpu.max`)."""
    return ValueError(f"@{field}@{message}")


class ConfigError(Exception):
    """A stack config mistake: the file, and one line per problem with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid stack config ({len(problems)} problem(s))"]
        lines += [f"  {path or '<root>'}: {message}" for path, message in problems]
        super().__init__("\n".join(lines))


class ConfigModel(BaseModel):
    """Stack YAML uses camelCase keys; unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class GpuPool(ConfigModel):
    accelerator: Accelerator
    machine_type: str | None = Field(default=None, description="Cloud machine type; not used for `kubernetes` regions.")
    # On EKS, Karpenter launches GPU nodes for pending GPU pods only: there `max` (and spot) bound
    # the pool, `min` and `desired` size nothing (components/aws/karpenter.py).
    min: int = Field(ge=0, le=1000)
    desired: int = Field(ge=0, le=1000)
    max: int = Field(ge=1, le=1000)
    spot: bool = False
    on_demand_fallback: bool = Field(
        default=False,
        description="With spot: a second on-demand pool that scales up when spot is short.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.desired > self.max:
            raise field_error("max", f"must be >= desired ({self.desired}), got {self.max}")
        if self.min > self.desired:
            raise field_error("desired", f"must be >= min ({self.min}), got {self.desired}")
        if self.on_demand_fallback and not self.spot:
            raise field_error("onDemandFallback", "only makes sense with spot: true")
        return self


class EdgeSite(ConfigModel):
    name: Name
    location: str = Field(
        description="AWS Local Zone id (us-east-1-nyc-2a), GCP zone (europe-west4-a), or the "
        "value of the `topology.kubernetes.io/zone` label on an existing cluster."
    )
    capacity: int = Field(
        ge=1, le=100, description="CPU nodes, a fixed pool; also the fewest edge server replicas (one per node)."
    )
    machine_type: str | None = None
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Most edge server replicas KEDA may run on the site's `capacity` nodes "
        "(500m CPU, 1 GiB requested each); default 2 x capacity.",
    )

    @model_validator(mode="after")
    def _replicas_cover_nodes(self) -> Self:
        if self.max_replicas is not None and self.max_replicas < self.capacity:
            raise field_error("maxReplicas", f"must be >= capacity ({self.capacity}), got {self.max_replicas}")
        return self

    @property
    def peak_replicas(self) -> int:
        return self.max_replicas if self.max_replicas is not None else 2 * self.capacity


# The fsspec protocols the workloads' images can publish to (s3fs, gcsfs, local files).
WRITABLE_MODEL_STORES = ("s3", "gs", "file")


class KubernetesTarget(ConfigModel):
    """An existing cluster: only the Kubernetes layer is deployed there."""

    context: str = Field(description="kubeconfig context that reaches the cluster")
    kubeconfig_path: str | None = Field(
        default=None, description="kubeconfig file; default: $KUBECONFIG or ~/.kube/config"
    )
    image_registry: str = Field(description="registry the images are pushed to, e.g. ghcr.io/acme")
    model_registry_url: str = Field(description="where artifacts are read, e.g. https://models.acme")
    model_store_url: str = Field(
        description="fsspec URL the region's localizer publishes its signed artifacts to (and, at "
        "home, the run its global model), e.g. s3://models (MinIO) or file:///srv/models; "
        "modelRegistryUrl must serve the same objects"
    )
    data_volume_claim: Name = Field(description="PersistentVolumeClaim holding this region's data")

    @field_validator("model_store_url")
    @classmethod
    def _writable(cls, value: str) -> str:
        scheme, separator, rest = value.partition("://")
        if not separator or not rest or scheme not in WRITABLE_MODEL_STORES:
            allowed = ", ".join(f"{s}://" for s in WRITABLE_MODEL_STORES)
            read_only = " (http(s) is read-only: that is modelRegistryUrl)" if scheme in ("http", "https") else ""
            raise ValueError(f"{value!r} is not a store the localizer can write to{read_only}; use {allowed}")
        return value


class Region(ConfigModel):
    name: str
    cloud: Cloud
    residency: Residency
    gpu: GpuPool
    system_machine_type: str | None = None
    edge_sites: list[EdgeSite] = Field(default_factory=list)
    kubernetes: KubernetesTarget | None = None

    @model_validator(mode="after")
    def _fits_its_cloud(self) -> Self:
        if self.cloud is Cloud.KUBERNETES:
            _dns_label(self.name)
            if self.kubernetes is None:
                raise field_error("kubernetes", "a `kubernetes` region needs this block")
            if self.gpu.machine_type is not None:
                raise field_error("gpu.machineType", "not used on an existing cluster; remove it")
            return self
        if self.kubernetes is not None:
            raise field_error("kubernetes", f"only for cloud: kubernetes, not {self.cloud}")
        regions = REGIONS[self.cloud]
        if self.name not in regions:
            raise field_error(
                "name",
                f"unknown {self.cloud} region {self.name!r}; known: {', '.join(sorted(regions))}",
            )
        if regions[self.name] is not self.residency:
            raise field_error(
                "residency",
                f"region {self.name} lies in residency zone {regions[self.name]!s}, not {self.residency!s}",
            )
        machines = GPU_MACHINES[self.cloud]
        machine = machines.get(self.gpu.machine_type or "")
        if machine is None:
            raise field_error(
                "gpu.machineType",
                f"{self.gpu.machine_type!r} is not a {self.cloud} GPU type; known: {', '.join(sorted(machines))}",
            )
        if self.gpu.accelerator not in machine.accelerators:
            offered = ", ".join(a.value for a in machine.accelerators)
            raise field_error(
                "gpu.accelerator",
                f"{self.gpu.accelerator!s} is not offered by {self.cloud} on "
                f"{self.gpu.machine_type}; it offers: {offered}",
            )
        if self.cloud is Cloud.GCP and not gcp_gpu_zones(self.name, self.gpu.accelerator):
            raise field_error(
                "gpu.accelerator",
                f"no zone of {self.name} offers {self.gpu.accelerator!s} (components/catalog.py GCP_GPU_ZONES); "
                "pick another accelerator or region",
            )
        cpu = CPU_MACHINES[self.cloud]
        fields = [("systemMachineType", self.system_machine_type)] + [
            (f"edgeSites[{j}].machineType", s.machine_type) for j, s in enumerate(self.edge_sites)
        ]
        for field, value in fields:
            if value is not None and value not in cpu:
                raise field_error(
                    field,
                    f"{value!r} is not a {self.cloud} CPU type; known: {', '.join(sorted(cpu))}",
                )
        for j, site in enumerate(self.edge_sites):
            if not edge_location_belongs(self.cloud, self.name, site.location):
                raise field_error(
                    f"edgeSites[{j}].location",
                    f"{site.location!r} is not in parent region {self.name} "
                    f"(expected a {self.cloud} location named {self.name}-...)",
                )
        return self

    @property
    def gpus_per_node(self) -> int:
        machine = GPU_MACHINES.get(self.cloud, {}).get(self.gpu.machine_type or "")
        return machine.gpus if machine else 1

    @property
    def system_machine(self) -> str:
        return self.system_machine_type or DEFAULT_SYSTEM_MACHINE.get(self.cloud, "")

    def edge_machine(self, site: EdgeSite) -> str:
        return site.machine_type or DEFAULT_EDGE_MACHINE.get(self.cloud, "")


class RecordLevelDp(ConfigModel):
    """`federation.privacy.dp`: every region trains with DP-SGD (Opacus), so its contribution to
    the whole run is (epsilon, delta)-DP with respect to each of that region's records. The noise
    is derived from these, the rounds, local epochs, batch size and the region's example count;
    the run stops before any region would spend more (workloads/trainer/privacy.py)."""

    epsilon: float = Field(gt=0, le=100, description="each region's budget over the whole run")
    delta: float = Field(default=1e-5, gt=0, lt=1e-3, description="below 1 / the smallest region's record count")
    max_grad_norm: float = Field(default=1.0, gt=0, description="per-example gradient clipping norm")


class AggregateDp(ConfigModel):
    """`federation.privacy.aggregate`: update-level DP at the aggregator, Flower's DP strategy
    wrappers: each region's update is clipped (on the server, or by the region itself) and
    Gaussian noise of noiseMultiplier x clippingNorm / minRegions is added to the aggregate."""

    clipping: Literal["fixed", "adaptive"]
    side: Literal["server", "client"] = "server"
    noise_multiplier: float = Field(ge=0, le=100)
    clipping_norm: float = Field(default=1.0, gt=0, description="fixed: the norm; adaptive: the initial norm")
    target_quantile: float | None = Field(
        default=None, gt=0, lt=1, description="adaptive: the share of updates left unclipped (default 0.5)"
    )

    @model_validator(mode="after")
    def _adaptive_only(self) -> Self:
        if self.target_quantile is not None and self.clipping == "fixed":
            raise field_error(
                "targetQuantile", "only adaptive clipping adapts to a quantile; fixed clipping uses clippingNorm"
            )
        return self


class Privacy(ConfigModel):
    """`federation.privacy`: what the run guarantees about individual records (README: Privacy)."""

    dp: RecordLevelDp | None = None
    aggregate: AggregateDp | None = None
    secure_aggregation: bool = Field(default=False, description="refused: see contract.SECURE_AGGREGATION_REFUSED")

    @field_validator("secure_aggregation")
    @classmethod
    def _no_secure_aggregation(cls, value: bool) -> bool:
        if value:
            raise ValueError(SECURE_AGGREGATION_REFUSED)
        return value

    def run_config(self) -> dict[str, str | int | float]:
        """The trainer's run config keys for these options (none when nothing is set)."""
        out: dict[str, str | int | float] = {}
        if self.dp is not None:
            out |= {"dp-epsilon": self.dp.epsilon, "dp-delta": self.dp.delta, "dp-max-grad-norm": self.dp.max_grad_norm}
        if self.aggregate is not None:
            a = self.aggregate
            out |= {
                "aggregate-clipping": a.clipping,
                "aggregate-side": a.side,
                "aggregate-noise-multiplier": a.noise_multiplier,
                "aggregate-clipping-norm": a.clipping_norm,
            }
            if a.target_quantile is not None:
                out["aggregate-target-quantile"] = a.target_quantile
        return out


class Federation(ConfigModel):
    """The federated run; its defaults are the trainer's own (workloads.contract)."""

    task: str = Field(
        default=FEDERATION_DEFAULTS.task, description="built-in task name or a dotted path `pkg.module:TASK`"
    )
    strategy: Strategy = FEDERATION_DEFAULTS.strategy
    rounds: int = Field(default=FEDERATION_DEFAULTS.rounds, ge=1, le=10_000)
    min_regions: int = Field(default=FEDERATION_DEFAULTS.min_regions, ge=1)
    local_epochs: int = Field(default=FEDERATION_DEFAULTS.local_epochs, ge=1, le=100)
    compression: Compression = FEDERATION_DEFAULTS.compression
    topk_fraction: float = Field(default=FEDERATION_DEFAULTS.topk_fraction, gt=0, le=1)
    downlink: Downlink = FEDERATION_DEFAULTS.downlink
    downlink_topk_fraction: float = Field(default=FEDERATION_DEFAULTS.downlink_topk_fraction, gt=0, le=1)
    proximal_mu: float = Field(default=FEDERATION_DEFAULTS.proximal_mu, ge=0)
    round_timeout_seconds: int = Field(default=FEDERATION_DEFAULTS.round_timeout_seconds, ge=10)
    dirichlet_alpha: float = Field(default=0.5, gt=0)  # how unevenly the local stack splits data
    data_version: str = Field(
        default="1",
        pattern=r"^[A-Za-z0-9._-]{1,32}$",
        description="The regions' training data generation: bump it after `meridian data push` "
        "to train again. With the settings above it keys the run (components/k8s/federated_run.py); "
        "a new trainer image alone does not start a run.",
    )
    privacy: Privacy = Privacy()

    @model_validator(mode="after")
    def _privacy_fits(self) -> Self:
        aggregate = self.privacy.aggregate
        if aggregate is not None:
            for field, reason in privacy_conflicts(self.strategy, self.compression, aggregate.clipping, aggregate.side):
                raise field_error(f"privacy.{field}", reason)
        return self

    @model_validator(mode="after")
    def _downlink_fits(self) -> Self:
        if self.downlink is Downlink.TOPK and self.compression is Compression.NONE:
            raise field_error("downlink", "topk needs a compression that sends deltas (fp16, int8 or topk), not none")
        return self

    def run_config(self) -> dict[str, str | int | float]:
        """These settings as the trainer's run config (`flwr run --run-config`; the keys of
        workloads/trainer/pyproject.toml). Where the run writes and serves is the caller's."""
        return {
            "task": self.task,
            "strategy": self.strategy.value,
            "rounds": self.rounds,
            "min-regions": self.min_regions,
            "local-epochs": self.local_epochs,
            "compression": self.compression.value,
            "topk-fraction": self.topk_fraction,
            "proximal-mu": self.proximal_mu,
            "round-timeout": float(self.round_timeout_seconds),
            **self.privacy.run_config(),
            **self._downlink_run_config(),
        }

    def _downlink_run_config(self) -> dict[str, str | int | float]:
        """Only when the downlink is compressed, so the run key (the settings' hash) of a stack
        that keeps the full downlink is what it was before the downlink could be set."""
        if self.downlink is Downlink.FULL:
            return {}
        return {"downlink": self.downlink.value, "downlink-topk-fraction": self.downlink_topk_fraction}


class CanaryAnalysis(ConfigModel):
    """`inference.canary.analysis`: the region's canary controller compares candidate and
    stable over `windowSeconds` of live metrics every `intervalSeconds`, once each version has
    answered `minRequests` in the window, and promotes the candidate or rolls it back."""

    interval_seconds: int = Field(default=30, ge=5, le=3600)
    window_seconds: int = Field(default=300, ge=30, le=86400)
    min_requests: int = Field(default=200, ge=10, description="per version, within the window")
    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1, description="candidate minus stable 5xx rate")
    max_p99_ratio: float = Field(default=1.5, ge=1, le=100, description="candidate p99 over stable p99")
    min_agreement: float = Field(
        default=0.9, ge=0, le=1, description="top-1 agreement with stable, when no labels came back"
    )
    max_accuracy_drop: float = Field(
        default=0.02, ge=0, le=1, description="stable minus candidate accuracy on fed-back labels"
    )
    min_labelled: int = Field(default=50, ge=1, description="fed-back labels per version before accuracy counts")

    @model_validator(mode="after")
    def _window_covers_interval(self) -> Self:
        if self.window_seconds < self.interval_seconds:
            raise field_error(
                "windowSeconds", f"must be >= intervalSeconds ({self.interval_seconds}), got {self.window_seconds}"
            )
        return self


class Canary(ConfigModel):
    """`stable: latest` follows the region's registry. With `analysis`, each new `latest` enters
    as the candidate at `weight` percent and the analysis decides; without, it replaces stable.
    A pinned `candidate` is judged by the analysis when there is one."""

    stable: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    candidate: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    weight: int = Field(default=0, ge=0, le=100, description="percent of traffic to candidate")
    analysis: CanaryAnalysis | None = None

    @model_validator(mode="after")
    def _candidate_when_weighted(self) -> Self:
        following = self.stable == "latest"
        if following and self.candidate is not None:
            raise field_error(
                "candidate", "stable `latest` takes its candidates from the registry; pin stable to name one"
            )
        if self.weight > 0 and self.candidate is None and not following:
            raise field_error("candidate", f"weight {self.weight} needs a candidate version")
        if following and self.weight > 0 and self.analysis is None:
            raise field_error("analysis", f"weight {self.weight} on `latest` needs an analysis to promote or roll back")
        if following and self.analysis is not None and self.weight == 0:
            raise field_error("weight", "the analysis needs candidate traffic: set weight > 0 (percent)")
        if self.candidate is not None and self.candidate == self.stable:
            raise field_error("candidate", "must differ from stable")
        return self


class Inference(ConfigModel):
    """The servers, and how KEDA scales them (components/k8s/autoscaling.py): on in-flight
    requests per replica and p99 latency from Prometheus, CPU utilisation as the floor."""

    min_replicas: int = Field(default=1, ge=1, le=500)
    max_replicas: int = Field(
        default=4, ge=1, le=500, description="per region; capped at the region's GPU pool (gpu.max x GPUs per node)"
    )
    target_cpu_utilization: int = Field(default=70, ge=10, le=95, description="percent of requests: the CPU floor")
    target_in_flight_per_replica: int = Field(
        default=32, ge=1, le=10_000, description="accepted, unanswered requests per regional server replica"
    )
    # Below the latency SLOs (meridian/monitoring/slos.py: 250 ms servers, 500 ms edges), so
    # capacity arrives before the error budget burns.
    target_p99_ms: float = Field(default=200, gt=0, le=60_000, description="regional server p99 latency to hold")
    edge_target_in_flight_per_replica: int = Field(default=8, ge=1, le=10_000)
    edge_target_p99_ms: float = Field(
        default=300, gt=0, le=60_000, description="edge p99, escalations to the region included"
    )
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, le=3600, description="lower recommendations must hold this long before a pod goes"
    )
    max_batch_size: int = Field(default=32, ge=1, le=4096, description="rows per forward pass on CPU")
    cuda_max_batch_size: int = Field(
        default=CUDA_MAX_BATCH_SIZE, ge=1, le=4096, description="rows per forward pass on a GPU"
    )
    max_batch_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    queue_capacity: int = Field(default=256, ge=1)
    edge_confidence_threshold: float = Field(default=0.8, ge=0, le=1)
    # `latest`: follow the region's registry (its localizer publishes there); pinning a version
    # (and a candidate) is an operator's later step, once versions exist.
    canary: Canary = Canary(stable="latest")

    @model_validator(mode="after")
    def _replica_bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise field_error("maxReplicas", f"must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}")
        return self


class RateLimit(ConfigModel):
    """A caller's token bucket: refilled at `requestsPerSecond`, holding at most `burst`. Held
    by each replica on its own (no shared store): a caller spread over n replicas by the load
    balancer gets up to n times this."""

    requests_per_second: float = Field(default=100, gt=0, le=1_000_000)
    burst: int = Field(default=200, ge=1, le=10_000_000)


class Oidc(ConfigModel):
    """OIDC bearer tokens (JWT): signature against the issuer's JWKS, expiry, issuer, audience."""

    issuer: str = Field(pattern=r"^https://", description="the `iss` every token must carry")
    audience: str = Field(min_length=1, description="the `aud` every token must include")
    jwks_url: str = Field(pattern=r"^https://", description="the issuer's signing keys (fetched, cached, refreshed)")
    # The servers' egress reaches public addresses on 443 only (components/k8s/network_policy.py):
    # an issuer on a private network (an on-prem SSO) needs its addresses named.
    jwks_cidrs: list[str] = Field(
        default_factory=list, description="private address ranges of the JWKS host; egress on 443 is opened to them"
    )

    @field_validator("jwks_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as err:
                raise ValueError(f"{cidr!r} is not an address range (CIDR): {err}") from None
        return value


class AdminToken(ConfigModel):
    """The servers' repository API token (a RandomPassword in the stack's state, into a Secret)."""

    rotation: int = Field(default=1, ge=1, description="change (e.g. +1) to rotate the token on the next `pulumi up`")
    grace_seconds: int = Field(
        default=600, ge=0, le=86_400, description="how long the replaced token stays valid after a rotation"
    )


class Auth(ConfigModel):
    """`auth`: who may call the inference API, and how much. At least one way in is required.

    API key ids are listed here; each key's secret is secret config (`pulumi config set
    --secret --path 'meridian:apiKeys.<id>' <secret>`), never in this file; callers present
    `<id>.<secret>`. Only salted hashes reach the clusters."""

    api_keys: list[Name] = Field(default_factory=list, description="API key ids")
    oidc: Oidc | None = None
    rate_limit: RateLimit = RateLimit()
    callers: dict[str, RateLimit] = Field(
        default_factory=dict, description="per-caller overrides: an API key id or a token's `sub`"
    )
    admin_token: AdminToken = AdminToken()

    @model_validator(mode="after")
    def _some_way_in(self) -> Self:
        if not self.api_keys and self.oidc is None:
            raise ValueError("the inference API needs callers' credentials: list apiKeys, or set oidc, or both")
        for i, key_id in enumerate(self.api_keys):
            if key_id in self.api_keys[:i]:
                raise field_error(f"apiKeys[{i}]", f"duplicate API key id {key_id!r}")
        return self

    def rate_limits_json(self) -> str:
        """The servers' contract.ENV_RATE_LIMITS: the default bucket and the per-caller ones."""
        return json.dumps(
            {
                "default": self.rate_limit.model_dump(by_alias=True),
                "callers": {caller: limit.model_dump(by_alias=True) for caller, limit in self.callers.items()},
            }
        )


class Monitoring(ConfigModel):
    """`monitoring`: the Prometheus of each cluster (components/k8s/monitoring.py)."""

    retention_days: int = Field(
        default=15, ge=1, le=3650, description="how long each cluster's Prometheus keeps samples"
    )
    storage_gib: int = Field(default=50, ge=5, le=16_384, description="its persistent volume")
    # Cloud clusters are ours: they always get the stack. An existing cluster may already run
    # the Prometheus Operator (selecting monitors and rules from every namespace, serving at
    # monitoring.PROMETHEUS_URL); `reuse` then installs only Meridian's monitors and rules.
    existing_clusters: Literal["install", "reuse"] = "install"


class Cdn(ConfigModel):
    enabled: bool = True
    default_ttl_seconds: int = Field(default=3600, ge=0, le=31_536_000)
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"


# A Route53 hosted zone id is at most 32 characters (https://docs.aws.amazon.com/Route53/latest/
# APIReference/API_HostedZone.html, read 2026-11-30); the ids Route53 assigns are `Z` and
# upper-case letters and digits. A Cloud DNS managed zone's name: 1-63 characters, lowercase
# letters, digits and dashes, starting with a letter, ending with a letter or digit
# (https://cloud.google.com/dns/docs/reference/rest/v1/managedZones, read 2026-11-30).
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_MANAGED_ZONE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class ExistingZone(ConfigModel):
    """A public zone the stack's records go into instead of one it creates: it serves the
    stack's domain (or a parent of it) and is delegated already. One key per cloud, and the
    key must be the home region's cloud, which serves the fleet's DNS."""

    route53_hosted_zone_id: str | None = Field(default=None, description="AWS home: the hosted zone's id, Z...")
    cloud_dns_managed_zone: str | None = Field(
        default=None, description="GCP home: the managed zone's name (not its DNS name), in the stack's project"
    )

    @field_validator("route53_hosted_zone_id")
    @classmethod
    def _hosted_zone_id(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTED_ZONE_ID.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Route53 hosted zone id: give the id alone, `Z` then upper-case "
                "letters and digits (e.g. Z0123456789ABCDEFGHIJ), not /hostedzone/... or the zone's name"
            )
        return value

    @field_validator("cloud_dns_managed_zone")
    @classmethod
    def _managed_zone_name(cls, value: str | None) -> str | None:
        if value is not None and not _MANAGED_ZONE_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Cloud DNS managed zone name: 1-63 lowercase letters, digits and '-', "
                "starting with a letter (the zone's name, not its DNS name)"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.route53_hosted_zone_id is None) == (self.cloud_dns_managed_zone is None):
            raise ValueError("set exactly one of route53HostedZoneId (AWS home) or cloudDnsManagedZone (GCP home)")
        return self

    @property
    def cloud(self) -> Cloud:
        return Cloud.AWS if self.route53_hosted_zone_id is not None else Cloud.GCP


class Dns(ConfigModel):
    domain: str = Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$")
    health_check_path: str = Field(default="/v2/health/ready", pattern=r"^/")
    ttl_seconds: int = Field(default=60, ge=5, le=86_400)
    existing_zone: ExistingZone | None = Field(
        default=None,
        description="Use this zone instead of creating one (then no name servers to delegate); "
        "without it the stack creates a zone for `domain` and exports its name servers.",
    )


class Network(ConfigModel):
    api_allowed_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs that may reach the Kubernetes API; empty means private endpoint only",
    )

    @field_validator("api_allowed_cidrs")
    @classmethod
    def _restricted(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as err:
                raise ValueError(f"{cidr!r} is not a CIDR: {err}") from None
            if net.prefixlen == 0:
                raise ValueError(f"{cidr} opens the Kubernetes API to the world; name your CIDRs")
        return cidrs


# An IAM role ARN (commercial, China or GovCloud partition), optionally with a path.
_ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")


class AwsSettings(ConfigModel):
    """What only the AWS regions read."""

    admin_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM roles given cluster-admin on every EKS cluster (access entries); "
        "the identity running `pulumi up` has its own and must not be listed",
    )

    @field_validator("admin_role_arns")
    @classmethod
    def _role_arns(cls, arns: list[str]) -> list[str]:
        for i, arn in enumerate(arns):
            if not _ROLE_ARN.fullmatch(arn):
                raise field_error(
                    f"[{i}]", f"{arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<path/>name)"
                )
            if arn in arns[:i]:
                raise field_error(f"[{i}]", f"{arn} is listed twice (EKS allows one access entry per principal)")
        return arns


class Limits(ConfigModel):
    """Guard rails read by the policy pack and the cost tool."""

    gpu_allowlist: list[Accelerator] = Field(default_factory=lambda: list(Accelerator))
    max_gpus: int = Field(default=64, ge=1)
    max_usd_per_hour: float = Field(default=500.0, gt=0)


class Tags(ConfigModel):
    owner: str = Field(min_length=1)
    cost_center: str = Field(min_length=1)
    extra: dict[str, str] = Field(default_factory=dict)

    def as_dict(self, stack: str) -> dict[str, str]:
        return {"owner": self.owner, "stack": stack, "cost-center": self.cost_center, **self.extra}


class StackConfig(ConfigModel):
    home: str = Field(description="name of the region that aggregates and hosts the registry")
    regions: list[Region] = Field(min_length=1)
    federation: Federation = Federation()
    inference: Inference = Inference()
    monitoring: Monitoring = Monitoring()
    auth: Auth
    cdn: Cdn = Cdn()
    dns: Dns
    network: Network = Network()
    aws: AwsSettings = AwsSettings()
    limits: Limits = Limits()
    tags: Tags
    kubernetes_version: str = Field(default="1.33", pattern=r"^1\.\d{2}$")

    @model_validator(mode="after")
    def _fleet_rules(self) -> Self:
        names = [r.name for r in self.regions]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise field_error(f"regions[{i}].name", f"duplicate region name {name!r}")
        if self.home not in names:
            raise field_error("home", f"{self.home!r} is not among regions ({', '.join(names)})")
        if self.federation.min_regions > len(self.regions):
            raise field_error(
                "federation.minRegions",
                f"{self.federation.min_regions} exceeds the {len(self.regions)} region(s) of this stack",
            )
        seen: set[str] = set()
        for i, region in enumerate(self.regions):
            for j, site in enumerate(region.edge_sites):
                if site.name in seen:
                    raise field_error(
                        f"regions[{i}].edgeSites[{j}].name",
                        f"edge site name {site.name!r} is already used by another region",
                    )
                seen.add(site.name)
        existing = self.dns.existing_zone
        if existing is not None:
            home_cloud = self.home_region.cloud
            key = "route53HostedZoneId" if existing.cloud is Cloud.AWS else "cloudDnsManagedZone"
            if home_cloud is Cloud.KUBERNETES:
                raise field_error(
                    f"dns.existingZone.{key}", f"home {self.home} is an existing cluster: no DNS zone is used"
                )
            if existing.cloud is not home_cloud:
                wanted = "route53HostedZoneId" if home_cloud is Cloud.AWS else "cloudDnsManagedZone"
                raise field_error(
                    f"dns.existingZone.{key}",
                    f"home {self.home} is on {home_cloud}, which serves the fleet's DNS: give {wanted}",
                )
        if self.aws.admin_role_arns and not any(r.cloud is Cloud.AWS for r in self.regions):
            raise field_error("aws.adminRoleArns", "this stack has no AWS region (no EKS cluster to give access to)")
        for i, region in enumerate(self.regions):
            if region.gpu.accelerator not in self.limits.gpu_allowlist:
                allowed = ", ".join(a.value for a in self.limits.gpu_allowlist)
                raise field_error(
                    f"regions[{i}].gpu.accelerator",
                    f"{region.gpu.accelerator!s} is not in limits.gpuAllowlist ({allowed})",
                )
        return self

    @property
    def home_region(self) -> Region:
        return next(r for r in self.regions if r.name == self.home)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after", "function-before"} or "[" in str(part):
            continue  # pydantic's internal validator steps, not fields
        else:
            out += f".{part}" if out else str(part)
    return out


def field_problem(error: dict[str, Any]) -> tuple[str, str]:
    path = _path(error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    if msg.startswith("@"):  # raised by field_error(): the field is inside the message
        field, _, msg = msg[1:].partition("@")
        path = f"{path}{'' if field.startswith('[') else '.'}{field}" if path else field
    elif error["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; the fields are in components/config.py)"
    elif error["type"] == "enum":
        msg = f"{msg}; got {error['input']!r}"
    return path, msg


def parse(raw: dict[str, Any], source: str) -> StackConfig:
    """Validate `meridian:` config values (namespace stripped) or raise ConfigError."""
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(source, [field_problem(dict(e)) for e in err.errors()]) from None


def namespace_values(config: dict[str, Any]) -> dict[str, Any]:
    """`meridian:regions` -> `regions`; other namespaces (aws:, gcp:) are left to providers.

    Values set by `pulumi config set` arrive as strings: structured ones are JSON.
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        ns, _, name = key.partition(":")
        if ns != NAMESPACE or not name or name in SECRET_KEYS:
            continue
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):  # not JSON after all: the plain string
                value = json.loads(value)
        out[name] = value
    return out


def stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def available_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))


def load_stack(stack: str, stacks_dir: Path = STACKS_DIR) -> StackConfig:
    """Read and validate `stacks/Pulumi.<stack>.yaml`; ConfigError names what is wrong."""
    path = stack_file(stack, stacks_dir)
    source = f"stacks/{path.name}"
    if not path.is_file():
        known = ", ".join(available_stacks(stacks_dir)) or "none"
        raise ConfigError(source, [("", f"no such stack {stack!r}; stacks: {known}")])
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(source, [("", f"not valid YAML: {err}")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ConfigError(source, [("config", "expected a mapping of `meridian:<key>: value`")])
    return parse(namespace_values(document.get("config") or {}), source)
