"""Prometheus metrics of a federated run, served by the ServerApp (SuperLink side) on
`metrics-host:metrics-port` from the run config while the run lasts."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_PREFIX = "meridian_federated"


class FederationMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.round = Gauge(f"{_PREFIX}_round", "Last completed round", registry=r)
        self.global_accuracy = Gauge(f"{_PREFIX}_global_accuracy", "Global model test accuracy", registry=r)
        self.global_loss = Gauge(f"{_PREFIX}_global_loss", "Global model test loss", registry=r)
        self.region_accuracy = Gauge(
            f"{_PREFIX}_region_accuracy", "Global model accuracy on a region's test split", ["region"], registry=r
        )
        self.participants = Gauge(f"{_PREFIX}_aggregated_regions", "Regions aggregated in the last round", registry=r)
        self.uplink = Counter(f"{_PREFIX}_uplink_bytes", "Update payload bytes received", ["region"], registry=r)
        self.downlink = Counter(f"{_PREFIX}_downlink_bytes", "Model payload bytes sent", ["region"], registry=r)
        self.rejected = Counter(
            f"{_PREFIX}_rejected_updates", "Updates rejected before aggregation", ["region"], registry=r
        )
        self.failed = Counter(f"{_PREFIX}_failed_replies", "Train messages without a usable reply", ["region"], registry=r)
        self.round_seconds = Histogram(
            f"{_PREFIX}_round_seconds",
            "Round duration",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe_round(self, record: dict[str, Any]) -> None:
        self.round.set(record["round"])
        self.participants.set(len(record["aggregated"]))
        self.round_seconds.observe(record["seconds"]["round"])
        for region, part in record["regions"].items():
            self.downlink.labels(region).inc(part.get("downlink_payload_bytes") or 0)
            self.uplink.labels(region).inc(part.get("uplink_payload_bytes") or 0)
            if part["status"] == "rejected":
                self.rejected.labels(region).inc()
            elif part["status"] == "failed":
                self.failed.labels(region).inc()
            if part.get("accuracy") is not None:
                self.region_accuracy.labels(region).set(part["accuracy"])
        if record["global"]["accuracy"] is not None:
            self.global_accuracy.set(record["global"]["accuracy"])
            self.global_loss.set(record["global"]["loss"])
