"""Workload Identity: each region's trainer reads only its own data bucket (at home it also
publishes the global model under `global/`); its servers read only its own registry; its
localizer reads its own data, publishes under `<region>/` of its own registry and, without a
CDN, reads the global model's prefix of the home's bucket and nothing else of it. Each Google
service account is usable only by that region's named ServiceAccounts."""

from __future__ import annotations

from components.catalog import Cloud
from components.cluster_access import (
    localizer_service_accounts,
    server_service_accounts,
    trainer_service_accounts,
)
from meridian.mocks import Inventory, Recorded
from tests.components.cloud_queries import config_of, named, regions_on, under

GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
VIEWER, PUBLISHER = "roles/storage.objectViewer", "roles/storage.objectUser"


def _grants(inventory: Inventory, account: str) -> list[tuple[str, str, str]]:
    """(bucket, role, prefix or "") of every bucket grant the account holds."""
    grants: list[Recorded] = [r for r in under(inventory, account) if r.type == GRANT]
    out = []
    for grant in grants:
        inputs = grant.inputs
        prefix = ""
        if "condition" in inputs:
            expression = inputs["condition"]["expression"]
            start = f'resource.name.startsWith("projects/_/buckets/{inputs["bucket"]}/objects/'
            assert expression.startswith(start) and expression.endswith('")'), expression
            prefix = expression.removeprefix(start).removesuffix('")')
        out.append((inputs["bucket"], inputs["role"], prefix))
    return sorted(out)


def test_trainer_reads_its_own_data_and_at_home_publishes_the_global_model(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        expected = [(f"{region.name}-data", VIEWER, "")]
        if region.name == config_of(stack).home:
            expected += [(f"{region.name}-registry", PUBLISHER, "global/"), (f"{region.name}-registry", VIEWER, "")]
        assert _grants(inventory, f"{region.name}-trainer") == sorted(expected)


def test_server_reads_only_its_own_regions_registry(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        assert _grants(inventory, f"{region.name}-server") == [(f"{region.name}-registry", VIEWER, "")]


def test_localizer_reads_its_data_and_publishes_only_under_its_region_in_its_own_registry(
    stack: str, inventory: Inventory
) -> None:
    """With the CDN on (every shipped stack with GCP regions), the global model is read through
    the CDN: no grant on the home's bucket at all."""
    assert config_of(stack).cdn.enabled or not regions_on(stack, Cloud.GCP)
    for region in regions_on(stack, Cloud.GCP):
        registry = f"{region.name}-registry"
        assert _grants(inventory, f"{region.name}-localizer") == sorted(
            [(f"{region.name}-data", VIEWER, ""), (registry, VIEWER, ""), (registry, PUBLISHER, f"{region.name}/")]
        )


def test_without_a_cdn_a_localizer_reads_only_the_global_prefix_of_the_homes_bucket(
    inventory_of_gcp_eu_without_cdn: Inventory,
) -> None:
    inventory = inventory_of_gcp_eu_without_cdn
    home = config_of("gcp-eu").home
    assert (f"{home}-registry", VIEWER, "global/") in _grants(inventory, "europe-west1-localizer")
    assert [g for g in _grants(inventory, f"{home}-localizer") if g[2] == "global/"] == []  # its own bucket


def test_service_accounts_trust_only_their_regions_kubernetes_accounts(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        for role, expected in (
            ("trainer", trainer_service_accounts(region.name)),
            ("server", server_service_accounts(region.name)),
            ("localizer", localizer_service_accounts(region.name)),
        ):
            bindings = [
                r.inputs
                for r in under(inventory, f"{region.name}-{role}")
                if r.type == "gcp:serviceaccount/iAMMember:IAMMember"
            ]
            assert all(b["role"] == "roles/iam.workloadIdentityUser" for b in bindings)
            members = sorted(b["member"] for b in bindings)
            project = named(inventory, f"gcp-{region.name}", "pulumi:providers:gcp").inputs["project"]
            assert members == sorted(f"serviceAccount:{project}.svc.id.goog[{a.namespace}/{a.name}]" for a in expected)
            account = named(inventory, f"{region.name}-{role}", "gcp:serviceaccount/account:Account").inputs
            assert 6 <= len(account["accountId"]) <= 30
