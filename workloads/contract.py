"""The contract between the images and the Kubernetes components that deploy them.

Image names, ports, paths and environment variables live here and only here: the servers
read them, and `components/k8s` builds probes, Services and env from them, so both sides
always agree. So do the federated run's defaults and the `flwr` CLI's connection file.
Standard library only: the Pulumi program imports this module too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

# A flag's value: a plain string here and in the local stack, a Pulumi Input in components/k8s.
V = TypeVar("V")


class Image(StrEnum):
    """One container image per workload: `workloads/<image>/Dockerfile`."""

    TRAINER = "trainer"  # Flower SuperLink + ServerApp (home) and SuperNode + ClientApp (regions)
    SERVER = "server"  # regional inference server, full model, GPU when present
    EDGE = "edge"  # CPU edge server, quantized model, escalates to its region


class Strategy(StrEnum):
    """Federated aggregation strategies: the stack's `federation.strategy`, the trainer's run
    config `strategy`, and what the Kubernetes layer passes from one to the other."""

    FEDAVG = "fedavg"
    FEDPROX = "fedprox"  # the client adds the proximal term
    FEDADAM = "fedadam"
    FEDMEDIAN = "fedmedian"
    FEDTRIMMEDAVG = "fedtrimmedavg"
    MULTIKRUM = "multikrum"


class Compression(StrEnum):
    """Uplink update compression: the stack's `federation.compression` and the run config's."""

    NONE = "none"
    FP16 = "fp16"
    INT8 = "int8"
    TOPK = "topk"  # top-k sparsification, int8 values, error feedback


class Downlink(StrEnum):
    """What goes down to the nodes each round: the stack's `federation.downlink` and the run config's."""

    FULL = "full"  # the global model, float32
    TOPK = "topk"  # the top-k delta to the model the nodes hold, server-side error feedback


@dataclass(frozen=True)
class FederationDefaults:
    """What a run trains with when nobody says otherwise: the defaults of the stack's
    `federation` (components/config.py) and of the trainer's run config (settings.py, and
    [tool.flwr.app.config] in workloads/trainer/pyproject.toml, which flwr reads; a test holds
    it equal). The values are the trainer's measured ones (its README, the benchmarks)."""

    task: str = "digits"
    strategy: Strategy = Strategy.FEDAVG
    rounds: int = 5
    min_regions: int = 2
    local_epochs: int = 2
    compression: Compression = Compression.INT8
    topk_fraction: float = 0.01
    downlink: Downlink = Downlink.FULL
    downlink_topk_fraction: float = 0.05
    proximal_mu: float = 0.01
    round_timeout_seconds: int = 120


FEDERATION_DEFAULTS = FederationDefaults()


# Flower 1.42 SuperLink ports (flower-superlink defaults).
SUPERLINK_SERVERAPPIO_PORT = 9091  # ServerApp <-> SuperLink, in-pod only
SUPERLINK_FLEET_PORT = 9092  # SuperNodes connect here (TLS + node auth)
SUPERLINK_CONTROL_PORT = 9093  # `flwr run` / control API: never exposed outside the namespace
SUPERNODE_CLIENTAPPIO_PORT = 9094  # SuperNode <-> ClientApp process, in-pod only

# A SuperNode runs with `--isolation process` beside its long-lived ClientApp process
# (workloads/trainer/clientapp_runner.py), which takes each message's task from the node's
# Runtime API (SUPERNODE_CLIENTAPPIO_PORT, on the pod's loopback) and runs it warm:
#   python -m <SUPERNODE_MODULE> <flower-supernode flags> --isolation process
#     --superexec-auth-secret-file <file>   (ENV_FLEET_POLL_SECONDS: its idle poll of the SuperLink)
#   python -m <CLIENTAPP_RUNNER_MODULE> --runtime-api-address 127.0.0.1:<SUPERNODE_CLIENTAPPIO_PORT>
#     --superexec-auth-secret-file <file> --health-port <CLIENTAPP_HEALTH_PORT>
SUPERNODE_MODULE = "workloads.trainer.supernode"
CLIENTAPP_RUNNER_MODULE = "workloads.trainer.clientapp_runner"
CLIENT_APP_MODULE = "workloads.trainer.client_app"  # what the runner imports before any task
CLIENTAPP_HEALTH_PORT = 9096  # TCP, answered by the runner's task loop: probes only
ENV_FLEET_POLL_SECONDS = "MERIDIAN_FLEET_POLL_SECONDS"
SUPEREXEC_SECRET_FILE = "superexec.secret"  # shared by a SuperNode and its ClientApp runner

