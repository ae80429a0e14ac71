"""`meridian policy`: every shipped stack passes every mandatory rule; the rules bite on the
program's real resource shapes; saved deployments in all three formats are checked too."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from components.config import available_stacks, load_stack
from meridian.policy import from_preview, load_resources, main, pack_config
from meridian.preview import preview_stack
from policy.harness import run_pack
from policy.rules import POLICIES

FIXTURES = Path(__file__).parent / "fixtures"
_records: dict[str, list[dict[str, Any]]] = {}


def records(stack: str) -> list[dict[str, Any]]:
    if stack not in _records:
        _records[stack] = [r.to_json() for r in preview_stack(stack).resources]
    return copy.deepcopy(_records[stack])


def check(stack: str, resources: list[dict[str, Any]]):
    return run_pack(POLICIES, from_preview(stack, resources), pack_config(load_stack(stack)))


@pytest.mark.parametrize("stack", available_stacks())
def test_every_shipped_stack_passes_every_mandatory_rule(stack: str) -> None:
    report = check(stack, records(stack))
    assert [(v.policy, v.urn, v.message) for v in report.mandatory] == []
    assert report.unknown == []  # preview=False mocks: every value is known


def _named(resources: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == type_]


def test_dropping_the_public_access_blocks_is_caught() -> None:
    resources = [r for r in records("dev") if "PublicAccessBlock" not in r["type"]]
    found = {v.policy for v in check("dev", resources).mandatory}
    assert found == {"aws-s3-public-access-blocked"}


def test_a_trainer_granted_another_regions_data_bucket_is_caught() -> None:
    resources = records("aws-prod")
    (eu_bucket,) = [r for r in _named(resources, "aws:s3/bucket:Bucket") if r["name"] == "eu-west-1-data"]
    trainer = next(
        r for r in _named(resources, "aws:iam/rolePolicy:RolePolicy") if r["name"].startswith("us-east-1-trainer")
    )
    document = json.loads(trainer["inputs"]["policy"])
    document["Statement"].append(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{eu_bucket['name']}/*"}
    )
    trainer["inputs"]["policy"] = json.dumps(document)
    messages = [v.message for v in check("aws-prod", resources).mandatory]
    assert any("may reach data bucket eu-west-1-data of eu-west-1" in m for m in messages), messages


def test_a_regions_registry_bucket_moved_out_of_its_zone_is_caught() -> None:
    resources = records("aws-prod")
    (eu_registry,) = [r for r in _named(resources, "aws:s3/bucket:Bucket") if r["name"] == "eu-west-1-registry"]
    eu_registry["provider"] = "aws-us-east-1"  # created through the home's provider: in the US
    report = check("aws-prod", resources)
    # and the EU localizer, publishing there, now writes to the US
    assert {v.policy for v in report.mandatory} == {"meridian-data-residency", "meridian-models-stay-in-zone"}
    assert any(
        "registry bucket eu-west-1-registry serves eu-west-1 (zone eu) but lives in us-east-1 (zone us)" in v.message
        for v in report.mandatory
    )


def test_a_localizer_granted_writes_on_another_zones_registry_is_caught() -> None:
    resources = records("aws-prod")
    (localizer,) = [r for r in _named(resources, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "eu-west-1-localizer"]
    document = json.loads(localizer["inputs"]["policy"])
    document["Statement"].append(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::us-east-1-registry/eu-west-1/*"}
    )
    localizer["inputs"]["policy"] = json.dumps(document)
    report = check("aws-prod", resources)
    assert {v.policy for v in report.mandatory} == {"meridian-models-stay-in-zone"}
    assert [v.message for v in report.mandatory] == [
        (
            "localizer identity eu-west-1-localizer of eu-west-1 (zone eu) may write registry bucket "
            "us-east-1-registry in us-east-1 (zone us)"
        )
    ]


def test_a_stack_over_its_gpu_ceiling_is_caught() -> None:
    resources = records("dev")
    report = run_pack(
        POLICIES,
        from_preview("dev", resources),
        {**pack_config(load_stack("dev")), "meridian-cost-ceiling": {"maxGpus": 1}},
    )
    # both the GPU nodes the pools may hold and the GPUs the servers may request exceed it
    assert {v.policy for v in report.mandatory} == {"meridian-cost-ceiling"}


def test_an_insecure_superlink_is_caught() -> None:
    resources = records("dev")
    for deployment in _named(resources, "kubernetes:apps/v1:Deployment"):
        for container in deployment["inputs"]["spec"]["template"]["spec"]["containers"]:
            if "flower-superlink" in container.get("command", []):
                container["args"] = [*container.get("args", []), "--insecure"]
    assert "meridian-flower-tls" in {v.policy for v in check("dev", resources).mandatory}


PUBLIC_LISTENER_RULES = {"public-listener-https-only", "load-balancer-certificate"}
SERVICE = "kubernetes:core/v1:Service"


def _public_listeners(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LoadBalancer Services and Gateways: everything the exposure rules judge."""
    return [
        r
        for r in resources
        if (r["type"] == SERVICE and r["inputs"]["spec"].get("type") == "LoadBalancer")
        or r["type"].endswith(":Gateway")
    ]


