"""`python -m workloads.canary`: the region's canary analysis controller (flags: see
contract.CANARY_COMMAND). Every `--interval` seconds it runs one pass (controller.py); a pass
that fails (Prometheus or a server away) is logged and the next one tries again."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import httpx
from prometheus_client import CollectorRegistry, start_http_server

from workloads import contract
from workloads.canary.analysis import Thresholds
from workloads.canary.controller import Controller, Settings
from workloads.canary.prometheus import PrometheusError
from workloads.serving.admin_token import AdminToken
from workloads.serving.settings import ArgumentParser, bounded

log = logging.getLogger("workloads.canary")


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m workloads.canary", description=__doc__)
    p.add("--prometheus", None, "Prometheus base URL (HTTP API)", required=True)
    p.add("--region", contract.ENV_REGION, "the `region` label of the fleet to judge", required=True)
    p.add("--model", contract.ENV_MODEL_NAME, "model name", contract.MODEL_NAME)
    p.add(
        "--targets",
        None,
        f"the servers' admin listeners (port {contract.ADMIN_PORT}), comma-separated base URLs; "
        "dns+http://host:port = every A record",
        required=True,
    )
    p.add("--interval", None, "seconds between passes", 30.0, type=bounded(float, 0.1, 3600))
    p.add("--window", None, "seconds of metrics judged", 300, type=bounded(int, 1, 86400))
    p.add("--min-requests", None, "per version in the window before deciding", 200, type=bounded(int, 1, 10**9))
    p.add("--max-error-rate-increase", None, "candidate minus stable 5xx rate", 0.01, type=bounded(float, 0, 1))
    p.add("--max-p99-ratio", None, "candidate p99 over stable p99", 1.5, type=bounded(float, 1, 100))
    p.add("--min-agreement", None, "top-1 agreement with stable (no labels)", 0.9, type=bounded(float, 0, 1))
    p.add("--max-accuracy-drop", None, "stable minus candidate accuracy", 0.02, type=bounded(float, 0, 1))
    p.add("--min-labelled", None, "labels per version before accuracy counts", 50, type=bounded(int, 1, 10**9))
    p.add("--host", contract.ENV_BIND_HOST, "address of the metrics port", "127.0.0.1")
    p.add(
        "--metrics-port",
        contract.ENV_METRICS_PORT,
        "Prometheus metrics port",
        contract.METRICS_PORT,
        type=bounded(int, 0, 65535),
    )
    return p


async def run(controller: Controller, interval: float) -> None:
    while True:
        try:
            await controller.step()
        except (PrometheusError, httpx.HTTPError) as err:
            log.error("canary pass failed (next in %.0f s): %s", interval, err)
        await asyncio.sleep(interval)


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    token = AdminToken.from_environ(os.environ)
    if token is None:
        raise SystemExit(
            f"the admin listeners need an admin token: set {contract.ENV_ADMIN_TOKEN_FILE} or {contract.ENV_ADMIN_TOKEN}"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    registry = CollectorRegistry(auto_describe=False)
    start_http_server(args.metrics_port, addr=args.host, registry=registry)
    settings = Settings(
        prometheus=args.prometheus,
        region=args.region,
        model=args.model,
        targets=args.targets,
        thresholds=Thresholds(
            window_seconds=args.window,
            min_requests=args.min_requests,
            max_error_rate_increase=args.max_error_rate_increase,
            max_p99_ratio=args.max_p99_ratio,
            min_agreement=args.min_agreement,
            max_accuracy_drop=args.max_accuracy_drop,
            min_labelled=args.min_labelled,
        ),
        admin_token=token,
    )

    async def serve() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await run(Controller(settings, client, registry), args.interval)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
