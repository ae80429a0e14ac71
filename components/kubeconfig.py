"""The kubeconfig a cloud cluster hands its Kubernetes provider: one cluster, one context, and a
user that authenticates through the cloud's exec plugin, so no long-lived credential is stored."""

from __future__ import annotations

import json
from typing import Any

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def exec_kubeconfig(name: str, *, server: str, ca_data: str, command: str, **exec_options: Any) -> str:
    """Cluster, context and user all named `name`; the user runs `command` for a token
    (`exec_options`: the plugin's `args`, `provideClusterInfo`, ...)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {"name": name, "user": {"exec": {"apiVersion": EXEC_API_VERSION, "command": command, **exec_options}}}
            ],
        }
    )
