"""What every EKS cluster runs beside the workloads: the EBS CSI driver, whose IRSA role trusts
only its controller's ServiceAccount and holds only the AWS-managed driver policy, metrics-server,
both pinned; and a default, encrypted gp3 StorageClass, so the SuperLink's claim binds."""

from __future__ import annotations

import kubernetes_validate

from components.aws.addons import (
    EBS_CSI_CONTROLLER,
    EBS_CSI_DRIVER,
    EBS_PROVISIONER,
    METRICS_SERVER,
)
from components.catalog import Cloud
from components.k8s.storage import DEFAULT_CLASS_ANNOTATION
from meridian.mocks import ACCOUNT, Inventory
from tests.components.aws.arns import role_arn
from tests.components.cloud_queries import config_of, named, regions_on, statements
from tests.components.k8s.manifests import manifest

ADDON = "aws:eks/addon:Addon"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"


def test_every_aws_region_pins_the_ebs_csi_driver_and_metrics_server(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        cluster = named(inventory, f"{region.name}-eks", "aws:eks/cluster:Cluster").inputs["name"]
        for suffix, pin in (("ebs-csi-driver", EBS_CSI_DRIVER), ("metrics-server", METRICS_SERVER)):
            addon = named(inventory, f"{region.name}-addons-{suffix}", ADDON)
            assert addon.provider == f"aws-{region.name}"
            assert addon.inputs["clusterName"] == cluster
            assert (addon.inputs["addonName"], addon.inputs["addonVersion"]) == (pin.name, pin.version)
    assert (EBS_CSI_DRIVER.name, METRICS_SERVER.name) == ("aws-ebs-csi-driver", "metrics-server")
    # versions are EKS builds: vMAJOR.MINOR.PATCH-eksbuild.N
    assert all(p.version.startswith("v") and "-eksbuild." in p.version for p in (EBS_CSI_DRIVER, METRICS_SERVER))


def test_no_other_cloud_gets_eks_addons(stack: str, inventory: Inventory) -> None:
    aws_regions = {r.name for r in regions_on(stack, Cloud.AWS)}
    ours = [a for a in inventory.of_type(ADDON) if a.parent and a.parent.endswith("-addons")]
    assert sorted(a.region or "" for a in ours) == sorted([*aws_regions, *aws_regions])


def test_the_ebs_csi_role_trusts_only_the_drivers_controller_and_holds_only_the_managed_policy(
    stack: str, inventory: Inventory
) -> None:
    assert EBS_CSI_CONTROLLER.subject == "system:serviceaccount:kube-system:ebs-csi-controller-sa"
    for region in regions_on(stack, Cloud.AWS):
        provider = named(inventory, f"{region.name}-eks-oidc", "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        host = provider.inputs["url"].removeprefix("https://")
        role = named(inventory, f"{region.name}-addons-ebs-csi", ROLE)
        (trust,) = statements(role, "assumeRolePolicy")
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"}
        assert trust["Condition"] == {
            "StringEquals": {f"{host}:sub": [EBS_CSI_CONTROLLER.subject], f"{host}:aud": "sts.amazonaws.com"}
        }
        attached = [a for a in inventory.of_type(ATTACHMENT) if a.parent == role.name]
        assert [a.inputs["policyArn"] for a in attached] == [
            "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
        ]
        assert all(a.inputs["role"] == role.name for a in attached)
        inline = [p for p in inventory.of_type("aws:iam/rolePolicy:RolePolicy") if p.parent == role.name]
        assert inline == []
        addon = named(inventory, f"{region.name}-addons-ebs-csi-driver", ADDON)
        assert addon.inputs["serviceAccountRoleArn"] == role_arn(role)
        assert "serviceAccountRoleArn" not in named(inventory, f"{region.name}-addons-metrics-server", ADDON).inputs


def test_each_eks_cluster_has_one_default_storage_class_encrypted_gp3(stack: str, inventory: Inventory) -> None:
    version = config_of(stack).kubernetes_version
    for region in regions_on(stack, Cloud.AWS):
        recorded = named(inventory, f"{region.name}-storage-class", STORAGE_CLASS)
        assert recorded.provider == f"{region.name}-eks-k8s"  # the region's own cluster
        obj = manifest(recorded.type, recorded.inputs)
        kubernetes_validate.validate(obj, version, strict=True)
        assert obj["metadata"]["annotations"] == {DEFAULT_CLASS_ANNOTATION: "true"}
        assert obj["provisioner"] == EBS_PROVISIONER == "ebs.csi.aws.com"
        assert obj["parameters"] == {"type": "gp3", "encrypted": "true"}
        assert obj["volumeBindingMode"] == "WaitForFirstConsumer"
        assert {"owner", "stack", "cost-center"} <= set(obj["metadata"]["labels"])
        on_cluster = [s for s in inventory.of_type(STORAGE_CLASS) if s.provider == recorded.provider]
        defaults = [
            s for s in on_cluster if (s.inputs["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION)
        ]
        assert defaults == [recorded]


def test_the_superlinks_claim_leaves_the_class_to_the_clusters_default(stack: str, inventory: Inventory) -> None:
    """It names no class, so on EKS it binds through the default above (once its pod is scheduled)."""
    config = config_of(stack)
    if config.home_region.cloud is not Cloud.AWS:
        return
    (claim,) = [c for c in inventory.of_type(PVC) if c.inputs["metadata"]["name"] == "superlink-state"]
    assert "storageClassName" not in claim.inputs["spec"]
    assert claim.provider == f"{config.home}-eks-k8s"
