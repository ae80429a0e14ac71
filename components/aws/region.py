"""One AWS region of the fleet: network, EKS with its node groups and Karpenter (the GPU nodes),
the region's data bucket, ECR repositories, the workloads' IAM roles, and at home the model
registry bucket. Everything goes through this region's own provider."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.account import lookup_account
from components.aws.addons import EBS_GP3_ENCRYPTED, EBS_PROVISIONER, EksAddons, EksAddonsArgs
from components.aws.cdn import cloudfront_key_statement
from components.aws.cluster import EksCluster, EksClusterArgs
from components.aws.cluster_admins import ClusterAdmins, ClusterAdminsArgs
from components.aws.identity import (
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    read_objects,
    use_key,
    write_objects,
)
from components.aws.karpenter import DISCOVERY_TAG, Karpenter, KarpenterArgs
from components.aws.network import AwsNetwork, NetworkArgs
from components.aws.providers import regional_provider
from components.aws.registry import ImageRepositories, ImageRepositoriesArgs
from components.aws.storage import SecureBucket, SecureBucketArgs
from components.cloud_region import CloudRegionArgs, artifact_prefix
from components.cluster_access import (
    ClusterAccess,
    ServiceAccountRef,
    server_service_accounts,
    trainer_service_accounts,
)
from components.k8s.storage import DefaultStorageClass, DefaultStorageClassArgs

DEFAULT_STORAGE_CLASS = "gp3"


@dataclass(frozen=True)
class AwsModelRegistry:
    """The home region's registry bucket, for the IAM policies of every AWS region."""

    bucket: aws.s3.Bucket
    key: aws.kms.Key


@dataclass(frozen=True)
class AwsRegionArgs:
    common: CloudRegionArgs
    registry: AwsModelRegistry | None  # None at home (created here) or when home is not on AWS


