"""Pulumi.yaml declares the stack config keys, and every stack can satisfy the declaration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config import StackConfig, available_stacks, stack_file

PROJECT = yaml.safe_load((Path(__file__).resolve().parent.parent / "Pulumi.yaml").read_text())
DECLARED = PROJECT["config"]
ENGINE_TYPES = {"string", "boolean", "integer", "array"}


def test_every_declared_key_is_a_stack_config_field_with_a_description() -> None:
    fields = {info.alias or name for name, info in StackConfig.model_fields.items()}
    assert set(DECLARED) <= fields
    assert all(d.get("description") for d in DECLARED.values())
    assert all(d.get("type", "string") in ENGINE_TYPES for d in DECLARED.values())


def test_every_required_field_is_declared() -> None:
    required = {info.alias or name for name, info in StackConfig.model_fields.items() if info.is_required()}
    assert required <= set(DECLARED)


@pytest.mark.parametrize("stack", available_stacks())
def test_every_stack_sets_every_key_declared_without_a_default(stack: str) -> None:
    keys = set(yaml.safe_load(stack_file(stack).read_text())["config"])
    assert {f"meridian:{k}" for k, d in DECLARED.items() if "default" not in d} <= keys
    assert keys >= {"pulumi:disable-default-providers"}
