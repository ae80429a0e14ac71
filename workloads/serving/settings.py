"""Configuration of a server process: environment variables (what Kubernetes sets, names in
`workloads.contract`) with command-line flags over them (for local use).

A bad value stops the process at start with a message naming the flag and its variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from workloads import contract
from workloads.serving.admin_token import AdminToken
from workloads.serving.devices import DEFAULT_CUDA_MAX_BATCH_SIZE, DEFAULT_CUDA_MAX_BATCH_WAIT_MS, Offload
from workloads.serving.ratelimit import RateLimits

LATEST = "latest"  # as the stable version: follow the registry's latest pointer (hot reload)


@dataclass(frozen=True)
class Oidc:
    """Where callers' bearer tokens come from: `iss`, `aud` and the issuer's signing keys."""

    issuer: str
    audience: str
    jwks_url: str


@dataclass(frozen=True)
class ServingSettings:
    host: str
    port: int
    metrics_port: int  # Prometheus, on its own listener (same host); 0: any free port
    model_name: str
    region: str
    registry_url: str
    trusted_key: Path
    variant: str
    stable: str
    candidate: str | None
    candidate_weight: int
    max_batch_size: int
    max_batch_wait_ms: float
    queue_capacity: int
    max_body_bytes: int
    cache_dir: Path
    reload_interval_s: float
    torch_threads: int
    # The front door (workloads/contract.py): the public listener is `port`, HTTPS itself when
    # both TLS files are set; the escalation listener (mutual TLS) only with `escalation_port`;
    # the admin listener only with an admin token.
    tls_cert_file: Path | None
    tls_key_file: Path | None
    escalation_port: int  # 0: no escalation listener
    escalation_cert_file: Path | None
    escalation_key_file: Path | None
    escalation_client_ca_file: Path | None
    admin_port: int
    admin_token: AdminToken | None  # from the environment only: a flag would show in `ps`
    # The public listener's callers (gate.py); none of them: an open server, announced loudly.
    api_keys_file: Path | None = None
    oidc: Oidc | None = None
    rate_limits: RateLimits | None = None
    # The device (workloads/serving/devices.py): batching on a CUDA GPU, and where forwards run.
    cuda_max_batch_size: int = DEFAULT_CUDA_MAX_BATCH_SIZE
    cuda_max_batch_wait_ms: float = DEFAULT_CUDA_MAX_BATCH_WAIT_MS
    forward_offload: Offload = Offload.AUTO


def rate_limits(raw: str) -> RateLimits:
    try:
        return RateLimits.parse(raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def bounded(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a valid {kind.__name__}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise argparse.ArgumentTypeError(f"{raw!r} is not one of {', '.join(choices)}")
        return raw

    return parse


def _naming(env: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse`, with errors saying the value came from `env`."""

    def parse_env(raw: str) -> Any:
        try:
            return parse(raw)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{err} (from {env})") from None

    return parse_env


class ArgumentParser(argparse.ArgumentParser):
    """`add(flag, env, ...)`: a flag whose default comes from an environment variable."""

    def add(self, flag: str, env: str | None, help: str, default: Any = None, **kwargs: Any) -> None:
        raw = os.environ.get(env, "") if env else ""
        if env and raw:
            default = raw  # argparse runs `type` over string defaults, so env values are checked
            if "type" in kwargs:
                kwargs["type"] = _naming(env, kwargs["type"])
        required = kwargs.pop("required", False) and default is None
        suffix = f" [env {env}]" if env else ""
        self.add_argument(flag, default=default, required=required, help=f"{help}{suffix}", **kwargs)


