"""The stack config model: every shipped stack is valid, and every mistake is caught before a
single resource is registered, with a message that names the file and the field."""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, Federation, available_stacks, load_stack, namespace_values, parse
from meridian.preview import ROOT, ProgramError, run_program
from workloads.contract import FEDERATION_DEFAULTS, FederationDefaults
from workloads.trainer.settings import TrainerSettings


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation that sets a dotted path (`regions.2.gpu.max`) to a value."""

    def mutate(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _federation(**values: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation that sets these `federation` keys (privacy options need their strategy and compression)."""

    def mutate(config: dict[str, Any]) -> None:
        config.setdefault("federation", {}).update(values)

    return mutate


def _rename_gpu_key(config: dict[str, Any]) -> None:
    gpu = config["regions"][0]["gpu"]
    gpu["acelerator"] = gpu.pop("accelerator")


def _without_owner(config: dict[str, Any]) -> None:
    del config["tags"]["owner"]


def _duplicate_region(config: dict[str, Any]) -> None:
    config["regions"][2].update(name="us-east-1", residency="us")


def _kubernetes_without_cluster(config: dict[str, Any]) -> None:
    config["regions"][0].update(cloud="kubernetes", name="dc1")
    del config["regions"][0]["gpu"]["machineType"]
    config["home"] = "dc1"


def _existing_cluster(**model_store: str) -> Callable[[dict[str, Any]], None]:
    """Region 0 becomes an existing cluster whose block has these modelStoreUrl settings."""

    def mutate(config: dict[str, Any]) -> None:
        _kubernetes_without_cluster(config)
        config["regions"][0]["kubernetes"] = {
            "context": "dc1",
            "imageRegistry": "registry.dc1.internal/meridian",
            "modelRegistryUrl": "https://models.dc1.internal",
            "dataVolumeClaim": "data-dc1",
            **model_store,
        }

    return mutate


