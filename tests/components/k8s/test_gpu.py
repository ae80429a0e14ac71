"""The NVIDIA device plugin: pinned, where the cluster lacks one, once per cluster."""

from __future__ import annotations

import re

from components.catalog import Cloud
from components.cluster_access import POOL_LABEL
from components.config import load_stack, parse
from components.k8s.gpu import CHART, CHART_REPO, CHART_VERSION, needs_device_plugin
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed

RELEASE = "kubernetes:helm.sh/v3:Release"


def test_device_plugin_is_a_pinned_helm_release_on_each_cluster_that_needs_it(deployed: Deployed) -> None:
    releases = {r.provider: r.inputs for r in deployed.resources if r.type == RELEASE and r.inputs["chart"] == CHART}
    provider_of = {  # each region's cluster provider, found through its namespace
        r.inputs["metadata"]["name"]: r.provider for r in deployed.resources if r.type == "kubernetes:core/v1:Namespace"
    }
    expected = {
        provider_of[namespace_name(r.name)] for r in deployed.config.regions if needs_device_plugin(deployed.config, r)
    }
    assert set(releases) == expected
    for inputs in releases.values():
        assert inputs["repositoryOpts"] == {"repo": CHART_REPO}
        assert inputs["version"] == CHART_VERSION and re.fullmatch(r"\d+\.\d+\.\d+", CHART_VERSION)
        assert inputs["namespace"] == "kube-system"
        terms = inputs["values"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": ["gpu"]}]} in terms[
            "nodeSelectorTerms"
        ]  # the label our GPU pools carry


def test_eks_needs_the_plugin_and_gke_brings_its_own() -> None:
    config = load_stack("dev")
    clouds = {r.cloud: needs_device_plugin(config, r) for r in config.regions}
    assert clouds == {Cloud.AWS: True, Cloud.GCP: False}


def test_an_existing_cluster_without_gpu_nodes_gets_no_plugin() -> None:
    config = load_stack("local")
    assert not any(needs_device_plugin(config, r) for r in config.regions)


def test_regions_sharing_a_cluster_install_the_plugin_once() -> None:
    raw = load_stack("local").model_dump(mode="json", by_alias=True)
    for region in raw["regions"]:
        region["gpu"] |= {"min": 1, "desired": 1}
    config = parse(raw, "test")
    assert [needs_device_plugin(config, r) for r in config.regions] == [True, False, False]
