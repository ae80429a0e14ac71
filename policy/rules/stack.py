"""Looking across the stack: resources by type, what an input refers to, where a resource lives."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs


def of_types(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


def refers_to(value: Any, resource: PolicyResource, *keys: str) -> bool:
    """Whether an input (a bucket name, an id, an ARN) points at `resource`.

    During a real run the engine resolves references to the target's physical name or id;
    offline (mocks) and in auto-named cases the logical name stands in for it.
    """
    if not isinstance(value, str) or not value:
        return False
    candidates = {resource.name}
    for key in ("id", "name", "arn", *keys):
        found = resource.props.get(key) if key in resource.props else None
        if isinstance(found, str) and found:
            candidates.add(found)
    # GCP references are self links or ids that end in the target's name; an auto-named
    # physical name is the logical name plus a random hex suffix.
    return (
        value in candidates
        or any(value.endswith(f"/{c}") for c in candidates)
        or any(re.fullmatch(rf"{re.escape(c)}-[0-9a-f]{{7,16}}", value) for c in candidates)
    )


def referenced(args: StackValidationArgs, value: Any, *types: str) -> PolicyResource | None:
    """The resource of `types` that an input points at, if it is in this stack."""
    return next((r for r in of_types(args, *types) if refers_to(value, r)), None)


def resource_region(resource: PolicyResource) -> str | None:
    """Where a resource lives: its own `region`/`location`, else its provider's region."""
    provider = resource.provider.props if resource.provider else {}
    for props, key in ((resource.props, "region"), (resource.props, "location"), (provider, "region")):
        value = props.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return None
