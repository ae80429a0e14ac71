"""Cloud KMS rotation: encryption keys within a year; asymmetric keys, which KMS cannot rotate, exempt."""

from __future__ import annotations

from policy.rules.gcp.kms import KEY_ROTATION
from tests.policy.checks import GCP_EU, assert_complies, assert_violates, resource

KEY = "gcp:kms/cryptoKey:CryptoKey"


def test_ninety_day_rotation_complies() -> None:
    assert_complies(KEY_ROTATION, resource(KEY, "k", GCP_EU, rotationPeriod="7776000s"))


def test_no_rotation_violates() -> None:
    assert_violates(KEY_ROTATION, resource(KEY, "k", GCP_EU), containing="never rotates")


def test_a_two_year_rotation_violates() -> None:
    assert_violates(
        KEY_ROTATION, resource(KEY, "k", GCP_EU, rotationPeriod="63072000s"), containing="longer than a year"
    )


def test_an_unrotated_signing_key_complies() -> None:
    assert_complies(KEY_ROTATION, resource(KEY, "k", GCP_EU, purpose="ASYMMETRIC_SIGN"))


def test_an_unrotated_encryption_key_still_violates() -> None:
    assert_violates(KEY_ROTATION, resource(KEY, "k", GCP_EU, purpose="ENCRYPT_DECRYPT"), containing="never rotates")
