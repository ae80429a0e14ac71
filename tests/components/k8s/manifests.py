"""Kubernetes objects rebuilt from recorded (engine-shaped) Pulumi inputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Pulumi resources of the kubernetes provider that are not Kubernetes objects.
NOT_OBJECTS = {"kubernetes:helm.sh/v3:Release", "pulumi:providers:kubernetes"}
POD_TEMPLATE_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}


def api_version_and_kind(pulumi_type: str) -> tuple[str, str] | None:
    """`kubernetes:apps/v1:Deployment` -> ("apps/v1", "Deployment"); core has no group."""
    if not pulumi_type.startswith("kubernetes:") or pulumi_type in NOT_OBJECTS:
        return None
    _, group_version, kind = pulumi_type.split(":")
    group, version = group_version.split("/")
    return (version if group == "core" else f"{group}/{version}"), kind


# How the engine marks a secret value: {SECRET_SIG: SECRET_MARK, "value": <the value>}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"


def plain(value: Any) -> Any:
    """Plain values: the engine sends every number as a float (Kubernetes schemas want
    integers) and wraps secrets (Secret data, anything derived from a private key)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_MARK:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def manifest(pulumi_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
    api_version_kind = api_version_and_kind(pulumi_type)
    if api_version_kind is None:
        raise ValueError(f"{pulumi_type} is not a Kubernetes object")
    api_version, kind = api_version_kind
    body = {k: plain(v) for k, v in inputs.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": api_version, "kind": kind, **body}


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload object (a CronJob's is in its Job template)."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    if obj["kind"] not in POD_TEMPLATE_KINDS:
        return None
    return obj["spec"]["template"]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    template = pod_template(obj)
    return None if template is None else template["spec"]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod's long-running containers."""
    spec = pod_spec(obj)
    return [] if spec is None else list(spec["containers"])


def all_containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Init containers too: every rule on what a container may do applies to them."""
    spec = pod_spec(obj)
    if spec is not None:
        yield from spec.get("initContainers") or []
        yield from spec["containers"]


def flags(container: dict[str, Any]) -> dict[str, str | None]:
    """A container's `--flag value` arguments (a bare flag maps to None)."""
    args, out, i = container["args"], {}, 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[args[i]] = args[i + 1]
            i += 2
        else:
            out[args[i]] = None
            i += 1
    return out


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as a mapping (plain values; see secret_env_of)."""
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def secret_env_of(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """A container's variables read from Secrets: name -> (Secret, key)."""
    refs = (e for e in container["env"] if "valueFrom" in e)
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in refs}
