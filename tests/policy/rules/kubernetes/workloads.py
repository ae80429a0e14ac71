"""A hardened inference Deployment that every Kubernetes rule accepts, to break one piece at a time."""

from __future__ import annotations

import copy
from typing import Any

from policy.harness import Resource
from tests.policy.checks import K8S, resource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/meridian/server@sha256:" + "a" * 64
LABELS = {"app.kubernetes.io/name": "server", "app.kubernetes.io/component": "inference"}


def hardened_container(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "server",
        "image": IMAGE,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}},
    } | overrides


def deployment(
    container: dict[str, Any] | None = None,
    name: str = "server",
    replicas: int | None = 2,  # None: left to an autoscaler
    namespace: str = "meridian-inference",
    **pod: Any,
) -> Resource:
    spec = {"containers": [container or hardened_container()]} | pod
    return resource(
        DEPLOYMENT,
        name,
        K8S,
        metadata={"name": name, "namespace": namespace, "labels": LABELS},
        spec={
            **({"replicas": replicas} if replicas is not None else {}),
            "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": spec},
        },
    )


def with_security(**changes: Any) -> dict[str, Any]:
    container = hardened_container()
    security = copy.deepcopy(container["securityContext"])
    for key, value in changes.items():
        if value is None:
            security.pop(key, None)
        else:
            security[key] = value
    return container | {"securityContext": security}
