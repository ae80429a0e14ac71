"""`make up`'s promise, end to end: `meridian local up --quick --detach` trains, localizes,
serves and loads the local stack's fleet for real, under a real Prometheus that scrapes every
process; every endpoint answers over HTTPS to the users' API key (and 401 without it), the
curl that `status` prints works, each edge escalates to its region over mutual TLS (a client
without the edge's certificate is refused there); a good canary is promoted and, in a second
drill on the same fleet, a bad one rolled back, each within the analysis window plus one
interval; `down` leaves no process behind."""

from __future__ import annotations

import json
import random
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from meridian.local.front_door import Caller, FrontDoor
from meridian.local.prometheus import PrometheusAPI
from meridian.local.supervisor import port_in_use, read_state
from workloads import contract
from workloads.contract import MODEL_NAME
from workloads.processes import alive as pid_alive
from workloads.serving.protocol import PROBABILITIES, encode_json_request
from workloads.tasks import Shard

ROOT = Path(__file__).resolve().parents[2]
GLOBAL_ACCURACY_FLOOR = 0.80  # digits, 3 quick rounds of FedAvg over label-skewed regions


def _free_port_base(span: int = 27) -> int:  # every listener of the fleet (tests/meridian/local/test_up.py)
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20000, 60000)
        if not any(port_in_use(p) for p in range(base, base + span)):
            return base
    raise RuntimeError("no free port range")


def _meridian(out: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meridian", "local", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # each test asserts the return code it expects
    )


