"""The front door of one region: the public names callers reach it by and the cloud's TLS
material for them, decided by the Fleet before the region's workloads exist, so the
Kubernetes exposure (components/k8s) terminates TLS for exactly the names the certificates
and DNS records cover.

Names: a region answers at `<region>.<domain>` and, latency/geo-routed, at
`inference.<domain>`; each of its edge sites at `<site>.<region>.<domain>`, which one
wildcard `*.<region>.<domain>` covers. An AWS region's load balancers present an ACM
certificate; a GCP region's Gateway a Certificate Manager map on a reserved global IP under
a MODERN SSL policy; a `kubernetes` region has no cloud material (its pods serve TLS with the
stack's CA)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.config import Region, StackConfig

GLOBAL_LABEL = "inference"  # clients resolve inference.<domain>, routed to the nearest region


def global_host(config: StackConfig) -> str:
    """The latency/geo-routed name every region also answers at."""
    return f"{GLOBAL_LABEL}.{config.dns.domain}"


def region_host(config: StackConfig, region: str) -> str:
    """A region's own public name."""
    return f"{region}.{config.dns.domain}"


def edge_host(config: StackConfig, region: str, site: str) -> str:
    """An edge site's public name, under its region's (one wildcard covers a region's sites)."""
    return f"{site}.{region_host(config, region)}"


def edge_wildcard(config: StackConfig, region: str) -> str:
    """The certificate name covering every edge site of a region."""
    return f"*.{region_host(config, region)}"


def edge_hosts(config: StackConfig, region: Region) -> dict[str, str]:
    """Edge site name -> its public name."""
    return {site.name: edge_host(config, region.name, site.name) for site in region.edge_sites}


@dataclass(frozen=True)
class FrontDoor:
    """What a region's public listeners present and answer for."""

    region_host: str  # <region>.<domain>
    edge_hosts: dict[str, str] = field(default_factory=dict)  # site -> <site>.<region>.<domain>
    # AWS: the region's issued (validated) ACM certificate, for <region>, inference and *.<region>
    acm_certificate_arn: pulumi.Output[str] | None = None
    # GCP: the Certificate Manager map's name (Gateway annotation networking.gke.io/certmap)
    gcp_certificate_map: pulumi.Output[str] | None = None
    # GCP: the reserved global IP the Gateway binds (its name, for NamedAddress) and its address
    gcp_address_name: pulumi.Output[str] | None = None
    gcp_address: pulumi.Output[str] | None = None
    # GCP: the SSL policy's name (MODERN, TLS 1.2+) the GCPGatewayPolicy references
    gcp_ssl_policy: pulumi.Output[str] | None = None


def plain_front_door(config: StackConfig, region: Region) -> FrontDoor:
    """A region's names with no cloud material: a `kubernetes` region's (TLS in its pods)."""
    return FrontDoor(region_host=region_host(config, region.name), edge_hosts=edge_hosts(config, region))
