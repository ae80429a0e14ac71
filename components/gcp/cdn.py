"""Cloud CDN in front of the model registries: a global external HTTPS load balancer
(Google-managed certificate, TLS 1.2+, no HTTP listener) served at `models.<domain>` (a GCP
home) or `models-gcp.<domain>` (the GCP regions of an AWS home), with one CDN-enabled backend
bucket per GCP region's registry bucket. Each region's artifacts live under `<region>/` in its
own bucket and are served at `/<region>/*`; a GCP home's bucket also serves `/global/*` (the
global model). Paths map to object names as they are: no rewriting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.cloud_region import GLOBAL_MODELS
from components.config import Cdn
from components.gcp.project import Project

MAX_TTL_SECONDS = 31_536_000


@dataclass(frozen=True)
class RegistryCdnArgs:
    buckets: Mapping[str, gcp.storage.Bucket]  # region -> its registry bucket
    home: str | None  # the region whose bucket holds the global model; None: not served here
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
        ttl = args.settings.default_ttl_seconds

        def backend(region: str, bucket: gcp.storage.Bucket) -> gcp.compute.BackendBucket:
            # The bucket stays private (public access prevention enforced): only Cloud CDN's
            # cache-fill agent may read it, and only its objects.
            fill = gcp.storage.BucketIAMMember(
                f"{name}-{region}-cache-fill",
                bucket=bucket.name,
                role="roles/storage.objectViewer",
                member=args.project.service_agent("cloud-cdn-fill"),
                opts=child,
            )
            return gcp.compute.BackendBucket(
                f"{name}-{region}-backend",
                project=project,
                bucket_name=bucket.name,
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

        backends = {region: backend(region, bucket) for region, bucket in args.buckets.items()}
        routes = {f"/{region}/*": b.self_link for region, b in backends.items()}
        if args.home is not None:
            routes[f"/{GLOBAL_MODELS}/*"] = backends[args.home].self_link
        # What no rule names goes to the URL map's default (a service, a redirect or a route
        # action; compute v1 UrlMap reference, read 2026-11-30): the home's bucket, else the
        # first region's. Paths are object names and each bucket holds only its own region's
        # prefix (and the home's `global/`), which only its publishers may write, so such a path
        # finds no object there: 404, never another region's artifact.
        default = backends[args.home or next(iter(backends))].self_link
        url_map = gcp.compute.URLMap(
            f"{name}-urls",
            project=project,
            default_service=default,
            host_rules=[gcp.compute.URLMapHostRuleArgs(hosts=[args.domain_name], path_matcher="registries")],
            path_matchers=[
                gcp.compute.URLMapPathMatcherArgs(
                    name="registries",
                    default_service=default,
                    path_rules=[
                        gcp.compute.URLMapPathMatcherPathRuleArgs(paths=[path], service=service)
                        for path, service in routes.items()
                    ],
                )
            ],
            opts=child,
        )
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