# Inference servers (regional and edge) speak the Open Inference Protocol (KServe V2) over HTTP.
HTTP_PORT = 8080
LIVENESS_PATH = "/v2/health/live"
READINESS_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
MODEL_NAME = "meridian"
VERSION_HEADER = "x-meridian-model-version"  # pins a request to one model version

# Environment variables the images read.
ENV_REGION = "MERIDIAN_REGION"
ENV_MODEL_NAME = "MERIDIAN_MODEL_NAME"
ENV_REGISTRY_URL = "MERIDIAN_REGISTRY_URL"  # fsspec URL or https:// (CDN) of the model registry
ENV_TRUSTED_KEY = "MERIDIAN_TRUSTED_PUBLIC_KEY"  # path of the Ed25519 key artifacts are signed with
ENV_STABLE_VERSION = "MERIDIAN_STABLE_VERSION"
ENV_CANDIDATE_VERSION = "MERIDIAN_CANDIDATE_VERSION"
ENV_CANDIDATE_WEIGHT = "MERIDIAN_CANDIDATE_WEIGHT"  # percent of traffic, 0-100
ENV_MAX_BATCH_SIZE = "MERIDIAN_MAX_BATCH_SIZE"
ENV_MAX_BATCH_WAIT_MS = "MERIDIAN_MAX_BATCH_WAIT_MS"
ENV_QUEUE_CAPACITY = "MERIDIAN_QUEUE_CAPACITY"
# The two above apply on CPU; a model on a CUDA GPU batches by these (workloads/serving/devices.py).
ENV_CUDA_MAX_BATCH_SIZE = "MERIDIAN_CUDA_MAX_BATCH_SIZE"
CUDA_MAX_BATCH_SIZE = 256  # its default, the server's and the stack config's (inference.cudaMaxBatchSize)
ENV_CUDA_MAX_BATCH_WAIT_MS = "MERIDIAN_CUDA_MAX_BATCH_WAIT_MS"
ENV_FORWARD_OFFLOAD = "MERIDIAN_FORWARD_OFFLOAD"  # auto (worker thread on CUDA only), on, off
ENV_UPSTREAM_URL = "MERIDIAN_UPSTREAM_URL"  # edge -> its region's inference server
ENV_CONFIDENCE_THRESHOLD = "MERIDIAN_CONFIDENCE_THRESHOLD"
ENV_DATA_DIR = "MERIDIAN_DATA_DIR"  # a SuperNode reads only this directory (its region's data)
ENV_CACHE_DIR = "MERIDIAN_CACHE_DIR"  # writable scratch (the root filesystem is read-only)

# Mount points inside the containers (the root filesystem is read-only).
DATA_MOUNT = "/data"
CACHE_MOUNT = "/var/cache/meridian"
CERTS_MOUNT = "/etc/meridian/tls"
KEYS_MOUNT = "/etc/meridian/keys"

# Container user: every image runs as this non-root uid/gid.
RUN_AS_UID = 10001

# Flower 1.42 serves Fleet, Control and its runtime API on ONE HTTPS port (`--host/--port`),
# and the Control API has no auth. So the SuperLink binds SUPERLINK_SERVERAPPIO_PORT on
# 127.0.0.1 only, and a path-filtering gateway in the same pod (trainer image) terminates TLS
# on the two public-facing ports and forwards to it only its own prefix:
#   python -m <SUPERLINK_GATEWAY_MODULE> --upstream https://127.0.0.1:<SERVERAPPIO_PORT>
#     --route <SUPERLINK_FLEET_PORT>=<FLEET_PATH_PREFIX>
#     --route <SUPERLINK_CONTROL_PORT>=<CONTROL_PATH_PREFIX>
#     --certfile <CERTS_MOUNT>/<TLS_CERT_FILE> --keyfile <CERTS_MOUNT>/<TLS_KEY_FILE>
#     --ca-certfile <CERTS_MOUNT>/<TLS_CA_FILE>
# Any other path answers 404 without reaching the SuperLink.
SUPERLINK_GATEWAY_MODULE = "workloads.trainer.gateway"
FLEET_PATH_PREFIX = "/v1/fleet/"
CONTROL_PATH_PREFIX = "/v1/control/"
FLOWER_HEALTH_PORT = 9095  # `--health-server-address`: gRPC health, no TLS, probes only

