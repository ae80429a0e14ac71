"""The trainer's run config, typed and checked once, read by both the ServerApp and ClientApp.

The keys a stack's `federation` sets default to the contract's FEDERATION_DEFAULTS, the same
the stack config starts from; workloads/trainer/pyproject.toml ([tool.flwr.app.config])
repeats every default for flwr, and a test holds it equal. Any key can be overridden per run
with `flwr run ... --run-config 'key=value ...'`. Strategy, Compression and Downlink
are the contract's enums, the same the stack config's `federation` uses, so the Kubernetes components
pass them through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from workloads.contract import FEDERATION_DEFAULTS, Compression, Downlink, Strategy, privacy_conflicts

AGGREGATE_CLIPPING = ("none", "fixed", "adaptive")
AGGREGATE_SIDES = ("server", "client")
TOPK_VALUE_BITS = (8, 4)
TOPK_INDEX_CODINGS = ("gaps", "varint")


class SettingsError(ValueError):
    """A run config value that cannot work; the message names the key."""


@dataclass(frozen=True)
class TrainerSettings:
    task: str = FEDERATION_DEFAULTS.task
    rounds: int = FEDERATION_DEFAULTS.rounds
    strategy: Strategy = FEDERATION_DEFAULTS.strategy
    compression: Compression = FEDERATION_DEFAULTS.compression
    topk_fraction: float = FEDERATION_DEFAULTS.topk_fraction
    topk_value_bits: int = 8  # compression.TopkCodec, for the uplink and a top-k downlink
    topk_index_coding: str = "varint"
    downlink: Downlink = FEDERATION_DEFAULTS.downlink  # downlink.py
    downlink_topk_fraction: float = FEDERATION_DEFAULTS.downlink_topk_fraction
    min_regions: int = FEDERATION_DEFAULTS.min_regions
    local_epochs: int = FEDERATION_DEFAULTS.local_epochs
    batch_size: int = 32
    learning_rate: float = 0.05
    proximal_mu: float = FEDERATION_DEFAULTS.proximal_mu
    server_learning_rate: float = 0.01  # FedAdam's eta
    trim_fraction: float = 0.2  # FedTrimmedAvg: share cut from each tail
    krum_malicious: int = 1  # MultiKrum: regions assumed malicious per round
    norm_z_max: float = 3.5  # reject an update whose norm is this many robust z from the median
    round_timeout: float = float(FEDERATION_DEFAULTS.round_timeout_seconds)  # seconds to wait for a round's replies
    node_wait_timeout: float = 120.0  # seconds to wait for min-regions to be connected
    reply_poll_interval: float = 0.05  # seconds between the ServerApp's pulls for replies (Flower's own: 3)
    seed: int = 0
    out_dir: str = "out/federated"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no Prometheus endpoint
    run_key: str = ""  # what the run trains on, hashed; set by workloads/trainer/submit.py to tag the run
    # Record-level DP in each region (privacy.py): DP-SGD when dp-epsilon > 0.
    dp_epsilon: float = 0.0  # each region's ε over the whole run; 0: no DP-SGD
    dp_delta: float = 1e-5
    dp_max_grad_norm: float = 1.0  # per-example gradient clipping norm
    dp_noise_multiplier: float = 0.0  # 0: derived from (dp-epsilon, dp-delta) and the plan; > 0: this sigma
    # Update-level DP at the aggregator: Flower's DP strategy wrappers (strategies.py).
    aggregate_clipping: str = "none"  # none | fixed | adaptive
    aggregate_side: str = "server"  # server | client: where updates are clipped
    aggregate_noise_multiplier: float = 0.0
    aggregate_clipping_norm: float = 1.0  # fixed: the norm; adaptive: the initial norm
    aggregate_target_quantile: float = 0.5  # adaptive: share of updates left unclipped

    @property
    def private(self) -> bool:
        """Whether each region trains with DP-SGD."""
        return self.dp_epsilon > 0

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, object]) -> TrainerSettings:
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        unknown = sorted(set(run_config) - set(known))
        if unknown:
            raise SettingsError(f"unknown run config keys: {', '.join(unknown)}")
        values: dict[str, object] = {}
        for key, raw in run_config.items():
            field = known[key]
            values[field.name] = _coerce(key, raw, field.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings._check()
        return settings

    def _check(self) -> None:
        bounded = {
            "rounds": self.rounds >= 1,
            "min-regions": self.min_regions >= 1,
            "local-epochs": self.local_epochs >= 1,
            "batch-size": self.batch_size >= 1,
            "learning-rate": self.learning_rate > 0,
            "server-learning-rate": self.server_learning_rate > 0,
            "topk-fraction": 0 < self.topk_fraction <= 1,
            "topk-value-bits": self.topk_value_bits in TOPK_VALUE_BITS,
            "topk-index-coding": self.topk_index_coding in TOPK_INDEX_CODINGS,
            "downlink-topk-fraction": 0 < self.downlink_topk_fraction <= 1,
            "proximal-mu": self.proximal_mu >= 0,
            "trim-fraction": 0 <= self.trim_fraction < 0.5,
            "krum-malicious": self.krum_malicious >= 0,
            "norm-z-max": self.norm_z_max > 0,
            "round-timeout": self.round_timeout > 0,
            "node-wait-timeout": self.node_wait_timeout > 0,
            "reply-poll-interval": 0.01 <= self.reply_poll_interval <= 60,
            "metrics-port": 0 <= self.metrics_port <= 65535,
            "dp-epsilon": self.dp_epsilon >= 0,
            "dp-delta": 0 < self.dp_delta < 1,
            "dp-max-grad-norm": self.dp_max_grad_norm > 0,
            "dp-noise-multiplier": self.dp_noise_multiplier >= 0,
            "aggregate-clipping": self.aggregate_clipping in AGGREGATE_CLIPPING,
            "aggregate-side": self.aggregate_side in AGGREGATE_SIDES,
            "aggregate-noise-multiplier": self.aggregate_noise_multiplier >= 0,
            "aggregate-clipping-norm": self.aggregate_clipping_norm > 0,
            "aggregate-target-quantile": 0 < self.aggregate_target_quantile < 1,
        }
        bad = [key for key, ok in bounded.items() if not ok]
        if bad:
            raise SettingsError(
                "run config out of range: " + ", ".join(f"{key}={getattr(self, key.replace('-', '_'))}" for key in bad)
            )
        if self.downlink is Downlink.TOPK and self.compression is Compression.NONE:
            raise SettingsError(
                "downlink=topk needs an uplink that sends deltas (compression fp16, int8 or topk): with "
                "compression=none a node sends weights trained from the nodes' model, not the global one"
            )
        conflicts = privacy_conflicts(self.strategy, self.compression, self.aggregate_clipping, self.aggregate_side)
        if conflicts:
            raise SettingsError("; ".join(f"privacy.{field}: {reason}" for field, reason in conflicts))

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)


def _coerce(key: str, raw: object, annotation: object) -> object:
    enums = {"Strategy": Strategy, "Compression": Compression, "Downlink": Downlink}
    kind = {"str": str, "int": int, "float": float, **enums}[str(annotation)]
    if kind in enums.values():
        try:
            return kind(raw)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise SettingsError(f"{key}={raw!r} is not one of: {allowed}") from None
    if kind is float and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if kind is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind is str and isinstance(raw, str):
        return raw
    raise SettingsError(f"{key}={raw!r} must be a {kind.__name__}")
