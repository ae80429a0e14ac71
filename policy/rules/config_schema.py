"""Config properties that several rules' schemas share the shape of: lists of strings."""

from __future__ import annotations

from typing import Any


def string_list(
    default: list[str], description: str | None = None, *, allowed: list[str] | None = None
) -> dict[str, Any]:
    """A JSON-schema property for a list of strings (names, glob patterns), `allowed` limiting the values."""
    item = {"type": "string", "enum": allowed} if allowed else {"type": "string"}
    described = {"description": description} if description else {}
    return {"type": "array", "items": item, "default": default, **described}