# Files in the TLS Secret mounted at CERTS_MOUNT (kubernetes.io/tls names plus the CA).
TLS_CA_FILE = "ca.crt"
TLS_CERT_FILE = "tls.crt"
TLS_KEY_FILE = "tls.key"
# A SuperNode's node-auth private key (ECDSA P-384, OpenSSH format) under KEYS_MOUNT.
NODE_KEY_FILE = "node.key"

# Artifact signing (Ed25519, PEM): the home trainer signs what it publishes with the private
# key; servers and edges verify with the public key (ENV_TRUSTED_KEY points at it).
ENV_SIGNING_KEY = "MERIDIAN_SIGNING_KEY"  # the signing key ref (KMS ref or PEM path; home trainer only)
SIGNING_KEY_FILE = "artifact-signing.key"  # under KEYS_MOUNT
TRUSTED_KEY_FILE = "artifact-signing.pub"  # under KEYS_MOUNT
# A PEM signing key mounted from a Secret (clusters without a KMS) sits here; a signer's
# `key_ref` names this path then.
SIGNING_KEY_PATH = f"{KEYS_MOUNT}/{SIGNING_KEY_FILE}"
GLOBAL_TRUSTED_KEY_FILE = "global-signing.pub"  # under KEYS_MOUNT: the home's key, for localizers

# Which artifact variant a server loads (workloads.registry.artifact.Variant values).
ENV_MODEL_VARIANT = "MERIDIAN_MODEL_VARIANT"
REGIONAL_MODEL_VARIANT = "fp32"  # the regional GPU server: full model
EDGE_MODEL_VARIANT = "int8"  # the CPU edge server: dynamic int8 quantized

# Inference servers (regional and edge): what a process needs beyond the variables above.
ENV_BIND_HOST = "MERIDIAN_BIND_HOST"  # 0.0.0.0 in the containers; 127.0.0.1 by default
ENV_HTTP_PORT = "MERIDIAN_HTTP_PORT"  # default HTTP_PORT; the local stack runs several per host
ENV_ADMIN_TOKEN = "MERIDIAN_ADMIN_TOKEN"  # bearer token of POST /v2/repository/models/{m}/load
# ... or, in the clusters, the file holding it (a Secret mounted read-only: never in the pod spec or
# the process environment, CKV_K8S_35); the file wins when both are set.
ENV_ADMIN_TOKEN_FILE = "MERIDIAN_ADMIN_TOKEN_FILE"
ADMIN_TOKEN_MOUNT = "/etc/meridian/admin"
ENV_RELOAD_INTERVAL_S = "MERIDIAN_RELOAD_INTERVAL_S"  # registry poll when stable is "latest"

