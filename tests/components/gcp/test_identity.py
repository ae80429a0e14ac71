"""Workload Identity: each region's trainer reads only its own data bucket (and may create
objects only under its own registry prefix); its servers read only the registry. Each Google
service account is usable only by that region's named ServiceAccounts."""

from __future__ import annotations

from components.catalog import Cloud
from components.cloud_region import artifact_prefix
from components.cluster_access import server_service_accounts, trainer_service_accounts
from meridian.mocks import Inventory, Recorded
from tests.components.cloud_queries import config_of, named, regions_on, under

GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"


def _grants(inventory: Inventory, account: str) -> list[Recorded]:
    return [r for r in under(inventory, account) if r.type == GRANT]


def test_trainer_reads_its_own_data_and_writes_only_its_registry_prefix(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    gcp_home = config.home_region.cloud is Cloud.GCP
    for region in regions_on(stack, Cloud.GCP):
        grants = _grants(inventory, f"{region.name}-trainer")
        reads = [g.inputs for g in grants if g.inputs["role"] == "roles/storage.objectViewer"]
        assert [g["bucket"] for g in reads] == [f"{region.name}-data"]
        writes = [g.inputs for g in grants if g.inputs["role"] == "roles/storage.objectCreator"]
        if gcp_home:
            (write,) = writes
            assert write["bucket"] == f"{config.home}-registry"
            prefix = f"projects/_/buckets/{config.home}-registry/objects/{artifact_prefix(region.name)}"
            assert write["condition"]["expression"] == f'resource.name.startsWith("{prefix}")'
        else:
            assert writes == []
        assert len(grants) == len(reads) + len(writes)


def test_server_reads_only_the_registry(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    for region in regions_on(stack, Cloud.GCP):
        grants = [g.inputs for g in _grants(inventory, f"{region.name}-server")]
        if config.home_region.cloud is Cloud.GCP:
            assert [(g["bucket"], g["role"]) for g in grants] == [
                (f"{config.home}-registry", "roles/storage.objectViewer")
            ]
        else:
            assert grants == []  # reads through the CDN


def test_service_accounts_trust_only_their_regions_kubernetes_accounts(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        for role, expected in (
            ("trainer", trainer_service_accounts(region.name)),
            ("server", server_service_accounts(region.name)),
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