# (what is wrong, mutation, field path in the message, a fragment saying what is allowed)
MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("max below desired", _set("regions.2.gpu.max", 1), "regions[2].gpu.max", "must be >= desired (2)"),
    ("max zero", _set("regions.2.gpu.max", 0), "regions[2].gpu.max", "greater than or equal to 1"),
    ("min above desired", _set("regions.0.gpu.min", 5), "regions[0].gpu.desired", "must be >= min (5)"),
    ("unknown cloud", _set("regions.1.cloud", "azure"), "regions[1].cloud", "'aws', 'gcp' or 'kubernetes'"),
    ("unknown region", _set("regions.0.name", "us-east-9"), "regions[0].name", "known: "),
    ("GPU not offered", _set("regions.1.gpu.accelerator", "a10g"), "regions[1].gpu.accelerator", "it offers: l4"),
    ("unknown GPU machine", _set("regions.0.gpu.machineType", "p9.huge"), "regions[0].gpu.machineType", "known: g4dn"),
    ("unknown accelerator", _set("regions.0.gpu.accelerator", "tpu"), "regions[0].gpu.accelerator", "'t4'"),
    ("duplicate region", _duplicate_region, "regions[2].name", "duplicate region name"),
    ("home elsewhere", _set("home", "mars-1"), "home", "is not among regions"),
    (
        "edge outside region",
        _set("regions.0.edgeSites.0.location", "us-west-2-lax-1a"),
        "regions[0].edgeSites[0].location",
        "not in parent region us-east-1",
    ),
    ("residency mismatch", _set("regions.3.residency", "us"), "regions[3].residency", "lies in residency zone eu"),
    ("unknown residency", _set("regions.3.residency", "mars"), "regions[3].residency", "'us'"),
    ("duplicate edge site", _set("regions.1.edgeSites.0.name", "nyc"), "regions[1].edgeSites[0].name", "already used"),
    ("typo in a key", _rename_gpu_key, "regions[0].gpu.acelerator", "unknown field"),
    ("too few regions", _set("federation.minRegions", 9), "federation.minRegions", "exceeds the 6 region(s)"),
    ("unknown strategy", _set("federation.strategy", "fedbest"), "federation.strategy", "'fedavg'"),
    ("unknown downlink", _set("federation.downlink", "delta"), "federation.downlink", "'full' or 'topk'"),
    (
        "empty downlink k",
        _set("federation.downlinkTopkFraction", 0),
        "federation.downlinkTopkFraction",
        "greater than 0",
    ),
    (
        "a compressed downlink over an uplink of whole weights",
        _federation(compression="none", downlink="topk"),
        "federation.downlink",
        "topk needs a compression that sends deltas",
    ),
    (
        "secure aggregation",
        _federation(privacy={"secureAggregation": True}),
        "federation.privacy.secureAggregation",
        "SecAgg+ exists only in its legacy workflow API",
    ),
    (
        "update-level DP over a robust strategy",
        _federation(strategy="multikrum", privacy={"aggregate": {"clipping": "fixed", "noiseMultiplier": 1.0}}),
        "federation.privacy.aggregate.clipping",
        "multikrum is an order statistic or a selection with another sensitivity",
    ),
    (
        "update-level DP over the median",
        _federation(strategy="fedmedian", privacy={"aggregate": {"clipping": "adaptive", "noiseMultiplier": 1.0}}),
        "federation.privacy.aggregate.clipping",
        "fedmedian is an order statistic",
    ),
    (
        "client-side clipping under lossy compression",
        _federation(
            strategy="fedavg",
            compression="topk",
            privacy={"aggregate": {"clipping": "fixed", "side": "client", "noiseMultiplier": 1}},
        ),
        "federation.privacy.aggregate.side",
        "the topk update the aggregator decodes can exceed the clipping norm",
    ),
    (
        "a quantile for fixed clipping",
        _federation(privacy={"aggregate": {"clipping": "fixed", "noiseMultiplier": 1.0, "targetQuantile": 0.5}}),
        "federation.privacy.aggregate.targetQuantile",
        "only adaptive clipping adapts to a quantile",
    ),
    (
        "no privacy budget",
        _federation(privacy={"dp": {"epsilon": 0}}),
        "federation.privacy.dp.epsilon",
        "greater than 0",
    ),
    (
        "a delta that protects nobody",
        _federation(privacy={"dp": {"epsilon": 8, "delta": 0.01}}),
        "federation.privacy.dp.delta",
        "less than 0.001",
    ),
    (
        "canary without candidate",
        _set("inference.canary", {"stable": "v1", "weight": 20}),
        "inference.canary.candidate",
        "needs a candidate",
    ),
    ("replicas inverted", _set("inference.minReplicas", 30), "inference.maxReplicas", "must be >= minReplicas (30)"),
    (
        "API open to the world",
        _set("network.apiAllowedCidrs", ["0.0.0.0/0"]),
        "network.apiAllowedCidrs",
        "opens the Kubernetes API",
    ),
    ("not a CIDR", _set("network.apiAllowedCidrs", ["10.0.0.300/8"]), "network.apiAllowedCidrs", "is not a CIDR"),
    ("missing owner tag", _without_owner, "tags.owner", "Field required"),
    (
        "fallback without spot",
        _set("regions.3.gpu.onDemandFallback", True),
        "regions[3].gpu.onDemandFallback",
        "spot: true",
    ),
    (
        "GPU outside allowlist",
        _set("limits.gpuAllowlist", ["t4", "a10g"]),
        "regions[1].gpu.accelerator",
        "not in limits.gpuAllowlist",
    ),
    (
        "GPU in no zone of its GCP region",
        _set("regions.3.name", "europe-north1"),
        "regions[3].gpu.accelerator",
        "no zone of europe-north1 offers t4",
    ),
    ("existing cluster without kubeconfig", _kubernetes_without_cluster, "regions[0].kubernetes", "needs this block"),
    (
        "existing cluster with nowhere to publish models",
        _existing_cluster(),
        "regions[0].kubernetes.modelStoreUrl",
        "Field required",
    ),
    (
        "existing cluster publishing to its read-only URL",
        _existing_cluster(modelStoreUrl="https://models.dc1.internal"),
        "regions[0].kubernetes.modelStoreUrl",
        "http(s) is read-only: that is modelRegistryUrl); use s3://, gs://, file://",
    ),
    (
        "existing cluster publishing to a store no image writes",
        _existing_cluster(modelStoreUrl="ftp://models"),
        "regions[0].kubernetes.modelStoreUrl",
        "not a store the localizer can write to; use s3://, gs://, file://",
    ),
    ("bad edge site name", _set("regions.0.edgeSites.0.name", "NYC_1"), "regions[0].edgeSites[0].name", "lowercase"),
    (
        "existing zone of the other cloud",
        _set("dns.existingZone", {"cloudDnsManagedZone": "corp-zone"}),
        "dns.existingZone.cloudDnsManagedZone",
        "home us-east-1 is on aws, which serves the fleet's DNS: give route53HostedZoneId",
    ),
    (
        "existing zone named twice",
        _set("dns.existingZone", {"route53HostedZoneId": "Z0123", "cloudDnsManagedZone": "corp-zone"}),
        "dns.existingZone",
        "exactly one of route53HostedZoneId (AWS home) or cloudDnsManagedZone (GCP home)",
    ),
    (
        "hosted zone id with its path",
        _set("dns.existingZone", {"route53HostedZoneId": "/hostedzone/Z0123"}),
        "dns.existingZone.route53HostedZoneId",
        "give the id alone",
    ),
    (
        "managed zone by its DNS name",
        _set("dns.existingZone", {"cloudDnsManagedZone": "corp.example.com."}),
        "dns.existingZone.cloudDnsManagedZone",
        "not its DNS name",
    ),
    ("blank data version", _set("federation.dataVersion", ""), "federation.dataVersion", "should match pattern"),
    (
        "admin not a role",
        _set("aws.adminRoleArns.1", "arn:aws:iam::123456789012:user/alice"),
        "aws.adminRoleArns[1]",
        "is not an IAM role ARN",
    ),
    (
        "admin listed twice",
        _set("aws.adminRoleArns.1", "arn:aws:iam::123456789012:role/meridian-platform-admin"),
        "aws.adminRoleArns[1]",
        "listed twice",
    ),
]