def _infer(url: str, x: np.ndarray, caller: Caller) -> dict:
    response = httpx.post(
        f"{url}/v2/models/{MODEL_NAME}/infer",
        content=encode_json_request(x),
        headers=caller.headers,
        verify=caller.tls(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _stable(url: str, caller: Caller) -> str:
    response = httpx.get(f"{url}/v2/models/{MODEL_NAME}", headers=caller.headers, verify=caller.tls(), timeout=10)
    return response.json()["parameters"]["stable"]


def _assert_the_front_door_is_closed(urls: dict[str, str], caller: Caller, x: np.ndarray) -> None:
    """No key, no inference: 401 with a V2 error, at a server and an edge alike; only HTTPS."""
    for name in ("server-local-us", "edge-nyc"):
        anonymous = httpx.post(
            f"{urls[name]}/v2/models/{MODEL_NAME}/infer",
            content=encode_json_request(x),
            verify=caller.tls(),
            timeout=30,
        )
        assert anonymous.status_code == 401 and "error" in anonymous.json(), anonymous.text
        with pytest.raises(httpx.TransportError):  # the public listener speaks TLS only
            httpx.get(urls[name].replace("https://", "http://") + contract.READINESS_PATH, timeout=10)


def _assert_escalations_take_mutual_tls(out: Path, state: dict, prometheus: PrometheusAPI, x: np.ndarray) -> None:
    """The region's escalation listener answers the edge's certificate and refuses a client
    without one; the edges' escalations reached it (answered by the region, counted there by
    edge and caller)."""
    door = FrontDoor(out)
    edge = next(p for p in state["processes"] if p["name"] == "edge-nyc")
    upstream = edge["argv"][edge["argv"].index("--upstream-url") + 1]
    assert upstream.startswith("https://") and upstream not in {p["url"] for p in state["processes"]}
    answers = {
        s["metric"]["source"]: float(s["value"][1])
        for s in prometheus.query('sum by (source) (meridian_edge_answers_total{app="edge"})')
    }
    assert answers.get("region", 0) > 0, answers  # (a fallback under a loaded laptop is the cascade's right)
    # The regions counted them on their escalation listeners (read before this test escalates
    # itself, below), each edge named by its client certificate, the users by their key id.
    received = prometheus.query('sum by (region, edge, caller) (meridian_escalations_received_total{app="server"})')
    assert {(r["metric"]["region"], r["metric"]["edge"], r["metric"]["caller"]) for r in received} >= {
        ("local-us", "edge-nyc", "local"),
        ("local-eu", "edge-fra", "local"),
    }, received
    client = ssl.create_default_context(cafile=door.ca_cert)
    client.load_cert_chain(door.cert(door.client_name("edge-nyc")), door.key(door.client_name("edge-nyc")))
    escalated = httpx.post(
        f"{upstream}/v2/models/{MODEL_NAME}/infer",
        content=encode_json_request(x),
        headers={contract.CALLER_HEADER: "local"},
        verify=client,
        timeout=30,
    )
    assert escalated.status_code == 200, escalated.text
    with pytest.raises(httpx.TransportError):  # no client certificate: no TLS session, whatever the key
        httpx.post(
            f"{upstream}/v2/models/{MODEL_NAME}/infer",
            content=encode_json_request(x),
            headers={**door.caller().headers, contract.CALLER_HEADER: "local"},
            verify=door.caller().tls(),
            timeout=30,
        )


def _assert_the_printed_curl_works(status: str) -> None:
    """`status` prints a curl with the key read from its file; run as printed, it is answered."""
    (curl,) = [line.strip() for line in status.splitlines() if line.strip().startswith("curl ")]
    assert "$(cat " in curl and "--cacert" in curl
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the printed command cannot be run here")
    answered = subprocess.run(["bash", "-c", curl], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert any(o["name"] == PROBABILITIES for o in json.loads(answered.stdout)["outputs"])


def _assert_scraped(prometheus: PrometheusAPI) -> None:
    """Every local process is a target with the clusters' labels, and up; the ServerApp was,
    while training ran (it leaves the config with the run)."""
    up = {
        tuple(series["metric"].get(label, "") for label in ("app", "region", "site")): series["value"][1]
        for series in prometheus.query("up")
    }
    regions = ("local-us", "local-eu", "local-apac")
    assert up == {
        **{(app, region, ""): "1" for app in ("server", "supernode", "canary") for region in regions},
        ("edge", "local-us", "nyc"): "1",
        ("edge", "local-eu", "fra"): "1",
    }
    assert [s["value"][1] for s in prometheus.query('max_over_time(up{app="superlink"}[1h])')] == ["1"]
    rounds = prometheus.query('max_over_time(meridian_federated_round{app="superlink",region="local-us"}[1h])')
    assert [s["value"][1] for s in rounds] == ["3"]
    trained = prometheus.query("meridian_training_rounds_total")
    assert {s["metric"]["region"] for s in trained if float(s["value"][1]) > 0} == set(regions)


def _assert_decided(canary: dict, kind: str, decision: str) -> None:
    assert (canary["kind"], canary["decision"]) == (kind, decision), canary
    assert canary["seconds_to_decide"] <= canary["deadline_seconds"], canary
    assert canary["failed_requests"] == 0


@pytest.mark.slow
def test_local_up_serves_the_whole_fleet_and_down_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "local"
    up = _meridian(out, "up", "--quick", "--detach", "--port-base", str(_free_port_base()), timeout=900)
    state = read_state(out / "state.json")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert state is not None
        roles = sorted(p["role"] for p in state["processes"])
        assert roles == sorted(
            ["prometheus", "registry", *["edge"] * 2, *["server", "supernode-metrics", "canary"] * 3]
        )

        status = _meridian(out, "status", timeout=60)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("healthy") == 13
        prometheus_url = next(p["url"] for p in state["processes"] if p["role"] == "prometheus")
        assert f"Prometheus: {prometheus_url}" in status.stdout
        prometheus = PrometheusAPI(prometheus_url)
        _assert_scraped(prometheus)
        caller = FrontDoor(out).caller()
        assert caller.api_key.startswith("local.") and caller.api_key not in status.stdout

        again = _meridian(out, "up", "--quick", "--detach", timeout=120)
        assert again.returncode == 1 and "already running" in again.stderr

        urls = {p["name"]: p["url"] for p in state["processes"]}
        shard = Shard.load(out / "data" / "local-us")
        _assert_the_front_door_is_closed(urls, caller, shard.x_test[:1])
        _assert_escalations_take_mutual_tls(out, state, prometheus, shard.x_test[:1])
        regional = _infer(urls["server-local-us"], shard.x_test[:4], caller)
        probabilities = next(o for o in regional["outputs"] if o["name"] == PROBABILITIES)
        assert probabilities["shape"] == [4, 10]
        assert np.allclose(np.asarray(probabilities["data"]).reshape(4, 10).sum(axis=1), 1, atol=1e-4)
        edge = _infer(urls["edge-nyc"], shard.x_test[:1], caller)
        assert edge["parameters"]["served_by"] in {"edge", "region"}

        report = json.loads((out / "report.json").read_text())
        assert report["global_accuracy"] >= GLOBAL_ACCURACY_FLOOR
        assert report["failed_requests"] == 0
        assert report["answered_at_edge"] > 0 and report["answered_by_region"] > 0
        assert report["uplink_reduction"] > 3  # int8 updates against fp32
        # The pipeline, hop by hop: the run's global model, localized per region, is what each
        # server (fp32) and edge (int8) of that region says it serves.
        pointer = out / "registry" / "global" / MODEL_NAME / "latest" / "global" / "fp32.json"
        global_version = json.loads(pointer.read_text())["version"]
        regions = {p["name"]: p["name"].split("-", 1)[1] for p in state["processes"] if p["role"] == "server"}
        regions |= {"edge-nyc": "local-us", "edge-fra": "local-eu"}
        assert {name: (row["version"], row["region"], row["variant"]) for name, row in report["loaded"].items()} == {
            name: (global_version, region, "fp32" if name.startswith("server-") else "int8")
            for name, region in regions.items()
        }
        for plot in ("convergence.png", "bytes.png", "latency.png", "canary.png"):
            assert (out / plot).stat().st_size > 1000
        assert "failed: **0**" in (out / "report.md").read_text()

        # The drill `up` ran: the next version of the home region, good, entered at the
        # configured weight and was promoted; its server and edge now serve it as stable.
        good = report["canary"]
        _assert_decided(good, "good", "promoted")
        assert (good["region"], good["stable"], good["candidate"]) == (
            "local-us",
            global_version,
            f"{global_version}.1",
        )
        assert (
            good["metrics"]["candidate"]["requests"] >= good["analysis"]["minRequests"]
            and good["metrics"]["candidate"]["correct"] > 0
        )
        assert [_stable(urls[name], caller) for name in ("server-local-us", "edge-nyc")] == [good["candidate"]] * 2

        # A second drill on the same fleet: a candidate fine-tuned on shuffled labels.
        drill = _meridian(out, "canary", "bad", timeout=600)
        assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
        bad = json.loads((out / "report.json").read_text())["canary"]
        _assert_decided(bad, "bad", "rolled_back")
        assert (bad["stable"], bad["candidate"]) == (good["candidate"], f"{global_version}.2")
        assert [_stable(urls[name], caller) for name in ("server-local-us", "edge-nyc")] == [good["candidate"]] * 2
        assert "**rolled_back**" in (out / "report.md").read_text()
        _assert_the_printed_curl_works(status.stdout)  # last: it may skip where curl is missing
    finally:
        down = _meridian(out, "down", timeout=120)
    assert down.returncode == 0
    assert state is not None
    assert [p["name"] for p in state["processes"] if pid_alive(p["pid"])] == []
    leftovers = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True, check=False).stdout.split()
    assert leftovers == []
