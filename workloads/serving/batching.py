"""Adaptive micro-batching on the event loop, with a bounded queue.

Validated requests queue here; one task runs the model over as many rows as are waiting, up to
`max_batch_size`. Batches grow with load by themselves: while a forward pass runs, new requests
pile up and all join the next one. `max_wait_s` optionally holds a batch that is not full yet, in
the hope of more rows (Triton's max queue delay). The forward pass runs on the event loop itself
(on CPU: for the small models served here it takes tens of microseconds, cheaper than a thread
hand-off per batch) or, given a `ForwardWorker` (on CUDA), in the device's worker thread while
the loop keeps reading requests; one batch per batcher is in flight at a time either way
(devices.py says which, and why).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np

from workloads.serving.devices import ForwardWorker


class QueueFull(Exception):
    """The bounded queue is full: the caller answers 429 at once."""


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_size: int,
        max_wait_s: float,
        capacity: int,
        observe_batch: Callable[[int], None] = lambda rows: None,
        worker: ForwardWorker | None = None,
    ):
        if max_batch_size < 1 or capacity < 1 or max_wait_s < 0:
            raise ValueError("max_batch_size and capacity must be >= 1, max_wait_s >= 0")
        self._predict = predict
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._capacity = capacity
        self._observe_batch = observe_batch
        self._forward_worker = worker  # None: the forward runs on the event loop
        self._pending: deque[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = deque()
        self._pending_rows = 0
        self._wakeup: asyncio.Future[None] | None = None  # set while the batching task sleeps
        self._wake_on_any = True
        self._closing = False
        self._worker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Requests waiting (the queue-depth gauge reads this at scrape time)."""
        return len(self._pending)

    @property
    def capacity(self) -> int:
        return self._capacity

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    def submit(self, x: np.ndarray) -> asyncio.Future[np.ndarray]:
        """Queue `x` (rows, ...); the future resolves to its rows of the model's output."""
        if self._closing:
            raise RuntimeError("submit after close: the caller must pick a live version")
        if len(self._pending) >= self._capacity:
            raise QueueFull
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((x, future))
        self._pending_rows += len(x)
        self._wake()
        return future

    async def close(self) -> None:
        """Stop taking requests, answer every queued one, then stop."""
        self._closing = True
        self._wake()
        if self._worker is not None:
            await self._worker

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is None or wakeup.done():
            return
        if self._wake_on_any or self._pending_rows >= self._max_batch_size or self._closing:
            wakeup.set_result(None)

    async def _sleep(self, delay: float | None, *, wake_on_any: bool) -> None:
        """Sleep until submit() wakes us (on any request, or only once a batch is full) or
        until `delay` runs out."""
        loop = asyncio.get_running_loop()
        wakeup: asyncio.Future[None] = loop.create_future()
        self._wakeup, self._wake_on_any = wakeup, wake_on_any
        timer = None if delay is None else loop.call_later(delay, _resolve, wakeup)
        try:
            await wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._sleep(None, wake_on_any=True)
                continue
            # Let every request already read off the sockets in this loop turn join in.
            await asyncio.sleep(0)
            if self._max_wait_s > 0 and self._pending_rows < self._max_batch_size and not self._closing:
                await self._sleep(self._max_wait_s, wake_on_any=False)
            await self._run_one_batch()

    async def _run_one_batch(self) -> None:
        batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0][0]) <= self._max_batch_size):
            x, future = self._pending.popleft()
            rows += len(x)
            if not future.cancelled():  # its client went away while it waited
                batch.append((x, future))
        self._pending_rows -= rows
        if not batch:
            return
        try:
            xs = batch[0][0] if len(batch) == 1 else np.concatenate([x for x, _ in batch])
            worker = self._forward_worker
            outputs = self._predict(xs) if worker is None else await worker.run(self._predict, xs)
        except Exception as err:  # a model failure fails its batch, never the server
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self._observe_batch(len(xs))
        start = 0
        for x, future in batch:
            if not future.done():  # cancelled while a worker ran its batch
                future.set_result(outputs[start : start + len(x)])
            start += len(x)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
