"""The price table and the estimator: every catalog machine is priced, and the arithmetic holds."""

from __future__ import annotations

import pytest

from components.catalog import CPU_MACHINES, GCP_ACCELERATOR_TYPES, GPU_MACHINES, REGIONS, Cloud
from policy.rules import pricing
from policy.rules.pricing import CDN, CONTROL_PLANE, GPU_NODES, KARPENTER_NODE_POOL, TRANSFER, Priced, estimate


def _entries():
    table = pricing.price_table()
    for section in ("machines", "accelerators", "regions", "services", "spot"):
        for cloud, entries in table[section].items():
            if section == "spot":
                yield f"{section}.{cloud}", entries
                continue
            for name, entry in entries.items():
                yield f"{section}.{cloud}.{name}", entry


@pytest.mark.parametrize(("where", "entry"), list(_entries()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_price_line_names_its_source_and_date(where: str, entry: dict) -> None:
    assert str(entry["source"]).startswith("https://"), where
    assert len(str(entry["as_of"])) == 7, where  # YYYY-MM


def test_every_catalog_machine_is_priced_with_its_gpus_and_accelerator() -> None:
    for cloud, machines in GPU_MACHINES.items():
        for name, spec in machines.items():
            priced = pricing.machine(cloud, name)
            assert priced is not None, name
            if priced.gpus:  # N1 machines carry GCP guest accelerators, priced apart
                assert (priced.gpus, priced.accelerator) == (spec.gpus, spec.accelerators[0].value), name
    for cloud, machines in CPU_MACHINES.items():
        for name in machines:
            assert pricing.machine(cloud, name) is not None, name
    attachable = {
        a
        for name, spec in GPU_MACHINES[Cloud.GCP].items()
        if spec.gpus and not pricing.machine("gcp", name).gpus
        for a in spec.accelerators
    }
    for accelerator in attachable:
        priced = pricing.gpu_accelerator("gcp", GCP_ACCELERATOR_TYPES[accelerator])
        assert priced is not None and priced[1] == accelerator.value, accelerator


def test_every_catalog_region_has_a_price_factor() -> None:
    for cloud, regions in REGIONS.items():
        for region in regions:
            assert pricing.cloud_of(region) == cloud.value, region


def test_a_spot_gpu_pool_in_europe_costs_its_factors_times_its_nodes() -> None:
    pool = Priced(
        "aws:eks/nodeGroup:NodeGroup",
        "gpu",
        {"instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "scalingConfig": {"minSize": 1.0, "maxSize": 6.0}},
        "eu-west-1",
    )
    (item,) = estimate([pool]).items
    per_node = 1.006 * 1.12 * 0.35
    assert item.kind == GPU_NODES and item.gpus_max == 6
    assert item.usd_hour_min == pytest.approx(per_node) and item.usd_hour_max == pytest.approx(6 * per_node)


def test_a_regional_gke_pool_counts_nodes_in_every_zone_and_adds_n1_gpus() -> None:
    pool = Priced(
        "gcp:container/nodePool:NodePool",
        "gpu",
        {
            "location": "europe-west4",
            "autoscaling": {"minNodeCount": 0, "maxNodeCount": 2},
            "nodeConfig": {
                "machineType": "n1-standard-4",
                "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 1}],
            },
        },
        None,
    )
    (item,) = estimate([pool]).items
    assert item.gpus_max == 6 and item.accelerator == "t4"
    assert item.usd_hour_max == pytest.approx(6 * (0.189999 + 0.35) * 1.10)


def test_fixed_and_traffic_priced_kinds() -> None:
    resources = [
        Priced("aws:eks/cluster:Cluster", "us", {}, "us-east-1"),
        Priced("gcp:container/cluster:Cluster", "eu", {"location": "europe-west4"}, None),
        Priced("aws:cloudfront/distribution:Distribution", "cdn", {}, "us-east-1"),
    ]
    result = estimate(resources, home_region="us-east-1")
    kinds = {i.kind: i for i in result.items}
    assert set(kinds) == {CONTROL_PLANE, CDN, TRANSFER}
    assert kinds[CDN].usd_hour_max == pytest.approx(1000 * 0.085 / 730)
    # 50 GB/month across clouds: 25 GB priced at GCP's egress, 25 GB at AWS's.
    assert kinds[TRANSFER].usd_hour_max == pytest.approx(25 * (0.12 + 0.09) / 730)
    assert result.by("kind")[CONTROL_PLANE] == (pytest.approx(0.2), pytest.approx(0.2))


def test_unknown_machines_are_listed_not_guessed() -> None:
    result = estimate([Priced("aws:eks/nodeGroup:NodeGroup", "x", {"instanceTypes": ["x9.mega"]}, "us-east-1")])
    assert result.items == [] and result.unpriced == ["x: machine x9.mega in us-east-1 (aws)"]


def karpenter_pool(limits: dict, capacity: list[str], types: tuple[str, ...] = ("g5.xlarge",)) -> Priced:
    requirements = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(types)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity},
    ]
    props = {"spec": {"template": {"spec": {"requirements": requirements}}, "limits": limits}}
    # a Kubernetes provider has no region: the cluster's provider is named after it
    return Priced(KARPENTER_NODE_POOL, "gpu", props, None, provider="eu-west-1-eks-k8s")


def test_a_karpenter_node_pool_is_bounded_by_its_gpu_limit_and_starts_at_zero() -> None:
    (item,) = estimate([karpenter_pool({"nvidia.com/gpu": 6.0}, ["spot", "on-demand"])]).items
    per_node = 1.006 * 1.12  # on-demand: at maximum scale spot may have run short
    assert (item.region, item.kind, item.gpus_min, item.gpus_max) == ("eu-west-1", GPU_NODES, 0, 6)
    assert item.usd_hour_min == 0 and item.usd_hour_max == pytest.approx(6 * per_node)


def test_a_spot_only_node_pool_is_priced_at_spot_rates_and_a_node_limit_bounds_too() -> None:
    (item,) = estimate([karpenter_pool({"nvidia.com/gpu": "8", "nodes": 3}, ["spot"])]).items
    assert item.gpus_max == 3 and item.usd_hour_max == pytest.approx(3 * 1.006 * 1.12 * 0.35)


def test_a_multi_gpu_instance_type_divides_the_gpu_limit() -> None:
    (item,) = estimate([karpenter_pool({"nvidia.com/gpu": 8}, ["on-demand"], ("g5.12xlarge",))]).items
    assert item.gpus_max == 8  # two 4-GPU nodes


def test_a_node_pool_without_a_limit_or_a_known_machine_is_listed_unpriced() -> None:
    unbounded = estimate([karpenter_pool({"cpu": 1000}, ["on-demand"])])
    assert unbounded.items == [] and "no `nvidia.com/gpu` or `nodes` limit" in unbounded.unpriced[0]
    unknown = estimate([karpenter_pool({"nvidia.com/gpu": 1}, ["on-demand"], ("x9.mega",))])
    assert unknown.items == [] and "x9.mega" in unknown.unpriced[0]


def gpu_deployment(name: str, gpus: int, replicas: int | None = None, provider: str = "fra-dc1") -> Priced:
    container = {"name": "server", "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": str(gpus)}}}
    spec = {"template": {"spec": {"containers": [container]}}} | ({"replicas": replicas} if replicas else {})
    return Priced(
        "kubernetes:apps/v1:Deployment",
        name,
        {"metadata": {"name": name, "namespace": "ns"}, "spec": spec},
        None,
        provider,
    )


