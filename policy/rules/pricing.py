"""What a set of resources costs per hour, at minimum and at maximum scale, from prices.yaml.

The cost-ceiling rule, `meridian cost` and `meridian diff` all price resources here, so they
agree. A resource is priced from its inputs (machine type, scaling bounds, spot) and its
region; traffic-priced kinds (CDN, NAT, inter-region transfer) use the table's stated
monthly traffic. Anything billable that the table cannot price is listed, never guessed.

GPU demand is counted apart from GPU capacity: the GPUs the stack's GPU workloads request at
their minimum and maximum scale (a Deployment's replicas, or its autoscaler's bounds: a KEDA
ScaledObject's min/maxReplicaCount, an HPA's min/maxReplicas, times the GPUs its pod requests).
On the clouds GPU nodes follow the pods, so demand shows what the pools would really run; on an
existing cluster nothing is billed, but the GPUs it asks for are real all the same.

Node capacity comes from managed node groups, GKE node pools and Karpenter NodePools (EKS's
GPU nodes). A NodePool has no node count: its bound is its `limits` (`nvidia.com/gpu`, or
`nodes`), its minimum is zero (Karpenter launches for pending pods only), and it is priced at
on-demand rates unless spot is its only capacity type (at maximum scale spot may run short).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .props import dig, items, mapping

PRICES_FILE = Path(__file__).with_name("prices.yaml")

GPU_NODES = "gpu nodes"
CPU_NODES = "cpu nodes"
CONTROL_PLANE = "control planes"
NAT = "nat"
LOAD_BALANCER = "load balancers"
CDN = "cdn"
TRANSFER = "inter-region transfer"
KINDS = (GPU_NODES, CPU_NODES, CONTROL_PLANE, NAT, LOAD_BALANCER, CDN, TRANSFER)

EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
KARPENTER_NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_POOLS = (EKS_NODE_GROUP, GKE_NODE_POOL, KARPENTER_NODE_POOL)
GPU_RESOURCE = "nvidia.com/gpu"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
CLUSTERS = {"aws:eks/cluster:Cluster": "aws", "gcp:container/cluster:Cluster": "gcp"}
NATS = {"aws:ec2/natGateway:NatGateway": "aws", "gcp:compute/routerNat:RouterNat": "gcp"}
LOAD_BALANCERS = {
    "aws:lb/loadBalancer:LoadBalancer": "aws",
    "aws:alb/loadBalancer:LoadBalancer": "aws",
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": "gcp",
    "gcp:compute/forwardingRule:ForwardingRule": "gcp",
}
CDNS = {
    "aws:cloudfront/distribution:Distribution": "aws",
    "gcp:compute/backendBucket:BackendBucket": "gcp",
    "gcp:compute/backendService:BackendService": "gcp",
}
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# autoscaler type -> (its min and max replica keys, the target kind when its ref names none)
AUTOSCALERS = {
    "kubernetes:keda.sh/v1alpha1:ScaledObject": ("minReplicaCount", "maxReplicaCount", "Deployment"),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ("minReplicas", "maxReplicas", ""),
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler": ("minReplicas", "maxReplicas", ""),
}
KEDA_DEFAULT_MIN, KEDA_DEFAULT_MAX = 0, 100  # keda-docs reference/scaledobject-spec.md
GLOBAL = "global"
DEFAULT_GKE_ZONES = 3  # a regional node pool without nodeLocations spans the region's zones
_ZONE = re.compile(r"^(?P<region>[a-z]+-[a-z]+\d+)-[a-z]$")


@dataclass(frozen=True)
class Priced:
    """What pricing needs of a resource: its type, name, inputs and where it runs."""

    type: str
    name: str
    props: Mapping[str, Any]
    region: str | None  # its provider's region or its own location; None if unknown
    provider: str = ""  # its provider's name: a Kubernetes provider is named after its region


@dataclass(frozen=True)
class Machine:
    usd_per_hour: float
    gpus: int
    accelerator: str | None


@dataclass(frozen=True)
class LineItem:
    region: str
    kind: str
    resource: str
    usd_hour_min: float
    usd_hour_max: float
    gpus_min: int = 0
    gpus_max: int = 0
    accelerator: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class GpuDemand:
    """A GPU workload: what it requests at its minimum and maximum scale."""

    workload: str  # <namespace>/<Deployment> on <provider>
    gpus_min: int
    gpus_max: int


@dataclass
class Estimate:
    items: list[LineItem] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)  # billable resources the table lacks
    demand: list[GpuDemand] = field(default_factory=list)  # GPU workloads, priced or not

    @property
    def gpus_requested_min(self) -> int:
        return sum(d.gpus_min for d in self.demand)

    @property
    def gpus_requested_max(self) -> int:
        return sum(d.gpus_max for d in self.demand)

    @property
    def usd_hour_min(self) -> float:
        return sum(i.usd_hour_min for i in self.items)

    @property
    def usd_hour_max(self) -> float:
        return sum(i.usd_hour_max for i in self.items)

    @property
    def gpus_min(self) -> int:
        return sum(i.gpus_min for i in self.items)

    @property
    def gpus_max(self) -> int:
        return sum(i.gpus_max for i in self.items)

    def by(self, key: str) -> dict[str, tuple[float, float]]:
        """Hourly (min, max) totals grouped by `region` or `kind`."""
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for item in self.items:
            group = totals[getattr(item, key)]
            group[0] += item.usd_hour_min
            group[1] += item.usd_hour_max
        return {k: (v[0], v[1]) for k, v in sorted(totals.items())}


@cache
def price_table() -> Mapping[str, Any]:
    return yaml.safe_load(PRICES_FILE.read_text())


def hours_per_month() -> float:
    return float(price_table()["hours_per_month"])


def machine(cloud: str, machine_type: str) -> Machine | None:
    entry = mapping(dig(price_table(), "machines", cloud, machine_type))
    if not entry:
        return None
    return Machine(float(entry["usd_per_hour"]), int(entry["gpus"]), entry.get("accelerator"))


def gpu_accelerator(cloud: str, accelerator_type: str) -> tuple[float, str] | None:
    """A GPU billed apart from its machine (GCP's N1 guest accelerators): ($/h, accelerator)."""
    entry = mapping(dig(price_table(), "accelerators", cloud, accelerator_type))
    return (float(entry["usd_per_hour"]), str(entry["accelerator"])) if entry else None


def accelerator_bundled(cloud: str, accelerator_type: str) -> bool:
    """Whether the GPU comes with its machine (G2, A2, A3) and is counted in the machine's price."""
    return dig(price_table(), "accelerators", cloud, accelerator_type, "bundled") is True


def cloud_of(region: str | None) -> str | None:
    for cloud, regions in mapping(price_table().get("regions")).items():
        if region in mapping(regions):
            return str(cloud)
    return None


def region_factor(cloud: str, region: str) -> float:
    return float(dig(price_table(), "regions", cloud, region, "factor") or 1.0)


def service(cloud: str, name: str, unit: str) -> float:
    return float(dig(price_table(), "services", cloud, name, unit))


def _traffic(name: str) -> float:
    return float(dig(price_table(), "traffic", name))


def region_in_name(name: str) -> str | None:
    """The longest known cloud region named inside `name` (`k8s-eu-west-1` -> eu-west-1)."""
    known = [r for regions in mapping(price_table().get("regions")).values() for r in mapping(regions)]
    found = [r for r in known if r in name]
    return max(found, key=len) if found else None


def _region_of_location(location: str | None) -> str | None:
    if not location:
        return None
    match = _ZONE.match(location.lower())
    return match.group("region") if match else location.lower()


def _count(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def _quantity(value: Any) -> int | None:
    """A whole Kubernetes quantity (`8`, `8.0`, `"8"`); None when absent or not a plain count."""
    if isinstance(value, (int, float)):
        return int(value)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def node_pool_requirement(props: Mapping[str, Any], key: str) -> list[str]:
    """The values a Karpenter NodePool allows for a node label (`In` requirements only)."""
    for requirement in items(dig(props, "spec", "template", "spec", "requirements")):
        requirement = mapping(requirement)
        if requirement.get("key") == key and requirement.get("operator") == "In":
            return [str(v) for v in items(requirement.get("values"))]
    return []


def _karpenter_node_pool(resource: Priced, estimate: Estimate) -> None:
    """Priced at its bound: the most nodes its limits allow, of its priciest instance type."""
    props = resource.props
    region = resource.region if cloud_of(resource.region) else region_in_name(resource.provider)
    types = node_pool_requirement(props, INSTANCE_TYPE_LABEL)
    machines = {t: machine("aws", t) for t in types}
    unknown = [t for t, m in machines.items() if m is None]
    if not types or unknown or region is None or cloud_of(region) != "aws":
        what = ", ".join(unknown) or ", ".join(types) or "any instance type"
        estimate.unpriced.append(f"{resource.name}: machine {what} in {region or '?'} (aws)")
        return
    known = [m for m in machines.values() if m is not None]
    limits = mapping(dig(props, "spec", "limits"))
    bounds = []
    gpu_limit, node_limit = _quantity(limits.get(GPU_RESOURCE)), _quantity(limits.get("nodes"))
    if gpu_limit is not None and all(m.gpus for m in known):
        bounds.append(gpu_limit // min(m.gpus for m in known))
    if node_limit is not None:
        bounds.append(node_limit)
    if not bounds:
        estimate.unpriced.append(f"{resource.name}: no `{GPU_RESOURCE}` or `nodes` limit, so no maximum scale")
        return
    high = min(bounds)
    spot = node_pool_requirement(props, CAPACITY_TYPE_LABEL) == ["spot"]
    priciest = max(known, key=lambda m: m.usd_per_hour)
    per_node = priciest.usd_per_hour * region_factor("aws", region)
    if spot:
        per_node *= float(dig(price_table(), "spot", "aws", "factor"))
    gpus = max(m.gpus for m in known)
    estimate.items.append(
        LineItem(
            region=region,
            kind=GPU_NODES if gpus else CPU_NODES,
            resource=resource.name,
            usd_hour_min=0.0,
            usd_hour_max=per_node * high,
            gpus_min=0,
            gpus_max=gpus * high,
            accelerator=priciest.accelerator,
            detail=f"0-{high} x {'|'.join(types)}{' spot' if spot else ''} (Karpenter)",
        )
    )


def _node_pool(resource: Priced, estimate: Estimate) -> None:
    props = resource.props
    if resource.type == KARPENTER_NODE_POOL:
        _karpenter_node_pool(resource, estimate)
        return
    if resource.type == EKS_NODE_GROUP:
        cloud, region = "aws", resource.region
        machine_type = str(next(iter(items(props.get("instanceTypes"))), "") or "")
        scaling = mapping(props.get("scalingConfig"))
        low, high = _count(scaling.get("minSize")), _count(scaling.get("maxSize"))
        spot = props.get("capacityType") == "SPOT"
        extra_gpus: list[tuple[float, str, int]] = []
    else:
        cloud = "gcp"
        region = _region_of_location(props.get("location")) or resource.region
        config = mapping(props.get("nodeConfig"))
        machine_type = str(config.get("machineType") or "")
        zones = len(items(props.get("nodeLocations"))) or (
            1 if _ZONE.match(str(props.get("location") or "")) else DEFAULT_GKE_ZONES
        )
        scaling = mapping(props.get("autoscaling"))
        if "totalMinNodeCount" in scaling or "totalMaxNodeCount" in scaling:
            low, high = _count(scaling.get("totalMinNodeCount")), _count(scaling.get("totalMaxNodeCount"))
        elif scaling:
            low, high = _count(scaling.get("minNodeCount")) * zones, _count(scaling.get("maxNodeCount")) * zones
        else:
            fixed = _count(props.get("nodeCount") or props.get("initialNodeCount")) * zones
            low = high = fixed
        spot = config.get("spot") is True or config.get("preemptible") is True
        extra_gpus = []
        for guest in items(config.get("guestAccelerators")):
            guest = mapping(guest)
            priced = gpu_accelerator(cloud, str(guest.get("type")))
            if priced is None:
                estimate.unpriced.append(f"{resource.name}: GPU {guest.get('type')} ({cloud})")
                return
            if not accelerator_bundled(cloud, str(guest.get("type"))):
                extra_gpus.append((priced[0], priced[1], _count(guest.get("count"))))
    base = machine(cloud, machine_type)
    if base is None or region is None or cloud_of(region) != cloud:
        estimate.unpriced.append(f"{resource.name}: machine {machine_type or '?'} in {region or '?'} ({cloud})")
        return
    per_node = base.usd_per_hour + sum(price * count for price, _, count in extra_gpus)
    per_node *= region_factor(cloud, region)
    if spot:
        per_node *= float(dig(price_table(), "spot", cloud, "factor"))
    gpus = base.gpus + sum(count for _, _, count in extra_gpus)
    accelerator = base.accelerator or next((a for _, a, _ in extra_gpus), None)
    estimate.items.append(
        LineItem(
            region=region,
            kind=GPU_NODES if gpus else CPU_NODES,
            resource=resource.name,
            usd_hour_min=per_node * low,
            usd_hour_max=per_node * high,
            gpus_min=gpus * low,
            gpus_max=gpus * high,
            accelerator=accelerator,
            detail=f"{low}-{high} x {machine_type}{' spot' if spot else ''}",
        )
    )


def _fixed(resource: Priced, cloud: str, kind: str, name: str, region: str, estimate: Estimate) -> None:
    hourly = service(cloud, name, "usd_per_hour")
    if name == "nat_gateway":
        hourly += service(cloud, name, "usd_per_gb") * _traffic("nat_gb_per_gateway") / hours_per_month()
    estimate.items.append(LineItem(region, kind, resource.name, hourly, hourly))


def _cdn(resource: Priced, cloud: str, estimate: Estimate) -> None:
    if resource.type != "aws:cloudfront/distribution:Distribution" and resource.props.get("enableCdn") is not True:
        return
    gb = _traffic("cdn_gb_per_distribution")
    hourly = service(cloud, "cdn_egress", "usd_per_gb") * gb / hours_per_month()
    estimate.items.append(LineItem(GLOBAL, CDN, resource.name, hourly, hourly, detail=f"{gb:g} GB/month"))


def _transfer(regions: set[str], home: str | None, estimate: Estimate) -> None:
    """Federation traffic between each region and home: half up (priced by the region's
    cloud), half down (priced by home's cloud); inter-region rate within a cloud, internet
    egress across clouds."""
    home_cloud = cloud_of(home)
    if home is None or home_cloud is None:
        return
    gb = _traffic("federation_gb_per_region")
    for region in sorted(regions - {home}):
        cloud = cloud_of(region)
        if cloud is None:
            continue
        rate = "inter_region_transfer" if cloud == home_cloud else "internet_egress"
        monthly = gb / 2 * (service(cloud, rate, "usd_per_gb") + service(home_cloud, rate, "usd_per_gb"))
        hourly = monthly / hours_per_month()
        estimate.items.append(
            LineItem(region, TRANSFER, f"{region}<->{home}", hourly, hourly, detail=f"{gb:g} GB/month")
        )


def _pod_gpus(deployment: Mapping[str, Any]) -> int:
    containers = items(dig(deployment, "spec", "template", "spec", "containers"))
    return sum(_quantity(dig(c, "resources", "limits", GPU_RESOURCE)) or 0 for c in containers)


def _object_key(resource: Priced, kind: str, name: Any) -> tuple[str, str, str, str]:
    namespace = dig(resource.props, "metadata", "namespace") or "default"
    return resource.provider, str(namespace), kind, str(name)


def _gpu_demand(resources: list[Priced], estimate: Estimate) -> None:
    """Each GPU Deployment at its autoscaler's bounds, else at its fixed replicas."""
    deployments = {
        _object_key(r, "Deployment", dig(r.props, "metadata", "name") or r.name): r
        for r in resources
        if r.type == K8S_DEPLOYMENT
    }
    bounds: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for r in resources:
        if r.type not in AUTOSCALERS:
            continue
        low_key, high_key, default_kind = AUTOSCALERS[r.type]
        spec = mapping(r.props.get("spec"))
        ref = mapping(spec.get("scaleTargetRef"))
        keda = r.type.startswith("kubernetes:keda.sh/")
        low = spec.get(low_key)
        high = spec.get(high_key)
        key = _object_key(r, str(ref.get("kind") or default_kind), ref.get("name"))
        bounds[key] = (
            _count(low if low is not None else (KEDA_DEFAULT_MIN if keda else 1)),
            _count(high if high is not None else KEDA_DEFAULT_MAX),
        )
    for key, deployment in deployments.items():
        gpus = _pod_gpus(deployment.props)
        if not gpus:
            continue
        replicas = dig(deployment.props, "spec", "replicas")
        fixed = _count(replicas if replicas is not None else 1)
        low, high = bounds.get(key, (fixed, fixed))
        provider, namespace, _, name = key
        estimate.demand.append(GpuDemand(f"{namespace}/{name} on {provider or '?'}", gpus * low, gpus * high))


def estimate(resources: Iterable[Priced], home_region: str | None = None) -> Estimate:
    """Price every billable resource; `home_region` adds federation transfer to and from it."""
    result = Estimate()
    resources = list(resources)
    _gpu_demand(resources, result)
    cluster_regions: set[str] = set()
    for resource in resources:
        region = resource.region
        if resource.type in NODE_POOLS:
            _node_pool(resource, result)
        elif resource.type in CLUSTERS:
            cloud = CLUSTERS[resource.type]
            where = _region_of_location(resource.props.get("location")) if cloud == "gcp" else region
            where = where or region
            if where is None:
                result.unpriced.append(f"{resource.name}: cluster in an unknown region")
                continue
            cluster_regions.add(where)
            _fixed(resource, cloud, CONTROL_PLANE, "control_plane", where, result)
        elif resource.type in NATS:
            _fixed(resource, NATS[resource.type], NAT, "nat_gateway", region or GLOBAL, result)
        elif resource.type in LOAD_BALANCERS:
            _fixed(resource, LOAD_BALANCERS[resource.type], LOAD_BALANCER, "load_balancer", region or GLOBAL, result)
        elif resource.type == K8S_SERVICE and dig(resource.props, "spec", "type") == "LoadBalancer":
            # A Kubernetes provider has no region; the cluster's provider is named after it.
            region = region if cloud_of(region) else region_in_name(resource.provider)
            cloud = cloud_of(region)
            if cloud is not None and region is not None:  # on an existing cluster: not a cloud bill
                _fixed(resource, cloud, LOAD_BALANCER, "load_balancer", region, result)
        elif resource.type in CDNS:
            _cdn(resource, CDNS[resource.type], result)
    _transfer(cluster_regions, home_region, result)
    return result
