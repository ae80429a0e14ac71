"""What the SuperLink, the SuperNodes and the run's Jobs share: app names, Flower's
environment, its health probes and where the SuperLink keeps its state.

Flower 1.42 serves its Fleet, Control and runtime APIs on one HTTPS port, and the Control API
has no authentication. So the SuperLink binds 127.0.0.1 only, and a path-filtering gateway in
its pod (workloads.contract.SUPERLINK_GATEWAY_MODULE) terminates TLS on two ports:
- the Fleet port forwards only /v1/fleet/ and is public through a LoadBalancer (TLS with the
  federation CA, plus SuperNode authentication: only registered node keys are admitted);
- the Control port forwards only /v1/control/ and has a ClusterIP Service, reachable only from
  this namespace by NetworkPolicy.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.k8s.pods import grpc_probe
from workloads import contract

SUPERLINK_APP = "superlink"
SUPERNODE_APP = "supernode"
FLWR_CLI_APP = "flwr-cli"  # Jobs running the `flwr` CLI against the Control API
FLEET_SERVICE = "superlink-fleet"
CONTROL_SERVICE = "superlink-control"
STATE_MOUNT = "/var/lib/flwr"  # the SuperLink's state volume; the ServerApp writes there too

FLOWER_ENV = {
    "FLWR_DISABLE_UPDATE_CHECK": "1",  # no calls home from the cluster
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_HOME": f"{contract.CACHE_MOUNT}/flwr",  # the root filesystem is read-only
}


def health_address() -> str:
    return f"0.0.0.0:{contract.FLOWER_HEALTH_PORT}"


def flower_probes() -> tuple[k8s.core.v1.ProbeArgs, k8s.core.v1.ProbeArgs]:
    return grpc_probe(contract.FLOWER_HEALTH_PORT), grpc_probe(contract.FLOWER_HEALTH_PORT, period=5)
