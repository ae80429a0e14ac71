"""Who we are in AWS: the account and partition that policies and ARNs are written against."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Account:
    id: pulumi.Output[str]
    partition: pulumi.Output[str]

    @property
    def root_arn(self) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:iam::{1}:root", self.partition, self.id)


def lookup_account(provider: aws.Provider) -> Account:
    """One pair of invokes per region (through the region's provider), not one per resource."""
    opts = pulumi.InvokeOutputOptions(provider=provider)
    identity = aws.get_caller_identity_output(opts=opts)
    partition = aws.get_partition_output(opts=opts)
    return Account(id=identity.account_id, partition=partition.partition)
