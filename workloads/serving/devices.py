"""How a server uses its model's device: where the batched forward pass runs, and how large a
batch may grow.

Where the forward runs. On CUDA a forward pass is a few kernel launches and then a wait for the
GPU (the copy back). Run on the event loop, that wait would stall every socket read and request
parse behind it. So on CUDA each batch goes to the device's worker thread (one per device,
shared by the versions on it) and the loop only awaits a future: torch releases the GIL in its
kernels, copies and synchronisation, so requests keep arriving (and join the next batch) while
the GPU computes. On CPU the forward stays on the loop by default: the forward needs the very
core the loop runs on, so nothing overlaps, and the hop to a thread and back costs CPU per batch
that the in-loop call does not pay (measured by `bench/serving.py --device cpu`: `thread_hop`
in bench/results/serving-cpu.json). `Offload` overrides it either way (tests force the worker
on CPU; the benchmark compares both on each device).

How large a batch grows. Batches grow with load by themselves (batching.py): whatever queued
while the last forward ran joins the next one, up to a cap; the cap and the optional wait for a
partial batch are chosen per device, because the cost of a forward grows with its rows
differently:
- CPU: a forward's cost grows about linearly with its rows, so a larger batch mainly makes the
  first request wait for the last one's rows; the cap is `--max-batch-size` (32 by default, the
  stack config's `inference.maxBatchSize`) and the wait `--max-batch-wait-ms`.
- CUDA: a forward of one row or of hundreds costs about the same (launch- and copy-bound for
  the models served here), so the cap is high (`--cuda-max-batch-size`, 256 by default, the
  stack config's `inference.cudaMaxBatchSize`): under
  load each forward answers everyone who queued meanwhile, and throughput grows with the queue
  instead of with the number of forward passes. No added wait by default
  (`--cuda-max-batch-wait-ms` 0): the forward in flight is itself the wait, and the loop is free
  while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch

from workloads import contract

DEFAULT_CUDA_MAX_BATCH_SIZE = contract.CUDA_MAX_BATCH_SIZE
DEFAULT_CUDA_MAX_BATCH_WAIT_MS = 0.0
WORKER_THREAD_PREFIX = "meridian-forward"


class Offload(StrEnum):
    """Whether forward passes run in a worker thread of their device."""

    AUTO = "auto"  # on CUDA devices, off on CPU
    ON = "on"
    OFF = "off"

    def applies_to(self, device: torch.device) -> bool:
        return self is Offload.ON or (self is Offload.AUTO and device.type == "cuda")


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = 32
    max_wait_s: float = 0.002
    queue_capacity: int = 256

    def __post_init__(self) -> None:
        for name, value, low in (
            ("max_batch_size", self.max_batch_size, 1),
            ("queue_capacity", self.queue_capacity, 1),
            ("max_wait_s", self.max_wait_s, 0),
        ):
            if value < low:
                raise ValueError(f"batching {name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class DeviceBatching:
    """The batching limits for each kind of device (the rule: this module's docstring), and
    whether forward passes leave the event loop."""

    cpu: BatchingConfig = BatchingConfig()
    cuda: BatchingConfig = BatchingConfig(DEFAULT_CUDA_MAX_BATCH_SIZE, DEFAULT_CUDA_MAX_BATCH_WAIT_MS / 1000)
    offload: Offload = Offload.AUTO

    def for_device(self, device: torch.device) -> BatchingConfig:
        return self.cuda if device.type == "cuda" else self.cpu


Predict = Callable[[np.ndarray], np.ndarray]


class ForwardWorker:
    """One thread running the forward passes of one device, one batch at a time, in order."""

    def __init__(self, device: torch.device):
        self.device = device
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"{WORKER_THREAD_PREFIX}-{device}", initializer=_bind, initargs=(device,)
        )

    def run(self, predict: Predict, x: np.ndarray) -> asyncio.Future[np.ndarray]:
        """`predict(x)` in the worker thread; the future resolves on the caller's loop. An
        exception of `predict` fails this future only: the thread goes on to the next batch."""
        return asyncio.get_running_loop().run_in_executor(self._executor, predict, x)

    async def close(self) -> None:
        """Finish the batch in progress, then end the thread (off the loop: joining blocks)."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)


def _bind(device: torch.device) -> None:
    """The worker thread's current CUDA device is its model's (torch's current device is per
    thread), so allocations the forward makes without a device land there too. A device
    without an index ("cuda") is the current one already, and `set_device` refuses it."""
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)


class ForwardWorkers:
    """A server's forward workers: one per device that offloads, started on first use."""

    def __init__(self, offload: Offload):
        self._offload = offload
        self._by_device: dict[torch.device, ForwardWorker] = {}

    def for_device(self, device: torch.device) -> ForwardWorker | None:
        """The worker of `device`, or None: forward passes run on the event loop."""
        if not self._offload.applies_to(device):
            return None
        if device not in self._by_device:
            self._by_device[device] = ForwardWorker(device)
        return self._by_device[device]

    async def close(self) -> None:
        workers, self._by_device = list(self._by_device.values()), {}
        for worker in workers:
            await worker.close()