@pytest.mark.parametrize("stack", available_stacks())
def test_every_shipped_stack_is_valid(stack: str) -> None:
    config = load_stack(stack)
    assert config.home_region.name == config.home


def test_the_shipped_stacks_are_the_documented_ones() -> None:
    assert {"dev", "aws-prod", "gcp-eu", "multicloud-prod", "onprem", "local"} <= set(available_stacks())
    regions = load_stack("multicloud-prod").regions
    assert len(regions) >= 5 and {r.cloud for r in regions} == {"aws", "gcp"}
    assert all(r.cloud == "kubernetes" for r in load_stack("onprem").regions)


@pytest.mark.parametrize(
    ("mutate", "field", "allowed"),
    [pytest.param(m, f, a, id=name) for name, m, f, a in MALFORMED],
)
def test_a_malformed_stack_file_names_the_file_and_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], field: str, allowed: str, base_config: dict[str, Any]
) -> None:
    config = base_config
    mutate(config)
    document = {"config": {f"meridian:{k}": v for k, v in config.items()}}
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump(document))

    with pytest.raises(ConfigError) as caught:
        load_stack("broken", stacks_dir=tmp_path)

    message = str(caught.value)
    assert message.startswith("stacks/Pulumi.broken.yaml: invalid stack config")
    assert any(path == field and allowed in text for path, text in caught.value.problems), message


