"""Flower: one SuperLink per stack (home), one SuperNode per region, TLS and node auth."""

from __future__ import annotations

import tomllib
from pathlib import Path

from components.config import load_stack
from components.k8s.federation import CONTROL_SERVICE, FLEET_SERVICE, run_config
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, pod_spec
from workloads import contract

ROOT = Path(__file__).resolve().parents[3]


def _args(container: dict) -> dict[str, str | None]:
    """`--flag value` pairs (a bare flag maps to None)."""
    args, out, i = container["args"], {}, 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[args[i]] = args[i + 1]
            i += 2
        else:
            out[args[i]] = None
            i += 1
    return out


def _by_name(deployed: Deployed, name: str) -> list[dict]:
    return [o for o in deployed.objects("Deployment") if o["metadata"]["name"] == name]


def test_exactly_one_superlink_in_the_home_namespace(deployed: Deployed) -> None:
    (superlink,) = _by_name(deployed, "superlink")
    assert superlink["metadata"]["namespace"] == namespace_name(deployed.config.home)
    assert superlink["spec"]["replicas"] == 1


def test_one_supernode_per_region_in_its_own_namespace(deployed: Deployed) -> None:
    nodes = sorted(o["metadata"]["namespace"] for o in _by_name(deployed, "supernode"))
    assert nodes == sorted(namespace_name(r.name) for r in deployed.config.regions)


