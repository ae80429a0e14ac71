"""Cloud Storage: public access prevention, uniform access, CMEK."""

from __future__ import annotations

from policy.rules.gcp.gcs import CMEK, PUBLIC_ACCESS_PREVENTION, UNIFORM_ACCESS
from tests.policy.checks import GCP_EU, assert_complies, assert_violates, resource

BUCKET = "gcp:storage/bucket:Bucket"
KEY = "projects/meridian/locations/europe-west4/keyRings/data/cryptoKeys/data"
GOOD = resource(
    BUCKET,
    "data",
    GCP_EU,
    location="EUROPE-WEST4",
    publicAccessPrevention="enforced",
    uniformBucketLevelAccess=True,
    encryption={"defaultKmsKeyName": KEY},
)


def test_a_hardened_bucket_complies_with_all_three() -> None:
    for rule in (PUBLIC_ACCESS_PREVENTION, UNIFORM_ACCESS, CMEK):
        assert_complies(rule, GOOD)


def test_inherited_public_access_prevention_violates() -> None:
    bucket = resource(BUCKET, "data", GCP_EU, publicAccessPrevention="inherited")
    assert_violates(PUBLIC_ACCESS_PREVENTION, bucket, containing="'inherited'")


def test_fine_grained_acls_violate() -> None:
    assert_violates(UNIFORM_ACCESS, resource(BUCKET, "data", GCP_EU), containing="uniformBucketLevelAccess")


def test_google_managed_encryption_violates() -> None:
    assert_violates(CMEK, resource(BUCKET, "data", GCP_EU), containing="defaultKmsKeyName")
