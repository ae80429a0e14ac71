"""The trainer on Flower's Deployment Engine, for real: one SuperLink and three SuperNodes as
processes on loopback, TLS with a local CA, SuperNodes authenticated by registered ECDSA keys.

Each SuperNode runs beside its long-lived ClientApp process (`--isolation process`), as
LocalFederation starts them. Still slow on a busy machine, so the runs are short and the
federation is shared by the whole module.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.workloads.trainer.node_exporter import node_exporter, scrape
from workloads.tasks.__main__ import prepare_data
from workloads.trainer.certs import generate
from workloads.trainer.launch import _BIN, LocalFederation, Node, free_port, stop_tree
from workloads.trainer.training_log import RecordFollower

pytestmark = pytest.mark.slow

REGIONS = ["eu", "us", "apac"]
USER_TASKS = Path(__file__).parents[1] / "tasks" / "user_tasks"
ROUNDS = 3


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    work = tmp_path_factory.mktemp("federation")
    prepare_data("digits", REGIONS, work / "data", seed=0, alpha=0.5)
    nodes = [
        Node(region, work / "data" / region, training_records=work / "records" / f"{region}.jsonl")
        for region in REGIONS
    ]
    with LocalFederation(work, nodes, python_path=[USER_TASKS]) as running:
        yield running


def _restart(federation: LocalFederation, region: str, **changes) -> None:
    federation.stop_node(region)
    node = federation.nodes[region]
    for key, value in changes.items():
        setattr(node, key, value)
    federation.start_node(region)


@pytest.fixture(scope="module")
def clean_run(federation):
    """Digits, FedAvg, uncompressed, with Prometheus scraped while it runs."""
    port = free_port()
    scraped: list[str] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                    scraped.append(answer.read().decode())
            except OSError:
                pass
            done.wait(1.0)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        result = federation.run({"rounds": ROUNDS, "compression": "none", "metrics-port": port}, run_name="clean")
    finally:
        done.set()
        scraper.join()
    return result, scraped


def test_the_superlink_speaks_tls_with_the_local_ca_certificate(federation):
    host, port = federation.address.split(":")
    context = ssl.create_default_context(cafile=str(federation.credentials.ca_cert))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    other = generate(Path(federation.workdir) / "other-ca", ["x"])  # and not with another CA
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context(cafile=str(other.ca_cert)).wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_node_with_an_unregistered_key_is_refused(federation, tmp_path):
    stranger = generate(tmp_path / "stranger", ["stranger"])
    log = (tmp_path / "stranger.log").open("wb")
    process = subprocess.Popen(
        [str(_BIN / "flower-supernode"), "--root-certificates", str(federation.credentials.ca_cert),
         "--superlink", federation.address, "--auth-supernode-private-key", str(stranger.node_private_keys["stranger"]),
         "--node-config", 'region="stranger"', "--host", "127.0.0.1", "--port", str(free_port()), "--max-retries", "2"],
        stdout=log, stderr=subprocess.STDOUT, env=federation.env,
    )  # fmt: skip
    try:
        exit_code = process.wait(timeout=60)
    finally:
        stop_tree(process)
    assert exit_code != 0
    assert "Failed to activate SuperNode" in (tmp_path / "stranger.log").read_text()
    assert federation.online_regions() == set(REGIONS)  # nobody new got in
    assert len(federation._flwr("supernode", "list", "meridian")["nodes"]) == len(REGIONS)


def test_three_regions_train_digits_to_high_accuracy(clean_run):
    result, _ = clean_run
    assert len(result.rounds) == ROUNDS
    assert result.rounds[-1]["global"]["accuracy"] >= 0.85
    assert all(r["aggregated"] == sorted(REGIONS) for r in result.rounds)
    assert result.model_info["round"] == ROUNDS and (result.out_dir / "model.safetensors").exists()


def test_the_superlink_side_exports_prometheus_metrics(clean_run):
    _, scraped = clean_run
    assert scraped, "the metrics endpoint never answered during the run"
    last = scraped[-1]
    assert "meridian_federated_round " in last
    for region in REGIONS:
        assert f'meridian_federated_uplink_bytes_total{{region="{region}"}}' in last


def test_each_supernode_records_its_fits_and_its_exporter_serves_them(federation, clean_run):
    result, _ = clean_run
    for region in REGIONS:
        fits = RecordFollower(federation.nodes[region].training_records).read_new()
        this_run = [f for f in fits if f.run_id == result.run_id]
        # Written by the ClientApp processes, from the SuperNode's environment they inherit.
        assert [(f.round, f.region) for f in this_run] == [(n, region) for n in range(1, ROUNDS + 1)]
        assert [f.uplink_bytes for f in this_run] == [
            r["regions"][region]["uplink_payload_bytes"] for r in result.rounds
        ]
        with node_exporter(federation.nodes[region].training_records) as url:
            metrics = scrape(url)
        assert metrics["meridian_training_rounds_total"] == len(fits)
        assert metrics["meridian_training_uplink_bytes_total"] == sum(f.uplink_bytes for f in fits)
        assert metrics["meridian_training_examples_total"] == sum(f.examples for f in fits)
        assert metrics["meridian_training_last_round"] == fits[-1].round


def test_each_nodes_tasks_are_forked_by_its_long_lived_clientapp_process(federation, clean_run):
    """Every round's reply comes from a process of its own (nothing carries over between
    messages but the node's Context), started by the node's one ClientApp runner, which
    outlives the rounds; a restarted node brings its runner back."""
    result, _ = clean_run
    for region in REGIONS:
        runner = federation.nodes[region].clientapp_process
        assert runner is not None and runner.poll() is None
        timed = [record["regions"][region]["clientapp"] for record in result.rounds]
        assert {t["parent_pid"] for t in timed} == {runner.pid}
        assert len({t["pid"] for t in timed}) == ROUNDS
        assert "Starting Flower SuperExec" not in (federation.logs / f"supernode-{region}.log").read_text()
    old = federation.nodes["eu"].clientapp_process
    assert old is not None
    _restart(federation, "eu")
    new = federation.nodes["eu"].clientapp_process
    assert new is not None and new.pid != old.pid and old.poll() is not None
    again = federation.run({"rounds": 1, "compression": "none"}, run_name="after-restart")
    assert again.rounds[0]["regions"]["eu"]["clientapp"]["parent_pid"] == new.pid


def test_int8_cuts_uplink_bytes_at_least_threefold(federation, clean_run):
    clean, _ = clean_run
    int8 = federation.run({"rounds": ROUNDS, "compression": "int8"}, run_name="int8")
    for measure in ("uplink_payload_bytes", "uplink_wire_bytes"):
        uncompressed = sum(r[measure] for r in clean.rounds)
        compressed = sum(r[measure] for r in int8.rounds)
        assert uncompressed / compressed >= 3.0, measure
    # The SuperLink's own traffic count agrees: less comes in.
    assert int8.traffic_bytes["inbound"] < clean.traffic_bytes["inbound"] / 2
    assert int8.rounds[-1]["global"]["accuracy"] >= 0.85


def test_a_node_stopped_mid_run_does_not_stop_the_run_and_rejoins(federation):
    outcome: dict = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=federation.run({"rounds": 30, "compression": "int8"}, run_name="dropout"))
    )
    runner.start()
    rounds_file = federation.workdir / "dropout" / "rounds.jsonl"

    def records() -> int:
        return len(rounds_file.read_text().splitlines()) if rounds_file.exists() else 0

    try:
        # Stopped after the first round's record, started again after the second; a round takes
        # under a second, a node's start several, so the run has rounds to spare for its return.
        while records() < 1 and runner.is_alive():
            time.sleep(0.5)
        federation.stop_node("us")
        while records() < 2 and runner.is_alive():
            time.sleep(0.5)
        federation.start_node("us")
    finally:
        runner.join(timeout=600)
        if federation.nodes["us"].process is None:
            federation.start_node("us")
    rounds = outcome["result"].rounds
    assert len(rounds) == 30
    without = [i for i, r in enumerate(rounds) if "us" not in r["aggregated"] and len(r["aggregated"]) == 2]
    assert without
    assert any(r["aggregated"] == sorted(REGIONS) for r in rounds[without[-1] + 1 :])  # back in a later round


def test_a_poisoned_region_leaves_a_robust_strategy_within_three_points(federation):
    # The clean run is the same strategy without the attack. (Against clean FedAvg the poisoned
    # run loses ~3.5 points at 3 rounds: the attacker's own data no longer helps its region.)
    clean = federation.run({"rounds": ROUNDS, "compression": "none", "strategy": "multikrum"}, run_name="krum-clean")
    _restart(federation, "us", fault="sign-flip", fault_scale=4.0)
    try:
        poisoned = federation.run(
            {"rounds": ROUNDS, "compression": "none", "strategy": "multikrum"}, run_name="krum-poisoned"
        )
    finally:
        _restart(federation, "us", fault=None)
    accuracy = poisoned.rounds[-1]["global"]["accuracy"]
    assert accuracy >= clean.rounds[-1]["global"]["accuracy"] - 0.03


def test_a_nan_update_is_rejected_logged_and_the_run_completes(federation):
    _restart(federation, "apac", fault="nan")
    try:
        result = federation.run({"rounds": 2, "compression": "int8"}, run_name="nan")
    finally:
        _restart(federation, "apac", fault=None)
    for record in result.rounds:
        assert record["rejected"] == ["apac"] and record["aggregated"] == ["eu", "us"]
        assert "non-finite values (NaN/inf)" in record["regions"]["apac"]["reason"]
    log = (federation.logs / "nan.log").read_text()
    assert "rejected update from apac: " in log and "non-finite" in log
    assert result.model_info["round"] == 2


def test_a_user_task_named_by_dotted_path_trains_end_to_end(federation, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(USER_TASKS))
    prepare_data("iris:TASK", REGIONS, tmp_path / "iris", seed=0, alpha=1.0)
    for region in REGIONS:
        _restart(federation, region, data_dir=tmp_path / "iris" / region)
    try:
        result = federation.run(
            {"rounds": 3, "task": "iris:TASK", "compression": "int8", "learning-rate": 0.1}, run_name="iris"
        )
    finally:
        for region in REGIONS:
            _restart(federation, region, data_dir=federation.workdir / "data" / region)
    assert result.model_info["task"] == "iris" and result.model_info["task_reference"] == "iris:TASK"
    assert result.rounds[-1]["global"]["accuracy"] >= 0.8
