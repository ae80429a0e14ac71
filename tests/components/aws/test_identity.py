"""IRSA: each region's trainer reads only its own region's data bucket (at home it also publishes
the global model under `global/` of the home's registry, signed with the home's key); its
localizer reads that data and publishes only under `<region>/` of its own region's registry,
signed with its own key; its servers read only that prefix. Each role trusts only that region's
cluster and the named ServiceAccounts."""

from __future__ import annotations

from components.catalog import Cloud
from components.cloud_region import GLOBAL_MODELS
from components.cluster_access import (
    localizer_service_accounts,
    server_service_accounts,
    trainer_service_accounts,
)
from meridian.mocks import ACCOUNT, Inventory
from tests.components.aws.arns import bucket_arn, key_arn
from tests.components.cloud_queries import as_list, config_of, named, regions_on, statements

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
Grants = set[tuple[str, str]]


def grants(inventory: Inventory, role: str) -> Grants:
    """(action, resource) of every statement of the role's inline policy (all of them Allow)."""
    found = statements(named(inventory, role, POLICY))
    assert all(s["Effect"] == "Allow" for s in found)
    return {(a, r) for s in found for a in as_list(s["Action"]) for r in as_list(s["Resource"])}


def list_conditions(inventory: Inventory, role: str) -> dict[str, object]:
    """The role's s3:ListBucket grants: bucket ARN -> its condition (None: the whole bucket)."""
    found = statements(named(inventory, role, POLICY))
    return {s["Resource"]: s.get("Condition") for s in found if s["Action"] == "s3:ListBucket"}


class Region:
    """A region's buckets and keys as ARNs, to spell out what its roles may do."""

    def __init__(self, inventory: Inventory, name: str):
        def bucket(purpose: str) -> str:
            return bucket_arn(named(inventory, f"{name}-{purpose}", "aws:s3/bucket:Bucket"))

        def key(owner: str) -> str:
            return key_arn(named(inventory, f"{owner}-key", "aws:kms/key:Key"))

        self.name = name
        self.data, self.registry = bucket("data"), bucket("registry")
        self.data_key, self.registry_key, self.signing_key = (
            key(f"{name}-data"),
            key(f"{name}-registry"),
            key(f"{name}-signing"),
        )

    def reads_data(self) -> Grants:
        return {("s3:ListBucket", self.data), ("s3:GetObject", f"{self.data}/*"), ("kms:Decrypt", self.data_key)}

    def publishes(self, path: str) -> Grants:
        """Lists its registry, reads back and writes `<path>/`, encrypts and signs with its keys."""
        return {
            ("s3:ListBucket", self.registry),
            ("s3:GetObject", f"{self.registry}/{path}/*"),
            ("s3:PutObject", f"{self.registry}/{path}/*"),
            ("kms:Decrypt", self.registry_key),
            ("kms:GenerateDataKey", self.registry_key),
            ("kms:Sign", self.signing_key),
            ("kms:GetPublicKey", self.signing_key),
        }


def test_trainer_reads_only_its_own_data_and_at_home_publishes_the_global_model(
    stack: str, inventory: Inventory
) -> None:
    home = config_of(stack).home
    for region in regions_on(stack, Cloud.AWS):
        own = Region(inventory, region.name)
        expected = own.reads_data() | (own.publishes(GLOBAL_MODELS) if region.name == home else set())
        assert grants(inventory, f"{region.name}-trainer") == expected
        assert list_conditions(inventory, f"{region.name}-trainer")[own.data] is None


def test_localizer_reads_its_own_data_and_publishes_only_its_own_prefix_signed_with_its_own_key(
    stack: str, inventory: Inventory
) -> None:
    # every shipped AWS stack has the CDN on: the global model is read over HTTPS, not from S3
    assert config_of(stack).cdn.enabled or not regions_on(stack, Cloud.AWS)
    for region in regions_on(stack, Cloud.AWS):
        own = Region(inventory, region.name)
        assert grants(inventory, f"{region.name}-localizer") == own.reads_data() | own.publishes(region.name)
        assert list_conditions(inventory, f"{region.name}-localizer") == {own.data: None, own.registry: None}


def test_server_reads_only_its_own_regions_models(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        own = Region(inventory, region.name)
        assert grants(inventory, f"{region.name}-server") == {
            ("s3:ListBucket", own.registry),
            ("s3:GetObject", f"{own.registry}/{region.name}/*"),
            ("kms:Decrypt", own.registry_key),
        }


def test_no_role_names_another_regions_bucket_or_key(stack: str, inventory: Inventory) -> None:
    regions = {r.name: Region(inventory, r.name) for r in regions_on(stack, Cloud.AWS)}
    for name in regions:
        foreign = {
            arn
            for other, r in regions.items()
            if other != name
            for arn in (r.data, r.registry, r.data_key, r.registry_key, r.signing_key)
        }
        for role in ("trainer", "localizer", "server"):
            # an object ARN names its bucket before the first `/`; a key ARN is whole
            reached = {r if ":kms:" in r else r.split("/")[0] for _, r in grants(inventory, f"{name}-{role}")}
            assert not reached & foreign, (name, role)


def test_roles_trust_only_their_clusters_named_service_accounts(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        issuer = named(inventory, f"{region.name}-eks-oidc", "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        host = issuer.inputs["url"].removeprefix("https://")
        for role_name, accounts in (
            ("trainer", trainer_service_accounts(region.name)),
            ("server", server_service_accounts(region.name)),
            ("localizer", localizer_service_accounts(region.name)),
        ):
            (trust,) = statements(named(inventory, f"{region.name}-{role_name}", ROLE), "assumeRolePolicy")
            assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert trust["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"}
            assert trust["Condition"]["StringEquals"] == {
                f"{host}:sub": [a.subject for a in accounts],
                f"{host}:aud": "sts.amazonaws.com",
            }
    assert [a.subject for a in localizer_service_accounts("eu-west-1")] == [
        "system:serviceaccount:meridian-eu-west-1:localizer"
    ]


def test_without_a_cdn_each_localizer_reads_the_global_model_from_the_homes_bucket(
    aws_prod_without_cdn: Inventory,
) -> None:
    inventory, home = aws_prod_without_cdn, config_of("aws-prod").home
    homes = Region(inventory, home)
    for region in regions_on("aws-prod", Cloud.AWS):
        own = Region(inventory, region.name)
        reads_global = {
            ("s3:ListBucket", homes.registry),
            ("s3:GetObject", f"{homes.registry}/{GLOBAL_MODELS}/*"),
            ("kms:Decrypt", homes.registry_key),
        }
        expected = own.reads_data() | own.publishes(region.name) | reads_global
        assert grants(inventory, f"{region.name}-localizer") == expected
        if region.name != home:  # listing the home's bucket stops at the global model
            conditions = list_conditions(inventory, f"{region.name}-localizer")
            assert conditions[homes.registry] == {"StringLike": {"s3:prefix": [f"{GLOBAL_MODELS}/*"]}}
