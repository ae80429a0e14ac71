"""Customer-managed KMS keys: every encrypted thing in a region gets its own, rotated yearly."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.account import Account


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
) -> aws.kms.Key:
    """The key `<owner>-key`, aliased `meridian/<stack>/<owner>` and described as Meridian's
    `<stack> <subject>: <use>` (subject: the owner unless named), administered by the account
    (IAM policies decide who uses it).

    `service_statements` grant AWS services that cannot use IAM (e.g. CloudFront through
    origin access control) the use of the key. `tags` add to the provider's default tags.
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
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags=tags,
        opts=opts,
    )
    aws.kms.Alias(name, name=f"alias/meridian/{stack}/{owner}", target_key_id=key.key_id, opts=opts)
    return key
