"""moto's S3 server on loopback (real HTTP, a free port), for every test that needs an S3 endpoint:
the signed registry's stores and `meridian data push`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    client: Any  # a boto3 S3 client for the endpoint
    options: dict[str, Any]  # fsspec (s3fs) storage options for the endpoint


def aws_environment(endpoint: str) -> dict[str, str]:
    """What a pod or an operator's shell holds to reach S3 at `endpoint`: the endpoint and the
    credentials moto accepts, read by boto3 and s3fs from the environment."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """A moto S3 server on 127.0.0.1, stopped on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        options = {
            "key": CREDENTIALS["aws_access_key_id"],
            "secret": CREDENTIALS["aws_secret_access_key"],
            "endpoint_url": endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
            "skip_instance_cache": True,
        }
        yield MotoS3(
            endpoint, boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS), options
        )
    finally:
        server.stop()
