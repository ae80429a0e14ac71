"""Data residency: a region's data, and the models derived from it, stay in its residency zone;
only its own trainer reads its data.

A data or registry bucket is one tagged (AWS) or labelled (GCP) with purpose `data` or
`registry`; the region it serves is its `region` tag/label, else the region it lives in. It
must live in that region's zone (`residencyOf`) and replicate nowhere outside it. A region's
trainer identity (the IRSA role or GCP service account trusted by the trainer
ServiceAccounts) may reach no other region's data bucket, nor any bucket by wildcard; its
localizer identity, which publishes the models fine-tuned on that data, may write to no
bucket outside the region's zone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
ZONED_PURPOSES = ("data", "registry")  # buckets whose contents must stay in their region's zone
# GCS roles that cannot write objects; any other grant on a bucket counts as a write.
GCS_READ_ONLY_ROLES = (
    "roles/storage.objectViewer",
    "roles/storage.legacyObjectReader",
    "roles/storage.legacyBucketReader",
    "roles/storage.bucketViewer",
)
_SUBJECT = re.compile(r"system:serviceaccount:[a-z0-9.-]+:[a-z0-9.-]+")
_WORKLOAD_NAMESPACE = re.compile(r"system:serviceaccount:meridian-([a-z0-9.-]+):")  # cluster_access.workload_namespace
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
        "localizerSubjects": string_list(
            # components/cluster_access.py: LOCALIZER_SERVICE_ACCOUNT_NAME in each region's namespace.
            ["system:serviceaccount:*:localizer"],
            "glob patterns of the Kubernetes ServiceAccounts localizer identities trust",
        ),
    }
)


def _tagged(resource: PolicyResource, keys: tuple[str, ...]) -> str | None:
    tags = {**mapping(resource.props.get("tags")), **mapping(resource.props.get("labels"))}
    return next((str(tags[k]).lower() for k in keys if tags.get(k)), None)


def buckets_for(args: StackValidationArgs, *purposes: str) -> list[PolicyResource]:
    return [b for b in of_types(args, *AWS_BUCKETS, GCS_BUCKET) if _tagged(b, PURPOSE_KEYS) in purposes]


def data_buckets(args: StackValidationArgs) -> list[PolicyResource]:
    return buckets_for(args, "data")


def location(bucket: PolicyResource) -> str | None:
    return resource_region(bucket)


def _names(bucket: PolicyResource) -> set[str]:
    return {bucket.name, *(str(bucket.props[k]) for k in ("bucket", "name") if bucket.props.get(k))}


def _bucket_named(args: StackValidationArgs, name: str) -> PolicyResource | None:
    """The stack's bucket of this name (its physical name, or the logical one it derives from)."""
    found = of_types(args, *AWS_BUCKETS, GCS_BUCKET)
    return next((b for b in found if name in _names(b) or refers_to(name, b, "bucket")), None)


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
    """Each region's data and model registry buckets live in that region's residency zone and never replicate out of it."""
    zones: Mapping[str, Any] = args.get_config()["residencyOf"]
    for bucket in buckets_for(args, *ZONED_PURPOSES):
        what = f"{_tagged(bucket, PURPOSE_KEYS)} bucket {bucket.name}"
        where = location(bucket)
        zone = zones.get(where or "")
        serves = _tagged(bucket, REGION_KEYS) or where
        wanted = zones.get(serves or "")
        if zone is None:
            yield f"{what} lives in {where!r}, whose residency zone is unknown", bucket.urn
        elif wanted is not None and zone != wanted:
            yield f"{what} serves {serves} (zone {wanted}) but lives in {where} (zone {zone})", bucket.urn
        for target in _replication_targets(args, bucket):
            copy = _bucket_named(args, target.removeprefix(S3_ARN))
            copy_zone = zones.get(location(copy) or "") if copy else None
            if copy_zone is None or copy_zone != zone:
                yield (
                    (
                        f"{what} replicates to {target} "
                        f"({'zone ' + copy_zone if copy_zone else 'outside this stack'}), out of zone {zone}"
                    ),
                    bucket.urn,
                )


def _bucket_of_arn(resource: str) -> str:
    return resource.removeprefix(S3_ARN).split("/", 1)[0]


@dataclass(frozen=True)
class Reach:
    """A bucket (a name, or a pattern such as `*`) that a workload identity is granted."""

    identity: PolicyResource  # the IRSA role or GCP service account
    region: str  # the region whose workload it serves
    bucket: str
    writes: bool


