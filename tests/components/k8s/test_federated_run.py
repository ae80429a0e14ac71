"""The federated run: Jobs at home register every node key once, then submit the run with
the stack's federation settings, in keys the trainer knows."""

from __future__ import annotations

import tomllib
from pathlib import Path

from components.config import load_stack
from components.k8s.federated_run import run_config
from components.k8s.flower import CONTROL_SERVICE
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers
from workloads import contract

ROOT = Path(__file__).resolve().parents[3]


def test_every_supernode_key_is_registered_once_at_home(deployed: Deployed) -> None:
    home = namespace_name(deployed.config.home)
    registered = deployed.named("ConfigMap", home, "supernode-public-keys")["data"]
    assert set(registered) == {f"{r.name}.pub" for r in deployed.config.regions}
    jobs = [j for j in deployed.objects("Job") if j["metadata"]["name"].startswith("register-")]
    assert all(j["metadata"]["namespace"] == home for j in jobs)
    commands = sorted(c["command"][3] for j in jobs for c in containers(j))
    assert commands == sorted(f"/etc/meridian/supernodes/{r.name}.pub" for r in deployed.config.regions)


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


def test_the_jobs_reach_the_control_port_verifying_the_federation_ca(deployed: Deployed) -> None:
    home = namespace_name(deployed.config.home)
    flwr_home = tomllib.loads(deployed.named("ConfigMap", home, "flwr-connection")["data"]["config.toml"])
    connection = flwr_home["superlink"][flwr_home["superlink"]["default"]]
    assert connection["address"] == f"{CONTROL_SERVICE}.{home}.svc.cluster.local:{contract.SUPERLINK_CONTROL_PORT}"
    assert connection["root-certificates"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
