"""`meridian scan`: the rendered manifests are what the API server would receive."""

from __future__ import annotations

from pathlib import Path

import yaml

from meridian.scan import api_version, render


def test_type_tokens_map_to_api_versions() -> None:
    assert api_version("kubernetes:apps/v1:Deployment") == "apps/v1"
    assert api_version("kubernetes:core/v1:Service") == "v1"
    assert api_version("kubernetes:networking.k8s.io/v1:NetworkPolicy") == "networking.k8s.io/v1"


def test_a_stack_renders_one_yaml_per_object_with_integer_counts(tmp_path: Path) -> None:
    files = render(["onprem"], tmp_path)
    documents = [yaml.safe_load(f.read_text()) for f in files]
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "NetworkPolicy", "Namespace"} <= kinds
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    service = next(d for d in documents if d["kind"] == "Service")
    assert deployment["apiVersion"] == "apps/v1" and service["apiVersion"] == "v1"
    assert isinstance(service["spec"]["ports"][0]["port"], int)
