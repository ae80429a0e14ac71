"""Retrying a message's contents that have not arrived yet, sooner than Flower's 1 s."""

import inspect
import types

import pytest
from flwr.supercore.constant import PULL_BACKOFF_CAP, PULL_INITIAL_BACKOFF, PULL_MAX_TIME
from flwr.supercore.inflatable import inflatable_utils
from flwr.supercore.inflatable.inflatable_utils import ObjectPullError, ObjectUnavailableError
from flwr.superlink.grid import http_grid
from flwr.supernode import start_client_internal
from flwr.supernode.runtime import run_clientapp

from workloads.trainer.object_pulls import PULLS, retry_sooner


@pytest.mark.parametrize(
    ("module", "pull"),
    [
        (run_clientapp, "pull_and_inflate_object_from_tree"),  # a ClientApp pulling its message
        (http_grid, "pull_objects"),  # the ServerApp pulling replies
        (start_client_internal, "pull_objects"),  # a SuperNode pulling from the SuperLink
    ],
)
def test_flower_looks_its_pulls_up_by_name_and_lets_the_waits_be_set(module, pull):
    """What rebinding relies on: a Flower upgrade that changes it fails here first."""
    assert f"{pull}(" in inspect.getsource(module)
    parameters = inspect.signature(getattr(inflatable_utils, pull)).parameters
    assert {"initial_backoff", "backoff_cap", "max_tries_per_object"} <= set(parameters)
    assert parameters["max_time"].default == PULL_MAX_TIME  # what bounds the wait once tries are not counted


def _module() -> types.ModuleType:
    module = types.ModuleType("flower_part")
    module.pull_objects = inflatable_utils.pull_objects  # type: ignore[attr-defined]
    return module


def test_the_pull_retries_from_the_first_wait_doubling_to_the_longest():
    module = _module()
    retry_sooner(module, "pull_objects", first_wait=0.02, longest_wait=0.1)
    assert module.pull_objects.keywords == {  # type: ignore[attr-defined]
        "initial_backoff": 0.02,
        "backoff_cap": 0.1,
        "max_tries_per_object": None,  # short waits must not use up Flower's 500 tries in a minute
        "max_time": PULL_MAX_TIME,  # Flower's own limit, unless the caller has a deadline
    }


def test_a_caller_with_a_deadline_gives_up_at_it():
    module = _module()
    retry_sooner(module, "pull_objects", first_wait=0.05, give_up_after=120.0)  # the ServerApp's round timeout
    assert module.pull_objects.keywords["max_time"] == 120.0  # type: ignore[attr-defined]


def test_an_object_that_never_arrives_is_given_up_on_at_the_deadline():
    def never(object_id: str) -> bytes:
        raise ObjectUnavailableError(object_id)

    module = _module()
    retry_sooner(module, "pull_objects", first_wait=0.01, give_up_after=0.2)
    with pytest.raises(ObjectPullError, match="timeout or retry limit"):
        module.pull_objects(["a"], never)  # type: ignore[attr-defined]


def test_it_never_waits_longer_than_flower_would():
    module = _module()
    retry_sooner(module, "pull_objects", first_wait=3.0, longest_wait=60)
    keywords = module.pull_objects.keywords  # type: ignore[attr-defined]
    assert (keywords["initial_backoff"], keywords["backoff_cap"]) == (PULL_INITIAL_BACKOFF, PULL_BACKOFF_CAP)


def test_a_missing_object_is_pulled_once_it_arrives():
    answers = iter([ObjectUnavailableError("a"), ObjectUnavailableError("a"), b"content"])

    def pull(object_id: str) -> bytes:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    module = _module()
    retry_sooner(module, "pull_objects", first_wait=0.01)
    assert module.pull_objects(["a"], pull) == {"a": b"content"}  # type: ignore[attr-defined]


def test_only_flowers_pulls_of_a_module_that_has_them_are_rebound():
    with pytest.raises(ValueError, match="not one of Flower's pulls"):
        retry_sooner(_module(), "push_objects", 0.1)
    with pytest.raises(ValueError, match="has no pull_and_inflate_object_from_tree"):
        retry_sooner(_module(), "pull_and_inflate_object_from_tree", 0.1)
    assert set(PULLS) == {"pull_objects", "pull_and_inflate_object_from_tree"}
