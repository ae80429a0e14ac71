"""The bucket a push writes to comes from the stack and its outputs, and every refusal says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.catalog import Cloud, Residency
from meridian.data.errors import DataRefused
from meridian.data.residency import zone_of
from meridian.data.target import resolve_target
from tests.meridian.data.stores import AWS_EU_REGION, GCP_EU_REGION, STACK, write_outputs


def test_the_bucket_is_the_one_the_outputs_name(tmp_path: Path) -> None:
    outputs = write_outputs(
        tmp_path / "o.json", {AWS_EU_REGION: "s3://meridian-data-eu-1a2b3c/", GCP_EU_REGION: "gs://x"}
    )

    target = resolve_target(STACK, AWS_EU_REGION, outputs)

    assert (target.url, target.bucket) == ("s3://meridian-data-eu-1a2b3c", "meridian-data-eu-1a2b3c")
    assert (target.cloud, target.residency, target.stack_source) == (
        Cloud.AWS,
        Residency.EU,
        "stacks/Pulumi.multicloud-prod.yaml",
    )


def test_a_region_not_in_the_stack_is_refused_naming_the_file_and_its_regions(tmp_path: Path) -> None:
    outputs = write_outputs(tmp_path / "o.json", {"eu-west-1": "s3://someone-elses-bucket"})

    with pytest.raises(DataRefused) as refused:
        resolve_target(STACK, "eu-west-1", outputs)

    message = str(refused.value)
    assert "region 'eu-west-1' is not in stacks/Pulumi.multicloud-prod.yaml" in message
    assert "us-east-1, us-west1, eu-central-1, europe-west4, ap-southeast-1, asia-northeast1" in message


def test_an_unknown_stack_is_refused() -> None:
    with pytest.raises(DataRefused, match="no such stack 'nope'"):
        resolve_target("nope", AWS_EU_REGION)


def test_outputs_of_another_stack_are_refused(tmp_path: Path) -> None:
    wrong_cloud = write_outputs(tmp_path / "o.json", {AWS_EU_REGION: "gs://a-gcs-bucket"})
    with pytest.raises(DataRefused, match=r"region eu-central-1 is on aws .* s3:// URL"):
        resolve_target(STACK, AWS_EU_REGION, wrong_cloud)
    missing = write_outputs(tmp_path / "p.json", {GCP_EU_REGION: "gs://x"})
    with pytest.raises(DataRefused, match=r"no regions\.eu-central-1\.dataUrl"):
        resolve_target(STACK, AWS_EU_REGION, missing)
    (tmp_path / "q.json").write_text(json.dumps(["not", "outputs"]))
    with pytest.raises(DataRefused, match="expected the JSON object"):
        resolve_target(STACK, AWS_EU_REGION, tmp_path / "q.json")


def test_without_outputs_or_a_pulumi_cli_the_user_is_told_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DataRefused, match=f"pulumi stack output --json --stack {STACK} > FILE"):
        resolve_target(STACK, AWS_EU_REGION)


def test_with_a_pulumi_cli_the_outputs_come_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {"regions": {AWS_EU_REGION: {"dataUrl": "s3://from-the-cli"}}}
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    # Answers only the exact command meridian must run, as the real CLI would for this stack.
    fake.write_text(
        f"#!/bin/sh\n[ \"$*\" = 'stack output --json --stack {STACK}' ] || exit 3\necho '{json.dumps(outputs)}'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))

    assert resolve_target(STACK, AWS_EU_REGION).url == "s3://from-the-cli"


def test_an_existing_clusters_region_points_at_its_volume_claim() -> None:
    with pytest.raises(DataRefused, match=r"PersistentVolumeClaim 'data-local-eu' .* `kubectl cp`"):
        resolve_target("local", "local-eu")


@pytest.mark.parametrize(
    ("cloud", "location", "zone"),
    [
        (Cloud.AWS, "eu-central-1", Residency.EU),
        (Cloud.AWS, "eu-west-2", Residency.UK),
        (Cloud.AWS, "me-south-1", None),  # not in the catalog: cannot be placed
        (Cloud.GCP, "EUROPE-WEST4", Residency.EU),
        (Cloud.GCP, "EU", Residency.EU),
        (Cloud.GCP, "US", Residency.US),
        (Cloud.GCP, "EUR5", None),  # Belgium + London: two zones
    ],
)
def test_bucket_locations_map_to_zones(cloud: Cloud, location: str, zone: Residency | None) -> None:
    assert zone_of(cloud, location) is zone
