"""Shared fixtures: each shipped stack runs once under mocks per test session; a raw stack
config to mutate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components.config import available_stacks, namespace_values, stack_file
from meridian.mocks import Inventory
from meridian.preview import preview_stack

STACKS = available_stacks()
BASE_STACK = "multicloud-prod"  # both clouds, edge sites, canary: every rule has something to bite on

_cache: dict[str, Inventory] = {}


def _inventory(stack: str) -> Inventory:
    if stack not in _cache:
        _cache[stack] = preview_stack(stack)
    return _cache[stack]


@pytest.fixture(scope="session")
def inventory_of() -> Callable[[str], Inventory]:
    """`inventory_of("dev")`: every resource the program registers for that stack."""
    return _inventory


@pytest.fixture(params=STACKS, scope="session")
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def inventory(stack: str) -> Inventory:
    return _inventory(stack)


@pytest.fixture
def base_config() -> dict[str, Any]:
    """The `meridian:` values of the base stack's file (namespace stripped), fresh for each test."""
    document = yaml.safe_load(stack_file(BASE_STACK).read_text())
    return namespace_values(document["config"])
