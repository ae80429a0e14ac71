"""Cloud CDN in front of the model registry bucket: a global external HTTPS load balancer
(Google-managed certificate, TLS 1.2+, no HTTP listener) with a CDN-enabled backend bucket,
served at `models.<domain>`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import Cdn
from components.gcp.project import Project

MAX_TTL_SECONDS = 31_536_000


@dataclass(frozen=True)
class RegistryCdnArgs:
    bucket: gcp.storage.Bucket
    domain_name: str  # e.g. models.eu.example.com
    project: Project
    settings: Cdn


class RegistryCdn(pulumi.ComponentResource):
    address: gcp.compute.GlobalAddress
    url: str

    def __init__(self, name: str, args: RegistryCdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:RegistryCdn", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = args.project.id
        # The bucket stays private (public access prevention enforced): only Cloud CDN's
        # cache-fill agent may read it, and only its objects.
        fill = gcp.storage.BucketIAMMember(
            f"{name}-cache-fill",
            bucket=args.bucket.name,
            role="roles/storage.objectViewer",
            member=args.project.service_agent("cloud-cdn-fill"),
            opts=child,
        )
        ttl = args.settings.default_ttl_seconds
        backend = gcp.compute.BackendBucket(
            f"{name}-backend",
            project=project,
            bucket_name=args.bucket.name,
            enable_cdn=True,
            compression_mode="AUTOMATIC",
            cdn_policy=gcp.compute.BackendBucketCdnPolicyArgs(
                cache_mode="CACHE_ALL_STATIC",
                default_ttl=ttl,
                client_ttl=ttl,
                max_ttl=max(ttl, MAX_TTL_SECONDS),
                request_coalescing=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[fill]),
        )
        url_map = gcp.compute.URLMap(f"{name}-urls", project=project, default_service=backend.self_link, opts=child)
        certificate = gcp.compute.ManagedSslCertificate(
            f"{name}-cert",
            project=project,
            managed=gcp.compute.ManagedSslCertificateManagedArgs(domains=[args.domain_name]),
            opts=child,
        )
        tls = gcp.compute.SSLPolicy(
            f"{name}-tls", project=project, profile="MODERN", min_tls_version="TLS_1_2", opts=child
        )
        proxy = gcp.compute.TargetHttpsProxy(
            f"{name}-https",
            project=project,
            url_map=url_map.self_link,
            ssl_certificates=[certificate.self_link],
            ssl_policy=tls.self_link,
            opts=child,
        )
        self.address = gcp.compute.GlobalAddress(f"{name}-ip", project=project, opts=child)
        # Port 443 only: there is no HTTP forwarding rule to downgrade to.
        gcp.compute.GlobalForwardingRule(
            f"{name}-https",
            project=project,
            target=proxy.self_link,
            ip_address=self.address.address,
            port_range="443",
            ip_protocol="TCP",
            load_balancing_scheme="EXTERNAL_MANAGED",
            opts=child,
        )
        self.url = f"https://{args.domain_name}"
        self.register_outputs({"url": self.url, "address": self.address.address})
