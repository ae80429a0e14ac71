"""`meridian cost`: a stack's $/hour and $/month at min and max scale, per region and kind."""

from __future__ import annotations

import json

import pytest

from components.config import load_stack
from meridian.cost import main, stack_estimate
from policy.rules.pricing import CONTROL_PLANE, GPU_NODES


def test_aws_prod_is_priced_per_region_within_its_ceiling() -> None:
    result = stack_estimate("aws-prod")
    limits = load_stack("aws-prod").limits
    assert result.unpriced == []
    assert set(result.by("region")) >= {"us-east-1", "eu-west-1", "ap-southeast-1"}
    assert 0 < result.usd_hour_min < result.usd_hour_max <= limits.max_usd_per_hour
    assert result.by("kind")[CONTROL_PLANE] == (pytest.approx(0.3), pytest.approx(0.3))  # 3 EKS clusters
    # GPU bounds from each region's Karpenter NodePool: from zero (nodes follow GPU pods) to the
    # stack's max (us-east-1 8, eu-west-1 6, ap-southeast-1 4), the on-demand fallback within it.
    assert (result.gpus_min, result.gpus_max) == (0, 8 + 6 + 4)
    assert result.by("kind")[GPU_NODES][1] > result.by("kind")[GPU_NODES][0]
    # The servers' ScaledObjects stay within those pools: maxReplicas 12 capped at each region's.
    assert (result.gpus_requested_min, result.gpus_requested_max) == (3 * 2, 8 + 6 + 4)


def test_existing_clusters_cost_nothing_in_the_cloud() -> None:
    result = stack_estimate("onprem")
    assert result.items == [] and result.unpriced == []
    # but their GPU servers are counted: fra-dc1 scales 1..4 (gpu.max 4), ams-dc2 1..2 (gpu.max 2)
    assert (result.gpus_requested_min, result.gpus_requested_max) == (2, 4 + 2)


def test_json_output_reports_month_totals_and_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usd_per_month"]["max"] == pytest.approx(report["usd_per_hour"]["max"] * 730, abs=0.05)
    assert report["traffic_assumptions"]["cdn_gb_per_distribution"] == 1000
    assert set(report["by_region"]) >= {"us-east-1", "europe-west4"}
    assert report["gpus_requested"] == {"min": 2, "max": 4}  # dev: 1..2 servers in each of 2 regions


def test_an_unknown_stack_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "no such stack" in capsys.readouterr().err
