"""The Google APIs the fleet calls, enabled once per stack in its project (`gcp.projects.Service`),
so a first `pulumi up` on a fresh project does not fail on "API not enabled". The first GCP
region registers them through its provider; every GCP region's resources and invokes, and the
GCP global layer, depend on them.

Each resource module of pulumi-gcp the program registers maps to the API it calls (`API_OF`);
a test holds every recorded GCP resource to it. Prerequisite, not managed here: the Service
Usage API (serviceusage.googleapis.com) that enabling goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_gcp as gcp


class Api(StrEnum):
    COMPUTE = "compute.googleapis.com"  # VPC, NAT, load balancer, CDN, health checks
    CONTAINER = "container.googleapis.com"  # GKE clusters and node pools
    CLOUDKMS = "cloudkms.googleapis.com"  # key rings, keys, their IAM
    STORAGE = "storage.googleapis.com"  # buckets, their IAM, the GCS service agent lookup
    ARTIFACT_REGISTRY = "artifactregistry.googleapis.com"  # image repositories
    IAM = "iam.googleapis.com"  # service accounts and their IAM
    # Workload Identity: pods exchange their Kubernetes token for the Google account's through
    # the IAM Service Account Credentials API.
    IAM_CREDENTIALS = "iamcredentials.googleapis.com"
    RESOURCE_MANAGER = "cloudresourcemanager.googleapis.com"  # project IAM, the project lookup
    DNS = "dns.googleapis.com"  # the managed zone and its records (GCP home only)
    # Each region's Gateway certificate, its DNS authorizations and certificate map
    CERTIFICATE_MANAGER = "certificatemanager.googleapis.com"


# pulumi-gcp resource module (`gcp:<module>/...`) -> the API its calls go to.
API_OF: dict[str, Api] = {
    "compute": Api.COMPUTE,
    "container": Api.CONTAINER,
    "kms": Api.CLOUDKMS,
    "storage": Api.STORAGE,
    "artifactregistry": Api.ARTIFACT_REGISTRY,
    "serviceaccount": Api.IAM,
    "projects": Api.RESOURCE_MANAGER,
    "dns": Api.DNS,
    "certificatemanager": Api.CERTIFICATE_MANAGER,
}


def api_of(type_token: str) -> Api | None:
    """The API a pulumi-gcp resource type calls (`gcp:container/cluster:Cluster` -> container)."""
    package, module, _ = type_token.split(":")
    return API_OF.get(module.split("/")[0]) if package == "gcp" else None


def required_apis(gcp_home: bool) -> tuple[Api, ...]:
    """Every API of the GCP regions; Cloud DNS only when the fleet's zone lives in GCP."""
    return tuple(api for api in Api if gcp_home or api is not Api.DNS)


@dataclass(frozen=True)
class ProjectServicesArgs:
    project: str
    apis: tuple[Api, ...]
    provider: gcp.Provider  # the project's APIs are not regional: any region's provider will do


class ProjectServices(pulumi.ComponentResource):
    """One `gcp.projects.Service` per API of the project, shared by all its GCP regions."""

    services: dict[Api, gcp.projects.Service]

    def __init__(self, name: str, args: ProjectServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:ProjectServices", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.services = {
            api: gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=args.project,
                service=api.value,
                # A destroy leaves the API on: other workloads of the project may use it, and
                # turning compute or IAM off under them would break them.
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child,
            )
            for api in args.apis
        }
        self.register_outputs({"services": [api.value for api in args.apis]})
