"""A SuperNode's training metrics, for Prometheus: a small exporter beside the SuperNode (a
sidecar in its pod, a process of the local stack) that serves what the node's ClientApp
processes leave in their training records (`workloads.trainer.training_log`):

    python -m workloads.trainer.node_metrics --records <file> --host <h> --port <p>

(contract.NODE_METRICS_COMMAND; `--records` defaults to $MERIDIAN_TRAINING_RECORDS.) A custom
collector reads the records appended since the last scrape, so a scrape costs what is new, and a
restarted exporter reads the retained file again: its counters start over from the file, which
Prometheus treats as any counter reset. No labels of its own: the scrape's target labels say
which region (`region`, `app="supernode"`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from workloads import contract
from workloads.trainer.training_log import RecordFollower, TrainingRecord

log = logging.getLogger(__name__)

# Local fits take from a fraction of a second (digits, one epoch) to minutes (larger tasks).
FIT_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class TrainingCollector:
    """The training metrics of one SuperNode, from its records file."""

    def __init__(self, records: Path):
        self._follower = RecordFollower(records)
        self._lock = threading.Lock()  # the HTTP server answers concurrent scrapes in threads
        self._rounds = 0
        self._examples = 0
        self._uplink_bytes = 0
        self._last: TrainingRecord | None = None
        self._fit_counts = [0] * len(FIT_SECONDS_BUCKETS)  # per bucket, not cumulative
        self._fit_sum = 0.0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            for record in self._follower.read_new():
                self._add(record)
            yield CounterMetricFamily(
                "meridian_training_rounds", "Local fits (train replies) of this node", self._rounds
            )
            yield CounterMetricFamily(
                "meridian_training_examples", "Training examples over all local fits", self._examples
            )
            yield CounterMetricFamily(
                "meridian_training_uplink_bytes",
                "Update payload bytes sent to the SuperLink (after compression)",
                self._uplink_bytes,
            )
            cumulative, buckets = 0, []
            for bound, count in zip(FIT_SECONDS_BUCKETS, self._fit_counts, strict=True):
                cumulative += count
                buckets.append((f"{bound:g}", cumulative))
            buckets.append(("+Inf", self._rounds))
            yield HistogramMetricFamily(
                "meridian_training_fit_seconds", "Local training time per fit", buckets, self._fit_sum
            )
            if self._last is not None:
                yield GaugeMetricFamily(
                    "meridian_training_last_round", "Server round of the last local fit", self._last.round
                )
                yield GaugeMetricFamily(
                    "meridian_training_local_loss", "Local training loss of the last fit", self._last.loss
                )
                if self._last.epsilon is not None:
                    yield GaugeMetricFamily(
                        "meridian_training_epsilon_spent",
                        "DP-SGD: the privacy budget (ε) this region has spent in the run of the last fit",
                        self._last.epsilon,
                    )

    def _add(self, record: TrainingRecord) -> None:
        self._rounds += 1
        self._examples += record.examples
        self._uplink_bytes += record.uplink_bytes
        self._fit_sum += record.fit_seconds
        for i, bound in enumerate(FIT_SECONDS_BUCKETS):
            if record.fit_seconds <= bound:
                self._fit_counts[i] += 1
                break
        self._last = record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workloads.trainer.node_metrics", description=__doc__)
    default_records = os.environ.get(contract.ENV_TRAINING_RECORDS)
    parser.add_argument(
        "--records",
        type=Path,
        default=default_records,
        required=not default_records,
        help=f"the training records file [env {contract.ENV_TRAINING_RECORDS}]",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in the pod)")
    parser.add_argument("--port", type=int, default=contract.METRICS_PORT, help="port (0: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = CollectorRegistry()
    registry.register(TrainingCollector(args.records))
    # Signals to this thread only (the server's thread inherits the mask): as PID 1 of its
    # container, the default SIGTERM disposition would be ignored.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    server, _ = start_http_server(args.port, addr=args.host, registry=registry)
    log.info(
        "training metrics of %s on http://%s:%d%s", args.records, args.host, server.server_port, contract.METRICS_PATH
    )
    signal.sigwait(stop)
    server.shutdown()


if __name__ == "__main__":
    main()
