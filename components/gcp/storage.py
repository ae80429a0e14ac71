"""GCS buckets that hold data or models: a customer key (CMEK), uniform access, public access
prevention enforced, versioning, and a single region (data stays in its residency zone)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.gcp.keys import KeyRing


@dataclass(frozen=True)
class GcsBucketArgs:
    purpose: str  # "data" or "registry"
    location: str  # the region: a single-region bucket
    project: str
    keys: KeyRing
    storage_agent: pulumi.Input[str]  # the project's GCS service agent: it encrypts with the key


class GcsBucket(pulumi.ComponentResource):
    bucket: gcp.storage.Bucket
    key: gcp.kms.CryptoKey

    def __init__(self, name: str, args: GcsBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:GcsBucket", name, None, opts)
        # Beside the provider's default labels: what it holds and which region it serves, as
        # the residency rules read them (policy/rules/meridian/residency.py).
        labels = {"meridian-purpose": args.purpose, "meridian-region": args.location}
        self.key, grant = args.keys.key(f"{name}-key", encrypter=args.storage_agent, labels=labels)
        self.bucket = gcp.storage.Bucket(
            name,
            project=args.project,
            location=args.location.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=self.key.id),
            force_destroy=False,
            labels=labels,
            # GCS checks the key grant when the bucket is created
            opts=pulumi.ResourceOptions(parent=self, depends_on=[grant]),
        )
        self.register_outputs({"bucket": self.bucket.name, "key": self.key.id})
