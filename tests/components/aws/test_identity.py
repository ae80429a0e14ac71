"""IRSA: each region's trainer reads only its own region's data bucket (and may publish under
its own prefix of the registry); its servers read only the registry. Each role trusts only
that region's cluster and the named ServiceAccounts."""

from __future__ import annotations

from typing import Any

from components.catalog import Cloud
from components.cloud_region import artifact_prefix
from components.cluster_access import server_service_accounts, trainer_service_accounts
from meridian.mocks import ACCOUNT, Inventory
from tests.components.aws.arns import bucket_arn
from tests.components.cloud_queries import as_list, config_of, named, regions_on, statements

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def _bucket(inventory: Inventory, name: str) -> str:
    return bucket_arn(named(inventory, name, "aws:s3/bucket:Bucket"))


def _s3_resources(grants: list[dict[str, Any]]) -> set[str]:
    return {
        res for s in grants if any(a.startswith("s3:") for a in as_list(s["Action"])) for res in as_list(s["Resource"])
    }


def test_trainer_reads_only_its_own_regions_data(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    registry = f"{config.home}-registry" if config.home_region.cloud is Cloud.AWS else None
    for region in regions_on(stack, Cloud.AWS):
        grants = statements(named(inventory, f"{region.name}-trainer", POLICY))
        data = _bucket(inventory, f"{region.name}-data")
        reads = {res for s in grants if "s3:GetObject" in as_list(s["Action"]) for res in as_list(s["Resource"])}
        assert reads == {f"{data}/*"}
        expected = {data, f"{data}/*"}
        if registry:
            expected.add(f"{_bucket(inventory, registry)}/{artifact_prefix(region.name)}*")
            writes = [s for s in grants if "s3:PutObject" in as_list(s["Action"])]
            assert [s["Resource"] for s in writes] == [
                f"{_bucket(inventory, registry)}/{artifact_prefix(region.name)}*"
            ]
        assert _s3_resources(grants) == expected
        others = [_bucket(inventory, f"{r.name}-data") for r in regions_on(stack, Cloud.AWS) if r.name != region.name]
        assert not any(other in str(grants) for other in others)
        assert all(s["Effect"] == "Allow" and "*" not in as_list(s["Action"]) for s in grants)


def test_server_reads_only_the_registry(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    for region in regions_on(stack, Cloud.AWS):
        policies = [p for p in inventory.of_type(POLICY) if p.name == f"{region.name}-server"]
        if config.home_region.cloud is not Cloud.AWS:
            assert policies == []  # reads through the CDN: no cloud permission at all
            continue
        grants = statements(policies[0])
        registry = _bucket(inventory, f"{config.home}-registry")
        assert _s3_resources(grants) == {registry, f"{registry}/*"}
        actions = {a for s in grants for a in as_list(s["Action"])}
        assert actions == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}


def test_roles_trust_only_their_clusters_named_service_accounts(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        issuer = named(inventory, f"{region.name}-eks-oidc", "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        host = issuer.inputs["url"].removeprefix("https://")
        for role_name, accounts in (
            ("trainer", trainer_service_accounts(region.name)),
            ("server", server_service_accounts(region.name)),
        ):
            (trust,) = statements(named(inventory, f"{region.name}-{role_name}", ROLE), "assumeRolePolicy")
            assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert trust["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"}
            assert trust["Condition"]["StringEquals"] == {
                f"{host}:sub": [a.subject for a in accounts],
                f"{host}:aud": "sts.amazonaws.com",
            }
