"""SuperNodes: one per region, verifying the SuperLink with the federation CA, authenticating
with their own key, reading only their region's data."""

from __future__ import annotations

from components.k8s.flower import FLEET_SERVICE
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, flags, pod_spec
from workloads import contract


def test_one_supernode_per_region_in_its_own_namespace(deployed: Deployed) -> None:
    nodes = sorted(
        o["metadata"]["namespace"] for o in deployed.objects("Deployment") if o["metadata"]["name"] == "supernode"
    )
    assert nodes == sorted(namespace_name(r.name) for r in deployed.config.regions)


def test_supernodes_verify_the_superlink_and_authenticate_with_their_own_key(deployed: Deployed) -> None:
    home = deployed.config.home
    address = deployed.superlink_address
    assert address.endswith(f":{contract.SUPERLINK_FLEET_PORT}")
    keys = set()
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        (node,) = containers(deployed.named("Deployment", namespace, "supernode"))
        args = flags(node)
        assert "--insecure" not in args
        assert args["--root-certificates"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
        assert args["--auth-supernode-private-key"] == f"{contract.KEYS_MOUNT}/{contract.NODE_KEY_FILE}"
        if region.name == home:
            assert (
                args["--superlink"] == f"{FLEET_SERVICE}.{namespace}.svc.cluster.local:{contract.SUPERLINK_FLEET_PORT}"
            )
        else:
            assert args["--superlink"] == address
        assert f'region="{region.name}"' in (args["--node-config"] or "")
        keys.add(deployed.named("Secret", namespace, "supernode-auth")["stringData"][contract.NODE_KEY_FILE])
    assert len(keys) == len(deployed.config.regions)  # no two regions share a node key


def test_a_supernode_reads_only_its_regions_data_from_a_read_only_directory(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        obj = deployed.named("Deployment", namespace_name(region.name), "supernode")
        spec = pod_spec(obj)
        assert spec is not None
        (node,) = spec["containers"]
        assert f'{contract.NODE_DATA_DIR_KEY}="{contract.DATA_MOUNT}"' in (flags(node)["--node-config"] or "")
        (data_mount,) = [m for m in node["volumeMounts"] if m["mountPath"] == contract.DATA_MOUNT]
        assert data_mount["readOnly"] is True
        (volume,) = [v for v in spec["volumes"] if v["name"] == data_mount["name"]]
        if region.kubernetes is not None:
            assert volume["persistentVolumeClaim"] == {
                "claimName": region.kubernetes.data_volume_claim,
                "readOnly": True,
            }
            assert not spec.get("initContainers")
        else:
            assert "emptyDir" in volume
            (sync,) = spec["initContainers"]
            assert sync["command"] == list(contract.DATA_SYNC_COMMAND)
            source = flags(sync)["--source"] or ""
            assert source.startswith(("s3://", "gs://")) and region.name in source  # its own bucket
            assert flags(sync)["--dest"] == contract.DATA_MOUNT
