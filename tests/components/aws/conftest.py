"""AWS fixtures: a shipped stack with its CDN turned off, run once per test session."""

from __future__ import annotations

import pytest

from meridian.mocks import Inventory
from meridian.preview import run_program
from tests.components.cloud_queries import config_of


@pytest.fixture(scope="session")
def aws_prod_without_cdn() -> Inventory:
    """aws-prod with `cdn.enabled: false`: readers reach the registry buckets themselves."""
    stack = config_of("aws-prod")
    config = stack.model_copy(update={"cdn": stack.cdn.model_copy(update={"enabled": False})})
    return run_program(config, "aws-prod", providers={})
