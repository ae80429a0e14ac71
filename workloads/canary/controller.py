"""One pass of the canary controller: find what the region's servers serve, judge the candidate
under analysis, apply the decision to every server, and keep it applied.

The servers hold the state (their traffic split); the controller remembers only its recent
decisions, so that a replica that still serves a decided candidate (a new pod that followed
`latest` on its own, one that missed the first call) is brought in line on the next pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as MetricCounter

from workloads.canary.analysis import Decision, Thresholds, Verdict, decide
from workloads.canary.prometheus import measure
from workloads.canary.targets import Split, load, read_split, resolve
from workloads.serving.admin_token import AdminToken

log = logging.getLogger("workloads.canary")

REMEMBERED_DECISIONS = 64


@dataclass(frozen=True)
class Decided:
    candidate: str
    decision: Decision
    stable: str  # the stable version the candidate was judged against


def applied(split: Split, decided: Decided) -> Split | None:
    """`split` with `decided` applied to it (None: nothing to change). A promoted candidate
    becomes stable; a rolled-back one leaves whichever role it has, and stable falls back to
    the version it was judged against."""
    c = decided.candidate
    if decided.decision is Decision.PROMOTED:
        return Split(c) if split.candidate == c else None
    if split.candidate == c:
        return Split(split.stable)
    if split.stable == c:  # a replica that started later and took it as its stable
        keep = split.candidate not in (None, decided.stable)
        return Split(decided.stable, split.candidate, split.weight) if keep else Split(decided.stable)
    return None


@dataclass(frozen=True)
class Settings:
    prometheus: str
    region: str
    model: str
    targets: str
    thresholds: Thresholds
    admin_token: AdminToken  # re-read on every pass: a rotated token reaches the controller without a restart


class Controller:
    def __init__(self, settings: Settings, client: httpx.AsyncClient, registry: CollectorRegistry | None = None):
        self.settings = settings
        self._client = client
        self._decided: OrderedDict[str, Decided] = OrderedDict()
        self.decisions = MetricCounter(
            "meridian_canary_decisions",
            "Canary decisions by model, candidate version and decision (promoted, rolled_back)",
            ("model", "candidate", "decision"),
            registry=registry,
        )

    async def step(self) -> Verdict | None:
        """One pass; the verdict on the candidate under analysis (None: no candidate)."""
        s = self.settings
        token = s.admin_token.current()
        splits = await self._splits(await resolve(s.targets), token)
        for url, split in splits.items():
            for decided in self._decided.values():
                if (fixed := applied(split, decided)) is not None:
                    log.info("re-applying %s of %s on %s", decided.decision, decided.candidate, url)
                    await self._load(url, fixed, token)
                    split = fixed
        judged = Counter(
            (sp.stable, sp.candidate) for sp in splits.values() if sp.candidate and sp.candidate not in self._decided
        )
        if not judged:
            return None
        (stable, candidate), _ = judged.most_common(1)[0]
        assert candidate is not None
        stats = await measure(
            self._client,
            s.prometheus,
            region=s.region,
            model=s.model,
            window=s.thresholds.window_seconds,
            versions=(stable, candidate),
        )
        verdict = decide(stats[stable], stats[candidate], s.thresholds)
        if verdict.decision is None:
            log.info(
                "candidate %s vs stable %s: no decision, %s; %s", candidate, stable, verdict.reason, verdict.evidence
            )
            return verdict
        decided = Decided(candidate, verdict.decision, stable)
        self._decided[candidate] = decided
        while len(self._decided) > REMEMBERED_DECISIONS:
            self._decided.popitem(last=False)
        self.decisions.labels(s.model, candidate, verdict.decision.value).inc()
        log.warning(
            "canary decision: %s %s of model %s in %s (stable %s): %s; evidence: %s",
            verdict.decision,
            candidate,
            s.model,
            s.region,
            stable,
            verdict.reason,
            verdict.evidence,
        )
        for url, split in splits.items():
            if (fixed := applied(split, decided)) is not None:
                await self._load(url, fixed, token)
        return verdict

    async def _splits(self, urls: list[str], token: str) -> dict[str, Split]:
        async def one(url: str) -> tuple[str, Split | None]:
            try:
                return url, await read_split(self._client, url, self.settings.model, token)
            except (httpx.HTTPError, KeyError, ValueError) as err:  # not ready yet, going away
                log.info("skipping %s this pass: %s", url, err)
                return url, None

        return {url: split for url, split in await asyncio.gather(*map(one, urls)) if split is not None}

    async def _load(self, url: str, split: Split, token: str) -> None:
        try:
            await load(self._client, url, self.settings.model, split, token)
        except httpx.HTTPError as err:  # the next pass re-applies it
            log.error("applying %s on %s failed: %s", split, url, err)