def scaled_object(target: str, low: int | None, high: int | None, provider: str = "fra-dc1") -> Priced:
    spec = {"scaleTargetRef": {"name": target}} | {
        k: v for k, v in (("minReplicaCount", low), ("maxReplicaCount", high)) if v is not None
    }
    return Priced(
        "kubernetes:keda.sh/v1alpha1:ScaledObject",
        f"{target}-scaling",
        {"metadata": {"name": target, "namespace": "ns"}, "spec": spec},
        None,
        provider,
    )


def test_gpu_workloads_request_their_gpus_times_their_autoscalers_bounds() -> None:
    result = estimate([gpu_deployment("server", 1), scaled_object("server", 2.0, 6.0)])  # engine floats
    assert [(d.gpus_min, d.gpus_max) for d in result.demand] == [(2, 6)]
    assert result.items == []  # an existing cluster: nothing billed, the GPUs counted all the same


def test_an_unscaled_gpu_deployment_requests_its_replicas_and_kedas_defaults_apply() -> None:
    fixed = estimate([gpu_deployment("trainer", 2, replicas=3)])
    assert (fixed.gpus_requested_min, fixed.gpus_requested_max) == (6, 6)
    unbounded = estimate([gpu_deployment("server", 1), scaled_object("server", None, None)])
    assert (unbounded.gpus_requested_min, unbounded.gpus_requested_max) == (0, 100)


def test_an_autoscaler_counts_only_for_its_own_clusters_deployment() -> None:
    result = estimate([gpu_deployment("server", 1), scaled_object("server", 1, 8, provider="ams-dc2")])
    assert result.gpus_requested_max == 1  # the other cluster's ScaledObject scales another server
    cpu_only = estimate([Priced("kubernetes:apps/v1:Deployment", "edge", {"metadata": {"name": "edge"}}, None)])
    assert cpu_only.demand == []
