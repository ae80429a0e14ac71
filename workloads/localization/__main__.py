"""Localize the global model for one region and publish its fp32, pruned and int8 artifacts.

Follow the global registry (one pass, as the region's CronJob and the local stack run it):

    python -m workloads.localization follow --global-registry https://cdn.example.com/global \
        --global-key /etc/meridian/keys/global-signing.pub --region eu-west-1 \
        --data-url s3://data-bucket --store s3://registry-bucket/eu-west-1 \
        --signing-key awskms:///arn:aws:kms:... --task digits --work-dir /data

Or localize one given model (version chosen by the caller):

    python -m workloads.localization localize --global-model out/global.safetensors --task digits \
        --data-dir out/data/eu-west-1 --region eu-west-1 --store file:///abs/registry \
        --signing-key keys/artifact-signing.key --version 3

(`localize --shuffle-labels` fine-tunes on permuted labels: the local stack's bad canary.)

Both print the measurement table as JSON when they publish (and write it to --report if given).
Store URLs may be any fsspec URL (s3:// takes its endpoint and credentials from the usual AWS
environment); the global registry may also be the CDN's https:// path. `--signing-key` is passed
to the registry's signer as it is: a PEM path, or a KMS key ref.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from workloads.contract import MODEL_NAME
from workloads.localization.follow import Follow, FollowError, follow_once
from workloads.localization.localize import LocalizationConfig
from workloads.localization.publish import load_state_dict, localize_and_publish
from workloads.registry.artifact import ArtifactId, Variant
from workloads.registry.signing import load_signer
from workloads.tasks import Shard, load_task


def build_parser() -> argparse.ArgumentParser:
    defaults = LocalizationConfig()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", required=True, help="built-in task name or package.module:TASK")
    common.add_argument("--region", required=True)
    common.add_argument("--store", required=True, help="the region's registry URL (file://, s3://, gs://)")
    common.add_argument("--signing-key", required=True, help="Ed25519 private key: PEM path or KMS key ref")
    common.add_argument("--model-name", default=MODEL_NAME)
    common.add_argument("--sparsity", type=float, default=defaults.sparsity)
    common.add_argument("--finetune-epochs", type=int, default=defaults.finetune_epochs)
    common.add_argument("--recovery-epochs", type=int, default=defaults.recovery_epochs)
    common.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    common.add_argument("--seed", type=int, default=defaults.seed)
    common.add_argument("--report", type=Path, help="also write the measurement table here")

    parser = argparse.ArgumentParser(
        prog="python -m workloads.localization",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    follow = commands.add_parser("follow", parents=[common], help="one pass: localize the newest global model")
    follow.add_argument("--global-registry", required=True, help="the home's global registry (read URL)")
    follow.add_argument("--global-key", type=Path, required=True, help="the home's Ed25519 public key (PEM)")
    follow.add_argument("--data-url", required=True, help="the region's data: s3://, gs:// or file:///dir")
    follow.add_argument("--work-dir", type=Path, help="scratch for the global model and data (default: a temp dir)")
    localize = commands.add_parser("localize", parents=[common], help="localize one given global model")
    localize.add_argument("--global-model", type=Path, required=True, help=".safetensors or .pt state dict")
    localize.add_argument("--data-dir", type=Path, required=True, help="the region's shard directory")
    localize.add_argument("--version", required=True, help="version of the published artifacts")
    localize.add_argument("--parent-version", help="global model version (default: --version)")
    localize.add_argument(
        "--shuffle-labels",
        action="store_true",
        help="fine-tune on the training labels permuted (seeded): a deliberately worse model, which "
        "the local stack's canary drill publishes to see it rolled back",
    )
    return parser


def _config(args: argparse.Namespace) -> LocalizationConfig:
    return LocalizationConfig(
        finetune_epochs=args.finetune_epochs,
        recovery_epochs=args.recovery_epochs,
        learning_rate=args.learning_rate,
        sparsity=args.sparsity,
        seed=args.seed,
    )


def _localize(args: argparse.Namespace) -> dict[str, Any]:
    # Everything that can be wrong with the inputs fails here, before minutes of training.
    task = load_task(args.task)
    signer = load_signer(args.signing_key)  # a KMS key is reached (and its spec checked) now
    for variant in Variant:
        ArtifactId(args.model_name, args.version, args.region, variant)
    shard = Shard.load(args.data_dir)
    if args.shuffle_labels:
        shard = replace(shard, y_train=np.random.default_rng(args.seed).permutation(shard.y_train))
    return localize_and_publish(
        task,
        args.task,
        load_state_dict(args.global_model),
        shard,
        _config(args),
        model_name=args.model_name,
        version=args.version,
        parent_version=args.parent_version or args.version,
        region=args.region,
        store=args.store,
        signing_key=signer,
    )


def _follow(args: argparse.Namespace) -> dict[str, Any] | None:
    follow = Follow(
        global_registry=args.global_registry,
        global_key=args.global_key,
        region=args.region,
        data_url=args.data_url,
        store=args.store,
        signing_key=args.signing_key,
        task=args.task,
        work_dir=args.work_dir,
        model_name=args.model_name,
        config=_config(args),
    )
    outcome = follow_once(follow)
    print(outcome.message(follow), file=sys.stderr)
    return outcome.report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = _follow(args) if args.command == "follow" else _localize(args)
    except FollowError as err:
        print(f"localization follow: {err}", file=sys.stderr)
        return 1
    if report is None:
        return 0
    text = json.dumps(report, indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
