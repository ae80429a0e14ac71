"""The SuperNode entry point: Flower's own command, its waits between polls capped."""

import inspect
import re
import time

import flwr.supernode.start_client_internal as node_loop
import pytest

from workloads.contract import ENV_FLEET_POLL_SECONDS
from workloads.trainer.supernode import LOCAL_CHECK, cap_waits, poll_interval


def test_flowers_supernode_loop_uses_time_only_to_sleep():
    """What capping its sleeps relies on: a Flower upgrade that changes it fails here first."""
    uses = set(re.findall(r"\btime\.(\w+)", inspect.getsource(node_loop)))
    assert uses == {"sleep"}


def test_every_wait_of_the_node_loop_is_capped(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(node_loop, "time", node_loop.time)  # restored after the test
    monkeypatch.setattr(node_loop, "pull_objects", node_loop.pull_objects)
    cap_waits(0.1)
    node_loop.time.sleep(3)  # its idle poll of the SuperLink
    node_loop.time.sleep(0.5)  # its check of its own state for the ClientApp's reply
    node_loop.time.sleep(0.01)
    assert slept == [0.1, LOCAL_CHECK, 0.01]


def test_flowers_other_sleeps_are_checks_of_the_nodes_own_memory():
    """Why those are capped harder than the poll: Flower's loop sleeps 3 s only after an empty
    poll, and 0.5 s while waiting on its own state (a reply, an object's contents)."""
    assert sorted(set(re.findall(r"\btime\.sleep\(([\d.]+)\)", inspect.getsource(node_loop)))) == ["0.5", "3"]


def test_the_node_retries_a_message_still_arriving_at_the_poll_interval(monkeypatch):
    monkeypatch.setattr(node_loop, "time", node_loop.time)
    monkeypatch.setattr(node_loop, "pull_objects", node_loop.pull_objects)
    cap_waits(0.1)
    keywords = node_loop.pull_objects.keywords  # type: ignore[attr-defined]
    assert (keywords["initial_backoff"], keywords["backoff_cap"]) == (0.1, 0.1)


def test_unset_keeps_flowers_own_waits():
    assert poll_interval({}) is None
    assert poll_interval({ENV_FLEET_POLL_SECONDS: "0.25"}) == 0.25


@pytest.mark.parametrize("raw", ["fast", "0", "-1", "nan", "600"])
def test_a_bad_interval_is_refused_naming_the_variable(raw):
    with pytest.raises(ValueError, match=ENV_FLEET_POLL_SECONDS):
        poll_interval({ENV_FLEET_POLL_SECONDS: raw})
