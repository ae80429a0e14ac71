"""SuperNodes: one per region, verifying the SuperLink with the federation CA, authenticating
with their own key, reading only their region's data."""

from __future__ import annotations

from pathlib import Path

from components.cluster_access import GPU_TAINT_KEY, POOL_LABEL
from components.k8s.flower import FLEET_SERVICE
from components.k8s.namespace import namespace_name
from components.k8s.pods import GPU_RESOURCE
from components.k8s.supernode import CLIENTAPP_CONTAINER, SUPEREXEC_MOUNT
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, env_of, flags, pod_spec
from workloads import contract

ROOT = Path(__file__).resolve().parents[3]


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
        (node,) = [
            c for c in containers(deployed.named("Deployment", namespace, "supernode")) if c["name"] == "supernode"
        ]
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
        (node,) = [c for c in spec["containers"] if c["name"] == "supernode"]
        (app,) = [c for c in spec["containers"] if c["name"] == CLIENTAPP_CONTAINER]
        # only the ClientApp, which trains, mounts the data: not the SuperNode, not the metrics sidecar
        assert all(
            m["mountPath"] != contract.DATA_MOUNT for c in spec["containers"] if c is not app for m in c["volumeMounts"]
        )
        assert f'{contract.NODE_DATA_DIR_KEY}="{contract.DATA_MOUNT}"' in (flags(node)["--node-config"] or "")
        (data_mount,) = [m for m in app["volumeMounts"] if m["mountPath"] == contract.DATA_MOUNT]
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


def test_a_supernode_trains_on_cpu_and_never_holds_or_tolerates_a_gpu(deployed: Deployed) -> None:
    """The trainer image installs CPU torch (workloads/trainer/requirements.txt): a GPU given to
    the SuperNode would sit idle, held from the inference servers."""
    requirements = (ROOT / "workloads/trainer/requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    for region in deployed.config.regions:
        spec = pod_spec(deployed.named("Deployment", namespace_name(region.name), "supernode"))
        assert spec is not None
        for c in [*spec["containers"], *(spec.get("initContainers") or [])]:
            assert GPU_RESOURCE not in c["resources"]["requests"], c["name"]
            assert GPU_RESOURCE not in c["resources"]["limits"], c["name"]
        assert all(t["key"] != GPU_TAINT_KEY for t in spec.get("tolerations") or [])
        if region.kubernetes is None:  # our cloud pools: the untainted CPU system pool
            assert spec["nodeSelector"] == {POOL_LABEL: "system"}
        else:  # an existing cluster's nodes carry none of our labels
            assert "nodeSelector" not in spec


def test_each_supernode_runs_its_clientapp_in_a_long_lived_container_beside_it(deployed: Deployed) -> None:
    """`--isolation process`: the SuperNode starts no ClientApp process; the runner beside it,
    same image, takes each task from the node's Runtime API on the pod's loopback (never a
    Service), authenticated by a secret of this pod's own, and answers its probes only while
    its task loop runs."""
    secrets = set()
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        deployment = deployed.named("Deployment", namespace, "supernode")
        by_name = {c["name"]: c for c in containers(deployment)}
        node, app = by_name["supernode"], by_name[CLIENTAPP_CONTAINER]
        assert node["command"] == ["python", "-m", contract.SUPERNODE_MODULE]
        assert app["command"] == ["python", "-m", contract.CLIENTAPP_RUNNER_MODULE]
        assert app["image"] == node["image"]
        node_flags, app_flags = flags(node), flags(app)
        assert node_flags["--isolation"] == "process"
        assert node_flags["--host"] == "127.0.0.1"
        assert node_flags["--port"] == str(contract.SUPERNODE_CLIENTAPPIO_PORT)
        assert app_flags["--runtime-api-address"] == f"127.0.0.1:{contract.SUPERNODE_CLIENTAPPIO_PORT}"
        secret_file = f"{SUPEREXEC_MOUNT}/{contract.SUPEREXEC_SECRET_FILE}"
        assert node_flags["--superexec-auth-secret-file"] == app_flags["--superexec-auth-secret-file"] == secret_file
        secrets.add(deployed.named("Secret", namespace, "supernode-auth")["stringData"][contract.SUPEREXEC_SECRET_FILE])
        for probe in ("livenessProbe", "readinessProbe"):
            assert app[probe]["tcpSocket"]["port"] == contract.CLIENTAPP_HEALTH_PORT
        assert app_flags["--health-port"] == str(contract.CLIENTAPP_HEALTH_PORT)
        assert env_of(app)[contract.ENV_TRAINING_RECORDS].startswith(
            contract.CACHE_MOUNT
        )  # read by the metrics sidecar
        assert 0.01 <= float(env_of(node)[contract.ENV_FLEET_POLL_SECONDS]) < 3  # below Flower's fixed 3 s
        assert not any(
            p.get("port") == contract.SUPERNODE_CLIENTAPPIO_PORT
            for s in deployed.objects("Service")
            if s["metadata"]["namespace"] == namespace
            for p in s["spec"]["ports"]
        )
    assert len(secrets) == len(deployed.config.regions)  # no two pods share one
