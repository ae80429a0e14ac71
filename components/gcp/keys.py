"""Cloud KMS: one key ring per region, one key per purpose, rotated every 90 days; the Google
service agent that encrypts on our behalf (GKE, GCS) is the only one granted the key."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

ROTATION_PERIOD = "7776000s"  # 90 days


class KeyRing(pulumi.ComponentResource):
    ring: gcp.kms.KeyRing

    def __init__(
        self, name: str, ring_name: str, location: str, project: str, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("meridian:gcp:KeyRing", name, None, opts)
        # Key rings and keys cannot be deleted in GCP: names must stay stable across updates.
        self.ring = gcp.kms.KeyRing(
            name, name=ring_name, location=location, project=project, opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"id": self.ring.id})

    def key(
        self, name: str, *, encrypter: pulumi.Input[str], labels: dict[str, str] | None = None
    ) -> tuple[gcp.kms.CryptoKey, gcp.kms.CryptoKeyIAMMember]:
        """A key that only `encrypter` (a service agent member) may use; wait on the grant.
        `labels` add to the provider's default labels."""
        child = pulumi.ResourceOptions(parent=self)
        key = gcp.kms.CryptoKey(
            name,
            name=name,
            key_ring=self.ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=ROTATION_PERIOD,
            labels=labels,
            opts=child,
        )
        grant = gcp.kms.CryptoKeyIAMMember(
            name,
            crypto_key_id=key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=encrypter,
            opts=child,
        )
        return key, grant
