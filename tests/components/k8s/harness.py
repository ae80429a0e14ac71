"""Deploys components/k8s (and the image builds) for every region of a stack under mocks.

The components are exercised on their own, with a ClusterAccess per region built here, so
their tests do not depend on the cloud layers. They run on the offline engine of `meridian
preview` (meridian/mocks.py), which answers what the components read: LoadBalancer ingress
hosts, docker-build refs, pulumi-tls PEMs. Recorded inputs are engine-shaped (camelCase,
numbers as floats).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.cluster_access import ArtifactSigner, ClusterAccess, ModelRegistry, WorkloadIdentity
from components.config import Region, StackConfig
from components.fleet import region_workloads
from components.front_door import FrontDoor, plain_front_door
from components.k8s.region import RegionWorkloads
from components.k8s.trust import FederationTrust, FederationTrustArgs
from components.pulumi_internals import resolved
from meridian.mocks import Recorded, run_under_mocks
from workloads import contract

_IDENTITY_ANNOTATION = {
    Cloud.AWS: ("eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/{region}-{role}"),
    Cloud.GCP: ("iam.gke.io/gcp-service-account", "{region}-{role}@meridian.iam.gserviceaccount.com"),
}


def _identity(region: Region, role: str) -> WorkloadIdentity:
    if region.cloud not in _IDENTITY_ANNOTATION:
        return WorkloadIdentity()
    key, value = _IDENTITY_ANNOTATION[region.cloud]
    return WorkloadIdentity({key: value.format(region=region.name, role=role)})


# The shape of what the clouds' ClusterAccess.models / .global_models hold: a bucket prefix per
# region in its zone, read through the CDN path, signed by a KMS key; an existing cluster reads
# and writes the operator's registry and signs with a PEM key mounted from a Secret.
PUBLIC_KEY_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA{region}\n-----END PUBLIC KEY-----\n"
PRIVATE_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI{region}\n-----END PRIVATE KEY-----\n"
CDN = "https://models.example.com"


def _signer(region: Region) -> ArtifactSigner:
    public = PUBLIC_KEY_PEM.format(region=region.name)
    if region.cloud is Cloud.AWS:
        return ArtifactSigner(f"awskms:///arn:aws:kms:{region.name}:123456789012:key/{region.name}-signing", public)
    if region.cloud is Cloud.GCP:
        key = f"projects/meridian/locations/{region.name}/keyRings/meridian/cryptoKeys/artifact-signing"
        return ArtifactSigner(f"gcpkms://{key}/cryptoKeyVersions/1", public)
    private = pulumi.Output.secret(PRIVATE_KEY_PEM.format(region=region.name))
    return ArtifactSigner(contract.SIGNING_KEY_PATH, public, private)


def registries(region: Region, home: bool) -> tuple[ModelRegistry, ModelRegistry | None]:
    """The region's own registry, and at home the global one (same signer, `global` prefix)."""
    signer = _signer(region)
    if region.kubernetes is not None:
        own = ModelRegistry(region.kubernetes.model_store_url, region.kubernetes.model_registry_url, signer)
        return own, own if home else None
    bucket = f"{'s3' if region.cloud is not Cloud.GCP else 'gs'}://meridian-models-{region.name}"
    own = ModelRegistry(f"{bucket}/{region.name}", f"{CDN}/{region.name}", signer)
    return own, ModelRegistry(f"{bucket}/global", f"{CDN}/global", signer) if home else None


def access_for(region: Region, home: bool = False) -> ClusterAccess:
    models, global_models = registries(region, home)
    if region.kubernetes is not None:
        target = region.kubernetes
        return ClusterAccess(
            provider=k8s.Provider(f"k8s-{region.name}", context=target.context),
            image_registry=target.image_registry,
            data_url=f"pvc://{target.data_volume_claim}",
            trainer_identity=_identity(region, "trainer"),
            server_identity=_identity(region, "server"),
            models=models,
            global_models=global_models,
            localizer_identity=_identity(region, "localizer"),
        )
    scheme = "s3" if region.cloud is Cloud.AWS else "gs"
    return ClusterAccess(
        provider=k8s.Provider(f"k8s-{region.name}", kubeconfig="{}"),
        image_registry=f"registry.{region.name}.example.com/meridian",
        data_url=f"{scheme}://meridian-data-{region.name}",
        trainer_identity=_identity(region, "trainer"),
        server_identity=_identity(region, "server"),
        models=models,
        global_models=global_models,
        localizer_identity=_identity(region, "localizer"),
    )


def front_door_for(config: StackConfig, region: Region) -> FrontDoor:
    """The shape of the TLS material the clouds' front doors hold (components/front_door.py)."""
    names = plain_front_door(config, region)
    if region.cloud is Cloud.AWS:
        arn = f"arn:aws:acm:{region.name}:123456789012:certificate/{region.name}-front-door"
        return replace(names, acm_certificate_arn=pulumi.Output.from_input(arn))
    if region.cloud is Cloud.GCP:
        return replace(
            names,
            gcp_certificate_map=pulumi.Output.from_input(f"{region.name}-front-door"),
            gcp_address_name=pulumi.Output.from_input(f"{region.name}-front-door"),
            gcp_address=pulumi.Output.from_input("203.0.113.10"),
            gcp_ssl_policy=pulumi.Output.from_input("front-door-modern"),
        )
    return names


def _program(config: StackConfig, outputs: dict[str, Any]) -> None:
    labels = config.tags.as_dict("test")
    trust = FederationTrust("federation", FederationTrustArgs(config))
    superlink: pulumi.Output[str] | None = None
    metrics_receiver: pulumi.Output[str] | None = None
    home = config.home_region
    global_models = access_for(home, home=True).global_models
    for region in [home, *[r for r in config.regions if r is not home]]:
        workloads = region_workloads(
            config,
            region,
            access_for(region, home=region is home),
            image_tag="test",
            labels=labels,
            trust=trust,
            front_door=front_door_for(config, region),
            superlink=superlink,
            metrics_receiver=metrics_receiver,
            global_models=global_models,
        )
        if region is home:
            superlink = workloads.superlink_address
            metrics_receiver = workloads.metrics_receiver_address
        outputs[region.name] = workloads


def engine_config(config: StackConfig) -> dict[str, str]:
    """The stack's `auth` as the engine hands it over: the offline engine stands in for the API
    keys' secret config from it (meridian/mocks.py)."""
    return {"meridian:auth": config.auth.model_dump_json(by_alias=True)}


def deploy(config: StackConfig) -> tuple[list[Recorded], dict[str, dict[str, Any]]]:
    """Every resource registered for the stack, and each region's resolved outputs."""
    regions: dict[str, RegionWorkloads] = {}
    recorded = run_under_mocks(lambda: _program(config, regions), config=engine_config(config)).resources
    outputs = {
        name: {
            "inferenceEndpoint": resolved(w.inference_endpoint),
            "superlinkAddress": resolved(w.superlink_address),
            "metricsReceiverAddress": resolved(w.metrics_receiver_address),
            "edge_endpoints": {site: resolved(e) for site, e in w.edge_endpoints.items()},
        }
        for name, w in regions.items()
    }
    return recorded, outputs
