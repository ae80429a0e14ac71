"""One error type for every refusal of `meridian data`, so the CLI prints it without a traceback."""

from __future__ import annotations


class DataRefused(Exception):
    """Nothing was written (or listed); the message names the stack file, region or bucket at fault."""
