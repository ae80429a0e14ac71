"""`python -m workloads.server`: the regional inference server (Open Inference Protocol)."""

from __future__ import annotations

from collections.abc import Sequence

from workloads import contract
from workloads.serving.runner import build_app, run
from workloads.serving.settings import parse_serving_args, serving_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = serving_parser(
        "python -m workloads.server",
        "Regional inference server: the region's full model over the Open Inference Protocol (KServe V2 REST).",
        default_variant=contract.REGIONAL_MODEL_VARIANT,
    )
    settings, _ = parse_serving_args(parser, argv)
    run(build_app(settings, server_name="meridian-server"), settings)


if __name__ == "__main__":
    main()
