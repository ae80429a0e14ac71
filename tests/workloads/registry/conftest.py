"""Shared fixtures: a signing key pair, the three variants of a small digits model, and an S3
registry served by moto on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.moto_s3 import moto_s3
from workloads.localization.pruning import prune_structured
from workloads.registry import Variant, generate_keypair
from workloads.registry.variants import quantize_int8
from workloads.tasks import Task, load_task

BUCKET = "meridian-registry"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """(private key path, public key path)."""
    return generate_keypair(tmp_path / "keys")


@pytest.fixture(scope="session")
def digits() -> Task:
    return load_task("digits")


@pytest.fixture(scope="session")
def variants(digits: Task) -> dict[Variant, nn.Module]:
    torch.manual_seed(0)
    fp32 = digits.build_model().eval()
    return {
        Variant.FP32: fp32,
        Variant.PRUNED: prune_structured(fp32, sparsity=0.5).eval(),
        Variant.INT8: quantize_int8(fp32),
    }


@pytest.fixture(scope="session")
def s3_registry() -> Iterator[tuple[str, dict[str, Any]]]:
    """(bucket URL, fsspec storage options) of a moto S3 server (real HTTP on 127.0.0.1)."""
    with moto_s3() as s3:
        s3.client.create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}", s3.options
