"""`python -m workloads.edge`: the edge server (Open Inference Protocol, cascade to the region)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workloads import contract
from workloads.edge.cascade import CascadeAnswerer, CascadeConfig
from workloads.serving.metrics import ServingMetrics
from workloads.serving.runner import build_app, run
from workloads.serving.settings import bounded, parse_serving_args, serving_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = serving_parser(
        "python -m workloads.edge",
        "Edge server: the region's int8 model on CPU; low-confidence requests escalate to the region.",
        default_variant=contract.EDGE_MODEL_VARIANT,
    )
    parser.add(
        "--upstream-url",
        contract.ENV_UPSTREAM_URL,
        f"the region's escalation listener, https://<server>:{contract.ESCALATION_PORT} (mutual TLS)",
        required=True,
    )
    parser.add(
        "--upstream-ca-file", contract.ENV_UPSTREAM_CA_FILE, "the CA the region's certificate chains to", type=Path
    )
    parser.add("--upstream-cert-file", contract.ENV_UPSTREAM_CERT_FILE, "this edge's client certificate", type=Path)
    parser.add("--upstream-key-file", contract.ENV_UPSTREAM_KEY_FILE, "its private key", type=Path)
    parser.add(
        "--confidence-threshold",
        contract.ENV_CONFIDENCE_THRESHOLD,
        "escalate below this top-class probability",
        0.8,
        type=bounded(float, 0, 1),
    )
    parser.add(
        "--upstream-timeout-ms", None, "timeout of one call to the region", 250.0, type=bounded(float, 1, 60_000)
    )
    parser.add("--upstream-attempts", None, "calls to the region per escalation at most", 2, type=bounded(int, 1, 10))
    parser.add(
        "--breaker-failures",
        None,
        "consecutive failed escalations that open the circuit",
        5,
        type=bounded(int, 1, 1000),
    )
    parser.add(
        "--breaker-cooldown-s", None, "how long an open circuit skips the region", 5.0, type=bounded(float, 0.01, 3600)
    )
    parser.add(
        "--cache-entries",
        None,
        "LRU cache of answers to identical inputs (0: off)",
        4096,
        type=bounded(int, 0, 10_000_000),
    )
    settings, args = parse_serving_args(parser, argv)
    metrics = ServingMetrics()
    try:
        config = CascadeConfig(
            upstream_url=args.upstream_url,
            model_name=settings.model_name,
            confidence_threshold=args.confidence_threshold,
            timeout_s=args.upstream_timeout_ms / 1000,
            attempts=args.upstream_attempts,
            breaker_failures=args.breaker_failures,
            breaker_cooldown_s=args.breaker_cooldown_s,
            cache_entries=args.cache_entries,
            upstream_ca_file=args.upstream_ca_file,
            upstream_cert_file=args.upstream_cert_file,
            upstream_key_file=args.upstream_key_file,
        )
        cascade = CascadeAnswerer(config, metrics)
    except (ValueError, OSError) as err:  # OSError: unreadable certificate files (ssl.SSLError too)
        raise SystemExit(f"--upstream-url {args.upstream_url}: {err}") from None
    run(build_app(settings, server_name="meridian-edge", metrics=metrics, answerer=cascade), settings)


if __name__ == "__main__":
    main()
