"""ARNs as the offline engine (meridian/mocks.py) hands them out, to follow references."""

from __future__ import annotations

from meridian.mocks import ACCOUNT, Recorded, short_hash


def key_arn(key: Recorded) -> str:
    return f"arn:aws:kms:{key.region}:{ACCOUNT}:key/{short_hash(key.name)}"


def bucket_arn(bucket: Recorded) -> str:
    return f"arn:aws:s3:::{bucket.inputs.get('bucket') or bucket.name}"


def role_arn(role: Recorded) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{role.name}"
