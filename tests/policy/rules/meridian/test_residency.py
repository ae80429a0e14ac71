"""Data residency and the trainer's reach."""

from __future__ import annotations

import json

from components.catalog import AWS_REGIONS, GCP_REGIONS
from policy.rules.meridian.residency import DATA_RESIDENCY, RESIDENCY_OF, TRAINER_READS_OWN_REGION
from tests.policy.checks import AWS_EU, AWS_US, GCP_EU, assert_complies, assert_violates, provider, resource

SUBJECT = "system:serviceaccount:meridian-us-east-1:supernode"


def s3_bucket(name: str, where, **tags: str):
    return resource("aws:s3/bucket:Bucket", name, where, tags={"meridian/purpose": "data", **tags})


def replication_to(destination_arn: str, **rule: str):
    """The EU data bucket's replication: one rule copying to `destination_arn`."""
    rules = [{**rule, "destination": {"bucket": destination_arn}}]
    return resource(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig", "repl", AWS_EU, bucket="data-eu", rules=rules
    )


def test_the_residency_table_matches_the_catalog() -> None:
    for region, zone in {**AWS_REGIONS, **GCP_REGIONS}.items():
        assert RESIDENCY_OF[region] == zone.value, region


def test_a_data_bucket_in_its_own_region_complies() -> None:
    assert_complies(DATA_RESIDENCY, s3_bucket("data-eu", AWS_EU, **{"meridian/region": "eu-west-1"}))


def test_an_eu_regions_data_bucket_created_in_the_us_violates() -> None:
    misplaced = s3_bucket("data-eu", AWS_US, **{"meridian/region": "eu-west-1"})
    assert_violates(DATA_RESIDENCY, misplaced, containing="serves eu-west-1 (zone eu) but lives in us-east-1 (zone us)")


def test_a_gcs_multi_region_outside_the_zone_violates() -> None:
    bucket = resource(
        "gcp:storage/bucket:Bucket",
        "data-eu",
        GCP_EU,
        location="US",
        labels={"meridian-purpose": "data", "meridian-region": "europe-west4"},
    )
    assert_violates(DATA_RESIDENCY, bucket, containing="lives in us (zone us)")


def test_replication_to_another_zone_violates() -> None:
    source, copy = s3_bucket("data-eu", AWS_EU), resource("aws:s3/bucket:Bucket", "backup", AWS_US)
    replication = replication_to("arn:aws:s3:::backup", status="Enabled")
    assert_violates(DATA_RESIDENCY, source, copy, replication, containing="replicates to arn:aws:s3:::backup (zone us)")


def test_replication_within_the_zone_complies() -> None:
    frankfurt = provider("aws", "aws-eu-central-1", region="eu-central-1")
    source, copy = s3_bucket("data-eu", AWS_EU), resource("aws:s3/bucket:Bucket", "backup", frankfurt)
    replication = replication_to("arn:aws:s3:::backup")
    assert_complies(DATA_RESIDENCY, source, copy, replication)


def _trainer(where, *buckets: str):
    trust = json.dumps({"Statement": [{"Condition": {"StringEquals": {"oidc:sub": SUBJECT}}}]})
    role = resource("aws:iam/role:Role", f"trainer-{where.name}", where, assumeRolePolicy=trust)
    document = {
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"} for b in buckets]
    }
    grant = resource(
        "aws:iam/rolePolicy:RolePolicy",
        f"trainer-{where.name}-read",
        where,
        role=role.name,
        policy=json.dumps(document),
    )
    return role, grant


def test_a_trainer_reading_its_own_regions_bucket_and_the_registry_complies() -> None:
    registry = resource("aws:s3/bucket:Bucket", "registry", AWS_US, tags={"meridian/purpose": "registry"})
    assert_complies(
        TRAINER_READS_OWN_REGION, s3_bucket("data-us", AWS_US), registry, *_trainer(AWS_US, "data-us", "registry")
    )


def test_a_trainer_reading_another_regions_bucket_violates() -> None:
    resources = [s3_bucket("data-us", AWS_US), s3_bucket("data-eu", AWS_EU), *_trainer(AWS_US, "data-us", "data-eu")]
    assert_violates(TRAINER_READS_OWN_REGION, *resources, containing="may reach data bucket data-eu of eu-west-1")


def test_a_trainer_with_a_bucket_wildcard_violates() -> None:
    assert_violates(
        TRAINER_READS_OWN_REGION,
        s3_bucket("data-us", AWS_US),
        *_trainer(AWS_US, "*"),
        containing="may reach any bucket",
    )


def test_a_gcp_trainer_granted_another_regions_bucket_violates() -> None:
    us = provider("gcp", "gcp-us-west1", region="us-west1", project="meridian")
    account = resource("gcp:serviceaccount/account:Account", "trainer-us", us, accountId="trainer-us-west1")
    workload = resource(
        "gcp:serviceaccount/iAMMember:IAMMember",
        "trainer-us-wi",
        us,
        serviceAccountId="trainer-us",
        role="roles/iam.workloadIdentityUser",
        member="serviceAccount:meridian.svc.id.goog[meridian-us-west1/supernode]",
    )
    eu_data = resource(
        "gcp:storage/bucket:Bucket", "data-eu", GCP_EU, location="EUROPE-WEST4", labels={"meridian-purpose": "data"}
    )
    grant = resource(
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "grant",
        us,
        bucket="data-eu",
        role="roles/storage.objectViewer",
        member="serviceAccount:trainer-us-west1@meridian.iam.gserviceaccount.com",
    )
    assert_violates(
        TRAINER_READS_OWN_REGION,
        account,
        workload,
        eu_data,
        grant,
        containing="trainer identity trainer-us of us-west1",
    )
