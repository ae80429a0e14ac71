"""Reading props the way the policy server hands them over.

Props arrive as read-only Mappings (a property that is unknown during preview raises
UnknownValueError on access, which the server turns into an advisory "can't run during
preview" note), numbers as floats, camelCase keys; some inputs are JSON documents in strings.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any


def dig(value: Any, *path: str | int) -> Any:
    """`dig(props, "vpcConfig", "endpointPublicAccess")`; None where any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


def items(value: Any) -> list[Any]:
    """A list input as a list: None is empty, a lone value is a list of one."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def decoded(value: Any) -> Any:
    """An input that may be a JSON string (a policy document, provider config) as its value; None if malformed."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


def show(value: Any) -> str:
    """A value for a message: the engine's floats print as the integers they are (443, not 443.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def world_cidr(cidr: str) -> bool:
    """Whether a CIDR admits every address (0.0.0.0/0, ::/0, or any /0); a malformed one does not."""
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False
