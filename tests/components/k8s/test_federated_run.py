"""The federated run: Jobs at home register every node key once, then submit the run with
the stack's federation settings, in keys the trainer knows. The run Job is keyed by what the
run trains on (its settings and the data version), never by the trainer image: a code change
rolls the servers without training again."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from components.config import StackConfig, load_stack
from components.fleet import region_workloads
from components.k8s.federated_run import RUN_IMAGE_PATH, RUN_JOB, RUN_KEY_LABEL, run_config, run_job_name, run_key
from components.k8s.flower import CONTROL_SERVICE
from components.k8s.namespace import namespace_name
from components.k8s.trust import FederationTrust, FederationTrustArgs
from meridian.mocks import Recorded, run_under_mocks
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.harness import access_for, engine_config, front_door_for
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


def _submit_options(run: dict[str, Any]) -> dict[str, str]:
    """The run Job's `python -m workloads.trainer.submit --option value ...`, as {option: value}."""
    (cli,) = containers(run)
    command = cli["command"]
    assert command[: len(contract.SUBMIT_RUN_COMMAND)] == list(contract.SUBMIT_RUN_COMMAND)
    options = command[len(contract.SUBMIT_RUN_COMMAND) :]
    return dict(zip(options[::2], options[1::2], strict=True))


def test_one_job_at_home_submits_the_run_with_the_stacks_federation_settings(deployed: Deployed) -> None:
    (run,) = [j for j in deployed.objects("Job") if j["metadata"]["name"].startswith(f"{RUN_JOB}-")]
    assert run["metadata"]["namespace"] == namespace_name(deployed.config.home)
    options = _submit_options(run)
    assert options["--connection"] == "meridian"
    assert options["--app"] == contract.TRAINER_APP_DIR
    settings = tomllib.loads("\n".join(options["--run-config"].split(" ")))
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


def test_the_run_job_is_named_and_labelled_by_its_run_key_and_tags_its_run_with_it(deployed: Deployed) -> None:
    """The submit command stops runs of other keys and submits nothing when the Job retries
    after a successful submit (tests/workloads/trainer/test_submit.py): it needs the key."""
    federation = deployed.config.federation
    run = deployed.named("Job", namespace_name(deployed.config.home), run_job_name(federation))
    assert run["metadata"]["labels"][RUN_KEY_LABEL] == run_key(federation)
    assert _submit_options(run)["--run-key"] == run_key(federation)
    assert run["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"  # retries: the submit is idempotent


def _home_run_job(config: StackConfig, image_tag: str) -> Recorded:
    """The home region's workloads under mocks, its trainer image pushed with `image_tag`."""

    def program() -> None:
        trust = FederationTrust("federation", FederationTrustArgs(config))
        home = config.home_region
        access = access_for(home, home=True)
        region_workloads(
            config,
            home,
            access,
            image_tag=image_tag,
            labels={},
            trust=trust,
            front_door=front_door_for(config, home),
            superlink=None,
            global_models=access.global_models,
        )

    recorded = run_under_mocks(program, config=engine_config(config)).resources
    (job,) = [
        r for r in recorded if r.type == "kubernetes:batch/v1:Job" and RUN_KEY_LABEL in r.inputs["metadata"]["labels"]
    ]
    return job


def _at_path(inputs: dict[str, Any], path: str) -> Any:
    """A Pulumi property path (`a.b[0].c`) into recorded inputs."""
    value: Any = inputs
    for part in path.replace("[", ".").replace("]", "").split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    return value


def test_a_new_trainer_image_alone_leaves_the_run_job_as_it_was() -> None:
    config = load_stack("dev")
    before, after = _home_run_job(config, "code-v1"), _home_run_job(config, "code-v2")
    image_before, image_after = _at_path(before.inputs, RUN_IMAGE_PATH), _at_path(after.inputs, RUN_IMAGE_PATH)
    assert image_before != image_after and ":code-v2@sha256:" in image_after  # the path is the image
    # the same resource (name), the same object and key: an update at most ...
    assert before.name == after.name == f"{config.home}-workloads-superlink-{run_job_name(config.federation)}"
    assert before.inputs["metadata"] == after.inputs["metadata"]
    # ... and the one difference, the image, is ignored: no update, no new run
    assert after.ignore_changes == [RUN_IMAGE_PATH]
    after.inputs["spec"]["template"]["spec"]["containers"][0]["image"] = image_before
    assert after.inputs == before.inputs


def test_the_run_key_changes_with_what_the_run_trains_on() -> None:
    federation = load_stack("dev").federation
    key = run_key(federation)
    assert run_key(federation.model_copy()) == key  # stable: a hash, not a counter
    assert run_key(federation.model_copy(update={"rounds": federation.rounds + 1})) != key
    assert run_key(federation.model_copy(update={"data_version": federation.data_version + "-next"})) != key
    assert len(run_job_name(federation)) <= 63  # a Kubernetes label value: Jobs label pods with their name
