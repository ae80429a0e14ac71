"""A region's model signer: an Ed25519 key in Cloud KMS that signs what the region publishes
(its localized variants; at home also the global model). The private key never leaves KMS;
the workloads sign through `asymmetricSign` with the `gcpkms://` reference, and every reader
verifies with the public key read here, which travels in the stack's outputs and ConfigMaps.

Only the identities listed may sign, and only with this key (`roles/cloudkms.signer`, which
grants `cloudkms.cryptoKeyVersions.useToSign` and no key management). They need no
`publicKeyViewer`: the public key reaches them through the program, not through KMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.cluster_access import ArtifactSigner
from components.gcp.keys import KeyRing

# https://docs.cloud.google.com/kms/docs/algorithms (read 2026-11-30): purpose ASYMMETRIC_SIGN
# (asymmetricSign, getPublicKey), algorithm EC_SIGN_ED25519, which the API defines as "EdDSA on
# the Curve25519 in pure mode (taking data as input)": the workloads send `data`, not a digest.
# SOFTWARE protection: the key is as non-exportable as an HSM one, without the HSM's price per
# key version and operation; these signatures vouch for model artifacts. The page's table of
# algorithms per protection level could not be read here: confirm EC_SIGN_ED25519 at SOFTWARE
# before the first `pulumi up`. The level cannot change once the key exists (a move to HSM is
# a new key, rolled out like any signer change: new reference, new public key).
ALGORITHM = "EC_SIGN_ED25519"
PROTECTION_LEVEL = "SOFTWARE"
# The version KMS creates with the key; rotation is manual for asymmetric keys
# (https://docs.cloud.google.com/kms/docs/key-rotation, read 2026-11-30: "Cloud KMS does not
# support automatic rotation of asymmetric keys").
VERSION = 1
SIGNER_ROLE = "roles/cloudkms.signer"


def key_ref(project: str, location: str, ring: str, key: str, version: int = VERSION) -> str:
    """What the workloads' `--signing-key` takes for a Cloud KMS key version."""
    return (
        f"gcpkms://projects/{project}/locations/{location}/keyRings/{ring}/cryptoKeys/{key}/cryptoKeyVersions/{version}"
    )


@dataclass(frozen=True)
class ModelSignerArgs:
    keys: KeyRing  # the region's key ring: the key lives in the region, beside its data
    project: str
    location: str
    # members (`serviceAccount:...`) that may sign with this key, and no other key
    signers: Sequence[pulumi.Input[str]]


class ModelSigner(pulumi.ComponentResource):
    key: gcp.kms.CryptoKey
    signer: ArtifactSigner

    def __init__(self, name: str, args: ModelSignerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:ModelSigner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Key names stay stable: Cloud KMS never deletes a key.
        self.key = gcp.kms.CryptoKey(
            name,
            name=name,
            key_ring=args.keys.ring.id,
            purpose="ASYMMETRIC_SIGN",
            version_template=gcp.kms.CryptoKeyVersionTemplateArgs(
                algorithm=ALGORITHM, protection_level=PROTECTION_LEVEL
            ),
            labels={"meridian-purpose": "signing"},
            opts=child,
        )
        for i, member in enumerate(args.signers):
            gcp.kms.CryptoKeyIAMMember(
                f"{name}-signer-{i}", crypto_key_id=self.key.id, role=SIGNER_ROLE, member=member, opts=child
            )
        version = gcp.kms.get_kms_crypto_key_version_output(
            crypto_key=self.key.id, version=VERSION, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.signer = ArtifactSigner(
            key_ref=args.keys.ring.name.apply(lambda ring: key_ref(args.project, args.location, ring, name)),
            public_key_pem=version.public_keys.apply(lambda keys: keys[0].pem),
        )
        self.register_outputs({"keyRef": self.signer.key_ref, "publicKeyPem": self.signer.public_key_pem})
