"""What every workload test module may use: async tests (`pytest.mark.anyio`) run on asyncio,
the loop the servers run on under uvicorn."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
