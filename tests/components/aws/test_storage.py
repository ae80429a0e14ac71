"""One S3 data bucket and one model registry bucket per AWS region, in that region and tagged
with it: customer key (rotated), versioning, every public access block, TLS-only policy, no
replication."""

from __future__ import annotations

from components.aws.storage import INCOMPLETE_UPLOAD_DAYS
from components.catalog import Cloud
from meridian.mocks import Inventory
from tests.components.aws.arns import bucket_arn, key_arn
from tests.components.cloud_queries import bucket_regions, mock_id, named, regions_on, statements, under

BUCKET = "aws:s3/bucket:Bucket"


def test_one_data_and_one_registry_bucket_per_aws_region_in_that_region(stack: str, inventory: Inventory) -> None:
    regions = sorted(r.name for r in regions_on(stack, Cloud.AWS))
    assert bucket_regions(inventory, Cloud.AWS, "data") == bucket_regions(inventory, Cloud.AWS, "registry") == regions
    for region in regions:
        for purpose in ("data", "registry"):
            bucket = named(inventory, f"{region}-{purpose}", BUCKET)
            assert bucket.region == region
            assert bucket.inputs["tags"] == {"meridian/purpose": purpose, "meridian/region": region}


def test_every_bucket_is_encrypted_versioned_private_and_tls_only(stack: str, inventory: Inventory) -> None:
    for bucket in inventory.of_type(BUCKET):
        name, parts = bucket.name, under(inventory, bucket.name)
        key = named(inventory, f"{name}-key", "aws:kms/key:Key")
        assert key.inputs["enableKeyRotation"] is True and key.region == bucket.region
        (rule,) = named(
            inventory,
            f"{name}-encryption",
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        ).inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn(key)}
        versioning = named(inventory, f"{name}-versioning", "aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        block = named(inventory, f"{name}-public-access", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert all(block.inputs[flag] is True for flag in flags)
        assert versioning.inputs["bucket"] == block.inputs["bucket"] == mock_id(bucket)
        assert not [p for p in parts if "eplication" in p.type]

        (policy,) = [
            p for p in inventory.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.inputs["bucket"] == mock_id(bucket)
        ]
        deny = statements(policy)[0]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert set(deny["Resource"]) == {bucket_arn(bucket), f"{bucket_arn(bucket)}/*"}
        assert policy.inputs["region"] == bucket.region  # whichever provider registers it


def test_every_bucket_aborts_incomplete_uploads_and_expires_nothing_else(stack: str, inventory: Inventory) -> None:
    """An interrupted `meridian data push` or publish leaves invisible, billed multipart parts."""
    for bucket in inventory.of_type(BUCKET):
        lifecycle = named(
            inventory, f"{bucket.name}-lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
        assert lifecycle.inputs["bucket"] == mock_id(bucket)
        (rule,) = lifecycle.inputs["rules"]
        assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": INCOMPLETE_UPLOAD_DAYS}
        assert not {"expiration", "noncurrentVersionExpiration", "transitions"} & rule.keys()


def test_no_bucket_replicates_anywhere(inventory: Inventory) -> None:
    assert not [r for r in inventory.resources if r.type.startswith("aws:s3/bucketReplication")]