# The front door. A server process (regional or edge) listens on up to three ports besides
# METRICS_PORT:
# - HTTP_PORT, public: the health routes stay open (probes, load balancers); every other route
#   (inference, metadata, feedback) needs a caller's credential: an API key (API_KEY_HEADER) or
#   an OIDC bearer token (`Authorization: Bearer <JWT>`). A missing, malformed, wrong or expired
#   one gets 401 with a V2 `{"error": ...}` body; a caller past its token bucket gets 429 with
#   Retry-After. Plain HTTP behind a cloud load balancer that terminates TLS (ACM on AWS,
#   Google-managed certificates on GCP); HTTPS itself where ENV_TLS_CERT_FILE/ENV_TLS_KEY_FILE
#   are set (the stack's own CA: `kubernetes` regions and the local stack).
# - ESCALATION_PORT (regional servers only, ENV_ESCALATION_PORT; 0 or unset: off): the edges'
#   escalations, mutual TLS only (ENV_ESCALATION_CERT_FILE/KEY_FILE, client certificates must
#   chain to ENV_ESCALATION_CLIENT_CA_FILE: the stack's CA), inference and metadata routes only,
#   binary tensors; the calling edge names the original caller in CALLER_HEADER (trusted here
#   only, for metrics), the edge itself is the certificate's common name.
# - ADMIN_PORT, in-cluster only (NetworkPolicy: the region's canary controller): model metadata
#   and the repository API (POST /v2/repository/models/{m}/load), bearer admin token.
# /metrics stays on METRICS_PORT (Prometheus only); neither admin route answers on HTTP_PORT.
PUBLIC_TLS_PORT = 443  # every public load balancer listener: HTTPS only, no plain-HTTP listener
ESCALATION_PORT = 8443
ADMIN_PORT = 9301
ENV_ESCALATION_PORT = "MERIDIAN_ESCALATION_PORT"
ENV_ADMIN_PORT = "MERIDIAN_ADMIN_PORT"
ENV_TLS_CERT_FILE = "MERIDIAN_TLS_CERT_FILE"  # public listener's HTTPS certificate (PEM chain)
ENV_TLS_KEY_FILE = "MERIDIAN_TLS_KEY_FILE"
ENV_ESCALATION_CERT_FILE = "MERIDIAN_ESCALATION_CERT_FILE"
ENV_ESCALATION_KEY_FILE = "MERIDIAN_ESCALATION_KEY_FILE"
ENV_ESCALATION_CLIENT_CA_FILE = "MERIDIAN_ESCALATION_CLIENT_CA_FILE"
# The edge's side of the escalation (ENV_UPSTREAM_URL is then https://...:ESCALATION_PORT):
ENV_UPSTREAM_CA_FILE = "MERIDIAN_UPSTREAM_CA_FILE"  # the CA the region's certificate must chain to
ENV_UPSTREAM_CERT_FILE = "MERIDIAN_UPSTREAM_CERT_FILE"  # the edge's client certificate (stack CA)
ENV_UPSTREAM_KEY_FILE = "MERIDIAN_UPSTREAM_KEY_FILE"
CALLER_HEADER = "x-meridian-caller"
FRONT_DOOR_TLS_MOUNT = "/etc/meridian/front-door"  # public and escalation certificates, keys, CA
ESCALATION_TLS_MOUNT = "/etc/meridian/escalation"  # an edge's client certificate and key, the CA

# Callers. API keys: a caller presents `<id>.<secret>` in API_KEY_HEADER. The servers know only
# salted hashes, from a JSON file (a Secret mounted at API_KEYS_MOUNT, named by
# ENV_API_KEYS_FILE): {"keys": [{"id": "<id>", "salt": "<hex>", "sha256": "<hex>"}]} with
# sha256 = api_key_digest(salt, secret); the file is re-read when it changes (no restart to add
# or revoke a key). OIDC: issuer, audience and JWKS URL in ENV_OIDC_*; the caller id is the
# token's `sub`. Per-caller token buckets: ENV_RATE_LIMITS, JSON
# {"default": {"requestsPerSecond": r, "burst": b}, "callers": {"<caller id>": {...}}}
# (the stack's `auth.rateLimit` and `auth.callers`), held per replica.
API_KEY_HEADER = "x-api-key"
ENV_API_KEYS_FILE = "MERIDIAN_API_KEYS_FILE"
API_KEYS_MOUNT = "/etc/meridian/api-keys"
API_KEYS_FILE = "keys.json"
ENV_OIDC_ISSUER = "MERIDIAN_OIDC_ISSUER"
ENV_OIDC_AUDIENCE = "MERIDIAN_OIDC_AUDIENCE"
ENV_OIDC_JWKS_URL = "MERIDIAN_OIDC_JWKS_URL"
ENV_RATE_LIMITS = "MERIDIAN_RATE_LIMITS"
# The admin token file (ENV_ADMIN_TOKEN_FILE) is re-read when it changes: a rotated token is
# accepted at once, and the replaced one still for this many seconds (default 600).
ENV_ADMIN_TOKEN_GRACE_S = "MERIDIAN_ADMIN_TOKEN_GRACE_S"