def test_superlink_runs_tls_with_node_auth_and_binds_loopback_only(deployed: Deployed) -> None:
    (superlink,) = _by_name(deployed, "superlink")
    flower = next(c for c in containers(superlink) if c["name"] == "superlink")
    args = _args(flower)
    assert "--insecure" not in args
    assert "--enable-supernode-auth" in args
    assert args["--ssl-certfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CERT_FILE}"
    assert args["--ssl-keyfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_KEY_FILE}"
    assert args["--ssl-ca-certfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
    assert args["--host"] == "127.0.0.1"  # Fleet and Control share this port: never exposed
    assert "--disable-runtime-dependency-installation" in args


def test_the_gateway_splits_fleet_and_control_by_path(deployed: Deployed) -> None:
    (superlink,) = _by_name(deployed, "superlink")
    gateway = next(c for c in containers(superlink) if c["name"] == "gateway")
    assert gateway["command"] == ["python", "-m", contract.SUPERLINK_GATEWAY_MODULE]
    routes = [gateway["args"][i + 1] for i, a in enumerate(gateway["args"]) if a == "--route"]
    assert routes == [
        f"{contract.SUPERLINK_FLEET_PORT}={contract.FLEET_PATH_PREFIX}",
        f"{contract.SUPERLINK_CONTROL_PORT}={contract.CONTROL_PATH_PREFIX}",
    ]


def test_no_load_balancer_exposes_the_control_port_or_the_superlinks_own_port(deployed: Deployed) -> None:
    public_ports = {
        p["port"]
        for s in deployed.objects("Service")
        if s["spec"]["type"] == "LoadBalancer"
        for p in s["spec"]["ports"]
    }
    assert contract.SUPERLINK_CONTROL_PORT not in public_ports
    assert contract.SUPERLINK_SERVERAPPIO_PORT not in public_ports
    home = namespace_name(deployed.config.home)
    fleet = deployed.named("Service", home, FLEET_SERVICE)
    assert fleet["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in fleet["spec"]["ports"]] == [contract.SUPERLINK_FLEET_PORT]
    assert deployed.named("Service", home, CONTROL_SERVICE)["spec"]["type"] == "ClusterIP"


def test_control_port_is_admitted_only_from_the_namespace(deployed: Deployed) -> None:
    policy = deployed.named("NetworkPolicy", namespace_name(deployed.config.home), "superlink")
    control = [r for r in policy["spec"]["ingress"] if {"protocol": "TCP", "port": contract.SUPERLINK_CONTROL_PORT} in r["ports"]]
    assert control and all(peer == {"podSelector": {}} for rule in control for peer in rule["from"])


def test_supernodes_verify_the_superlink_and_authenticate_with_their_own_key(deployed: Deployed) -> None:
    home = deployed.config.home
    address = deployed.superlink_address
    assert address.endswith(f":{contract.SUPERLINK_FLEET_PORT}")
    keys = set()
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        (node,) = containers(deployed.named("Deployment", namespace, "supernode"))
        args = _args(node)
        assert "--insecure" not in args
        assert args["--root-certificates"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
        assert args["--auth-supernode-private-key"] == f"{contract.KEYS_MOUNT}/{contract.NODE_KEY_FILE}"
        if region.name == home:
            assert args["--superlink"] == f"{FLEET_SERVICE}.{namespace}.svc.cluster.local:{contract.SUPERLINK_FLEET_PORT}"
        else:
            assert args["--superlink"] == address
        assert f'region="{region.name}"' in (args["--node-config"] or "")
        keys.add(deployed.named("Secret", namespace, "supernode-auth")["stringData"][contract.NODE_KEY_FILE])
    assert len(keys) == len(deployed.config.regions)  # no two regions share a node key


def test_every_supernode_key_is_registered_once_at_home(deployed: Deployed) -> None:
    home = namespace_name(deployed.config.home)
    registered = deployed.named("ConfigMap", home, "supernode-public-keys")["data"]
    assert set(registered) == {f"{r.name}.pub" for r in deployed.config.regions}
    jobs = [j for j in deployed.objects("Job") if j["metadata"]["name"].startswith("register-")]
    assert all(j["metadata"]["namespace"] == home for j in jobs)
    commands = sorted(c["command"][3] for j in jobs for c in containers(j))
    assert commands == sorted(f"/etc/meridian/supernodes/{r.name}.pub" for r in deployed.config.regions)


def test_a_supernode_reads_only_its_regions_data_from_a_read_only_directory(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        obj = deployed.named("Deployment", namespace_name(region.name), "supernode")
        spec = pod_spec(obj)
        assert spec is not None
        (node,) = spec["containers"]
        assert f'{contract.NODE_DATA_DIR_KEY}="{contract.DATA_MOUNT}"' in (_args(node)["--node-config"] or "")
        (data_mount,) = [m for m in node["volumeMounts"] if m["mountPath"] == contract.DATA_MOUNT]
        assert data_mount["readOnly"] is True
        (volume,) = [v for v in spec["volumes"] if v["name"] == data_mount["name"]]
        if region.kubernetes is not None:
            assert volume["persistentVolumeClaim"] == {"claimName": region.kubernetes.data_volume_claim, "readOnly": True}
            assert not spec.get("initContainers")
        else:
            assert "emptyDir" in volume
            (sync,) = spec["initContainers"]
            assert sync["command"] == list(contract.DATA_SYNC_COMMAND)
            source = _args(sync)["--source"] or ""
            assert source.startswith(("s3://", "gs://")) and region.name in source  # its own bucket
            assert _args(sync)["--dest"] == contract.DATA_MOUNT


def test_one_job_at_home_submits_the_run_with_the_stacks_federation_settings(deployed: Deployed) -> None:
    (run,) = [j for j in deployed.objects("Job") if j["metadata"]["name"] == "federated-run"]
    assert run["metadata"]["namespace"] == namespace_name(deployed.config.home)
    (cli,) = containers(run)
    assert cli["command"][:4] == ["flwr", "run", contract.TRAINER_APP_DIR, "meridian"]
    assert cli["command"][4] == "--run-config"
    settings = tomllib.loads("\n".join(cli["command"][5].split(" ")))
    federation = deployed.config.federation
    assert settings["strategy"] == federation.strategy.value
    assert settings["rounds"] == federation.rounds
    assert settings["min-regions"] == federation.min_regions
    assert settings["compression"] == federation.compression.value
    assert settings["round-timeout"] == federation.round_timeout_seconds
    assert settings["metrics-port"] == contract.TRAINER_METRICS_PORT


def test_run_config_keys_are_the_trainers_own() -> None:
    """Every key we pass is declared in the trainer's app config (unknown keys fail the run)."""
    declared = tomllib.loads((ROOT / "workloads/trainer/pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    passed = tomllib.loads("\n".join(run_config(load_stack("dev").federation).split(" ")))
    assert set(passed) <= set(declared)
    assert {k: type(v) for k, v in passed.items()} == {k: type(declared[k]) for k in passed}