def _matches(subjects: Iterable[str], patterns: list[str]) -> list[str]:
    return [s for s in subjects if any(fnmatchcase(s, p) for p in patterns)]


def _region(identity: PolicyResource, subjects: list[str]) -> str:
    """The region a workload identity serves: its ServiceAccounts' namespace `meridian-<region>`,
    else where the identity is declared."""
    named = {m.group(1) for s in subjects if (m := _WORKLOAD_NAMESPACE.match(s))}
    return named.pop() if len(named) == 1 else resource_region(identity) or "?"


def _grants_put(statement: Mapping[str, Any]) -> bool:
    """Whether an Allow statement lets its principal put objects (a NotAction may)."""
    if "NotAction" in statement:
        return True
    return any(fnmatchcase("s3:putobject", str(a).lower()) for a in items(statement.get("Action")))


def _aws_reach(args: StackValidationArgs, patterns: list[str]) -> Iterator[Reach]:
    """Every S3 resource (or `*`) allowed to a role that trusts a matching ServiceAccount."""
    for role in of_types(args, ROLE):
        trust = role.props.get("assumeRolePolicy")
        trust_text = trust if isinstance(trust, str) else json.dumps(_plain(trust))
        subjects = _matches(_SUBJECT.findall(trust_text), patterns)
        if not subjects:
            continue
        region = _region(role, subjects)
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
                        bucket = _bucket_of_arn(resource) if resource != "*" else "*"
                        yield Reach(role, region, bucket, _grants_put(statement))


def _gcp_reach(args: StackValidationArgs, patterns: list[str]) -> Iterator[Reach]:
    """Every bucket granted to a service account that a matching ServiceAccount impersonates."""
    identities: list[tuple[PolicyResource, str]] = []
    for account in of_types(args, GCP_ACCOUNT):
        for binding in of_types(args, *GCP_ACCOUNT_BINDINGS):
            if not refers_to(binding.props.get("serviceAccountId"), account, "email"):
                continue
            # Workload Identity members name `<pool>[<namespace>/<name>]`.
            members = [binding.props.get("member"), *items(binding.props.get("members"))]
            subjects = _matches(
                (f"system:serviceaccount:{ns}:{sa}" for m in members for ns, sa in _WORKLOAD_MEMBER.findall(str(m))),
                patterns,
            )
            if subjects:
                identities.append((account, _region(account, subjects)))
    for grant in of_types(args, *GCS_GRANTS):
        members = [str(m) for m in [grant.props.get("member"), *items(grant.props.get("members"))] if m]
        for account, region in identities:
            account_id = str(account.props.get("accountId") or account.name)
            if any(f"serviceAccount:{account_id}@" in m for m in members):
                writes = grant.props.get("role") not in GCS_READ_ONLY_ROLES
                yield Reach(account, region, str(grant.props.get("bucket") or ""), writes)


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
    for reach in (*_aws_reach(args, patterns), *_gcp_reach(args, patterns)):
        identity, region, target = reach.identity, reach.region, reach.bucket
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


@stack_rule("meridian-models-stay-in-zone", Severity.CRITICAL, MANDATORY, config_schema=CONFIG_SCHEMA)
def MODELS_STAY_IN_ZONE(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """A region's localizer identity, which publishes models fine-tuned on its data, writes only to buckets in that region's residency zone."""
    patterns = [str(p) for p in items(args.get_config()["localizerSubjects"])]
    zones: Mapping[str, Any] = args.get_config()["residencyOf"]
    for reach in (*_aws_reach(args, patterns), *_gcp_reach(args, patterns)):
        if not reach.writes:
            continue
        identity, region, zone = reach.identity, reach.region, zones.get(reach.region)
        who = f"localizer identity {identity.name} of {region} (zone {zone})"
        if "*" in reach.bucket:
            yield f"{who} may write any bucket ({reach.bucket!r})", identity.urn
            continue
        bucket = _bucket_named(args, reach.bucket)
        if bucket is None:
            yield (
                f"{who} may write bucket {reach.bucket}, which this stack does not hold: its zone is unknown",
                identity.urn,
            )
            continue
        where = location(bucket)
        if zone is None or zones.get(where or "") != zone:
            what = f"{_tagged(bucket, PURPOSE_KEYS) or 'a'} bucket {bucket.name}"
            yield f"{who} may write {what} in {where} (zone {zones.get(where or '')})", identity.urn


POLICIES = [DATA_RESIDENCY, TRAINER_READS_OWN_REGION, MODELS_STAY_IN_ZONE]
