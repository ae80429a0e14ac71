"""Simulated users in several metros, each routed to its nearest site by the latency model.

Every request is a real V2 inference call over loopback to the site's server: HTTPS, with the
users' API key, as a user of the fleet calls it. What a user
would wait is the measured call time plus the modelled network round trips: user -> site,
and, when an edge escalated to its region, edge -> region (see latency.py for the figures).

During the canary drill the users keep going until told to stop, and, as an application whose
users correct its answers would, post each request's true label (the test split's) to the
site's feedback endpoint, so the canary analysis can compare the versions' accuracy.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from meridian.local.front_door import Caller
from meridian.local.latency import METROS, Place, Site, nearest
from workloads.contract import FEEDBACK_SUFFIX, MODEL_NAME
from workloads.serving.protocol import PROBABILITIES, encode_json_request


@dataclass
class Outcome:
    metro: str
    site: str
    served_by: str  # "edge", "region" (by the edge's escalation or directly), or "error"
    correct: bool
    latency_ms: float  # measured call + modelled network round trips
    error: str | None = None
    version: str | None = None  # the model version that answered


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]


def _label(response: dict[str, Any]) -> int:
    for output in response.get("outputs", []):
        if output.get("name") == PROBABILITIES:
            return int(np.argmax(output["data"]))
    raise ValueError(f"no {PROBABILITIES!r} output in the response")


async def _user(
    client: httpx.AsyncClient,
    metro: Place,
    site: Site,
    region_of_site: Site,
    examples: list[tuple[np.ndarray, int]],
    result: LoadResult,
    until: threading.Event | None,
    name: str,
) -> None:
    """One user's requests in turn: once through `examples`, or drawn from them at random until
    `until` (in random order: a fixed cycle could line up with the servers' deterministic
    traffic split and show one version a different mix of examples than the other)."""
    url = f"{site.url}/v2/models/{MODEL_NAME}/infer"
    feedback = f"{site.url}/v2/models/{MODEL_NAME}/{FEEDBACK_SUFFIX}"
    rng = random.Random(name)
    draws = (rng.choice(examples) for _ in itertools.count())
    for n, (x, label) in enumerate(examples if until is None else draws):
        if until is not None and until.is_set():
            return
        request_id = f"{name}-{n}"
        body = encode_json_request(x[np.newaxis, ...], request_id if until is not None else None)
        started = time.perf_counter()
        try:
            response = await client.post(url, content=body)
            measured_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
            answer = response.json()
            served_by = (answer.get("parameters") or {}).get("served_by", "region")
            network_ms = metro.rtt_ms(site.place)
            if site.is_edge and served_by == "region":
                network_ms += site.place.rtt_ms(region_of_site.place)
            correct = _label(answer) == label
            result.outcomes.append(
                Outcome(
                    metro.name, site.name, served_by, correct, measured_ms + network_ms, version=answer["model_version"]
                )
            )
            if until is not None:
                told = await client.post(feedback, json={"id": request_id, "label": label})
                if told.status_code >= 300:
                    raise RuntimeError(f"feedback: HTTP {told.status_code}: {told.text[:200]}")
        except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as err:
            result.outcomes.append(Outcome(metro.name, site.name, "error", False, 0.0, f"{url}: {err}"))


async def _run(
    sites: list[Site],
    examples: dict[str, tuple[np.ndarray, np.ndarray]],
    requests_per_metro: int,
    users_per_metro: int,
    seed: int,
    until: threading.Event | None,
    caller: Caller,
) -> LoadResult:
    result = LoadResult()
    regions = {s.region: s for s in sites if not s.is_edge}
    rng = random.Random(seed)
    tasks = []
    limits = httpx.Limits(max_connections=len(METROS) * users_per_metro)
    async with httpx.AsyncClient(timeout=30.0, limits=limits, headers=caller.headers, verify=caller.tls()) as client:
        # One untimed request per site first: users meet warm servers, as in a running fleet.
        for site in sites:
            x, _ = examples[site.region]
            await client.post(f"{site.url}/v2/models/{MODEL_NAME}/infer", content=encode_json_request(x[:1]))
        for metro in METROS.values():
            site = nearest(metro, sites)
            x, y = examples[site.region]  # users look like the data of the region serving them
            picks = [rng.randrange(len(x)) for _ in range(requests_per_metro)]
            for user in range(users_per_metro):
                mine = [(x[i], int(y[i])) for i in picks[user::users_per_metro]]
                name = f"{metro.name}-{user}-{seed}"
                tasks.append(_user(client, metro, site, regions[site.region], mine, result, until, name))
        await asyncio.gather(*tasks)
    return result


def run_load(
    sites: list[Site],
    examples: dict[str, tuple[np.ndarray, np.ndarray]],
    requests_per_metro: int,
    caller: Caller,
    users_per_metro: int = 2,
    seed: int = 0,
    until: threading.Event | None = None,
) -> LoadResult:
    """A closed-loop load: every metro's users send their requests one after another.

    `examples` maps a region to its held-out test split (inputs, labels); every call is the
    `caller`'s (its API key, the servers verified against its CA). With `until`, each
    user draws from its `requests_per_metro / users_per_metro` examples until the event is set,
    telling the site each answer's true label (request ids are unique per `seed`).
    """
    return asyncio.run(_run(sites, examples, requests_per_metro, users_per_metro, seed, until, caller))
