"""Per GCP region, in that region: a data bucket and a model registry bucket (the home's also
holds the global model), each with a customer key the GCS agent alone may use, uniform access,
public access prevention enforced, versioning, and labels saying what it holds for which region."""

from __future__ import annotations

from components.catalog import Cloud
from meridian.mocks import Inventory
from tests.components.cloud_queries import bucket_regions, mock_id, named, regions_on

BUCKET = "gcp:storage/bucket:Bucket"


def test_one_data_bucket_per_gcp_region_in_that_region(stack: str, inventory: Inventory) -> None:
    assert bucket_regions(inventory, Cloud.GCP, "data") == sorted(r.name for r in regions_on(stack, Cloud.GCP))
    for bucket in inventory.of_type(BUCKET):
        assert bucket.inputs["location"] == (bucket.region or "").upper()  # single region


def test_every_gcp_region_has_its_own_registry_bucket_in_that_region(stack: str, inventory: Inventory) -> None:
    assert bucket_regions(inventory, Cloud.GCP, "registry") == sorted(r.name for r in regions_on(stack, Cloud.GCP))


def test_every_bucket_is_labelled_with_what_it_holds_and_the_region_it_serves(inventory: Inventory) -> None:
    """The residency rules read these labels (policy/rules/meridian/residency.py)."""
    for bucket in inventory.of_type(BUCKET):
        purpose = bucket.name.removeprefix(f"{bucket.region}-")
        assert bucket.inputs["labels"] == {"meridian-purpose": purpose, "meridian-region": bucket.region}


def test_every_bucket_is_cmek_uniform_private_and_versioned(stack: str, inventory: Inventory) -> None:
    for bucket in inventory.of_type(BUCKET):
        inputs = bucket.inputs
        assert inputs["uniformBucketLevelAccess"] is True
        assert inputs["publicAccessPrevention"] == "enforced"
        assert inputs["versioning"] == {"enabled": True}
        assert inputs["forceDestroy"] is False
        key = named(inventory, f"{bucket.name}-key", "gcp:kms/cryptoKey:CryptoKey")
        assert inputs["encryption"] == {"defaultKmsKeyName": mock_id(key)}
        assert key.region == bucket.region and key.inputs["rotationPeriod"] == "7776000s"
        grant = named(inventory, f"{bucket.name}-key", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember").inputs
        assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant["member"].endswith("@gs-project-accounts.iam.gserviceaccount.com")
        assert grant["cryptoKeyId"] == mock_id(key)


def test_no_bucket_grants_the_public(inventory: Inventory) -> None:
    members = [r.inputs["member"] for r in inventory.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")]
    assert not [m for m in members if m in ("allUsers", "allAuthenticatedUsers")]
