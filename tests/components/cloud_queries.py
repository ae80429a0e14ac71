"""Questions the cloud-layer tests ask of a recorded inventory (see meridian/mocks.py)."""

from __future__ import annotations

import json
from typing import Any

from components.catalog import Cloud
from components.config import Region, StackConfig, load_stack
from meridian.mocks import Inventory, Recorded, short_hash
from workloads.contract import Image


def config_of(stack: str) -> StackConfig:
    return load_stack(stack)


def regions_on(stack: str, cloud: Cloud) -> list[Region]:
    return [r for r in config_of(stack).regions if r.cloud is cloud]


def named(inventory: Inventory, name: str, type_: str) -> Recorded:
    """The one resource of this type and name (names are stable and region-prefixed)."""
    matches = [r for r in inventory.resources if r.name == name and r.type == type_]
    assert len(matches) == 1, f"{len(matches)} {type_} named {name!r}"
    return matches[0]


def under(inventory: Inventory, ancestor: str) -> list[Recorded]:
    """Every resource below the component named `ancestor`, however deep."""
    by_name = {r.name: r for r in inventory.resources if not r.custom}
    out = []
    for r in inventory.resources:
        parent = r.parent
        while parent is not None and parent != ancestor:
            parent = by_name[parent].parent if parent in by_name else None
        if parent == ancestor:
            out.append(r)
    return out


# Where each cloud's buckets say what they hold ("data" or "registry"): type, input, key.
_BUCKET_PURPOSE = {
    Cloud.AWS: ("aws:s3/bucket:Bucket", "tags", "meridian/purpose"),
    Cloud.GCP: ("gcp:storage/bucket:Bucket", "labels", "meridian-purpose"),
}


def bucket_regions(inventory: Inventory, cloud: Cloud, purpose: str) -> list[str]:
    """The region of every bucket of this cloud and purpose, sorted (a region twice: two buckets)."""
    type_, key, label = _BUCKET_PURPOSE[cloud]
    return sorted(b.region or "" for b in inventory.of_type(type_) if b.inputs[key].get(label) == purpose)


def pushed_images(inventory: Inventory, region: str) -> list[tuple[Image, str, dict[str, Any]]]:
    """Every workload image built for `region`: (image, its one pushed tag, the registry login)."""
    pushed = []
    for image in Image:
        built = named(inventory, f"{region}-images-{image.value}", "docker-build:index:Image")
        (tag,) = built.inputs["tags"]
        (registry,) = plain(built.inputs["registries"])
        pushed.append((image, tag, registry))
    return pushed


def of_type(resources: list[Recorded], type_: str) -> list[Recorded]:
    return [r for r in resources if r.type == type_]


def document(resource: Recorded, key: str = "policy") -> dict[str, Any]:
    """A JSON policy input (IAM, bucket, key policy), parsed."""
    return json.loads(resource.inputs[key])


def statements(resource: Recorded, key: str = "policy") -> list[dict[str, Any]]:
    return document(resource, key)["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def mock_id(resource: Recorded) -> str:
    """The id the offline engine gave this resource: what other resources' inputs hold."""
    return f"{resource.name}-{short_hash(resource.type, resource.name)}"


_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # the engine's marker for a secret value


def plain(value: Any) -> Any:
    """A recorded input without its secret wrapper (secrets stay secret in the real engine)."""
    if isinstance(value, dict) and _SECRET_SIG in value:
        return value["value"]
    return value