class AwsRegion(pulumi.ComponentResource):
    provider: aws.Provider
    access: ClusterAccess
    data_bucket: SecureBucket
    model_registry: AwsModelRegistry | None  # the registry this region reads, if on AWS
    eks: EksCluster
    addons: EksAddons
    karpenter: Karpenter

    def __init__(self, name: str, args: AwsRegionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:AwsRegion", name, None, opts)
        common = args.common
        region = common.region
        self.provider = regional_provider(region.name, common.tags, parent=self)
        child = pulumi.ResourceOptions(parent=self, providers=[self.provider])
        account = lookup_account(self.provider)

        network = AwsNetwork(
            f"{name}-network",
            NetworkArgs(
                cidr=common.cidr,
                edge_sites=region.edge_sites,
                private_subnet_tags={DISCOVERY_TAG: common.unique_name},  # the cluster's name
            ),
            opts=child,
        )
        self.eks = EksCluster(
            f"{name}-eks",
            EksClusterArgs(
                cluster_name=common.unique_name,
                stack=common.stack,
                region=region,
                kubernetes_version=common.config.kubernetes_version,
                subnet_ids=network.private_subnet_ids,
                edge_subnet_ids=network.edge_subnet_ids,
                api_allowed_cidrs=common.config.network.api_allowed_cidrs,
                account=account,
            ),
            opts=child,
        )
        # What the workloads need of the cluster itself: volumes for the SuperLink's claim,
        # metrics for the HPA, and the stack's admins.
        self.addons = EksAddons(
            f"{name}-addons",
            EksAddonsArgs(
                cluster_name=self.eks.cluster.name,
                oidc_provider_arn=self.eks.oidc_provider.arn,
                oidc_issuer=self.eks.oidc_issuer,
                account=account,
                node_groups=self.eks.node_groups,
            ),
            opts=child,
        )
        # GPU nodes come and go with the GPU pods, spot first (components/aws/karpenter.py).
        self.karpenter = Karpenter(
            f"{name}-karpenter",
            KarpenterArgs(
                cluster_name=common.unique_name,
                region=region.name,
                gpu=region.gpu,
                cluster_security_group_id=self.eks.security_group_id,
                oidc_provider_arn=self.eks.oidc_provider.arn,
                oidc_issuer=self.eks.oidc_issuer,
                account=account,
                k8s_provider=self.eks.provider,
                system_nodes=self.eks.system_node_group,
                tags=common.tags,
                labels=common.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, providers=[self.provider, self.eks.provider]),
        )
        storage = DefaultStorageClass(
            f"{name}-storage",
            DefaultStorageClassArgs(
                provider=self.eks.provider,
                name=DEFAULT_STORAGE_CLASS,
                provisioner=EBS_PROVISIONER,
                parameters=EBS_GP3_ENCRYPTED,
                labels=common.tags,
                depends_on=(self.addons.ebs_csi_driver,),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if common.config.aws.admin_role_arns:
            ClusterAdmins(
                f"{name}-admins",
                ClusterAdminsArgs(
                    cluster_name=self.eks.cluster.name,
                    role_arns=tuple(common.config.aws.admin_role_arns),
                    account=account,
                ),
                opts=child,
            )
        self.data_bucket = SecureBucket(
            f"{name}-data",
            SecureBucketArgs(purpose="data", stack=common.stack, account=account),
            opts=child,
        )
        images = ImageRepositories(
            f"{name}-ecr", ImageRepositoriesArgs(stack=common.stack, account=account), opts=child
        )

        self.model_registry = args.registry
        if common.is_home:
            cdn = common.config.cdn.enabled
            registry_bucket = SecureBucket(
                f"{name}-registry",
                SecureBucketArgs(
                    purpose="registry",
                    stack=common.stack,
                    account=account,
                    key_service_statements=[cloudfront_key_statement(account)] if cdn else [],
                    policy_attached_by_cdn=cdn,
                ),
                opts=child,
            )
            self.model_registry = AwsModelRegistry(bucket=registry_bucket.bucket, key=registry_bucket.key)

        def role(
            role_name: str, statements: list[dict[str, object]], accounts: tuple[ServiceAccountRef, ...]
        ) -> ServiceAccountRole:
            return ServiceAccountRole(
                f"{name}-{role_name}",
                ServiceAccountRoleArgs(
                    oidc_provider_arn=self.eks.oidc_provider.arn,
                    oidc_issuer=self.eks.oidc_issuer,
                    service_accounts=accounts,
                    statements=statements,
                ),
                opts=child,
            )

        data = self.data_bucket
        trainer_statements = [*read_objects(data.bucket.arn), use_key(data.key.arn, "Decrypt")]
        server_statements: list[dict[str, object]] = []
        if self.model_registry is not None:
            registry = self.model_registry
            trainer_statements += [
                *write_objects(registry.bucket.arn, artifact_prefix(region.name)),
                use_key(registry.key.arn, "GenerateDataKey", "Encrypt"),
            ]
            server_statements += [*read_objects(registry.bucket.arn), use_key(registry.key.arn, "Decrypt")]
        trainer = role("trainer", trainer_statements, trainer_service_accounts(region.name))
        server = role("server", server_statements, server_service_accounts(region.name))

        registry_url = common.model_registry_url or (
            pulumi.Output.concat("s3://", self.model_registry.bucket.bucket)
            if self.model_registry is not None
            else None
        )
        if registry_url is None:
            raise ValueError(f"{region.name}: no model registry URL (enable the CDN)")
        self.access = ClusterAccess(
            provider=self.eks.provider,
            image_registry=images.registry,
            data_url=pulumi.Output.concat("s3://", data.bucket.bucket),
            model_registry_url=registry_url,
            trainer_identity=trainer.identity,
            server_identity=server.identity,
            # the workloads start once their nodes (or GPU NodePool), volumes and metrics exist
            depends_on=[*self.eks.node_groups, self.karpenter, self.addons, storage],
            registry_auth=images.auth,
        )
        self.register_outputs(
            {
                "cluster": self.eks.cluster.name,
                "dataBucket": data.bucket.bucket,
                "imageRegistry": images.registry,
            }
        )