def serving_parser(prog: str, description: str, default_variant: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description=description)
    p.add("--host", contract.ENV_BIND_HOST, "address to bind (0.0.0.0 in the containers)", "127.0.0.1")
    p.add("--port", contract.ENV_HTTP_PORT, "HTTP port", contract.HTTP_PORT, type=bounded(int, 0, 65535))
    p.add(
        "--metrics-port",
        contract.ENV_METRICS_PORT,
        f"Prometheus port ({contract.METRICS_PATH} is served here only, never on --port)",
        contract.METRICS_PORT,
        type=bounded(int, 0, 65535),
    )
    p.add("--model-name", contract.ENV_MODEL_NAME, "model name in the registry and the V2 paths", contract.MODEL_NAME)
    p.add("--region", contract.ENV_REGION, "region whose artifacts to serve", required=True)
    p.add("--registry-url", contract.ENV_REGISTRY_URL, "registry: fsspec URL or http(s):// (CDN)", required=True)
    p.add(
        "--trusted-key",
        contract.ENV_TRUSTED_KEY,
        "Ed25519 public key (PEM) the artifacts must be signed with",
        f"{contract.KEYS_MOUNT}/{contract.TRUSTED_KEY_FILE}",
        type=Path,
    )
    p.add(
        "--variant",
        contract.ENV_MODEL_VARIANT,
        "artifact variant: fp32, pruned or int8",
        default_variant,
        type=one_of("fp32", "pruned", "int8"),
    )
    p.add("--stable", contract.ENV_STABLE_VERSION, f"stable version, or '{LATEST}' to follow the registry", LATEST)
    p.add("--candidate", contract.ENV_CANDIDATE_VERSION, "candidate version (canary)")
    p.add(
        "--candidate-weight",
        contract.ENV_CANDIDATE_WEIGHT,
        f"percent of traffic to the candidate (with --stable {LATEST}: to each new latest version)",
        0,
        type=bounded(int, 0, 100),
    )
    p.add(
        "--max-batch-size", contract.ENV_MAX_BATCH_SIZE, "rows per forward pass at most", 32, type=bounded(int, 1, 4096)
    )
    p.add(
        "--max-batch-wait-ms",
        contract.ENV_MAX_BATCH_WAIT_MS,
        "hold a partial batch this long for more rows",
        2.0,
        type=bounded(float, 0, 1000),
    )
    p.add(
        "--cuda-max-batch-size",
        contract.ENV_CUDA_MAX_BATCH_SIZE,
        "rows per forward pass at most, model on a CUDA GPU (--max-batch-size applies on CPU)",
        DEFAULT_CUDA_MAX_BATCH_SIZE,
        type=bounded(int, 1, 4096),
    )
    p.add(
        "--cuda-max-batch-wait-ms",
        contract.ENV_CUDA_MAX_BATCH_WAIT_MS,
        "hold a partial batch this long for more rows, model on a CUDA GPU",
        DEFAULT_CUDA_MAX_BATCH_WAIT_MS,
        type=bounded(float, 0, 1000),
    )
    p.add(
        "--forward-offload",
        contract.ENV_FORWARD_OFFLOAD,
        "forward passes in a worker thread of the device, off the event loop: auto (on CUDA only), on, off",
        Offload.AUTO.value,
        type=one_of(*Offload),
    )
    p.add(
        "--queue-capacity",
        contract.ENV_QUEUE_CAPACITY,
        "queued requests per version before 429",
        256,
        type=bounded(int, 1, 1_000_000),
    )
    p.add("--max-body-bytes", None, "largest request body accepted", 1 << 20, type=bounded(int, 1024, 1 << 30))
    p.add("--cache-dir", contract.ENV_CACHE_DIR, "where verified artifacts are kept", contract.CACHE_MOUNT, type=Path)
    p.add(
        "--reload-interval-s",
        contract.ENV_RELOAD_INTERVAL_S,
        f"with --stable {LATEST}: how often to poll the registry",
        30.0,
        type=bounded(float, 0.1, 86400),
    )
    p.add("--tls-cert-file", contract.ENV_TLS_CERT_FILE, "the public listener's certificate chain (PEM)", type=Path)
    p.add(
        "--tls-key-file", contract.ENV_TLS_KEY_FILE, "its private key: with both, --port speaks HTTPS only", type=Path
    )
    p.add(
        "--escalation-port",
        contract.ENV_ESCALATION_PORT,
        f"the edges' escalation listener, mutual TLS (0: none; the regional server's is {contract.ESCALATION_PORT})",
        0,
        type=bounded(int, 0, 65535),
    )
    p.add("--escalation-cert-file", contract.ENV_ESCALATION_CERT_FILE, "its server certificate (PEM)", type=Path)
    p.add("--escalation-key-file", contract.ENV_ESCALATION_KEY_FILE, "its private key", type=Path)
    p.add(
        "--escalation-client-ca-file",
        contract.ENV_ESCALATION_CLIENT_CA_FILE,
        "the CA every edge's client certificate must chain to",
        type=Path,
    )
    p.add(
        "--admin-port",
        contract.ENV_ADMIN_PORT,
        "the admin listener: model metadata and the repository API, bearer admin token "
        f"[{contract.ENV_ADMIN_TOKEN_FILE} or {contract.ENV_ADMIN_TOKEN}; none: no admin listener]",
        contract.ADMIN_PORT,
        type=bounded(int, 1, 65535),
    )
    p.add(
        "--torch-threads",
        None,
        "torch intra-op threads (default: the CPUs this process may use)",
        _usable_cpus(),
        type=bounded(int, 1, 1024),
    )
    p.add(
        "--api-keys-file",
        contract.ENV_API_KEYS_FILE,
        f"callers' API keys (salted hashes, JSON; re-read on change): '{contract.API_KEY_HEADER}: <id>.<secret>'",
        type=Path,
    )
    p.add("--oidc-issuer", contract.ENV_OIDC_ISSUER, "OIDC bearer tokens: the `iss` they must carry")
    p.add("--oidc-audience", contract.ENV_OIDC_AUDIENCE, "OIDC bearer tokens: the `aud` they must include")
    p.add("--oidc-jwks-url", contract.ENV_OIDC_JWKS_URL, "OIDC bearer tokens: the issuer's signing keys (JWKS)")
    p.add(
        "--rate-limits",
        contract.ENV_RATE_LIMITS,
        'per-caller token buckets: {"default": {"requestsPerSecond": r, "burst": b}, "callers": {"<id>": {...}}}',
        type=rate_limits,
    )
    return p


