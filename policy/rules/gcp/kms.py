"""Cloud KMS: keys rotate at least once a year."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..support import MANDATORY, resource_rule

MAX_ROTATION_SECONDS = 365 * 24 * 3600


def _rotation(args: ResourceValidationArgs) -> Iterator[str]:
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


KEY_ROTATION = resource_rule(
    "gcp-kms-key-rotation",
    "Cloud KMS crypto keys rotate at least yearly.",
    severity=Severity.MEDIUM,
    enforcement=MANDATORY,
    types=["gcp:kms/cryptoKey:CryptoKey"],
    check=_rotation,
)

POLICIES = [KEY_ROTATION]
