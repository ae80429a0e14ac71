"""Everything one region's cluster runs: the composition of components/k8s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.cluster_access import ClusterAccess, ModelRegistry
from components.config import Region, StackConfig
from components.front_door import FrontDoor
from components.k8s import network_policy as netpol
from components.k8s.callers import Callers, CallersArgs
from components.k8s.canary import CanaryController, CanaryControllerArgs
from components.k8s.clusters import owns_cluster
from components.k8s.edge import EdgeServers, EdgeServersArgs
from components.k8s.gateway import FrontDoorGateway, FrontDoorGatewayArgs
from components.k8s.gpu import GpuDevicePlugin, GpuDevicePluginArgs, has_gpus, needs_device_plugin
from components.k8s.inference import RegionalInference, RegionalInferenceArgs
from components.k8s.keda import Keda, KedaArgs
from components.k8s.labels import metadata
from components.k8s.localizer import Localizer, LocalizerArgs
from components.k8s.metrics_receiver import MetricsReceiver, MetricsReceiverArgs
from components.k8s.monitoring import (
    MonitoringStack,
    MonitoringStackArgs,
    SendHome,
    global_view,
    installs_stack,
    sends_home,
)
from components.k8s.monitoring_files import MonitoringFiles, MonitoringFilesArgs
from components.k8s.monitors import RegionMonitors, RegionMonitorsArgs
from components.k8s.namespace import namespace_name, restricted_namespace
from components.k8s.serving import ModelSource
from components.k8s.superlink import SuperLink, SuperLinkArgs
from components.k8s.supernode import SuperNode, SuperNodeArgs
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from workloads import contract
from workloads.contract import Image


@dataclass(frozen=True, kw_only=True)
class RegionWorkloadsArgs:
    config: StackConfig
    region: Region
    access: ClusterAccess
    images: Mapping[Image, pulumi.Input[str]]  # digest-pinned refs (WorkloadImages.refs)
    superlink_address: pulumi.Input[str] | None  # None: this region is home, runs the SuperLink
    labels: dict[str, str] = field(default_factory=dict)
    trust: FederationTrust  # the stack's one FederationTrust, shared by every region
    front_door: FrontDoor  # the region's public names and its cloud's TLS material for them
    # The home's global registry (its ClusterAccess.global_models), which every region's
    # localizer follows; None until the home's cloud fills it.
    global_models: ModelRegistry | None = None
    # The home's MetricsReceiver ("host:port"), where this region's cluster sends its series if
    # it does (monitoring.sends_home); None at home and in a stack without a global view.
    metrics_receiver: pulumi.Input[str] | None = None


class RegionWorkloads(pulumi.ComponentResource):
    inference_endpoint: pulumi.Output[str]  # host name or IP <region>.<domain> resolves to
    superlink_address: pulumi.Output[str] | None  # home only: "<lb host>:<fleet port>"
    # home only, with a global view (monitoring.global_view): "<lb host>:<receiver port>"
    metrics_receiver_address: pulumi.Output[str] | None
    edge_endpoints: dict[str, pulumi.Output[str]]  # edge site name -> host name or IP

    def __init__(self, name: str, args: RegionWorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:RegionWorkloads", name, None, opts)
        region, access = args.region, args.access
        missing = [image.value for image in Image if image not in args.images]
        if missing:
            raise ValueError(f"region {region.name}: no image ref for {', '.join(missing)}")
        is_home = args.superlink_address is None
        if is_home != (region.name == args.config.home):
            raise ValueError(
                f"region {region.name}: superlink_address must be None exactly for the home region ({args.config.home})"
            )
        provider_opts = pulumi.ResourceOptions(parent=self, provider=access.provider)
        namespace = restricted_namespace(
            f"{name}-namespace",
            region.name,
            args.config.kubernetes_version,
            args.labels,
            pulumi.ResourceOptions.merge(provider_opts, pulumi.ResourceOptions(depends_on=access.depends_on)),
        )
        target = Target(
            config=args.config,
            region=region,
            namespace=namespace.metadata.name,
            namespace_name=namespace_name(region.name),
            provider=access.provider,
            stack_labels=args.labels,
        )
        netpol.default_deny(f"{name}-default-deny", target.namespace, args.labels, target.opts(self))
        if needs_device_plugin(args.config, region):
            GpuDevicePlugin(
                f"{name}-gpu",
                GpuDevicePluginArgs(provider=access.provider),
                pulumi.ResourceOptions(parent=self, depends_on=access.depends_on),
            )
        # The cluster's KEDA (its first region's) runs the servers' and edges' ScaledObjects.
        keda = (
            Keda(
                f"{name}-keda",
                KedaArgs(config=args.config, region=region, provider=access.provider, labels=args.labels),
                pulumi.ResourceOptions(parent=self, depends_on=access.depends_on),
            )
            if owns_cluster(args.config, region)
            else None
        )
        autoscaler = [keda.release] if keda is not None else []
        gpus = 1 if has_gpus(region) else 0
        # Monitors and rules wait for the operator's CRDs where this region installs them (a
        # second region on a shared cluster, or a reused operator, finds them there).
        monitoring_after: list[pulumi.Resource] = []
        if installs_stack(args.config, region):
            send_home: SendHome | None = None
            if sends_home(args.config, region):
                if args.metrics_receiver is None:
                    raise ValueError(
                        f"region {region.name}: its cluster's Prometheus sends its series home: "
                        f"metrics_receiver must be the home's ({args.config.home}) MetricsReceiver address"
                    )
                send_home = SendHome(receiver=args.metrics_receiver, trust=args.trust)
            stack = MonitoringStack(
                f"{name}-monitoring",
                MonitoringStackArgs(
                    config=args.config,
                    region=region,
                    provider=access.provider,
                    labels=args.labels,
                    send_home=send_home,
                ),
                pulumi.ResourceOptions(parent=self, depends_on=access.depends_on),
            )
            monitoring_after.append(stack.release)
        RegionMonitors(
            f"{name}-monitors",
            RegionMonitorsArgs(target=target, home=is_home, after=monitoring_after),
            pulumi.ResourceOptions(parent=self),
        )
        carries_rules = owns_cluster(args.config, region)
        if carries_rules or is_home:
            MonitoringFiles(
                f"{name}-monitoring-files",
                MonitoringFilesArgs(target=target, rules=carries_rules, dashboards=is_home, after=monitoring_after),
                pulumi.ResourceOptions(parent=self),
            )
        trusted_key = k8s.core.v1.ConfigMap(
            f"{name}-artifact-trust",
            metadata=metadata("artifact-trust", target.namespace, args.labels),
            # servers and edges verify with the region's own signer's public key, and only with it
            data={contract.TRUSTED_KEY_FILE: access.models.signer.public_key_pem},
            opts=target.opts(self),
        )
        trainer = args.images[Image.TRAINER]
        global_models = args.global_models
        if global_models is None:
            raise ValueError(
                f"region {region.name}: no global registry to publish to or follow "
                f"(the home {args.config.home}'s ClusterAccess.global_models)"
            )
        if args.superlink_address is None:
            superlink = SuperLink(
                f"{name}-superlink",
                SuperLinkArgs(
                    target=target,
                    image=trainer,
                    trust=args.trust,
                    identity=access.trainer_identity,
                    global_models=global_models,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            node_address: pulumi.Input[str] = superlink.internal_address
            self.superlink_address = superlink.address
            self.metrics_receiver_address = None
            if global_view(args.config):
                self.metrics_receiver_address = MetricsReceiver(
                    f"{name}-metrics-receiver",
                    MetricsReceiverArgs(target=target, image=trainer, trust=args.trust),
                    pulumi.ResourceOptions(parent=self),
                ).address
        else:
            node_address = args.superlink_address
            self.superlink_address = None
            self.metrics_receiver_address = None
        SuperNode(
            f"{name}-supernode",
            SuperNodeArgs(
                target=target,
                image=trainer,
                trust=args.trust,
                identity=access.trainer_identity,
                superlink_address=node_address,
                data_url=access.data_url,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        Localizer(
            f"{name}-localizer",
            LocalizerArgs(
                target=target,
                image=trainer,
                models=access.models,
                global_models=global_models,
                data_url=access.data_url,
                identity=access.localizer_identity,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        canary = (
            CanaryController(
                f"{name}-canary",
                CanaryControllerArgs(target=target, image=args.images[Image.SERVER]),
                pulumi.ResourceOptions(parent=self),
            )
            if args.config.inference.canary.analysis is not None
            else None
        )
        models = ModelSource(
            registry_url=access.models.read_url,
            trusted_key_config_map=trusted_key.metadata.name,
            identity=access.server_identity,
            admin_token=canary.admin_token if canary else None,
        )
        if region.cloud is Cloud.GCP:  # the server and the edge sites are routed from it
            FrontDoorGateway(
                f"{name}-gateway",
                FrontDoorGatewayArgs(target=target, front_door=args.front_door),
                pulumi.ResourceOptions(parent=self),
            )
        callers = Callers(f"{name}-callers", CallersArgs(target=target), pulumi.ResourceOptions(parent=self))
        inference = RegionalInference(
            f"{name}-inference",
            RegionalInferenceArgs(
                target=target,
                image=args.images[Image.SERVER],
                models=models,
                gpus=gpus,
                callers=callers.pod,
                trust=args.trust,
                front_door=args.front_door,
                autoscaler=autoscaler,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        edges = EdgeServers(
            f"{name}-edge",
            EdgeServersArgs(
                target=target,
                image=args.images[Image.EDGE],
                models=models,
                upstream_url=inference.escalation_url,
                callers=callers.pod,
                trust=args.trust,
                front_door=args.front_door,
                autoscaler=autoscaler,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.inference_endpoint = inference.endpoint
        self.edge_endpoints = edges.endpoints
        self.register_outputs(
            {
                "inferenceEndpoint": self.inference_endpoint,
                "superlinkAddress": self.superlink_address,
                "metricsReceiverAddress": self.metrics_receiver_address,
                "edgeEndpoints": self.edge_endpoints,
            }
        )
