"""Prometheus metrics of one server (regional or edge), in its own registry, served on a
listener of their own (`contract.METRICS_PORT`), never on the public HTTP port.

Per-request costs are kept to a counter increment and a histogram observation on label children
bound once per version; queue depth, requests in flight and the edge's breaker state are read at
scrape time, not updated per request.
"""

from __future__ import annotations

import functools
import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from workloads import contract

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        # Every family lives in this server's registry; most are labelled by model and version.
        counter = functools.partial(Counter, registry=self.registry)
        gauge = functools.partial(Gauge, registry=self.registry)
        histogram = functools.partial(Histogram, registry=self.registry)
        by_version = ("model", "version")
        self.requests = counter(
            "meridian_inference_requests",
            "Inference requests by model, version and HTTP status",
            (*by_version, "status"),
        )
        self.latency = histogram(
            "meridian_inference_request_duration_seconds",
            "Inference request latency inside the server (answered requests)",
            by_version,
            buckets=LATENCY_BUCKETS,
        )
        self.batch_size = histogram(
            "meridian_inference_batch_size", "Rows per forward pass", by_version, buckets=BATCH_BUCKETS
        )
        self.queue_depth = gauge("meridian_inference_queue_depth", "Requests waiting for a forward pass", by_version)
        # What KEDA scales on: concurrency, whatever the split between queue and forward pass.
        self.in_flight = gauge(
            "meridian_inference_in_flight", "Inference requests accepted, not yet answered", ("model",)
        )
        self.version_loaded = gauge(
            "meridian_model_version_loaded",
            "1 for each loaded version, with its role (stable or candidate)",
            (*by_version, "role"),
        )
        self.traffic_percent = gauge(
            "meridian_model_traffic_percent", "Share of unpinned traffic routed to each loaded version", by_version
        )
        self.reloads = counter(
            "meridian_model_reloads",
            "Model (re)loads by outcome: loaded, rejected (verification failed), failed",
            ("model", "outcome"),
        )
        # Canary analysis (workloads/canary reads them): top-1 agreement of candidate answers
        # with the stable version on the same input, and fed-back true labels, per version.
        self.agreement = counter(
            "meridian_canary_agreement",
            "Rows answered by the candidate, re-run on stable off the response path: agree or disagree",
            (*by_version, "outcome"),
        )
        self.feedback = counter(
            "meridian_feedback",
            "Fed-back true labels of served rows, by the version that answered: correct or incorrect",
            (*by_version, "outcome"),
        )
        # Callers (gate.py): API key ids, token subjects (the first 1,000; later ones "other").
        self.caller_requests = counter(
            "meridian_inference_caller_requests",
            "Admitted requests on the public listener by caller id and HTTP status (429: over its limit)",
            ("caller", "status"),
        )
        self.caller_throttled = counter(
            "meridian_inference_caller_throttled",
            "Requests refused with 429 because the caller was over its own rate limit",
            ("caller",),
        )
        self.auth_failures = counter(
            "meridian_inference_auth_failures",
            "Requests refused with 401 by reason (missing, malformed, unknown_key, wrong_key, expired, "
            "wrong_audience, wrong_issuer, bad_signature, unknown_kid, bad_algorithm, invalid_token, unsupported)",
            ("reason",),
        )
        # Edge cascade.
        self.edge_answers = counter(
            "meridian_edge_answers",
            "Edge answers by source: local (confident), cache, region (escalated), "
            "fallback (escalation failed, answered locally)",
            ("source",),
        )
        self.edge_local_fraction = gauge(
            "meridian_edge_local_fraction",
            "Fraction of edge answers given without the region (local + cache + fallback)",
        )
        self.escalations = counter("meridian_edge_escalations", "Requests forwarded to the region")
        self.cache_hits = counter("meridian_edge_cache_hits", "Requests answered from the LRU cache")
        self.upstream_errors = counter(
            "meridian_edge_upstream_errors", "Failed attempts to reach the region, by reason", ("reason",)
        )
        self.breaker_open = gauge(
            "meridian_edge_breaker_open",
            "1 while the circuit breaker to the region is open (escalations answered locally), else 0",
        )

    def serve(self, host: str, port: int) -> WSGIServer:
        """Serve this registry on `host:port` (0: any free port; `.server_port` says which) until
        the process ends or `.shutdown()`.

        prometheus_client's own threaded HTTP server, not a second ASGI server on the event loop:
        it owns its socket and thread, so the inference path (the loop, its selector, the ASGI
        app) carries nothing for it; rendering a scrape never runs on the loop between batches;
        and a scrape is still answered while the loop is saturated, which is when queue depth and
        requests in flight matter most. Its cost is the GIL for the few milliseconds of a
        rendering, once per scrape interval, as the old /metrics route on the loop had.
        """
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d%s", host, server.server_port, contract.METRICS_PATH)
        return server


class VersionMetrics:
    """Label children of one model version, bound once so the hot path skips label lookups."""

    def __init__(self, metrics: ServingMetrics, model: str, version: str):
        self._metrics = metrics
        self._model = model
        self._version = version
        self._by_status: dict[int, Counter] = {}
        self.latency = metrics.latency.labels(model, version)
        self.batch_size = metrics.batch_size.labels(model, version)

    def request(self, status: int, seconds: float | None = None) -> None:
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._by_status[status] = self._metrics.requests.labels(self._model, self._version, str(status))
        counter.inc()
        if seconds is not None:
            self.latency.observe(seconds)
