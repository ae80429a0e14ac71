"""The NVIDIA device plugin, which makes `nvidia.com/gpu` schedulable, as a pinned Helm release.

Where it is installed:
- AWS: always. EKS's NVIDIA AMIs ship the driver and container toolkit, not the plugin.
- GCP: never. GKE installs and manages its own device plugin on GPU node pools (with the
  driver installed by `gpu_driver_installation_config`); a second one would fight it.
- An existing cluster (`kubernetes`): when the stack says it has GPU nodes (`gpu.desired` >
  0), once per cluster (regions may share one: the first region on it owns the plugin).
The plugin (not the GPU operator) because the driver comes with the node images on every
cloud we create; the operator's job is installing drivers.

The chart tolerates the `nvidia.com/gpu` taint our GPU pools carry. Its default node
affinity (labels set by node-feature-discovery or the GPU operator) matches none of the nodes
we create, so GPU_NODE_AFFINITY adds our own GPU pool label as an alternative term.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.cluster_access import POOL_LABEL
from components.config import Region, StackConfig
from components.k8s import helm
from components.k8s.clusters import cluster_key

CHART = "nvidia-device-plugin"
CHART_VERSION = "0.18.2"
CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
RELEASE_NAME = "nvidia-device-plugin"
# The plugin needs hostPath sockets (privileged by Pod Security): it runs where the cluster's
# own privileged daemons run, never in Meridian's restricted namespaces.
RELEASE_NAMESPACE = "kube-system"
# nodeSelectorTerms are ORed: our GPU pools, or nodes labelled the chart's default ways.
GPU_NODE_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}
                for key, value in (
                    (POOL_LABEL, "gpu"),
                    ("nvidia.com/gpu.present", "true"),
                    ("feature.node.kubernetes.io/pci-10de.present", "true"),
                )
            ]
        }
    }
}


def has_gpus(region: Region) -> bool:
    """A cloud region always has a GPU pool (it may scale from zero); an existing cluster
    has GPUs when the stack says it has GPU nodes."""
    return region.cloud is not Cloud.KUBERNETES or region.gpu.desired > 0


def needs_device_plugin(config: StackConfig, region: Region) -> bool:
    if region.cloud is Cloud.GCP or not has_gpus(region):
        return False
    key = cluster_key(region)
    if key is None:
        return True
    first = next(r for r in config.regions if cluster_key(r) == key and has_gpus(r))
    return first.name == region.name


@dataclass(frozen=True)
class GpuDevicePluginArgs:
    provider: k8s.Provider  # the cluster's, which needs the plugin (needs_device_plugin)


class GpuDevicePlugin(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:GpuDevicePlugin", name, None, opts)
        self.release = helm.release(
            f"{name}-release",
            helm.PinnedChart(RELEASE_NAME, CHART, CHART_VERSION, CHART_REPO),
            namespace=RELEASE_NAMESPACE,
            values={
                "affinity": GPU_NODE_AFFINITY,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "200m", "memory": "128Mi"},
                },
            },
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.register_outputs({"status": self.release.status})
