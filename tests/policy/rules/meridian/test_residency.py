"""Data residency, the trainer's reach, and the models that stay in their region's zone."""

from __future__ import annotations

import json

from components.catalog import AWS_REGIONS, GCP_REGIONS
from policy.rules.meridian.residency import DATA_RESIDENCY, MODELS_STAY_IN_ZONE, RESIDENCY_OF, TRAINER_READS_OWN_REGION
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


# -- models: registry buckets and the localizer's reach ------------------------------------

LOCALIZER = "system:serviceaccount:meridian-eu-west-1:localizer"


def registry_bucket(name: str, where, region: str):
    return resource(
        "aws:s3/bucket:Bucket", name, where, tags={"meridian/purpose": "registry", "meridian/region": region}
    )


def test_a_registry_bucket_in_its_own_region_complies() -> None:
    assert_complies(DATA_RESIDENCY, registry_bucket("registry-eu", AWS_EU, "eu-west-1"))


def test_an_eu_regions_registry_bucket_created_in_the_us_violates() -> None:
    misplaced = registry_bucket("registry-eu", AWS_US, "eu-west-1")
    assert_violates(
        DATA_RESIDENCY,
        misplaced,
        containing="registry bucket registry-eu serves eu-west-1 (zone eu) but lives in us-east-1 (zone us)",
    )


def test_a_gcs_registry_labelled_for_an_eu_region_in_a_us_location_violates() -> None:
    bucket = resource(
        "gcp:storage/bucket:Bucket",
        "registry-eu",
        GCP_EU,
        location="US-CENTRAL1",
        labels={"meridian-purpose": "registry", "meridian-region": "europe-west4"},
    )
    assert_violates(DATA_RESIDENCY, bucket, containing="registry bucket registry-eu serves europe-west4 (zone eu)")


def test_a_registry_replicating_out_of_its_zone_violates() -> None:
    source = registry_bucket("registry-eu", AWS_EU, "eu-west-1")
    copy = resource("aws:s3/bucket:Bucket", "backup", AWS_US)
    replication = resource(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "repl",
        AWS_EU,
        bucket="registry-eu",
        rules=[{"destination": {"bucket": "arn:aws:s3:::backup"}}],
    )
    assert_violates(DATA_RESIDENCY, source, copy, replication, containing="registry bucket registry-eu replicates")


def _localizer(where, *statements: dict[str, str], subject: str = LOCALIZER):
    trust = json.dumps({"Statement": [{"Condition": {"StringEquals": {"oidc:sub": [subject]}}}]})
    role = resource("aws:iam/role:Role", "localizer", where, assumeRolePolicy=trust)
    grant = resource(
        "aws:iam/rolePolicy:RolePolicy",
        "localizer-policy",
        where,
        role=role.name,
        policy=json.dumps({"Statement": [{"Effect": "Allow", **s} for s in statements]}),
    )
    return role, grant


def _put(bucket: str, action: str = "s3:PutObject") -> dict[str, str]:
    return {"Action": action, "Resource": f"arn:aws:s3:::{bucket}/{bucket.split('-')[0]}/*"}


def _buckets():
    return registry_bucket("eu-registry", AWS_EU, "eu-west-1"), registry_bucket("us-registry", AWS_US, "us-east-1")


def test_a_localizer_publishing_to_its_own_zone_and_reading_the_global_model_elsewhere_complies() -> None:
    reads_global = {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::us-registry/global/*"}
    assert_complies(MODELS_STAY_IN_ZONE, *_buckets(), *_localizer(AWS_EU, _put("eu-registry"), reads_global))


def test_a_localizer_granted_writes_on_another_zones_registry_violates() -> None:
    for action in ("s3:PutObject", "s3:Put*", "s3:*"):
        assert_violates(
            MODELS_STAY_IN_ZONE,
            *_buckets(),
            *_localizer(AWS_EU, _put("eu-registry"), _put("us-registry", action)),
            containing=(
                "localizer identity localizer of eu-west-1 (zone eu) may write registry bucket "
                "us-registry in us-east-1 (zone us)"
            ),
        )


def test_a_localizer_whose_region_is_named_by_its_service_account_not_its_provider() -> None:
    # declared through the US provider (IAM is global), it still serves eu-west-1
    role_in_us = _localizer(AWS_US, _put("us-registry"))
    assert_violates(MODELS_STAY_IN_ZONE, *_buckets(), *role_in_us, containing="of eu-west-1 (zone eu) may write")


def test_a_localizer_writing_any_bucket_or_one_outside_the_stack_violates() -> None:
    wildcard = {"Action": "s3:PutObject", "Resource": "*"}
    assert_violates(MODELS_STAY_IN_ZONE, *_buckets(), *_localizer(AWS_EU, wildcard), containing="may write any bucket")
    assert_violates(
        MODELS_STAY_IN_ZONE,
        *_buckets(),
        *_localizer(AWS_EU, _put("elsewhere")),
        containing="may write bucket elsewhere, which this stack does not hold",
    )


def test_other_workloads_writing_elsewhere_are_not_localizers() -> None:
    trainer = _localizer(AWS_EU, _put("us-registry"), subject="system:serviceaccount:meridian-us-east-1:superlink")
    assert_complies(MODELS_STAY_IN_ZONE, *_buckets(), *trainer)


def _gcp_localizer(role: str):
    eu = provider("gcp", "gcp-europe-west4", region="europe-west4", project="meridian")
    account = resource("gcp:serviceaccount/account:Account", "localizer-eu", eu, accountId="localizer-ew4")
    workload = resource(
        "gcp:serviceaccount/iAMMember:IAMMember",
        "localizer-eu-wi",
        eu,
        serviceAccountId="localizer-eu",
        role="roles/iam.workloadIdentityUser",
        member="serviceAccount:meridian.svc.id.goog[meridian-europe-west4/localizer]",
    )
    us = provider("gcp", "gcp-us-west1", region="us-west1", project="meridian")
    us_registry = resource(
        "gcp:storage/bucket:Bucket",
        "registry-us",
        us,
        location="US-WEST1",
        labels={"meridian-purpose": "registry", "meridian-region": "us-west1"},
    )
    grant = resource(
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "grant",
        eu,
        bucket="registry-us",
        role=role,
        member="serviceAccount:localizer-ew4@meridian.iam.gserviceaccount.com",
    )
    return account, workload, us_registry, grant


def test_a_gcp_localizer_granted_object_creation_on_another_zones_registry_violates() -> None:
    assert_violates(
        MODELS_STAY_IN_ZONE,
        *_gcp_localizer("roles/storage.objectCreator"),
        containing="localizer identity localizer-eu of europe-west4 (zone eu) may write registry bucket registry-us",
    )


def test_a_gcp_localizer_reading_another_zones_bucket_complies() -> None:
    assert_complies(MODELS_STAY_IN_ZONE, *_gcp_localizer("roles/storage.objectViewer"))
