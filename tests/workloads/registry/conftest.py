"""Shared fixtures: a signing key pair, the three variants of a small digits model, and an S3
registry served by moto on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import torch
from moto.server import ThreadedMotoServer
from torch import nn

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
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(Bucket=BUCKET)
        options = {
            "key": "testing",
            "secret": "testing",
            "endpoint_url": endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
            "skip_instance_cache": True,
        }
        yield f"s3://{BUCKET}", options
    finally:
        server.stop()