def api_key_digest(salt: bytes, secret: str) -> str:
    """The stored form of an API key's secret: SHA-256 over salt + secret, hex. A fast hash is
    enough: the secrets are long random strings, not passwords (no dictionary to try)."""
    return hashlib.sha256(salt + secret.encode()).hexdigest()


def api_key_record(key_id: str, salt: bytes, secret: str) -> dict[str, str]:
    """One entry of the API keys file."""
    return {"id": key_id, "salt": salt.hex(), "sha256": api_key_digest(salt, secret)}


# Operations. Every workload serves Prometheus metrics on METRICS_PORT, a port of its own that
# no public Service exposes (only the cluster's Prometheus may reach it); the federated run's
# ServerApp keeps TRAINER_METRICS_PORT. Every scraped series carries the target labels
# `region` (the region the process serves) and `app` (one of MetricsApp), in the clusters (set
# by the ServiceMonitors/PodMonitors) and in the local stack (its scrape config) alike, so the
# rules in monitoring/ and the dashboards read the same series everywhere.
METRICS_PORT = 9300
ENV_METRICS_PORT = "MERIDIAN_METRICS_PORT"  # default METRICS_PORT; the local stack runs several per host


class MetricsApp(StrEnum):
    """The `app` target label of every scraped series."""

    SERVER = "server"  # regional inference server
    EDGE = "edge"  # edge server (also labelled `site`)
    SUPERLINK = "superlink"  # the home's ServerApp (TRAINER_METRICS_PORT)
    SUPERNODE = "supernode"  # a region's training metrics
    CANARY = "canary"  # a region's canary analysis controller
    GPU = "dcgm"  # NVIDIA DCGM exporter on GPU nodes


# A SuperNode's training metrics. Its ClientApp runs in a fresh process per message and cannot
# serve them, so after each local fit it appends one JSON line (workloads/trainer/training_log.py)
# to the file ENV_TRAINING_RECORDS names (set on the SuperNode: its ClientApp processes inherit
# its environment; unset, nothing is written), and an exporter of the trainer image beside the
# SuperNode (a sidecar sharing that file's directory; a process of the local stack) serves it:
#   python -m workloads.trainer.node_metrics --records <file> --host <h> --port <METRICS_PORT>
# The file stays under 2 MiB (it rotates to <file>.1 at 1 MiB).
NODE_METRICS_COMMAND = ("python", "-m", "workloads.trainer.node_metrics")
ENV_TRAINING_RECORDS = "MERIDIAN_TRAINING_RECORDS"  # the records file (a writable mount, e.g. CACHE_MOUNT)

# The global view (stacks spanning several clusters): every other cluster's Prometheus
# remote-writes its series to the home's, through a gateway of the trainer image at home
# (SUPERLINK_GATEWAY_MODULE) that admits only clients with a certificate of the federation CA
# (mutual TLS) and forwards only METRICS_RECEIVE_ROUTE to the home Prometheus's receiver:
#   python -m <SUPERLINK_GATEWAY_MODULE> --upstream <home Prometheus, http://HOST:PORT>
#     --route '<METRICS_RECEIVER_PORT>=<METRICS_RECEIVE_ROUTE>' --client-ca-certfile <CERTS_MOUNT>/<TLS_CA_FILE>
#     --certfile <CERTS_MOUNT>/<TLS_CERT_FILE> --keyfile <CERTS_MOUNT>/<TLS_KEY_FILE>
# Not a metrics port: nothing is scraped there, and nothing is read back through it.
METRICS_RECEIVER_PORT = 9443
METRICS_RECEIVE_PATH = "/api/v1/write"  # Prometheus's remote-write receiver
METRICS_RECEIVE_ROUTE = f"POST {METRICS_RECEIVE_PATH}"

