"""Deploys components/k8s (and the image builds) for every region of a stack under mocks.

The components are exercised on their own, with a ClusterAccess per region built here, so
their tests do not depend on the cloud layers. The mocks answer like the providers do for
what the components read: LoadBalancer ingress hosts, docker-build refs, pulumi-tls PEMs.
Recorded inputs are engine-shaped (camelCase, numbers as floats), as in `meridian preview`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.catalog import Cloud
from components.cluster_access import ClusterAccess, WorkloadIdentity
from components.config import Region, StackConfig
from components.images import WorkloadImages, WorkloadImagesArgs
from components.k8s.region import RegionWorkloads, RegionWorkloadsArgs
from components.k8s.trust import FederationTrust, FederationTrustArgs


@dataclass
class Resource:
    type: str
    name: str
    provider: str | None  # the explicit provider's resource name
    inputs: dict[str, Any]


def _hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _pem(kind: str, name: str) -> str:
    return f"-----BEGIN {kind}-----\n{_hash(kind, name)}\n-----END {kind}-----\n"


def mock_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if typ == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
        return {"status": {"loadBalancer": {"ingress": [{"hostname": f"{name}-{_hash(name)[:8]}.elb.example.com"}]}}}
    if typ == "docker-build:index:Image":
        digest = "sha256:" + _hash(name)
        return {"digest": digest, "ref": f"{inputs['tags'][0]}@{digest}"}
    if typ == "tls:index/privateKey:PrivateKey":
        return {
            "privateKeyPem": _pem("PRIVATE KEY", name),
            "privateKeyOpenssh": _pem("OPENSSH PRIVATE KEY", name),
            "publicKeyPem": _pem("PUBLIC KEY", name),
            "publicKeyOpenssh": f"ecdsa-sha2-nistp384 {_hash('pub', name)}",
        }
    if typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        return {"certPem": _pem("CERTIFICATE", name)}
    if typ == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": _pem("CERTIFICATE REQUEST", name)}
    return {}


class _Mocks(pulumi_mocks.Mocks):
    def __init__(self) -> None:
        self.recorded: list[Resource] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        provider = args.provider.rsplit("::", 2)[-2] if args.provider else None
        self.recorded.append(Resource(args.typ, args.name, provider, args.inputs))
        return f"{args.name}-id", {**args.inputs, **mock_outputs(args.typ, args.name, args.inputs)}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


_IDENTITY_ANNOTATION = {
    Cloud.AWS: ("eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/{region}-{role}"),
    Cloud.GCP: ("iam.gke.io/gcp-service-account", "{region}-{role}@meridian.iam.gserviceaccount.com"),
}


def _identity(region: Region, role: str) -> WorkloadIdentity:
    if region.cloud not in _IDENTITY_ANNOTATION:
        return WorkloadIdentity()
    key, value = _IDENTITY_ANNOTATION[region.cloud]
    return WorkloadIdentity({key: value.format(region=region.name, role=role)})


def access_for(region: Region) -> ClusterAccess:
    if region.kubernetes is not None:
        target = region.kubernetes
        return ClusterAccess(
            provider=k8s.Provider(f"k8s-{region.name}", context=target.context),
            image_registry=target.image_registry,
            data_url=f"pvc://{target.data_volume_claim}",
            model_registry_url=target.model_registry_url,
            trainer_identity=_identity(region, "trainer"),
            server_identity=_identity(region, "server"),
        )
    scheme = "s3" if region.cloud is Cloud.AWS else "gs"
    return ClusterAccess(
        provider=k8s.Provider(f"k8s-{region.name}", kubeconfig="{}"),
        image_registry=f"registry.{region.name}.example.com/meridian",
        data_url=f"{scheme}://meridian-data-{region.name}",
        model_registry_url="https://models.example.com",
        trainer_identity=_identity(region, "trainer"),
        server_identity=_identity(region, "server"),
    )


def _program(config: StackConfig, outputs: dict[str, Any]) -> None:
    labels = config.tags.as_dict("test")
    trust = FederationTrust("federation", FederationTrustArgs(config))
    superlink: pulumi.Output[str] | None = None
    home = config.home_region
    for region in [home, *[r for r in config.regions if r is not home]]:
        access = access_for(region)
        images = WorkloadImages(
            f"{region.name}-images",
            WorkloadImagesArgs(registry=access.image_registry, registry_auth=None, tag="test"),
        )
        workloads = RegionWorkloads(
            f"{region.name}-workloads",
            RegionWorkloadsArgs(
                config=config,
                region=region,
                access=access,
                images=images.refs,
                superlink_address=superlink,
                labels=labels,
                trust=trust,
            ),
        )
        if region is home:
            superlink = workloads.superlink_address
        outputs[region.name] = workloads


def run(program: Callable[[], None]) -> list[Resource]:
    """Run `program` under fresh mocks; every resource it registered."""
    mocks = _Mocks()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="meridian", stack="test", preview=False)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(program))
    return mocks.recorded


def deploy(config: StackConfig) -> tuple[list[Resource], dict[str, dict[str, Any]]]:
    """Every resource registered for the stack, and each region's resolved outputs."""
    regions: dict[str, RegionWorkloads] = {}
    recorded = run(lambda: _program(config, regions))

    def resolve(value: Any) -> Any:
        return None if value is None else _sync_await(pulumi.Output.from_input(value).future())

    resolved = {
        name: {
            "inference_endpoint": resolve(w.inference_endpoint),
            "superlink_address": resolve(w.superlink_address),
            "edge_endpoints": {site: resolve(e) for site, e in w.edge_endpoints.items()},
        }
        for name, w in regions.items()
    }
    return recorded, resolved
