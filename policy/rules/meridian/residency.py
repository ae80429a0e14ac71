"""Data residency: a region's data stays in its residency zone, and only its own trainer reads it.

A data bucket is one tagged (AWS) or labelled (GCP) with purpose `data`; the region it serves
is its `region` tag/label, else the region it lives in. It must live in that region's zone
(`residencyOf`), replicate nowhere outside it, and a region's trainer identity (the IRSA role
or GCP service account trusted by the trainer ServiceAccount) may reach no other region's
data bucket, nor any bucket by wildcard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, Severity, StackValidationArgs

from ..aws.iam import ROLE, ROLE_POLICY, statements
from ..aws.s3 import BUCKETS as AWS_BUCKETS
from ..config_schema import string_list
from ..decorators import MANDATORY, stack_rule
from ..gcp.gcs import BUCKET as GCS_BUCKET
from ..props import dig, items, mapping
from ..stack import of_types, refers_to, resource_region

REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
GCP_ACCOUNT = "gcp:serviceaccount/account:Account"
GCP_ACCOUNT_BINDINGS = ("gcp:serviceaccount/iAMMember:IAMMember", "gcp:serviceaccount/iAMBinding:IAMBinding")
GCS_GRANTS = ("gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding")
PURPOSE_KEYS = ("meridian/purpose", "meridian-purpose", "purpose")
REGION_KEYS = ("meridian/region", "meridian-region", "region")
S3_ARN = "arn:aws:s3:::"
_SUBJECT = re.compile(r"system:serviceaccount:[a-z0-9.-]+:[a-z0-9.-]+")
_WORKLOAD_MEMBER = re.compile(r"\[([a-z0-9.-]+)/([a-z0-9.-]+)\]")

# components/catalog.py AWS_REGIONS and GCP_REGIONS (a test keeps the two equal), plus GCS
# multi- and dual-regions. A stack adds its own `kubernetes` regions through the config.
RESIDENCY_OF = {
    # AWS regions
    "us-east-1": "us",
    "us-east-2": "us",
    "us-west-2": "us",
    "ca-central-1": "ca",
    "sa-east-1": "sa",
    "eu-west-1": "eu",
    "eu-central-1": "eu",
    "eu-north-1": "eu",
    "eu-west-2": "uk",
    "ap-southeast-1": "apac",
    "ap-northeast-1": "apac",
    "ap-south-1": "apac",
    "ap-southeast-2": "apac",
    # GCP regions
    "us-central1": "us",
    "us-east1": "us",
    "us-east4": "us",
    "us-west1": "us",
    "northamerica-northeast1": "ca",
    "southamerica-east1": "sa",
    "europe-west1": "eu",
    "europe-west3": "eu",
    "europe-west4": "eu",
    "europe-north1": "eu",
    "europe-west2": "uk",
    "asia-southeast1": "apac",
    "asia-northeast1": "apac",
    "asia-south1": "apac",
    # GCS multi- and dual-regions
    "us": "us",
    "nam4": "us",
    "eu": "eu",
    "eur4": "eu",
    "eur5": "eu",
    "eur7": "eu",
    "eur8": "eu",
    "asia": "apac",
    "asia1": "apac",
}

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "residencyOf": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "default": RESIDENCY_OF,
            "description": "region or storage location -> residency zone",
        },
        "trainerSubjects": string_list(
            # components/cluster_access.py: each region's SuperLink and SuperNode ServiceAccounts.
            ["system:serviceaccount:*:superlink", "system:serviceaccount:*:supernode"],
            "glob patterns of the Kubernetes ServiceAccounts trainer identities trust",
        ),
    }
)


def _tagged(resource: PolicyResource, keys: tuple[str, ...]) -> str | None:
    tags = {**mapping(resource.props.get("tags")), **mapping(resource.props.get("labels"))}
    return next((str(tags[k]).lower() for k in keys if tags.get(k)), None)


def data_buckets(args: StackValidationArgs) -> list[PolicyResource]:
    return [b for b in of_types(args, *AWS_BUCKETS, GCS_BUCKET) if _tagged(b, PURPOSE_KEYS) == "data"]


def location(bucket: PolicyResource) -> str | None:
    return resource_region(bucket)


def _names(bucket: PolicyResource) -> set[str]:
    return {bucket.name, *(str(bucket.props[k]) for k in ("bucket", "name") if bucket.props.get(k))}


def _bucket_named(args: StackValidationArgs, name: str) -> PolicyResource | None:
    return next((b for b in of_types(args, *AWS_BUCKETS, GCS_BUCKET) if name in _names(b)), None)


def _replication_targets(args: StackValidationArgs, bucket: PolicyResource) -> list[str]:
    rules = [
        rule
        for config in of_types(args, REPLICATION)
        if refers_to(config.props.get("bucket"), bucket, "bucket")
        for rule in items(config.props.get("rules"))
    ]
    targets = [str(dig(rule, "destination", "bucket")) for rule in rules]
    inline = items(dig(bucket.props, "replicationConfiguration", "rules"))
    targets += [str(dig(d, "bucket")) for rule in inline for d in items(dig(rule, "destinations"))]
    return targets


@stack_rule("meridian-data-residency", Severity.CRITICAL, MANDATORY, config_schema=CONFIG_SCHEMA)
def DATA_RESIDENCY(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """Each region's data bucket lives in that region's residency zone and never replicates out of it."""
    zones: Mapping[str, Any] = args.get_config()["residencyOf"]
    for bucket in data_buckets(args):
        where = location(bucket)
        zone = zones.get(where or "")
        serves = _tagged(bucket, REGION_KEYS) or where
        wanted = zones.get(serves or "")
        if zone is None:
            yield f"data bucket {bucket.name} lives in {where!r}, whose residency zone is unknown", bucket.urn
        elif wanted is not None and zone != wanted:
            yield (
                f"data bucket {bucket.name} serves {serves} (zone {wanted}) but lives in {where} (zone {zone})",
                bucket.urn,
            )
        for target in _replication_targets(args, bucket):
            copy = _bucket_named(args, target.removeprefix(S3_ARN))
            copy_zone = zones.get(location(copy) or "") if copy else None
            if copy_zone is None or copy_zone != zone:
                yield (
                    (
                        f"data bucket {bucket.name} replicates to {target} "
                        f"({'zone ' + copy_zone if copy_zone else 'outside this stack'}), out of zone {zone}"
                    ),
                    bucket.urn,
                )


def _bucket_of_arn(resource: str) -> str:
    return resource.removeprefix(S3_ARN).split("/", 1)[0]


def _is_trainer(subjects: Iterable[str], patterns: list[str]) -> bool:
    return any(fnmatchcase(s, p) for s in subjects for p in patterns)


def _aws_trainer_reach(args: StackValidationArgs, patterns: list[str]) -> Iterator[tuple[PolicyResource, str, str]]:
    """(trainer role, its region, bucket name or pattern) for each S3 resource it is allowed."""
    for role in of_types(args, ROLE):
        trust = role.props.get("assumeRolePolicy")
        trust_text = trust if isinstance(trust, str) else json.dumps(_plain(trust))
        if not _is_trainer(_SUBJECT.findall(trust_text), patterns):
            continue
        documents = [mapping(p).get("policy") for p in items(role.props.get("inlinePolicies"))]
        documents += [
            p.props.get("policy") for p in of_types(args, ROLE_POLICY) if refers_to(p.props.get("role"), role)
        ]
        for document in documents:
            for statement in statements(document):
                if statement.get("Effect") != "Allow":
                    continue
                for resource in items(statement.get("Resource")):
                    resource = str(resource)
                    if resource == "*" or resource.startswith(S3_ARN):
                        yield role, resource_region(role) or "?", _bucket_of_arn(resource) if resource != "*" else "*"


def _gcp_trainer_reach(args: StackValidationArgs, patterns: list[str]) -> Iterator[tuple[PolicyResource, str, str]]:
    trainers = [
        account
        for account in of_types(args, GCP_ACCOUNT)
        for binding in of_types(args, *GCP_ACCOUNT_BINDINGS)
        if refers_to(binding.props.get("serviceAccountId"), account, "email")
        and _is_trainer(
            # Workload Identity members name `<pool>[<namespace>/<name>]`.
            (
                f"system:serviceaccount:{ns}:{sa}"
                for m in [binding.props.get("member"), *items(binding.props.get("members"))]
                for ns, sa in _WORKLOAD_MEMBER.findall(str(m))
            ),
            patterns,
        )
    ]
    for grant in of_types(args, *GCS_GRANTS):
        members = [str(m) for m in [grant.props.get("member"), *items(grant.props.get("members"))] if m]
        for account in trainers:
            account_id = str(account.props.get("accountId") or account.name)
            if any(f"serviceAccount:{account_id}@" in m for m in members):
                yield account, resource_region(account) or "?", str(grant.props.get("bucket") or "")


def _plain(value: Any) -> Any:
    """Props as plain JSON-able values (they arrive as read-only Mappings)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


@stack_rule("meridian-trainer-reads-own-region", Severity.CRITICAL, MANDATORY, config_schema=CONFIG_SCHEMA)
def TRAINER_READS_OWN_REGION(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """A region's trainer identity can reach only its own region's data bucket."""
    patterns = [str(p) for p in items(args.get_config()["trainerSubjects"])]
    zones: Mapping[str, Any] = args.get_config()["residencyOf"]
    data = data_buckets(args)
    for reach in (_aws_trainer_reach, _gcp_trainer_reach):
        for identity, region, target in reach(args, patterns):
            if "*" in target:
                yield f"trainer identity {identity.name} ({region}) may reach any bucket ({target!r})", identity.urn
                continue
            bucket = next((b for b in data if target in _names(b) or refers_to(target, b, "bucket")), None)
            if bucket is None:
                continue  # not a data bucket (e.g. the model registry)
            owner = _tagged(bucket, REGION_KEYS) or location(bucket)
            if owner != region:
                yield (
                    (
                        f"trainer identity {identity.name} of {region} (zone {zones.get(region)}) may reach data "
                        f"bucket {bucket.name} of {owner}"
                    ),
                    identity.urn,
                )


POLICIES = [DATA_RESIDENCY, TRAINER_READS_OWN_REGION]
