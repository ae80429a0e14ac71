"""One AWS region of the fleet: network, EKS with its node groups and Karpenter (the GPU nodes),
the region's data bucket, its model registry bucket and Ed25519 signing key (its models stay in
its residency zone), ECR repositories and the workloads' IAM roles. Everything goes through this
region's own provider."""

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
    get_objects,
    list_objects,
    read_objects,
    use_key,
    write_objects,
)
from components.aws.karpenter import DISCOVERY_TAG, Karpenter, KarpenterArgs
from components.aws.keys import artifact_signer
from components.aws.network import AwsNetwork, NetworkArgs
from components.aws.providers import regional_provider
from components.aws.registry import ImageRepositories, ImageRepositoriesArgs
from components.aws.storage import SecureBucket, SecureBucketArgs
from components.cloud_region import GLOBAL_MODELS, CloudRegionArgs, artifact_prefix
from components.cluster_access import (
    ClusterAccess,
    ModelRegistry,
    ServiceAccountRef,
    localizer_service_accounts,
    server_service_accounts,
    trainer_service_accounts,
)
from components.k8s.storage import DefaultStorageClass, DefaultStorageClassArgs

DEFAULT_STORAGE_CLASS = "gp3"


@dataclass(frozen=True)
class AwsModelRegistry:
    """A region's registry bucket and its encryption key, as IAM policies and the CDN name them."""

    bucket: aws.s3.Bucket
    key: aws.kms.Key


@dataclass(frozen=True)
class AwsRegionArgs:
    common: CloudRegionArgs
    # The home's registry, whose global model this region's localizer reads from the bucket when
    # no CDN serves it; None at home (its own) or when the home is not on AWS.
    home_registry: AwsModelRegistry | None


class AwsRegion(pulumi.ComponentResource):
    provider: aws.Provider
    access: ClusterAccess
    data_bucket: SecureBucket
    model_registry: AwsModelRegistry  # this region's own, in its region
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
        # CPU metrics for KEDA's cpu trigger (the resource metrics API), and the stack's admins.
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
        # The AWS home's CloudFront (components/global_routing.py) serves every AWS region's
        # registry at `<cdn>/<region>`; with the CDN off or another home, readers use the bucket.
        cdn_url = common.model_registry_url

        def bucket(purpose: str, cdn: str | None = None) -> SecureBucket:
            return SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(
                    purpose=purpose,
                    region=region.name,
                    stack=common.stack,
                    account=account,
                    key_service_statements=[cloudfront_key_statement(account)] if cdn else [],
                    policy_attached_by_cdn=cdn is not None,
                ),
                opts=child,
            )

        self.data_bucket = bucket("data")
        registry_bucket = bucket("registry", cdn_url)
        self.model_registry = AwsModelRegistry(bucket=registry_bucket.bucket, key=registry_bucket.key)
        signing_key, signer = artifact_signer(
            f"{name}-signing", stack=common.stack, account=account, provider=self.provider, opts=child
        )
        images = ImageRepositories(
            f"{name}-ecr", ImageRepositoriesArgs(stack=common.stack, account=account), opts=child
        )

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

        data, own = self.data_bucket, self.model_registry
        reads_data = [*read_objects(data.bucket.arn), use_key(data.key.arn, "Decrypt")]
        # The whole own bucket is listable, so a `latest` not yet published is a 404, not a 403;
        # it holds only this region's variants (and at home the global model).
        reads_own_registry = [list_objects(own.bucket.arn), use_key(own.key.arn, "Decrypt")]

        def publishes(path: str) -> list[dict[str, object]]:
            """Publish signed artifacts under `<path>/` of this region's bucket, signed with its key
            (a publish reads back the `latest` pointer it advances)."""
            prefix = artifact_prefix(path)
            return [
                get_objects(own.bucket.arn, prefix),
                *write_objects(own.bucket.arn, prefix),
                use_key(own.key.arn, "GenerateDataKey"),
                use_key(signing_key.arn, "Sign", "GetPublicKey"),
            ]

        # At home the SuperLink's ServerApp publishes the global model; elsewhere the trainer
        # reaches its own data alone.
        publishes_global = [*reads_own_registry, *publishes(GLOBAL_MODELS)] if common.is_home else []
        home_registry = own if common.is_home else args.home_registry
        reads_global = (
            [
                *read_objects(home_registry.bucket.arn, artifact_prefix(GLOBAL_MODELS)),
                use_key(home_registry.key.arn, "Decrypt"),
            ]
            if home_registry is not None and cdn_url is None
            else []  # over HTTPS from the CDN (or from a home on another cloud)
        )
        localizer = role(
            "localizer",
            [*reads_data, *reads_own_registry, *publishes(region.name), *reads_global],
            localizer_service_accounts(region.name),
        )
        trainer = role("trainer", [*reads_data, *publishes_global], trainer_service_accounts(region.name))
        server = role(
            "server",
            [*reads_own_registry, get_objects(own.bucket.arn, artifact_prefix(region.name))],
            server_service_accounts(region.name),
        )

        def models(path: str) -> ModelRegistry:
            """This region's registry path `<path>`: published to the bucket, read from the CDN."""
            store = pulumi.Output.concat("s3://", own.bucket.bucket, "/", path)
            return ModelRegistry(store_url=store, read_url=f"{cdn_url}/{path}" if cdn_url else store, signer=signer)

        self.access = ClusterAccess(
            provider=self.eks.provider,
            image_registry=images.registry,
            data_url=pulumi.Output.concat("s3://", data.bucket.bucket),
            trainer_identity=trainer.identity,
            server_identity=server.identity,
            # the workloads start once their nodes (or GPU NodePool), volumes and metrics exist
            depends_on=[*self.eks.node_groups, self.karpenter, self.addons, storage],
            registry_auth=images.auth,
            models=models(region.name),
            global_models=models(GLOBAL_MODELS) if common.is_home else None,
            localizer_identity=localizer.identity,
        )
        self.register_outputs(
            {
                "cluster": self.eks.cluster.name,
                "dataBucket": data.bucket.bucket,
                "registryBucket": own.bucket.bucket,
                "signingKey": signing_key.arn,
                "imageRegistry": images.registry,
            }
        )