# The canary analysis controller (server image), one per region: judges a candidate version
# against the stable one on the region's live metrics and promotes or rolls back through the
# servers' repository API on their admin listeners (bearer admin token, ENV_ADMIN_TOKEN_FILE):
#   python -m workloads.canary --prometheus <url> --region <r> --model <m> --targets <spec>
#       --interval <s> --window <s> --min-requests <n> --max-error-rate-increase <x>
#       --max-p99-ratio <x> --min-agreement <x> --max-accuracy-drop <x> --min-labelled <n>
# `--targets`: comma-separated admin base URLs of the servers and edges it drives
# (`http://<host>:<ADMIN_PORT>`), or `dns+http://<headless service host>:<ADMIN_PORT>` (every
# address the name resolves to). It serves
# its own metrics on METRICS_PORT (ENV_METRICS_PORT) and reads ENV_BIND_HOST like the servers.
CANARY_COMMAND = ("python", "-m", "workloads.canary")
FEEDBACK_SUFFIX = "feedback"  # POST /v2/models/{m}/feedback: true labels of served request ids

# A SuperNode reads its region's data from a directory (node config `data-dir`, default
# DATA_MOUNT). Where the data lives in a bucket, an init container of the trainer image copies
# the bucket's contents there first, with the pod's cloud identity (it can read only that bucket):
#   python -m workloads.tasks sync-data --source <s3://bucket or gs://bucket> --dest <DATA_MOUNT>
DATA_SYNC_COMMAND = ("python", "-m", "workloads.tasks", "sync-data")
NODE_DATA_DIR_KEY = "data-dir"  # the SuperNode's --node-config key for its data directory

# The federated run: a Job at home submits the trainer's Flower App from the trainer image
#   python -m workloads.trainer.submit --connection <connection> --app <TRAINER_APP_DIR> \
#       --run-key <key> --run-config '<key=value ...>'
# (`flwr run`, after stopping runs of other keys; run config keys: workloads/trainer/pyproject.toml);
# the ServerApp then serves its Prometheus metrics on TRAINER_METRICS_PORT inside the SuperLink pod.
SUBMIT_RUN_COMMAND = ("python", "-m", "workloads.trainer.submit")
TRAINER_APP_DIR = "/app/workloads/trainer"
TRAINER_METRICS_PORT = 9400


def flwr_connection_config(connection: str, address: str, root_certificates: str) -> str:
    """`$FLWR_HOME/config.toml` for the `flwr` CLI: one SuperLink connection, the default,
    verified with the federation CA (Flower 1.42 reads connections from here, not pyproject)."""
    return (
        f'[superlink]\ndefault = "{connection}"\n\n'
        f'[superlink.{connection}]\naddress = "{address}"\n'
        f'root-certificates = "{root_certificates}"\n'
    )


# The model pipeline, one hop at a time (see the design). The home's ServerApp, when a run
# completes, publishes the global model as ArtifactId(MODEL_NAME, <UTC YYYYMMDD.HHMMSS>,
# GLOBAL_REGION, fp32) to ENV_GLOBAL_STORE_URL, signed with ENV_SIGNING_KEY; no store, no publish.
# They come from the SuperLink's environment (its ServerApp subprocess inherits it), not the run
# config: where a cluster publishes is a fact of the cluster, and the run Job is keyed by its run
# config, so a new bucket must not restart training.
ENV_GLOBAL_STORE_URL = "MERIDIAN_GLOBAL_STORE_URL"
GLOBAL_REGION = "global"  # the global model's `region` in the registry
# Then each region's localizer (a CronJob in the cloud, a step of the local stack) runs one pass:
LOCALIZER_COMMAND = ("python", "-m", "workloads.localization", "follow")


def global_publish_env(store_url: V, signing_key: V) -> dict[str, V]:
    """The SuperLink's environment that makes its ServerApp publish the global model."""
    return {ENV_GLOBAL_STORE_URL: store_url, ENV_SIGNING_KEY: signing_key}


def localizer_args(
    *,
    global_registry: V,
    global_key: V,
    region: V,
    data_url: V,
    store: V,
    signing_key: V,
    task: V,
    work_dir: V,
    extra: Mapping[str, V] | None = None,
) -> list[str | V]:
    """The flags of LOCALIZER_COMMAND, built here for both of its callers (the Kubernetes
    CronJob and the local stack), so they differ only in URLs and paths. `extra` adds tuning
    flags (`{"--finetune-epochs": "1"}`)."""
    flags: Sequence[tuple[str, V]] = [
        ("--global-registry", global_registry),
        ("--global-key", global_key),
        ("--region", region),
        ("--data-url", data_url),
        ("--store", store),
        ("--signing-key", signing_key),
        ("--task", task),
        ("--work-dir", work_dir),
        *(extra or {}).items(),
    ]
    return [part for flag, value in flags for part in (flag, value)]


