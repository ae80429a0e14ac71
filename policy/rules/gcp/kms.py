"""Cloud KMS: encryption keys rotate at least once a year.

Asymmetric keys (signing, asymmetric decryption) are exempt: Cloud KMS cannot rotate them
(https://docs.cloud.google.com/kms/docs/key-rotation, read 2026-11-30: "Cloud KMS does not
support automatic rotation of asymmetric keys"), and a new version means a new public key,
which its verifiers must be given first: a deliberate roll-out, not a timer."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule

MAX_ROTATION_SECONDS = 365 * 24 * 3600
ASYMMETRIC_PURPOSES = ("ASYMMETRIC_SIGN", "ASYMMETRIC_DECRYPT")


@resource_rule("gcp-kms-key-rotation", Severity.MEDIUM, MANDATORY, types=["gcp:kms/cryptoKey:CryptoKey"])
def KEY_ROTATION(args: ResourceValidationArgs) -> Iterator[str]:
    """Cloud KMS encryption keys rotate at least yearly (asymmetric keys cannot)."""
    if args.props.get("purpose") in ASYMMETRIC_PURPOSES:
        return
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