@pytest.mark.parametrize(("mutate", "field"), [pytest.param(m, f, id=name) for name, m, f, _ in MALFORMED])
def test_the_program_registers_nothing_for_a_malformed_stack(
    mutate: Callable[[dict[str, Any]], None], field: str, base_config: dict[str, Any]
) -> None:
    config = copy.deepcopy(base_config)
    mutate(config)

    with pytest.raises(ProgramError) as caught:
        run_program(config, "broken")

    assert caught.value.inventory.resources == []
    assert f"  {field}: " in str(caught.value)


def test_an_unknown_stack_lists_the_stacks() -> None:
    with pytest.raises(ConfigError, match=r"no such stack 'prod'; stacks: .*multicloud-prod"):
        load_stack("prod")


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_stack("bad", stacks_dir=tmp_path)


def test_the_cli_reports_a_config_mistake_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meridian", "preview", "no-such-stack"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "stacks/Pulumi.no-such-stack.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_federation_defaults_are_the_trainers_own() -> None:
    """One set of defaults: a stack that says nothing trains as a bare `flwr run` would, and
    the trainer's settings and its Flower app config agree with the contract's."""
    unset = Federation()
    for field in fields(FederationDefaults):
        assert getattr(unset, field.name) == getattr(FEDERATION_DEFAULTS, field.name), field.name
    app_config = tomllib.loads((ROOT / "workloads/trainer/pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    passed = unset.run_config()
    assert {key: app_config[key] for key in passed} == passed
    assert TrainerSettings.from_run_config(passed) == TrainerSettings()


def test_an_existing_cluster_home_uses_no_dns_zone() -> None:
    document = yaml.safe_load((ROOT / "stacks/Pulumi.onprem.yaml").read_text())
    document["config"]["meridian:dns"]["existingZone"] = {"route53HostedZoneId": "Z0123"}
    with pytest.raises(
        ConfigError, match=r"dns\.existingZone\.route53HostedZoneId: home fra-dc1 is an existing cluster"
    ):
        parse(namespace_values(document["config"]), "stacks/Pulumi.onprem.yaml")


def test_the_data_version_defaults_to_1_and_only_keys_the_run() -> None:
    """`federation.dataVersion` is bumped after `meridian data push`; the trainer never sees it."""
    assert Federation().data_version == "1"
    assert "data-version" not in Federation(data_version="2").run_config()


def test_a_compressed_downlink_reaches_the_trainer_and_a_full_one_keeps_the_run_key() -> None:
    assert not any(key.startswith("downlink") for key in Federation().run_config())
    federation = Federation.model_validate({"compression": "topk", "downlink": "topk", "downlinkTopkFraction": 0.1})
    passed = federation.run_config()
    settings = TrainerSettings.from_run_config(passed)
    assert (settings.downlink.value, settings.downlink_topk_fraction) == ("topk", 0.1)


def test_privacy_options_reach_the_trainer_as_its_run_config() -> None:
    """`federation.privacy` becomes the trainer's dp-* and aggregate-* keys, which it accepts as they are;
    a stack without it passes none of them (its run key and rendering stay as they were)."""
    assert not any(key.startswith(("dp-", "aggregate-")) for key in Federation().run_config())
    federation = Federation.model_validate(
        {
            "compression": "none",
            "privacy": {
                "dp": {"epsilon": 8, "maxGradNorm": 2.0},
                "aggregate": {"clipping": "adaptive", "side": "client", "noiseMultiplier": 0.5, "targetQuantile": 0.7},
            },
        }
    )
    passed = federation.run_config()
    assert passed["dp-epsilon"] == 8 and passed["dp-delta"] == 1e-5 and passed["dp-max-grad-norm"] == 2.0
    settings = TrainerSettings.from_run_config(passed)
    assert settings.private and settings.dp_epsilon == 8
    assert (settings.aggregate_clipping, settings.aggregate_side, settings.aggregate_target_quantile) == (
        "adaptive",
        "client",
        0.7,
    )
