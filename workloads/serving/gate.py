"""The public listener's admission: who is calling (auth.py) and whether it is within its limit
(ratelimit.py), before any routing or model work; per-caller metrics.

`InferenceApp` asks the gate once per non-health request. A refusal is answered at once (401
for a credential, 429 with Retry-After past the caller's bucket); an admitted request goes on,
its answer counted under the caller's id. Metric label values stay bounded: API key ids are few
(the stack config lists them), and token subjects are named only for the first
`MAX_SUBJECT_LABELS` seen by this process (and every caller with a limit of its own): later ones
are counted as caller="other" (the limits still hold per subject).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import Counter

from workloads import contract
from workloads.serving.auth import ApiKeys, Authenticator, OidcVerifier, Refused
from workloads.serving.metrics import ServingMetrics
from workloads.serving.ratelimit import TokenBuckets
from workloads.serving.settings import ServingSettings

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

ANONYMOUS = "anonymous"  # the caller of a server without credentials (limits still apply)
OTHER = "other"  # the metric label of token subjects past MAX_SUBJECT_LABELS
MAX_SUBJECT_LABELS = 1000
MAINTENANCE_INTERVAL_S = 1.0


class Gate:
    def __init__(
        self,
        metrics: ServingMetrics,
        *,
        authenticator: Authenticator | None = None,
        limits: TokenBuckets | None = None,
        maintenance_interval_s: float = MAINTENANCE_INTERVAL_S,
    ):
        self.authenticator = authenticator
        self.limits = limits
        self._metrics = metrics
        self._maintenance_interval_s = maintenance_interval_s
        named = set(limits.limits.callers) if limits is not None else set()
        if authenticator is not None and authenticator.api_keys is not None:
            named |= authenticator.api_keys.ids
        self._named = named  # callers always labelled by name
        self._subjects: set[str] = set()
        self._requests: dict[tuple[str, int], Counter] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def authenticates(self) -> bool:
        return self.authenticator is not None

    def describe(self) -> str:
        ways = []
        if self.authenticator and self.authenticator.api_keys:
            ways.append(f"API keys ({self.authenticator.api_keys.path})")
        if self.authenticator and self.authenticator.oidc:
            oidc = self.authenticator.oidc
            ways.append(f"OIDC tokens (issuer {oidc.issuer}, audience {oidc.audience})")
        limits = (
            f"per-caller limits {self.limits.limits.default} by default"
            if self.limits is not None
            else "no per-caller limits"
        )
        return f"{' and '.join(ways) or 'NO credentials'}; {limits}"

    # ---- lifecycle: the maintenance thread (keys file, JWKS) ------------------------------

    def start(self) -> None:
        if self.authenticator is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._maintain, name="meridian-auth", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _maintain(self) -> None:
        assert self.authenticator is not None
        while True:
            try:
                self.authenticator.maintain()
            except Exception:  # never let a bad file or URL end the thread: the next tick retries
                log.exception("auth maintenance failed")
            if self._stop.wait(self._maintenance_interval_s):
                return

    # ---- admission ---------------------------------------------------------------------------

    async def admit(self, scope: Mapping[str, Any], send: Send) -> tuple[str, Send]:
        """(caller id, `send` counting the answer under the caller), else Refused."""
        if self.authenticator is None:
            caller, label = ANONYMOUS, ANONYMOUS
        else:
            try:
                caller, how = await self.authenticator.caller(scope)
            except Refused as refused:
                self._metrics.auth_failures.labels(refused.reason).inc()
                raise
            label = self._label(caller, how)
        if self.limits is not None:
            retry_after = self.limits.take(caller)
            if retry_after is not None:
                self._metrics.caller_throttled.labels(label).inc()
                self._count(label, 429)
                raise Refused(
                    429,
                    "throttled",
                    f"caller {caller!r} is over its rate limit of {self.limits.limits.of(caller)} on this replica: "
                    f"retry after {retry_after} s",
                    {"retry-after": str(retry_after)},
                )

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self._count(label, message["status"])
            await send(message)

        return caller, counted

    def _label(self, caller: str, how: str) -> str:
        if how == "api_key" or caller in self._named or caller in self._subjects:
            return caller
        if len(self._subjects) < MAX_SUBJECT_LABELS:
            self._subjects.add(caller)
            return caller
        return OTHER

    def _count(self, label: str, status: int) -> None:
        counter = self._requests.get((label, status))
        if counter is None:
            counter = self._requests[label, status] = self._metrics.caller_requests.labels(label, str(status))
        counter.inc()


def announce(gate: Gate | None, port: int) -> None:
    """Say at start who may call; loudly when anyone may."""
    if gate is None or not gate.authenticates:
        log.warning(
            "NO CALLER AUTHENTICATION: anyone who reaches port %d may call inference. Set %s and/or %s, %s and %s",
            port,
            contract.ENV_API_KEYS_FILE,
            contract.ENV_OIDC_ISSUER,
            contract.ENV_OIDC_AUDIENCE,
            contract.ENV_OIDC_JWKS_URL,
        )
    if gate is not None:
        log.info("callers on port %d: %s", port, gate.describe())


def build_gate(settings: ServingSettings, metrics: ServingMetrics) -> Gate | None:
    """The gate the settings ask for; None with neither credentials nor limits (an open server,
    which the runner announces loudly). An unusable API keys file stops the process here."""
    api_keys = None
    if settings.api_keys_file is not None:
        try:
            api_keys = ApiKeys(settings.api_keys_file)
        except (OSError, ValueError) as err:
            raise SystemExit(f"API keys file {settings.api_keys_file}: {err}") from None
    oidc = settings.oidc and OidcVerifier(settings.oidc.issuer, settings.oidc.audience, settings.oidc.jwks_url)
    if api_keys is None and oidc is None and settings.rate_limits is None:
        return None
    return Gate(
        metrics,
        authenticator=Authenticator(api_keys, oidc) if api_keys or oidc else None,
        limits=TokenBuckets(settings.rate_limits) if settings.rate_limits is not None else None,
    )
