"""The Fleet: every region of every shipped stack gets its cloud region (or its existing
cluster), its images and its workloads through that region's own providers, home first; the
stack's tags reach every taggable resource; what no cloud can serve is refused up front."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import REGIONS, Cloud
from components.cluster_access import (
    SERVER_SERVICE_ACCOUNT_NAME,
    TRAINER_SERVICE_ACCOUNT_NAMES,
    server_service_accounts,
    trainer_service_accounts,
    workload_namespace,
)
from components.config import StackConfig, namespace_values, stack_file
from components.fleet import region_cidr, workloads_digest
from components.gcp.labels import gcp_labels
from components.k8s.flower import SUPERLINK_APP, SUPERNODE_APP
from components.k8s.namespace import namespace_name
from components.k8s.serving import SERVER_APP
from meridian.mocks import Inventory, ProgramError, resource_class
from meridian.preview import run_program
from tests.components.cloud_queries import config_of

K8S_PROVIDER = {Cloud.AWS: "{}-eks-k8s", Cloud.GCP: "{}-gke-k8s", Cloud.KUBERNETES: "k8s-{}"}


def test_every_region_gets_workloads_through_its_own_cluster_provider(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    workloads = inventory.of_type("meridian:k8s:RegionWorkloads")
    assert sorted(w.name for w in workloads) == sorted(f"{r.name}-workloads" for r in config.regions)
    for region in config.regions:
        provider = K8S_PROVIDER[region.cloud].format(region.name)
        objects = [
            r
            for r in inventory.resources
            if r.type.startswith("kubernetes:") and r.name.startswith(f"{region.name}-workloads")
        ]
        assert objects and all(o.provider == provider for o in objects)


def test_home_runs_the_superlink_and_every_other_region_dials_it(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    superlink = inventory.outputs["superlinkAddress"]
    assert superlink.endswith(":9092")
    links = [r for r in inventory.of_type("kubernetes:apps/v1:Deployment") if "superlink" in r.name]
    assert [r.name for r in links] == [f"{config.home}-workloads-superlink-deployment"]
    for region in config.regions:
        if region.name == config.home:
            continue
        (node,) = [
            r
            for r in inventory.of_type("kubernetes:apps/v1:Deployment")
            if r.name == f"{region.name}-workloads-supernode-deployment"
        ]
        args = [a for c in node.inputs["spec"]["template"]["spec"]["containers"] for a in c.get("args", [])]
        assert superlink in args


def test_no_cloud_or_cluster_resource_uses_an_ambient_provider(inventory: Inventory) -> None:
    ambient = [
        r.name
        for r in inventory.resources
        if r.custom and r.type.split(":")[0] in ("aws", "gcp", "kubernetes") and r.provider is None
    ]
    assert ambient == []


def test_one_explicit_provider_per_cloud_region(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    aws = sorted(p.inputs["region"] for p in inventory.of_type("pulumi:providers:aws"))
    gcp = sorted(p.inputs["region"] for p in inventory.of_type("pulumi:providers:gcp"))
    aws_regions = sorted(r.name for r in config.regions if r.cloud is Cloud.AWS)
    # CloudFront's certificate needs us-east-1: an AWS home elsewhere adds that one provider
    extra = ["us-east-1"] if config.home_region.cloud is Cloud.AWS and "us-east-1" not in aws_regions else []
    assert aws == sorted(aws_regions + extra)
    assert gcp == sorted(r.name for r in config.regions if r.cloud is Cloud.GCP)


def test_exports_name_every_region_and_the_global_entry_points(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    outputs = inventory.outputs
    assert set(outputs["regions"]) == {r.name for r in config.regions}
    assert all(v["inferenceEndpoint"] for v in outputs["regions"].values())
    if config.home_region.cloud is Cloud.KUBERNETES:
        assert "inferenceDnsName" not in outputs
        # an existing cluster reads the operator's registry, which also holds the global model
        for region in config.regions:
            assert region.kubernetes is not None
            assert outputs["regions"][region.name]["modelRegistryUrl"] == region.kubernetes.model_registry_url
        assert outputs["globalModelUrl"] == config.home_region.kubernetes.model_registry_url  # type: ignore[union-attr]
    else:
        assert outputs["inferenceDnsName"] == f"inference.{config.dns.domain}"
        if config.cdn.enabled:
            cdn = f"https://models.{config.dns.domain}"
            assert outputs["registryCdnUrl"] == cdn
            assert outputs["globalModelUrl"] == f"{cdn}/global"
            # every region reads its own registry through its CDN path: the home cloud's CDN, or
            # for GCP regions of an AWS home the Cloud CDN beside CloudFront (which reaches S3 only)
            gcp_cdn = f"https://models-gcp.{config.dns.domain}"
            for region in (r for r in config.regions if r.cloud is not Cloud.KUBERNETES):
                own = cdn if region.cloud is config.home_region.cloud else gcp_cdn
                assert outputs["regions"][region.name]["modelRegistryUrl"] == f"{own}/{region.name}"
            has_gcp_cdn = config.home_region.cloud is Cloud.AWS and any(r.cloud is Cloud.GCP for r in config.regions)
            assert outputs.get("gcpRegistryCdnUrl") == (gcp_cdn if has_gcp_cdn else None)


def test_every_taggable_resource_carries_the_stacks_tags(stack: str, inventory: Inventory) -> None:
    """Tags are set once, as each provider's defaults; the engine reports them on every
    resource that takes tags (`tagsAll`) or labels (`pulumiLabels`), as the mocks do."""
    tags = config_of(stack).tags.as_dict(stack)
    checked = 0
    for r in inventory.resources:
        if not r.custom or r.type.startswith("pulumi:providers:"):
            continue
        if r.type.startswith("aws:") and hasattr(resource_class(r.type), "tags_all"):
            assert tags.items() <= r.outputs["tagsAll"].items(), r.name
            checked += 1
        elif r.type.startswith("gcp:") and hasattr(resource_class(r.type), "pulumi_labels"):
            assert gcp_labels(tags).items() <= r.outputs["pulumiLabels"].items(), r.name
            checked += 1
    has_cloud = any(r.cloud is not Cloud.KUBERNETES for r in config_of(stack).regions)
    assert (checked > 0) is has_cloud


def test_providers_tag_by_default(stack: str, inventory: Inventory) -> None:
    tags = config_of(stack).tags.as_dict(stack)
    for provider in inventory.of_type("pulumi:providers:aws"):
        assert json.loads(provider.inputs["defaultTags"])["tags"] == tags
    for provider in inventory.of_type("pulumi:providers:gcp"):
        assert json.loads(provider.inputs["defaultLabels"]) == gcp_labels(tags)


def test_cloud_identities_trust_the_service_accounts_the_workloads_run_as(stack: str, inventory: Inventory) -> None:
    assert {SUPERLINK_APP, SUPERNODE_APP} == set(TRAINER_SERVICE_ACCOUNT_NAMES)
    assert SERVER_APP == SERVER_SERVICE_ACCOUNT_NAME
    for region in config_of(stack).regions:
        assert namespace_name(region.name) == workload_namespace(region.name)
        created = {
            (a.inputs["metadata"]["namespace"], a.inputs["metadata"]["name"]): a.inputs["metadata"].get("annotations")
            for a in inventory.of_type("kubernetes:core/v1:ServiceAccount")
            if a.name.startswith(f"{region.name}-workloads")
        }
        trusted = [*trainer_service_accounts(region.name), *server_service_accounts(region.name)]
        home = region.name == config_of(stack).home
        for ref in trusted:
            if ref.name == SUPERLINK_APP and not home:
                continue  # the SuperLink runs at home only
            assert (ref.namespace, ref.name) in created
            if region.cloud is not Cloud.KUBERNETES:
                assert created[(ref.namespace, ref.name)], f"{ref.subject} lacks its cloud identity annotation"


def _stack_with(raw: dict[str, Any], **changes: object) -> StackConfig:
    return StackConfig.model_validate({**raw, **changes})


def test_a_gcp_home_with_aws_regions_is_refused_before_any_resource(base_config: dict[str, Any]) -> None:
    config = _stack_with(base_config, home="us-west1")
    with pytest.raises(ProgramError, match=r"home us-west1 is on GCP.*us-east-1, eu-central-1, ap-southeast-1") as err:
        run_program(config, "refused")
    assert [r for r in err.value.inventory.resources if r.type != "pulumi:pulumi:Stack"] == []


def test_an_existing_cluster_home_with_cloud_regions_is_refused_there_is_no_zone_to_prove_them_in(
    base_config: dict[str, Any],
) -> None:
    onprem = namespace_values(yaml.safe_load(stack_file("onprem").read_text())["config"])
    (cluster,) = [r for r in onprem["regions"] if r["name"] == onprem["home"]]
    cluster = {**cluster, "gpu": {**cluster["gpu"], "accelerator": "t4"}}  # one the base stack allows
    config = _stack_with(base_config, regions=[cluster, *base_config["regions"]], home=cluster["name"])
    with pytest.raises(ProgramError, match=r"home fra-dc1 is an existing cluster.*us-east-1, us-west1"):
        run_program(config, "refused")


def test_without_a_cdn_other_clouds_cannot_read_the_registry_and_are_refused(base_config: dict[str, Any]) -> None:
    config = _stack_with(base_config, cdn={"enabled": False})
    with pytest.raises(ProgramError, match=r"CDN off.*us-west1, europe-west4, asia-northeast1 cannot"):
        run_program(config, "no-cdn")


def test_without_a_cdn_a_single_cloud_fleet_reads_the_registry_bucket() -> None:
    stack = config_of("aws-prod")
    config = stack.model_copy(update={"cdn": stack.cdn.model_copy(update={"enabled": False})})
    inventory = run_program(config, "aws-prod", providers={})
    assert inventory.of_type("aws:cloudfront/distribution:Distribution") == []
    # each region reads its own registry bucket (in its zone), the localizers the home's global/
    assert {n: v["modelRegistryUrl"] for n, v in inventory.outputs["regions"].items()} == {
        r.name: f"s3://{r.name}-registry/{r.name}" for r in config.regions
    }
    assert inventory.outputs["globalModelUrl"] == "s3://us-east-1-registry/global"
    assert {v["dataUrl"] for v in inventory.outputs["regions"].values()} == {
        f"s3://{r.name}-data" for r in config.regions
    }


def test_gcp_regions_need_a_project() -> None:
    with pytest.raises(ProgramError, match="set `gcp:project`"):
        run_program(config_of("dev"), "no-project", providers={})


def test_region_cidrs_follow_the_region_alone_and_never_overlap() -> None:
    cidrs = [region_cidr(cloud, name) for cloud in (Cloud.AWS, Cloud.GCP) for name in REGIONS[cloud]]
    assert len(set(cidrs)) == len(cidrs)
    assert all(ipaddress.ip_network(c).subnet_of(ipaddress.ip_network("10.0.0.0/8")) for c in cidrs)
    assert region_cidr(Cloud.AWS, "us-east-1") == "10.0.0.0/16"
    assert region_cidr(Cloud.GCP, "us-central1") == "10.128.0.0/16"
    with pytest.raises(ValueError, match="not a gcp region"):
        region_cidr(Cloud.GCP, "us-east-1")


def test_reordering_a_stacks_regions_keeps_every_network(inventory_of: Callable[[str], Inventory]) -> None:
    config = config_of("multicloud-prod")
    reordered = config.model_copy(update={"regions": list(reversed(config.regions))})
    rerun = run_program(reordered, "multicloud-prod", providers={"gcp:project": "meridian-prod"})
    assert _networks(rerun) == _networks(inventory_of("multicloud-prod"))


def _networks(inventory: Inventory) -> set[tuple[str, str]]:
    """(resource name, address range) of every VPC and GKE node subnet."""
    found = inventory.of_type("aws:ec2/vpc:Vpc", "gcp:compute/subnetwork:Subnetwork")
    return {(r.name, r.inputs.get("cidrBlock") or r.inputs["ipCidrRange"]) for r in found}


def test_image_tag_digest_follows_the_workload_sources(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    source = tmp_path / "server" / "app.py"
    source.write_text("print('v1')\n")
    first = workloads_digest(tmp_path)
    assert workloads_digest(tmp_path) == first
    source.write_text("print('v2')\n")
    assert workloads_digest(tmp_path) != first


@pytest.mark.slow
def test_evaluating_a_stack_costs_about_the_same_per_resource_at_any_size() -> None:
    """A resource of a twenty-region stack costs at most three times the CPU of one of a one-region
    stack, measured side by side: nothing in the program grows with the stack squared (which
    would make it ~20 times)."""
    from bench.preview import generated_stack

    def cpu_per_resource(regions: int) -> float:
        config = StackConfig.model_validate(generated_stack(regions))
        started = time.process_time()
        inventory = run_program(config, f"scale-{regions}")
        spent = time.process_time() - started
        assert len(inventory.of_type("meridian:k8s:RegionWorkloads")) == regions
        return spent / len(inventory.resources)

    one = cpu_per_resource(1)
    twenty = cpu_per_resource(20)
    assert twenty < 3 * one, f"CPU per resource: {twenty * 1000:.1f} ms at 20 regions, {one * 1000:.1f} ms at 1"


def test_the_shared_inventory_fixture_is_per_stack(inventory_of: Callable[[str], Inventory]) -> None:
    assert inventory_of("dev") is inventory_of("dev")


def _keys(value: object) -> set[str]:
    """Every key of a nested export, region names excepted (they are the clouds' own)."""
    if not isinstance(value, dict):
        return set()
    return set(value).union(*(_keys(v) for v in value.values()))


def test_exports_are_camel_case_as_every_component_output_is(stack: str, inventory: Inventory) -> None:
    regions = set(inventory.outputs["regions"])
    keys = _keys(inventory.outputs) - regions
    assert keys and all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", key) for key in keys), sorted(keys)


def test_every_component_registers_camel_case_output_keys() -> None:
    """register_outputs keys, read from the source: a rename after the first `pulumi up` costs
    a diff on every stack, so the case style is settled here."""
    pattern = re.compile(r"register_outputs\(\s*\{(?P<body>[^}]*)\}", re.DOTALL)
    keys = [
        (path.name, key)
        for path in (Path(__file__).resolve().parents[2] / "components").rglob("*.py")
        for match in pattern.finditer(path.read_text())
        for key in re.findall(r'"([^"]+)"\s*:', match["body"])
    ]
    assert keys
    assert [(name, key) for name, key in keys if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", key)] == []
