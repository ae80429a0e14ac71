"""Which model versions are live, how unpinned traffic splits between them, and hot reload.

The live set is one immutable `Routing` object; a reload builds the next one beside it (new
versions downloaded, verified and loaded in a worker thread while the old ones keep serving)
and replaces it with a single assignment. Requests already queued on a retired version are
still answered by it before its batcher stops, so a swap fails no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass, field

import numpy as np

from workloads.registry.artifact import ArtifactRejected
from workloads.serving.batching import MicroBatcher
from workloads.serving.devices import BatchingConfig, DeviceBatching, ForwardWorker, ForwardWorkers
from workloads.serving.metrics import ServingMetrics, VersionMetrics
from workloads.serving.models import LoadedModel, ModelSource
from workloads.serving.protocol import InferError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrafficSplit:
    """The stack config's canary block: `weight` percent of unpinned traffic to `candidate`."""

    stable: str
    candidate: str | None = None
    weight: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"candidate weight must be 0-100 percent, got {self.weight}")
        if self.weight > 0 and self.candidate is None:
            raise ValueError(f"candidate weight {self.weight} needs a candidate version")
        if self.candidate == self.stable:
            raise ValueError(f"candidate must differ from stable ({self.stable})")

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.stable,) if self.candidate is None else (self.stable, self.candidate)


class ServedVersion:
    """A loaded model version and its own batcher and metrics; `worker`: its device's forward
    worker (None: forward passes on the event loop)."""

    def __init__(
        self,
        model: LoadedModel,
        batching: BatchingConfig,
        metrics: VersionMetrics,
        worker: ForwardWorker | None = None,
    ):
        self.model = model
        self.name = model.version
        self.metrics = metrics
        self.batcher = MicroBatcher(
            model.predict,
            max_batch_size=batching.max_batch_size,
            max_wait_s=batching.max_wait_s,
            capacity=batching.queue_capacity,
            observe_batch=metrics.batch_size.observe,
            worker=worker,
        )

    def submit(self, x: np.ndarray) -> asyncio.Future[np.ndarray]:
        return self.batcher.submit(x)


@dataclass(frozen=True)
class Routing:
    split: TrafficSplit
    by_name: dict[str, ServedVersion] = field(default_factory=dict)


class ModelRouter:
    """The versions of one model this server has live."""

    def __init__(self, name: str, source: ModelSource, batching: DeviceBatching, metrics: ServingMetrics):
        self.name = name
        self._source = source
        self._batching = batching
        self._workers = ForwardWorkers(batching.offload)
        self._metrics = metrics
        self._routing: Routing | None = None
        self._reload_lock = asyncio.Lock()
        self._counter = 0

    @property
    def routing(self) -> Routing | None:
        return self._routing

    @property
    def ready(self) -> bool:
        return self._routing is not None

    def pick(self, pinned: str | None) -> ServedVersion:
        """The version for one request: the pinned one, else by the traffic split. The caller
        submits to it before its next `await`, so a swap cannot retire it in between."""
        routing = self._routing
        if routing is None:
            raise InferError(503, f"model '{self.name}' is not ready: no version loaded yet")
        if pinned is not None:
            served = routing.by_name.get(pinned)
            if served is None:
                raise InferError(
                    404,
                    f"model '{self.name}' version {pinned!r} is not loaded; loaded: {', '.join(routing.by_name)}",
                )
            return served
        split = routing.split
        if split.candidate is not None and split.weight > 0:
            # Deterministic interleave: exactly `weight` of every 100 requests, spread evenly.
            self._counter += 1
            n = self._counter
            if (n * split.weight) // 100 != ((n - 1) * split.weight) // 100:
                return routing.by_name[split.candidate]
        return routing.by_name[split.stable]

    async def deploy(self, split: TrafficSplit) -> None:
        """Make `split` live. New versions are verified and loaded beside the live ones, then
        swapped in at once; on any failure (a tampered artifact included) nothing changes."""
        async with self._reload_lock:
            current = self._routing.by_name if self._routing else {}
            fresh: dict[str, ServedVersion] = {}
            try:
                for version in split.versions:
                    if version not in current:
                        model = await asyncio.to_thread(self._source.load, version)
                        if model.version != version:
                            raise ValueError(f"asked for version {version}, the source loaded {model.version}")
                        fresh[version] = self._serve(model)
            except BaseException as err:
                outcome = "rejected" if isinstance(err, ArtifactRejected) else "failed"
                self._metrics.reloads.labels(self.name, outcome).inc()
                for served in fresh.values():
                    await self._retire(served)
                raise
            by_name = {v: fresh.get(v) or current[v] for v in split.versions}
            self._routing = Routing(split, by_name)  # the atomic swap
            self._metrics.reloads.labels(self.name, "loaded").inc()
            self._publish(split)
            # Long-lived objects (weights, modules) out of the collector's way: without this,
            # full collections stall batches for ~100 ms.
            gc.collect()
            gc.freeze()
            log.info("model %s now serving %s", self.name, split)
            for version, served in current.items():
                if version not in by_name:
                    await self._retire(served)

    async def close(self) -> None:
        """Answer what is queued, then stop the batchers and the forward workers."""
        routing, self._routing = self._routing, None
        if routing is not None:
            for served in routing.by_name.values():
                await self._retire(served)
        await self._workers.close()

    def _serve(self, model: LoadedModel) -> ServedVersion:
        batching = self._batching.for_device(model.device)
        worker = self._workers.for_device(model.device)
        served = ServedVersion(model, batching, VersionMetrics(self._metrics, self.name, model.version), worker)
        log.info(
            "version %s on %s: forward passes %s, up to %d rows, waiting up to %g ms for a partial batch",
            model.version,
            model.device,
            "on the event loop" if worker is None else "in the device's worker thread",
            batching.max_batch_size,
            batching.max_wait_s * 1000,
        )
        # The canary analysis's counters exist at 0 from the start: Prometheus's increase()
        # misses a series' first sample, and with it the first count.
        for counter, outcomes in (
            (self._metrics.agreement, ("agree", "disagree")),
            (self._metrics.feedback, ("correct", "incorrect")),
        ):
            for outcome in outcomes:
                counter.labels(self.name, model.version, outcome)
        self._metrics.queue_depth.labels(self.name, model.version).set_function(served.batcher.__len__)
        served.batcher.start()
        return served

    async def _retire(self, served: ServedVersion) -> None:
        await served.batcher.close()
        with contextlib.suppress(KeyError):
            self._metrics.queue_depth.remove(self.name, served.name)

    def _publish(self, split: TrafficSplit) -> None:
        m = self._metrics
        m.version_loaded.clear()  # one model per server: its roles are rewritten whole
        m.traffic_percent.clear()
        m.version_loaded.labels(self.name, split.stable, "stable").set(1)
        m.traffic_percent.labels(self.name, split.stable).set(100 - split.weight)
        if split.candidate is not None:
            m.version_loaded.labels(self.name, split.candidate, "candidate").set(1)
            m.traffic_percent.labels(self.name, split.candidate).set(split.weight)