def _usable_cpus() -> int:
    """The CPUs this process may use: its affinity where the platform has one (not macOS)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def serving_settings(args: argparse.Namespace) -> ServingSettings:
    # With stable `latest`, the weight is what each new latest version enters with (canary analysis).
    if args.candidate_weight > 0 and not args.candidate and args.stable != LATEST:
        raise SystemExit(
            f"--candidate-weight {args.candidate_weight} needs --candidate [env {contract.ENV_CANDIDATE_VERSION}]"
        )
    if (args.tls_cert_file is None) != (args.tls_key_file is None):
        raise SystemExit(
            f"HTTPS needs both --tls-cert-file [env {contract.ENV_TLS_CERT_FILE}] and --tls-key-file "
            f"[env {contract.ENV_TLS_KEY_FILE}]"
        )
    escalation_files = {
        "--escalation-cert-file": (args.escalation_cert_file, contract.ENV_ESCALATION_CERT_FILE),
        "--escalation-key-file": (args.escalation_key_file, contract.ENV_ESCALATION_KEY_FILE),
        "--escalation-client-ca-file": (args.escalation_client_ca_file, contract.ENV_ESCALATION_CLIENT_CA_FILE),
    }
    absent = [f"{flag} [env {env}]" for flag, (value, env) in escalation_files.items() if value is None]
    if args.escalation_port and absent:
        raise SystemExit(f"the escalation listener (mutual TLS) needs {', '.join(absent)}")
    oidc_flags = {
        "--oidc-issuer": args.oidc_issuer,
        "--oidc-audience": args.oidc_audience,
        "--oidc-jwks-url": args.oidc_jwks_url,
    }
    if any(oidc_flags.values()) and not all(oidc_flags.values()):
        missing = ", ".join(flag for flag, value in oidc_flags.items() if not value)
        raise SystemExit(f"OIDC needs issuer, audience and JWKS URL: {missing} missing")
    # Every other field is the flag of the same name (`serving_parser`'s dests).
    own = {"admin_token", "oidc"}
    values = {f.name: getattr(args, f.name) for f in fields(ServingSettings) if f.name not in own}
    values["candidate"] = args.candidate or None  # an empty variable means no candidate
    values["forward_offload"] = Offload(args.forward_offload)
    oidc = Oidc(args.oidc_issuer, args.oidc_audience, args.oidc_jwks_url) if all(oidc_flags.values()) else None
    return ServingSettings(**values, admin_token=AdminToken.from_environ(os.environ), oidc=oidc)


def parse_serving_args(
    parser: ArgumentParser, argv: Sequence[str] | None
) -> tuple[ServingSettings, argparse.Namespace]:
    args = parser.parse_args(argv)
    return serving_settings(args), args
