"""Cloud KMS: keys rotate at least once a year."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule

MAX_ROTATION_SECONDS = 365 * 24 * 3600


@resource_rule("gcp-kms-key-rotation", Severity.MEDIUM, MANDATORY, types=["gcp:kms/cryptoKey:CryptoKey"])
def KEY_ROTATION(args: ResourceValidationArgs) -> Iterator[str]:
    """Cloud KMS crypto keys rotate at least yearly."""
    period = args.props.get("rotationPeriod")
    if not period:
        yield "rotationPeriod is not set: the key never rotates"
        return
    try:
        seconds = float(str(period).removesuffix("s"))
    except ValueError:
        yield f"rotationPeriod {period!r} is not a duration in seconds such as '7776000s'"
        return
    if seconds > MAX_ROTATION_SECONDS:
        yield f"rotationPeriod {period} is longer than a year"


POLICIES = [KEY_ROTATION]
