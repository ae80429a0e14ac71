"""Shared fixtures: each shipped stack runs once under mocks per test session."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.config import available_stacks
from meridian.mocks import Inventory
from meridian.preview import preview_stack

STACKS = available_stacks()

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
