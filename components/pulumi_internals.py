"""Every use of the Pulumi SDK's private API, in one place, each with why we need it.

The program reads its whole config namespace (the public `pulumi.Config` reads one key at a
time and cannot list keys), and the offline engine (meridian/mocks.py) runs a program
in-process the way the language host does. When an SDK upgrade moves one of these names,
this file is the only one that breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import CONFIG
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await


def stack_config_values() -> dict[str, Any]:
    """Every config key the engine handed the program (`meridian:regions`, `gcp:project`, ...)."""
    # The CLI passes config as the PULUMI_CONFIG JSON bag; mocks set it in-process (CONFIG).
    return {**pulumi.runtime.get_config_env(), **CONFIG.get()}


def fresh_root_stack() -> None:
    """Forget the previous run's root Stack, so no export leaks into the next run."""
    settings.ROOT.set(None)  # set_mocks makes a new root Stack only when none is set


def run_to_completion(program: Callable[[], None]) -> None:
    """Run `program` and wait for every registration it made, as the language host does."""
    # run_pulumi_func is the host's own loop; _sync_await drives it from synchronous code.
    _sync_await(run_pulumi_func(program))


def resolved(value: pulumi.Input[Any]) -> Any:
    """The value an output resolved to, after a run (None stays None)."""
    # There is no public way to wait on an Output from synchronous code: the SDK's own helper.
    return None if value is None else _sync_await(pulumi.Output.from_input(value).future())


def is_secret(value: pulumi.Input[Any]) -> bool:
    """Whether an output, after a run, is a secret (state keeps it encrypted)."""
    return _sync_await(pulumi.Output.from_input(value).is_secret())


def _exports() -> dict[str, Any]:
    stack = pulumi.runtime.get_root_resource()
    return dict(getattr(stack, "outputs", {}) or {})  # the root Stack keeps its exports here


def stack_outputs() -> dict[str, Any]:
    """What the program exported with `pulumi.export`, resolved."""
    return {key: resolved(value) for key, value in _exports().items()}


def stack_outputs_on_the_wire() -> struct_pb2.Struct:
    """The exports as the SDK sends them to the engine, secrets marked where they sit: what state keeps."""
    # The root Stack registers its exports with rpc.serialize_properties; no public API serializes.
    return _sync_await(rpc.serialize_properties(_exports(), {}))
