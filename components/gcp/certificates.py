"""What a GCP region's Gateway (components/k8s, a GKE global external Application Load
Balancer) presents to callers, made before the Gateway exists: a Google-managed certificate
from Certificate Manager for `<region>.<domain>`, the routed `inference.<domain>` and
`*.<region>.<domain>` (its edge sites), served through a certificate map with one entry per
host; a reserved global IP the Gateway binds, so the region's DNS records and health checks
know its address up front; and a MODERN, TLS 1.2+ SSL policy.

Certificate Manager proves the names by DNS authorization, not load balancer authorization:
the latter cannot issue a wildcard and only issues once the name already resolves to this
load balancer and serves traffic there
(https://cloud.google.com/certificate-manager/docs/domain-authorization), while the routed
name answers with whichever region is nearest (another GCP region's Gateway, or another
cloud's load balancer). A DNS authorization is a CNAME in the stack's zone, whichever cloud
serves it; one authorization covers a domain and its wildcard. The routed name's
authorization is the project's one for that name (the record name is fixed per domain): the
first GCP region makes it and later ones use it (`proven`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.stack_zone import StackZone

# TLS 1.2 or later under Google's MODERN profile, as the policy pack holds every HTTPS proxy
# to (gcp-lb-modern-tls; https://cloud.google.com/load-balancing/docs/ssl-policies-concepts).
SSL_PROFILE = "MODERN"
MIN_TLS_VERSION = "TLS_1_2"
AUTHORIZATION_TTL = 300  # Certificate Manager re-reads the record at every renewal


@dataclass(frozen=True)
class GatewayTlsArgs:
    prefix: str  # `meridian-<stack>`: Certificate Manager and compute names are per project
    region: str
    region_host: str
    global_host: str
    edge_hosts: Mapping[str, str]  # site -> its host, under region_host
    zone: StackZone  # where the DNS authorizations' records go
    project: str
    services: Sequence[pulumi.Resource]  # what every child waits for: the project's APIs
    # Names whose DNS authorization another region of the stack made already: its id
    proven: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


class GatewayTls(pulumi.ComponentResource):
    """Children take the region's provider from `opts`; the authorization records go through
    the zone's."""

    certificate_map: pulumi.Output[str]  # its name: the Gateway's networking.gke.io/certmap
    address_name: pulumi.Output[str]  # the reserved global IP's name (a NamedAddress)
    address: pulumi.Output[str]
    ssl_policy: pulumi.Output[str]  # its name, for the Gateway's GCPGatewayPolicy
    # Name -> the id of the DNS authorization this region made for it
    authorizations: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: GatewayTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:GatewayTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.services))
        own = f"{args.prefix}-{args.region}"
        self.authorizations = {}
        for domain in (args.region_host, args.global_host):
            if domain in args.proven:
                continue
            label = domain.split(".")[0]  # the region, or the routed name's `inference`
            authorization = gcp.certificatemanager.DnsAuthorization(
                f"{name}-{label}-authorization",
                project=args.project,
                name=f"{args.prefix}-{label}",
                domain=domain,
                opts=child,
            )
            challenge = authorization.dns_resource_records[0]
            args.zone.record(
                f"{name}-{label}-authorization",
                challenge.name,
                challenge.type,
                [challenge.data],
                self,
                ttl=AUTHORIZATION_TTL,
            )
            self.authorizations[domain] = authorization.id
        proofs = {**args.proven, **self.authorizations}
        certificate = gcp.certificatemanager.Certificate(
            f"{name}-cert",
            project=args.project,
            name=own,
            managed=gcp.certificatemanager.CertificateManagedArgs(
                domains=[args.region_host, args.global_host, f"*.{args.region_host}"],
                dns_authorizations=[proofs[args.region_host], proofs[args.global_host]],
            ),
            opts=child,
        )
        certificate_map = gcp.certificatemanager.CertificateMap(
            f"{name}-map", project=args.project, name=own, opts=child
        )
        hosts = {"region": args.region_host, "inference": args.global_host} | {
            f"edge-{site}": host for site, host in args.edge_hosts.items()
        }
        for entry, host in hosts.items():
            gcp.certificatemanager.CertificateMapEntry(
                f"{name}-{entry}",
                project=args.project,
                name=f"{own}-{entry}",
                map=certificate_map.name,
                hostname=host,
                certificates=[certificate.id],
                opts=child,
            )
        address = gcp.compute.GlobalAddress(
            f"{name}-ip", project=args.project, name=f"{own}-gateway", ip_version="IPV4", opts=child
        )
        policy = gcp.compute.SSLPolicy(
            f"{name}-policy",
            project=args.project,
            name=f"{own}-tls",
            profile=SSL_PROFILE,
            min_tls_version=MIN_TLS_VERSION,
            opts=child,
        )
        self.certificate_map = certificate_map.name
        self.address_name = address.name
        self.address = address.address
        self.ssl_policy = policy.name
        self.register_outputs(
            {
                "certificateMap": self.certificate_map,
                "addressName": self.address_name,
                "address": self.address,
                "sslPolicy": self.ssl_policy,
            }
        )
