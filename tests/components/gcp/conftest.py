"""The GCP stacks' Fleet itself, run under mocks, for what the inventory does not record: the
ClusterAccess each region hands the Kubernetes layer (its registries, signer, identities)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from components.config import StackConfig, load_stack
from components.fleet import Fleet, FleetArgs
from components.pulumi_internals import resolved
from meridian.mocks import Inventory, run_under_mocks
from meridian.preview import provider_config
from tests.components.k8s.harness import engine_config

GCP_STACKS = ("gcp-eu", "multicloud-prod", "dev")  # every shipped stack with GCP regions


@dataclass(frozen=True)
class FleetRun:
    inventory: Inventory
    fleet: Fleet

    def value(self, output: object) -> object:
        """What an output of the run resolved to."""
        return resolved(output)


def run_fleet(config: StackConfig, stack: str) -> FleetRun:
    built: list[Fleet] = []
    inventory = run_under_mocks(
        lambda: built.append(Fleet("meridian", FleetArgs(config=config, stack=stack))),
        stack=stack,
        config={**provider_config(stack), **engine_config(config)},
    )
    return FleetRun(inventory, built[0])


_runs: dict[str, FleetRun] = {}


@pytest.fixture(scope="session")
def fleet_run() -> Callable[[str], FleetRun]:
    """`fleet_run("gcp-eu")`: that stack's Fleet, run once per session."""

    def run(stack: str) -> FleetRun:
        if stack not in _runs:
            _runs[stack] = run_fleet(load_stack(stack), stack)
        return _runs[stack]

    return run


@pytest.fixture(scope="session")
def gcp_eu_without_cdn() -> FleetRun:
    """gcp-eu with `cdn.enabled: false`: readers reach the registries' buckets directly."""
    config = load_stack("gcp-eu")
    return run_fleet(config.model_copy(update={"cdn": config.cdn.model_copy(update={"enabled": False})}), "gcp-eu")


@pytest.fixture(scope="session")
def inventory_of_gcp_eu_without_cdn(gcp_eu_without_cdn: FleetRun) -> Inventory:
    return gcp_eu_without_cdn.inventory
