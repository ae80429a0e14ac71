"""The servers and edges the controller drives, and what each one serves, through the Open
Inference Protocol's model metadata and repository extension on their admin listener
(`contract.ADMIN_PORT`, bearer admin token on every call).

`--targets` is a comma-separated list of admin base URLs (`http://<host>:<ADMIN_PORT>`), where
`dns+http://<host>:<ADMIN_PORT>` stands for every address the name resolves to (a headless
Service: one A record per ready pod), resolved again on every pass so new replicas are found.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import httpx

DNS_SCHEME = "dns+"


@dataclass(frozen=True)
class Split:
    """A target's traffic split, as its model metadata reports it."""

    stable: str
    candidate: str | None = None
    weight: int = 0

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.stable,) if self.candidate is None else (self.stable, self.candidate)


async def resolve(spec: str) -> list[str]:
    """Every base URL `spec` names, in a stable order."""
    urls: set[str] = set()
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        if not entry.startswith(DNS_SCHEME):
            urls.add(entry.rstrip("/"))
            continue
        url = httpx.URL(entry.removeprefix(DNS_SCHEME))
        port = url.port or 80
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                url.host, port, family=socket.AF_INET, type=socket.SOCK_STREAM
            )
        except socket.gaierror:  # no ready pod yet: nothing to drive this pass
            continue
        urls.update(f"{url.scheme}://{info[4][0]}:{port}" for info in infos)
    return sorted(urls)


async def read_split(client: httpx.AsyncClient, url: str, model: str, token: str) -> Split:
    response = await client.get(f"{url}/v2/models/{model}", headers={"authorization": f"Bearer {token}"})
    response.raise_for_status()
    parameters = response.json()["parameters"]
    return Split(parameters["stable"], parameters.get("candidate"), int(parameters.get("candidate_weight") or 0))


async def load(client: httpx.AsyncClient, url: str, model: str, split: Split, token: str) -> None:
    """Make `split` live on one target (POST /v2/repository/models/{m}/load)."""
    response = await client.post(
        f"{url}/v2/repository/models/{model}/load",
        json={"parameters": {"stable": split.stable, "candidate": split.candidate, "candidate_weight": split.weight}},
        headers={"authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise httpx.HTTPStatusError(
            f"{url} refused {split}: {response.status_code} {response.text[:200]}",
            request=response.request,
            response=response,
        )