@pytest.mark.parametrize("stack", available_stacks())
def test_every_stacks_public_listeners_are_https_only(stack: str) -> None:
    """Under mocks, each stack's servers, edge sites and federation endpoints face the internet
    over HTTPS (or TLS in the pods) only, each with a certificate, and the pack says so."""
    resources = records(stack)
    assert _public_listeners(resources), "the rules have something to judge"
    report = check(stack, resources)
    assert [v.message for v in report.violations if v.policy in PUBLIC_LISTENER_RULES] == []


def _service(resources: list[dict[str, Any]], namespace: str, name: str) -> dict[str, Any]:
    (found,) = [
        r
        for r in _named(resources, SERVICE)
        if r["inputs"]["metadata"]["namespace"] == namespace and r["inputs"]["metadata"]["name"] == name
    ]
    return found


def test_a_plain_http_public_listener_is_caught() -> None:
    resources = records("dev")
    server = _service(resources, "meridian-us-east-1", "server")
    server["inputs"]["spec"]["ports"].append({"name": "http", "port": 80.0, "targetPort": "http", "protocol": "TCP"})
    assert {v.policy for v in check("dev", resources).mandatory} == {"public-listener-https-only"}


def test_a_certificate_less_load_balancer_is_caught() -> None:
    resources = records("dev")
    server = _service(resources, "meridian-us-east-1", "server")
    del server["inputs"]["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-ssl-cert"]
    assert {v.policy for v in check("dev", resources).mandatory} == PUBLIC_LISTENER_RULES


def test_a_gateway_serving_plain_http_is_caught() -> None:
    resources = records("dev")
    (redirect,) = [
        r
        for r in _named(resources, "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
        if r["inputs"]["metadata"]["name"] == "front-door-redirect"
    ]
    redirect["inputs"]["spec"]["rules"] = [{"backendRefs": [{"name": "server", "port": 8080.0}]}]
    assert {v.policy for v in check("dev", resources).mandatory} == {"public-listener-https-only"}


def test_check_exits_zero_on_a_clean_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "onprem"]) == 0
    assert "mandatory: 0" in capsys.readouterr().out


def test_check_exits_one_on_a_mandatory_violation_in_a_saved_preview(tmp_path: Path) -> None:
    resources = [r for r in records("dev") if "PublicAccessBlock" not in r["type"]]
    saved = tmp_path / "preview.json"
    saved.write_text(json.dumps({"stack": "dev", "resources": resources}))
    assert main(["check", "--resources", str(saved)]) == 1


def test_a_pulumi_preview_json_is_read_from_new_states_with_unknowns() -> None:
    stack, resources = load_resources(FIXTURES / "pulumi-preview.json")
    assert stack == "dev"
    assert [r.name for r in resources] == [
        "meridian-dev",
        "aws-us-east-1",
        "us-east-1-eks",
    ]  # the delete has no newState
    report = run_pack(POLICIES, resources)
    assert [v.policy for v in report.mandatory] == ["aws-eks-endpoint-restricted"]
    assert [u.policy for u in report.unknown] == ["aws-eks-secrets-encrypted"]  # keyArn unknown until apply


def test_a_stack_export_is_read_with_providers_linked() -> None:
    stack, resources = load_resources(FIXTURES / "stack-export.json")
    bucket = next(r for r in resources if r.type == "aws:s3/bucket:Bucket")
    assert stack == "aws-prod" and bucket.provider is not None and bucket.provider.props["region"] == "eu-west-1"
    messages = [v.message for v in run_pack(POLICIES, resources).mandatory]
    assert "bucket eu-west-1-data: public access not blocked: restrictPublicBuckets must be true" in messages


def test_an_unrecognised_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert main(["check", "--resources", str(other)]) == 2
    assert "pulumi stack export" in capsys.readouterr().err


def test_the_config_command_carries_the_stack_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "aws-prod"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["meridian-cost-ceiling"] == {"maxGpus": 40, "maxUsdPerHour": 80.0, "homeRegion": "us-east-1"}
    assert config["meridian-gpu-allowlist"] == {"gpuAllowlist": ["t4", "a10g"]}
    assert "*.dkr.ecr.eu-west-1.amazonaws.com/*" in config["k8s-image-from-stack-registries"]["allowedRegistries"]


def test_an_unknown_stack_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "nope"]) == 2
    assert "no such stack 'nope'" in capsys.readouterr().err
