"""Strict schema checks for the custom resources the program creates, which kubernetes-validate
cannot check (it knows built-in kinds only).

The schemas are the CRDs' own openAPIV3Schema at the pinned version, whole or pruned to the
fields we set (each file says where its schemas come from and what was dropped). Checked
strictly: an object may hold only the properties its schema names, as a CRD's structural
pruning would otherwise drop a misspelled field without a word.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILES = (
    Path(__file__).parent / "aws" / "karpenter_crds.json",
    Path(__file__).parent / "k8s" / "prometheus_operator_crds.json",
    Path(__file__).parent / "k8s" / "keda_crds.json",
    Path(__file__).parent / "k8s" / "gateway_api_crds.json",
    Path(__file__).parent / "k8s" / "gke_gateway_crds.json",
)


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """`<group>/<version>/<Kind>` -> its openAPIV3Schema, closed."""
    found: dict[str, dict[str, Any]] = {}
    for path in SCHEMA_FILES:
        for key, entry in json.loads(path.read_text())["schemas"].items():
            found[key] = _closed(entry["openAPIV3Schema"])
    return found


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _closed(v) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    elif isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _closed(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = _closed(out["items"])
    return out


def kind_key(obj: dict[str, Any]) -> str:
    return f"{obj['apiVersion']}/{obj['kind']}"


def is_custom(obj: dict[str, Any]) -> bool:
    """A kind outside Kubernetes' built-in API groups (its group has a dot, and is not `*.k8s.io`),
    or one of the CRDs a SIG ships under `*.k8s.io` (the Gateway API) whose schema is here."""
    group = obj["apiVersion"].rpartition("/")[0]
    return ("." in group and not group.endswith(".k8s.io")) or kind_key(obj) in schemas()


def validate(obj: dict[str, Any]) -> None:
    """Raises jsonschema.ValidationError; KeyError for a custom kind with no schema here."""
    jsonschema.Draft7Validator(schemas()[kind_key(obj)]).validate(obj)
