"""Localization tests share one torch thread, so their timings compare like with like on two cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train on one thread: the machine's two cores are shared, and two spinning torch threads
    under contention made these tests several times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
