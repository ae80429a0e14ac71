"""Customer-managed KMS keys: every encrypted thing in a region gets its own, rotated yearly;
each region also signs its model artifacts with an Ed25519 key that never leaves KMS."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.account import Account
from components.cluster_access import ArtifactSigner

# Ed25519 in AWS KMS: key spec ECC_NIST_EDWARDS25519, usage SIGN_VERIFY only, signing algorithm
# ED25519_SHA_512 over MessageType RAW (https://docs.aws.amazon.com/kms/latest/developerguide/
# asymmetric-key-specs.html, read 2026-11-30). pulumi-aws 7.51 lists the spec among its valid values.
SIGNING_KEY_SPEC = "ECC_NIST_EDWARDS25519"
SIGNING_KEY_USAGE = "SIGN_VERIFY"
KMS_KEY_REF = "awskms:///"  # + the key's ARN: what the workloads' `--signing-key` takes


def customer_key(
    owner: str,
    use: str,
    *,
    stack: str,
    account: Account,
    opts: pulumi.ResourceOptions,
    subject: str | None = None,
    service_statements: list[dict[str, Any]] | None = None,
    tags: dict[str, str] | None = None,
    signs: bool = False,
) -> aws.kms.Key:
    """The key `<owner>-key`, aliased `meridian/<stack>/<owner>` and described as Meridian's
    `<stack> <subject>: <use>` (subject: the owner unless named), administered by the account
    (IAM policies decide who uses it).

    `service_statements` grant AWS services that cannot use IAM (e.g. CloudFront through
    origin access control) the use of the key. `tags` add to the provider's default tags.
    `signs`: an Ed25519 signing key pair instead of a symmetric encryption key.
    """
    policy = pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": account.root_arn},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                *(service_statements or []),
            ],
        }
    )
    name = f"{owner}-key"
    key = aws.kms.Key(
        name,
        description=f"Meridian {stack} {subject or owner}: {use}",
        # KMS rotates symmetric encryption keys only: "You cannot enable automatic rotation of
        # asymmetric KMS keys" (https://docs.aws.amazon.com/kms/latest/APIReference/
        # API_EnableKeyRotation.html, read 2026-11-30). A new signing key is a new trusted key.
        enable_key_rotation=not signs,
        customer_master_key_spec=SIGNING_KEY_SPEC if signs else None,
        key_usage=SIGNING_KEY_USAGE if signs else None,
        deletion_window_in_days=30,
        policy=policy,
        tags=tags,
        opts=opts,
    )
    aws.kms.Alias(name, name=f"alias/meridian/{stack}/{owner}", target_key_id=key.key_id, opts=opts)
    return key


def artifact_signer(
    owner: str, *, stack: str, account: Account, provider: aws.Provider, opts: pulumi.ResourceOptions
) -> tuple[aws.kms.Key, ArtifactSigner]:
    """A region's Ed25519 signing key in KMS, and the signer the workloads get: the key's ARN as
    `awskms:///<arn>` and its public key (PEM), which KMS hands out once the key exists."""
    key = customer_key(owner, "model artifact signing", stack=stack, account=account, opts=opts, signs=True)
    public = aws.kms.get_public_key_output(
        key_id=key.arn, opts=pulumi.InvokeOutputOptions(provider=provider, parent=opts.parent)
    )
    return key, ArtifactSigner(key_ref=pulumi.Output.concat(KMS_KEY_REF, key.arn), public_key_pem=public.public_key_pem)
