"""Autoscalers are bounded, scale a Deployment of the stack, and own its replica count alone."""

from __future__ import annotations

from typing import Any

from policy.rules.kubernetes.autoscaling import AUTOSCALING_BOUNDED
from tests.policy.checks import assert_complies, assert_violates, namespaced
from tests.policy.rules.kubernetes.workloads import deployment

NS = "meridian-inference"


def scaled_object(target: str = "server", name: str = "server", **bounds: Any):
    spec = {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 4} | bounds
    for key in [k for k, v in spec.items() if v is None]:
        del spec[key]
    return namespaced("kubernetes:keda.sh/v1alpha1:ScaledObject", name, NS, spec=spec)


def hpa(target: str = "server"):
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "maxReplicas": 3}
    return namespaced("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", f"{target}-hpa", NS, spec=spec)


def test_a_bounded_scaled_object_owning_its_deployments_count_complies() -> None:
    assert_complies(AUTOSCALING_BOUNDED, deployment(replicas=None), scaled_object())


def test_a_scaled_object_without_a_maximum_violates_kedas_default_is_100() -> None:
    assert_violates(
        AUTOSCALING_BOUNDED,
        deployment(replicas=None),
        scaled_object(maxReplicaCount=None),
        containing="sets no maximum (KEDA's default is 100 replicas)",
    )


def test_a_minimum_above_the_maximum_violates() -> None:
    assert_violates(
        AUTOSCALING_BOUNDED,
        deployment(replicas=None),
        scaled_object(minReplicaCount=5, maxReplicaCount=4),
        containing="minimum 5 exceeds maximum 4",
    )


def test_a_scaled_object_for_a_deployment_the_stack_lacks_violates() -> None:
    assert_violates(
        AUTOSCALING_BOUNDED,
        deployment(replicas=None),
        scaled_object(target="edge-nyc", name="edge-nyc"),
        containing="scales Deployment edge-nyc, which this stack does not deploy there",
    )


def test_a_deployment_that_states_its_replicas_fights_its_autoscaler() -> None:
    assert_violates(
        AUTOSCALING_BOUNDED, deployment(replicas=2), scaled_object(), containing="sets replicas while ScaledObject"
    )


def test_two_autoscalers_on_one_deployment_violate() -> None:
    assert_violates(
        AUTOSCALING_BOUNDED, deployment(replicas=None), scaled_object(), hpa(), containing="has 2 autoscalers"
    )
