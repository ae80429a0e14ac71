"""Localize the global model for one region and publish its fp32, pruned and int8 artifacts.

    python -m workloads.localization --global-model out/global.safetensors --task digits \
        --data-dir out/data/eu-west-1 --region eu-west-1 --store file:///abs/registry \
        --signing-key keys/artifact-signing.key --version 3

Prints the measurement table as JSON (and writes it to --report if given). The store URL may be
any fsspec URL (s3:// takes its endpoint and credentials from the usual AWS environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from workloads.contract import MODEL_NAME
from workloads.localization.localize import LocalizationConfig, localize
from workloads.registry.artifact import ArtifactId, Variant
from workloads.registry.signing import load_signer
from workloads.registry.store import publish
from workloads.tasks import Shard, load_task


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Global weights: a safetensors file, or a torch state dict (.pt/.pth, tensors only)."""
    if not path.is_file():
        raise FileNotFoundError(f"global model {path} does not exist")
    if path.suffix == ".safetensors":
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def main(argv: list[str] | None = None) -> int:
    defaults = LocalizationConfig()
    parser = argparse.ArgumentParser(
        prog="python -m workloads.localization",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--global-model", type=Path, required=True, help=".safetensors or .pt state dict")
    parser.add_argument("--task", required=True, help="built-in task name or package.module:TASK")
    parser.add_argument("--data-dir", type=Path, required=True, help="the region's shard directory")
    parser.add_argument("--region", required=True)
    parser.add_argument("--store", required=True, help="registry URL (file://, s3://, gs://)")
    parser.add_argument(
        "--signing-key",
        required=True,
        help="Ed25519 private key: a PEM path, awskms:///<key arn> or gcpkms://projects/.../cryptoKeyVersions/<n>",
    )
    parser.add_argument("--version", required=True, help="version of the published artifacts")
    parser.add_argument("--parent-version", help="global model version (default: --version)")
    parser.add_argument("--model-name", default=MODEL_NAME)
    parser.add_argument("--sparsity", type=float, default=defaults.sparsity)
    parser.add_argument("--finetune-epochs", type=int, default=defaults.finetune_epochs)
    parser.add_argument("--recovery-epochs", type=int, default=defaults.recovery_epochs)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--report", type=Path, help="also write the measurement table here")
    args = parser.parse_args(argv)

    # Everything that can be wrong with the inputs fails here, before minutes of training.
    task = load_task(args.task)
    key = load_signer(args.signing_key)  # a KMS key is reached (and its spec checked) now
    artifacts = {variant: ArtifactId(args.model_name, args.version, args.region, variant) for variant in Variant}
    shard = Shard.load(args.data_dir)
    config = LocalizationConfig(
        finetune_epochs=args.finetune_epochs,
        recovery_epochs=args.recovery_epochs,
        learning_rate=args.learning_rate,
        sparsity=args.sparsity,
        seed=args.seed,
    )
    localized = localize(task, load_state_dict(args.global_model), shard, config)
    for artifact in artifacts.values():
        publish(
            localized.models[artifact.variant],
            task,
            args.store,
            key,
            artifact=artifact,
            parent_version=args.parent_version or args.version,
            metrics={
                "accuracy_before_finetune": localized.global_accuracy,
                **localized.metrics[artifact.variant],
            },
            task_ref=args.task,
        )
    report = {"region": args.region, "version": args.version, **localized.report()}
    text = json.dumps(report, indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