class CanaryThresholds(Protocol):
    """What the canary controller's flags carry: the stack's `inference.canary.analysis`
    (components/config.py CanaryAnalysis) has these fields."""

    @property
    def interval_seconds(self) -> int: ...
    @property
    def window_seconds(self) -> int: ...
    @property
    def min_requests(self) -> int: ...
    @property
    def max_error_rate_increase(self) -> float: ...
    @property
    def max_p99_ratio(self) -> float: ...
    @property
    def min_agreement(self) -> float: ...
    @property
    def max_accuracy_drop(self) -> float: ...
    @property
    def min_labelled(self) -> int: ...


def canary_args(*, prometheus: V, region: V, model: V, targets: V, analysis: CanaryThresholds) -> list[str | V]:
    """The flags of CANARY_COMMAND, built here for both of its callers (the Kubernetes
    Deployment and the local stack): they differ only in the URLs."""
    flags: Sequence[tuple[str, str | V]] = [
        ("--prometheus", prometheus),
        ("--region", region),
        ("--model", model),
        ("--targets", targets),
        ("--interval", str(analysis.interval_seconds)),
        ("--window", str(analysis.window_seconds)),
        ("--min-requests", str(analysis.min_requests)),
        ("--max-error-rate-increase", f"{analysis.max_error_rate_increase:g}"),
        ("--max-p99-ratio", f"{analysis.max_p99_ratio:g}"),
        ("--min-agreement", f"{analysis.min_agreement:g}"),
        ("--max-accuracy-drop", f"{analysis.max_accuracy_drop:g}"),
        ("--min-labelled", str(analysis.min_labelled)),
    ]
    return [part for flag, value in flags for part in (flag, value)]


# Privacy options that cannot hold together: the stack config (`federation.privacy`) and the
# trainer's run config both refuse them, with these reasons.
SECURE_AGGREGATION_REFUSED = (
    "Flower 1.42's SecAgg+ exists only in its legacy workflow API: SecAggPlusWorkflow requires a "
    "LegacyContext around a legacy flwr.server.strategy Strategy (configure_fit/aggregate_fit), "
    "and secaggplus_mod reads legacy FitRes records; Meridian's trainer runs on the message API "
    "(flwr.serverapp.strategy, ClientApp @train), where no SecAgg+ exists. Even ported, the server "
    "sees only the masked sum, so per-region update validation, the robust strategies "
    "(multikrum, fedmedian, fedtrimmedavg) and decoding compressed updates cannot run, and each "
    "round takes four message exchanges (a fresh ClientApp process each) instead of one"
)


def privacy_conflicts(
    strategy: Strategy, compression: Compression, aggregate_clipping: str, aggregate_side: str
) -> list[tuple[str, str]]:
    """(field under `privacy`, reason) for each combination that cannot give what it says."""
    problems: list[tuple[str, str]] = []
    if aggregate_clipping != "none" and strategy in (Strategy.FEDMEDIAN, Strategy.FEDTRIMMEDAVG, Strategy.MULTIKRUM):
        problems.append(
            (
                "aggregate.clipping",
                (
                    f"update-level DP calibrates its noise to the clipped mean (sensitivity clippingNorm / "
                    f"regions); {strategy.value} is an order statistic or a selection with another "
                    f"sensitivity, so the noise would not give the stated guarantee: use fedavg, fedprox or fedadam"
                ),
            )
        )
    if aggregate_clipping != "none" and aggregate_side == "client" and compression is not Compression.NONE:
        problems.append(
            (
                "aggregate.side",
                (
                    f"client-side clipping bounds the update before the uplink encoding; the {compression.value} "
                    f"update the aggregator decodes can exceed the clipping norm (rounding; topk's error feedback "
                    f"adds earlier rounds' residuals): use side: server, or compression: none"
                ),
            )
        )
    return problems
