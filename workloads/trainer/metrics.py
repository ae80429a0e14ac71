"""Prometheus metrics of a federated run, served by the ServerApp (SuperLink side) on
`metrics-host:metrics-port` from the run config while the run lasts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from workloads.trainer.records import RoundRecord, Status

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
        self.failed = Counter(
            f"{_PREFIX}_failed_replies", "Train messages without a usable reply", ["region"], registry=r
        )
        self.epsilon = Gauge(
            f"{_PREFIX}_region_epsilon_spent",
            "DP-SGD: the privacy budget (ε) a region has spent in this run",
            ["region"],
            registry=r,
        )
        self.stopped = Gauge(
            f"{_PREFIX}_stopped_for_privacy_budget", "1 once the run ended early to stay within a budget", registry=r
        )
        self.round_seconds = Histogram(
            f"{_PREFIX}_round_seconds",
            "Round duration",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe_round(self, record: RoundRecord) -> None:
        self.round.set(record.round)
        self.participants.set(len(record.with_status(Status.AGGREGATED)))
        self.round_seconds.observe(record.seconds.round)
        for region, part in record.regions.items():
            # Every region seen gets its series, at 0 if nothing went its way this round.
            self.downlink.labels(region).inc(part.delivery.downlink_payload_bytes if part.delivery else 0)
            self.uplink.labels(region).inc(part.training.uplink_payload_bytes if part.training else 0)
            if part.status is Status.REJECTED:
                self.rejected.labels(region).inc()
            elif part.status is Status.FAILED:
                self.failed.labels(region).inc()
            if part.evaluation is not None:
                self.region_accuracy.labels(region).set(part.evaluation["accuracy"])
        for region, spent in record.epsilon().items():
            self.epsilon.labels(region).set(spent)
        self.stopped.set(1 if record.stopped else 0)
        evaluation = record.evaluation
        if evaluation is not None and evaluation["accuracy"] is not None and evaluation["loss"] is not None:
            self.global_accuracy.set(evaluation["accuracy"])
            self.global_loss.set(evaluation["loss"])
