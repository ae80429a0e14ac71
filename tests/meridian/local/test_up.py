"""The local fleet is wired like a `kubernetes` region's front door: every server and edge
serves HTTPS with its own certificate and knows the users' key by its hash only, each edge
escalates to its region's escalation listener with its client certificate, the canary
controllers drive the admin ports with the admin token, and Prometheus keeps the metrics ports."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from components.config import load_stack
from meridian.local.supervisor import LocalStackError, ProcessSpec
from meridian.local.up import LocalFleet
from workloads import contract


def _fleet(tmp_path: Path) -> LocalFleet:
    fleet = LocalFleet("local", load_stack("local"), tmp_path, quick=True, port_base=8700)
    fleet.ensure_front_door()
    return fleet


def _by_name(specs: list[ProcessSpec]) -> dict[str, ProcessSpec]:
    return {spec.name: spec for spec in specs}


def test_every_server_and_edge_serves_https_with_its_own_certificate_and_the_key_hashes(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    door = fleet.front_door
    served = [s for s in fleet.serving_specs() if s.role in ("server", "edge")]
    assert sorted(s.name for s in served) == sorted(
        ["server-local-us", "server-local-eu", "server-local-apac", "edge-nyc", "edge-fra"]
    )
    for spec in served:
        assert spec.url == f"https://127.0.0.1:{spec.port}" and spec.ca_file == str(door.ca_cert)
        assert {
            spec.env[name]
            for name in (contract.ENV_TLS_CERT_FILE, contract.ENV_TLS_KEY_FILE, contract.ENV_API_KEYS_FILE)
        } == {str(door.cert(spec.name)), str(door.key(spec.name)), str(door.api_keys_file)}
        assert spec.env[contract.ENV_ADMIN_TOKEN_FILE] == str(door.admin_token)
        assert contract.ENV_ADMIN_TOKEN not in spec.env  # the token never sits in an environment
        assert json.loads(spec.env[contract.ENV_RATE_LIMITS]) == {
            "default": {"requestsPerSecond": 2000.0, "burst": 4000},
            "callers": {},
        }
    assert [s.url for s in fleet.sites()] == [
        _by_name(served)[name].url
        for name in ("server-local-us", "edge-nyc", "server-local-eu", "edge-fra", "server-local-apac")
    ]


def test_each_edge_escalates_to_its_regions_escalation_listener_with_its_client_certificate(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    door = fleet.front_door
    specs = _by_name(fleet.serving_specs())
    for edge, region in (("edge-nyc", "local-us"), ("edge-fra", "local-eu")):
        server = specs[f"server-{region}"].env
        port = fleet.escalation_ports[region]
        assert server[contract.ENV_ESCALATION_PORT] == str(port)
        assert server[contract.ENV_ESCALATION_CLIENT_CA_FILE] == str(door.ca_cert)
        argv = specs[edge].argv
        assert argv[argv.index("--upstream-url") + 1] == f"https://127.0.0.1:{port}"
        client = door.client_name(edge)
        assert {k: v for k, v in specs[edge].env.items() if k.startswith("MERIDIAN_UPSTREAM_")} == {
            contract.ENV_UPSTREAM_CA_FILE: str(door.ca_cert),
            contract.ENV_UPSTREAM_CERT_FILE: str(door.cert(client)),
            contract.ENV_UPSTREAM_KEY_FILE: str(door.key(client)),
        }
        assert contract.ENV_ESCALATION_PORT not in specs[edge].env  # edges take no escalations


def test_the_canary_controllers_drive_the_admin_ports_with_the_admin_token(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    fleet.prometheus = "prometheus"  # the controllers read Prometheus: planned only with one
    specs = _by_name(fleet.serving_specs())
    canary = _by_name(fleet.canary_specs())["canary-local-us"]
    targets = canary.argv[canary.argv.index("--targets") + 1].split(",")
    assert targets == [
        f"http://127.0.0.1:{specs[name].env[contract.ENV_ADMIN_PORT]}" for name in ("server-local-us", "edge-nyc")
    ]
    assert canary.env[contract.ENV_ADMIN_TOKEN_FILE] == str(fleet.front_door.admin_token)


def test_every_listener_of_the_fleet_has_a_port_of_its_own(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    ports = [
        fleet.registry_port,
        fleet.prometheus_port,
        *fleet.server_ports.values(),
        *fleet.edge_ports.values(),
        *fleet.escalation_ports.values(),
        *fleet.admin_ports.values(),
        *fleet.metrics_ports.values(),
    ]
    assert sorted(ports) == list(range(8700, 8700 + 27))  # consecutive from --port-base


def test_a_busy_escalation_or_admin_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", fleet.escalation_ports["local-eu"]))
        busy.listen()
        with pytest.raises(LocalStackError, match=rf"{fleet.escalation_ports['local-eu']} \(server-local-eu\)"):
            fleet.supervisor.check_ports(fleet.all_specs())
