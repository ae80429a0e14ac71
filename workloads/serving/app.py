"""The Open Inference Protocol (KServe V2) REST server, as a thin ASGI app.

One app serves both the regional server and the edge: they differ only in the `Answerer` that
turns a validated request into probabilities (the model alone, or the edge's cascade). A plain
ASGI callable instead of a framework router: the hot path is a handful of string compares, which
matters at a budget of ~100 us of CPU per request.

One app state serves up to three listeners of the process (workloads/contract.py, "The front
door"), each an ASGI callable of its own (`InferenceApp.listener(role)`) with its own routes:

| route | PUBLIC (HTTP_PORT) | ESCALATION (mTLS) | ADMIN |
|---|---|---|---|
| GET /v2/health/live, /v2/health/ready | open | open | - |
| POST /v2/models/{m}[/versions/{v}]/infer | caller | edge | - |
| GET /v2, /v2/models/{m}[/versions/{v}][/ready] | caller | edge | admin token |
| POST /v2/models/{m}/feedback (true labels, see feedback.py) | caller | - | - |
| POST /v2/repository/models/{m}/load (hot reload) | - | - | admin token |

"-" answers 404, as does /metrics everywhere (it has its own port, which no public Service
exposes: `ServingMetrics.serve`). On the escalation listener the TLS handshake already admitted
the edge (its client certificate's common name, see runner.py) and the original caller is
CALLER_HEADER, trusted there only. On the public listener a `gate` (gate.py) admits callers: a
credential and a token of the caller's bucket. Errors are V2's `{"error": "..."}`: 400 bad
request, 401 missing/wrong credential or admin token, 403 no admin token configured, 404 unknown
model/version/route/request id, 405 wrong method, 422 unusable label, 429 queue full or the
caller over its own limit (both with Retry-After), 503 not ready.

Every answer carries the request's V2 `id` (one is generated when the client sent none): it is
what feedback refers to. While a candidate version takes a share of the traffic, the rows it
answers are re-run on the stable version off the response path, and the top-1 agreement is
counted: the canary analysis's signal where true labels never come back.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import orjson

from workloads.contract import CALLER_HEADER, FEEDBACK_SUFFIX, LIVENESS_PATH, READINESS_PATH, VERSION_HEADER
from workloads.registry.artifact import ArtifactRejected
from workloads.serving.admin_token import AdminToken
from workloads.serving.auth import Refused
from workloads.serving.batching import QueueFull
from workloads.serving.feedback import RecentAnswers, parse_feedback, score
from workloads.serving.gate import Gate
from workloads.serving.metrics import ServingMetrics
from workloads.serving.protocol import (
    INPUT_NAME,
    LABEL,
    PROBABILITIES,
    InferError,
    InferRequest,
    bad_request,
    encode_infer_response,
    parse_infer_request,
)
from workloads.serving.settings import LATEST
from workloads.serving.versions import ModelRouter, ServedVersion, TrafficSplit

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = b"application/json"
RETRY_AFTER_SECONDS = "1"
CALLER_SCOPE_KEY = "meridian.caller"  # the admitted caller's id (never its credential), for log lines
LOAD_RETRY_SECONDS = 10.0
# The scope key of the escalation listener's verified client certificate (runner.py fills it).
PEER_EXTENSION = "meridian.peer"
UNNAMED = "unknown"  # a caller or an edge nobody named


class Role(StrEnum):
    """A listener of the server process (workloads/contract.py, "The front door")."""

    PUBLIC = "public"  # HTTP_PORT: callers (and the probes on the health routes)
    ESCALATION = "escalation"  # ESCALATION_PORT: the region's edges, mutual TLS
    ADMIN = "admin"  # ADMIN_PORT: the canary controller, bearer admin token


# Routes, as `_classify` names them: plain strings, not an Enum, because an Enum member's
# lookup and hash cost ~0.4 us each on the inference path (measured, Python 3.11).
HEALTH, INFER, METADATA, FEEDBACK, LOAD, NO_ROUTE = "health", "infer", "metadata", "feedback", "load", "none"
_ROUTES: dict[Role, frozenset[str]] = {
    Role.PUBLIC: frozenset({HEALTH, INFER, METADATA, FEEDBACK}),
    Role.ESCALATION: frozenset({HEALTH, INFER, METADATA}),
    Role.ADMIN: frozenset({METADATA, LOAD}),
}
_POSTED = frozenset({INFER, FEEDBACK, LOAD})
# Who is asking, by listener: the caller's id (None: none known) and the `send` to answer with,
# or Refused / InferError.
Admission = Callable[[Scope, Send], Awaitable[tuple[str | None, Send]]]


class Answerer(Protocol):
    """Turns a validated request into class probabilities (rows, classes) plus response
    parameters. It must submit to `served` before its first `await`: that is what makes a
    version swap atomic for the request."""

    async def answer(self, request: InferRequest, served: ServedVersion) -> tuple[np.ndarray, dict[str, Any]]: ...

    async def close(self) -> None: ...


class LocalAnswerer:
    """The regional server: the model answers everything."""

    async def answer(self, request: InferRequest, served: ServedVersion) -> tuple[np.ndarray, dict[str, Any]]:
        return await served.submit(request.x), {}

    async def close(self) -> None:
        pass


class ClientGone(Exception):
    """The client disconnected before its request was read: nothing to answer."""


class InferenceApp:
    def __init__(
        self,
        router: ModelRouter,
        metrics: ServingMetrics,
        *,
        initial_split: TrafficSplit,
        server_name: str,
        max_body_bytes: int = 1 << 20,
        admin_token: AdminToken | None = None,
        answerer: Answerer | None = None,
        latest_version: Callable[[], str | None] | None = None,
        reload_interval_s: float = 30.0,
        latest_weight: int = 0,
        gate: Gate | None = None,
    ):
        """`latest_weight`: with stable `latest`, each new latest version enters as the
        candidate at this percent (the canary analysis promotes or rolls it back); 0 swaps it in
        as stable at once. `gate`: callers' credentials and limits on every route but health
        (None: open to anyone)."""
        self.router = router
        self.metrics = metrics
        self._initial_split = initial_split
        self._server_name = server_name
        self._max_body_bytes = max_body_bytes
        self._admin_token = admin_token
        self._answerer = answerer or LocalAnswerer()
        self._latest = latest_version
        self._reload_interval_s = reload_interval_s
        self._latest_weight = latest_weight
        self.gate = gate
        self._loader: asyncio.Task[None] | None = None
        self._recent = RecentAnswers()
        # Versions the repository API took out of service (a rolled-back candidate, a replaced
        # stable): following `latest` never brings one back.
        self._withdrawn: set[str] = set()
        # A plain int on the loop, read by the gauge at scrape time: no metric call per request.
        self._in_flight = 0
        # The escalation listener's counters, one per (edge, caller), bound on first use.
        self._escalation_counters: dict[tuple[str, str], Any] = {}
        metrics.in_flight.labels(router.name).set_function(lambda: self._in_flight)

    # ---- ASGI: one callable per listener ---------------------------------------------------

    def listener(self, role: Role) -> Asgi:
        """The ASGI app of one listener. Lifespan is not theirs: the process starts and stops
        this app once for all its listeners (`startup`, `shutdown`; runner.py)."""
        routes = _ROUTES[role]
        admit = {Role.PUBLIC: self._admit_caller, Role.ESCALATION: self._admit_edge, Role.ADMIN: self._admit_admin}[
            role
        ]

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            try:
                await self._http(routes, admit, scope, receive, send)
            except ClientGone:
                pass
            except Exception:  # a bug, never the request's content: the fuzz test holds us to it
                log.exception(
                    "internal error on %s %s (%s listener, caller %s)",
                    scope["method"],
                    scope["path"],
                    role,
                    scope.get(CALLER_SCOPE_KEY, "-"),
                )
                await _respond(send, 500, _error_body("internal error"))

        return asgi

    async def startup(self) -> None:
        """Start loading the configured versions in the background: liveness answers at once,
        readiness once a version is loaded."""
        self._loader = asyncio.get_running_loop().create_task(self._keep_loaded())
        if self.gate is not None:
            self.gate.start()

    async def shutdown(self) -> None:
        if self._loader is not None:
            self._loader.cancel()
        if self.gate is not None:
            self.gate.close()
        await self.router.close()
        await self._answerer.close()

    async def _keep_loaded(self) -> None:
        """Load the configured versions (retrying until they load), then, when the stable
        version is `latest`, follow the registry's latest pointer: each new version is
        verified and swapped in; a refused one is not retried until the pointer moves on."""
        while not self.router.ready:
            try:
                await self.router.deploy(await self._resolve(self._initial_split))
            except Exception as err:  # not ready until it loads; the kubelet sees it on /ready
                log.error("loading %s failed (retrying in %.0f s): %s", self._initial_split, LOAD_RETRY_SECONDS, err)
                await asyncio.sleep(LOAD_RETRY_SECONDS)
        if self._initial_split.stable != LATEST:
            return
        refused = None
        while True:
            await asyncio.sleep(self._reload_interval_s)
            newest = None
            try:
                newest = await asyncio.to_thread(self._latest_version)
                routing = self.router.routing
                if routing is None or newest is None or newest in (*routing.split.versions, refused):
                    continue
                if newest in self._withdrawn:
                    continue
                await self.router.deploy(self._following(routing.split, newest))
            except ArtifactRejected as err:
                refused = newest
                log.error("refused %s; still serving %s: %s", newest, self.router.routing, err)
            except Exception as err:  # the registry or CDN is down: keep serving, poll again
                log.warning("following the registry's latest version failed: %s", err)

    def _following(self, split: TrafficSplit, newest: str) -> TrafficSplit:
        """The split once `newest` is the registry's latest version."""
        if self._latest_weight > 0:
            # Judged first: stable keeps serving; a newer latest replaces an undecided candidate.
            return TrafficSplit(split.stable, newest, self._latest_weight)
        if split.candidate is not None:  # a candidate loaded through the repository API stays
            return TrafficSplit(newest, split.candidate, split.weight)
        return TrafficSplit(newest)

    async def _resolve(self, split: TrafficSplit) -> TrafficSplit:
        if split.stable != LATEST:
            return split
        newest = await asyncio.to_thread(self._latest_version)
        if newest is None:
            raise LookupError(f"the registry has no version of model '{self.router.name}' yet")
        if newest == split.candidate:
            return TrafficSplit(newest)
        return TrafficSplit(newest, split.candidate, split.weight)

    def _latest_version(self) -> str | None:
        if self._latest is None:
            raise RuntimeError(f"stable version '{LATEST}' needs a source that can tell the latest version")
        return self._latest()

    # ---- routing ------------------------------------------------------------------------

    async def _http(self, routes: frozenset[str], admit: Admission, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        route, parts = _classify(path)
        if route == HEALTH and route in routes:  # open: probes and load balancers
            if method not in ("GET", "HEAD"):
                await _respond(send, 405, _error_body(f"{method} {path} is not allowed: use GET"))
                return
            status, body = self._health(path)
            await _respond(send, status, body)
            return
        # Everything else is admitted first, whatever the route: a refused caller learns nothing
        # of the routes, and costs no body read and no model work.
        try:
            scope[CALLER_SCOPE_KEY], send = await admit(scope, send)
        except (Refused, InferError) as refused:
            await _respond(send, refused.status, _error_body(refused.message), headers=refused.headers)
            return
        if route not in routes:
            await _respond(send, 404, _error_body(f"no route for {path}"))
            return
        if route in _POSTED:
            if method != "POST":
                await _respond(send, 405, _error_body(f"{method} {path} is not allowed: use POST"))
                return
        elif method not in ("GET", "HEAD"):
            await _respond(send, 405, _error_body(f"{method} {path} is not allowed: use GET"))
            return
        if route == INFER:
            await self._infer(scope, receive, send)
        elif route == FEEDBACK:
            status, body = await self._feedback(receive, _headers(scope), parts[3])
            await _respond(send, status, body)
        elif route == LOAD:
            status, body = await self._repository_load(scope, receive, parts[4])
            await _respond(send, status, body)
        else:
            status, body = self._metadata(path, parts)
            await _respond(send, status, body)

    # ---- admission: who is asking, one method per listener -------------------------------

    async def _admit_caller(self, scope: Scope, send: Send) -> tuple[str | None, Send]:
        """The public listener: the gate admits the caller (API key id, token subject) and
        counts its answer; without a gate nobody is named."""
        if self.gate is None:
            return None, send
        return await self.gate.admit(scope, send)

    async def _admit_edge(self, scope: Scope, send: Send) -> tuple[str | None, Send]:
        """The escalation listener: the TLS handshake verified the edge (its certificate's common
        name); the edge names the caller it escalates for."""
        edge = scope.get("extensions", {}).get(PEER_EXTENSION, {}).get("common_name") or UNNAMED
        caller = _headers(scope).get(CALLER_HEADER) or UNNAMED
        counter = self._escalation_counters.get((edge, caller))
        if counter is None:
            counter = self.metrics.escalations_received.labels(self.router.name, edge, caller)
            self._escalation_counters[(edge, caller)] = counter
        counter.inc()
        return caller, send

    async def _admit_admin(self, scope: Scope, send: Send) -> tuple[str | None, Send]:
        """The admin listener: the bearer admin token (the canary controller)."""
        if self._admin_token is None:
            raise InferError(403, "the admin API is disabled: no admin token configured")
        given = _headers(scope).get("authorization", "")
        if not given.startswith("Bearer ") or not self._admin_token.accepts(given.removeprefix("Bearer ")):
            raise InferError(401, "the admin API needs 'Authorization: Bearer <admin token>'")
        return None, send

    def _health(self, path: str) -> tuple[int, bytes]:
        if path == LIVENESS_PATH:
            return 200, b'{"live":true}'
        if self.router.ready:
            return 200, b'{"ready":true}'
        return 503, _error_body(f"model '{self.router.name}' is not loaded yet")

    def _metadata(self, path: str, parts: list[str]) -> tuple[int, bytes]:
        if parts == ["", "v2"]:
            return 200, _json(
                {
                    "name": self._server_name,
                    "version": "1",
                    "extensions": ["binary_tensor_data", "model_repository"],
                }
            )
        try:
            return 200, self._model_get(parts[3], parts[4:])
        except InferError as err:
            return err.status, _error_body(err.message)

    def _model_get(self, name: str, rest: list[str]) -> bytes:
        pinned = None
        if rest[:1] == ["versions"] and len(rest) in (2, 3):
            pinned, rest = rest[1], rest[2:]
        if rest not in ([], ["ready"]):
            raise InferError(404, f"no route for model path {'/'.join(rest)}")
        self._check_model(name)
        routing = self.router.routing
        if routing is None:
            raise InferError(503, f"model '{name}' is not loaded yet")
        versions = list(routing.by_name) if pinned is None else [self.router.pick(pinned).name]
        if rest == ["ready"]:
            return b'{"ready":true}'
        model = routing.by_name[versions[0]].model
        split = routing.split
        return _json(
            {
                "name": name,
                "versions": versions,
                "platform": "pytorch",
                "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *model.input_shape]}],
                "outputs": [
                    {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, model.num_classes]},
                    {"name": LABEL, "datatype": "INT64", "shape": [-1]},
                ],
                "parameters": {
                    "stable": split.stable,
                    "candidate": split.candidate,
                    "candidate_weight": split.weight,
                    "artifacts": {v: routing.by_name[v].model.description for v in versions},
                    "devices": {v: str(routing.by_name[v].model.device) for v in versions},
                },
            }
        )

    def _check_model(self, name: str) -> None:
        if name != self.router.name:
            raise InferError(404, f"unknown model {name!r}; this server serves '{self.router.name}'")

    # ---- inference ----------------------------------------------------------------------

    async def _infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._in_flight += 1
        try:
            started = time.perf_counter()
            served: ServedVersion | None = None
            extra_headers: dict[str, str] = {}
            try:
                parts = scope["path"].split("/")
                # ["", "v2", "models", name, "infer"] or [..., name, "versions", v, "infer"]
                if (
                    parts[1:3] != ["v2", "models"]
                    or len(parts) not in (5, 7)
                    or (len(parts) == 7 and parts[4] != "versions")
                ):
                    raise InferError(404, f"no route for {scope['path']}")
                self._check_model(parts[3])
                headers = _headers(scope)
                body = await self._read_body(receive, headers)
                pinned = parts[5] if len(parts) == 7 else headers.get(VERSION_HEADER)
                # From here to the answerer's submit there is no await: see ModelRouter.pick.
                served = self.router.pick(pinned)
                request = parse_infer_request(body, headers, served.model.input_shape)
                request_id = request.request_id or uuid.uuid4().hex
                request = replace(request, request_id=request_id, caller=scope.get(CALLER_SCOPE_KEY))
                probabilities, parameters = await self._answerer.answer(request, served)
                status = 200
                response, extra_headers = encode_infer_response(
                    self.router.name, served.name, request, probabilities, parameters
                )
                labels = probabilities.argmax(axis=1)
                self._recent.remember(request_id, served.name, labels)
                self._shadow(served, request.x, labels)
            except InferError as err:
                status, response, extra_headers = err.status, _error_body(err.message), err.headers
            except QueueFull:
                status, response = 429, _error_body("queue full: retry later")
                extra_headers = {"retry-after": RETRY_AFTER_SECONDS}
            except ClientGone:
                raise
            except Exception:  # the model failed (a bad version): counted as its 500, for the analysis
                log.exception(
                    "answering caller %s on %s failed",
                    scope.get(CALLER_SCOPE_KEY, "-"),
                    served.name if served else "no version",
                )
                status, response = 500, _error_body("internal error")
            if served is None:
                self.metrics.requests.labels(self.router.name, "none", str(status)).inc()
            else:
                served.metrics.request(status, time.perf_counter() - started if status == 200 else None)
            content_type = extra_headers.pop("content-type", "application/json").encode()
            await _respond(send, status, response, content_type=content_type, headers=extra_headers)
        finally:
            self._in_flight -= 1

    def _shadow(self, served: ServedVersion, x: np.ndarray, answered: np.ndarray) -> None:
        """Re-run a candidate's rows on stable after the answer, and count top-1 agreement;
        skipped while stable's queue is half full (its own traffic comes first)."""
        routing = self.router.routing
        if routing is None or routing.split.candidate != served.name:
            return
        stable = routing.by_name[routing.split.stable]
        if 2 * len(stable.batcher) >= stable.batcher.capacity:
            return
        try:
            future = stable.submit(x)
        except (QueueFull, RuntimeError):  # full, or retired meanwhile
            return
        counter = self.metrics.agreement

        def count(done: asyncio.Future[np.ndarray]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            agree = int((done.result().argmax(axis=1) == answered).sum())
            counter.labels(self.router.name, served.name, "agree").inc(agree)
            counter.labels(self.router.name, served.name, "disagree").inc(len(answered) - agree)

        future.add_done_callback(count)

    # ---- feedback: true labels of answered requests -------------------------------------

    async def _feedback(self, receive: Receive, headers: dict[str, str], name: str) -> tuple[int, bytes]:
        try:
            self._check_model(name)
            labels = parse_feedback(await self._read_body(receive, headers))
        except InferError as err:
            return err.status, _error_body(err.message)
        recorded = 0
        failures: list[InferError] = []
        for label in labels:
            answered = self._recent.take(label.request_id)
            if answered is None:
                failures.append(
                    InferError(404, f"unknown request id {label.request_id!r}: not answered here, expired or labelled")
                )
                continue
            try:
                correct, incorrect = score(answered, label)
            except InferError as err:
                failures.append(err)
                continue
            self.metrics.feedback.labels(name, answered.version, "correct").inc(correct)
            self.metrics.feedback.labels(name, answered.version, "incorrect").inc(incorrect)
            recorded += 1
        if not failures:
            return 200, _json({"recorded": recorded})
        status = 404 if any(f.status == 404 for f in failures) else 422
        return status, _json({"error": "; ".join(f.message for f in failures), "recorded": recorded})

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            raise bad_request(f"request body of {declared} bytes exceeds the limit of {self._max_body_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise bad_request(f"request body exceeds the limit of {self._max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # ---- repository extension: hot reload -----------------------------------------------

    async def _repository_load(self, scope: Scope, receive: Receive, name: str) -> tuple[int, bytes]:
        try:
            headers = _headers(scope)
            self._check_model(name)
            split = _split_from(await self._read_body(receive, headers))
            previous = self.router.routing
            try:
                await self.router.deploy(split)
            except Exception as err:
                routing = self.router.routing
                keeping = f"still serving {routing.split}" if routing else "nothing loaded"
                if isinstance(err, ArtifactRejected):
                    raise InferError(400, f"artifact refused: {err}; {keeping}") from None
                log.exception("loading %s failed", split)
                raise InferError(503, f"loading failed: {err}; {keeping}") from None
            if previous is not None:
                self._withdrawn.update(set(previous.split.versions) - set(split.versions))
            return 200, _json(
                {"model": name, "stable": split.stable, "candidate": split.candidate, "candidate_weight": split.weight}
            )
        except InferError as err:
            return err.status, _error_body(err.message)


def _classify(path: str) -> tuple[str, list[str]]:
    """Which route `path` is (whatever the method), and its parts."""
    if path.endswith("/infer"):  # the hot path: _infer checks the rest of it
        return INFER, []
    if path in (LIVENESS_PATH, READINESS_PATH):
        return HEALTH, []
    parts = path.rstrip("/").split("/")
    if len(parts) == 5 and parts[1:3] == ["v2", "models"] and parts[4] == FEEDBACK_SUFFIX:
        return FEEDBACK, parts
    if len(parts) == 6 and parts[1:4] == ["v2", "repository", "models"] and parts[5] == "load":
        return LOAD, parts
    if parts == ["", "v2"] or (len(parts) >= 4 and parts[1:3] == ["v2", "models"]):
        return METADATA, parts
    return NO_ROUTE, parts


def _split_from(body: bytes) -> TrafficSplit:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("load request body must be JSON") from None
    parameters = request.get("parameters") if isinstance(request, dict) else None
    if not isinstance(parameters, dict) or not isinstance(parameters.get("stable"), str):
        raise bad_request(
            'load request needs {"parameters": {"stable": "<version>", "candidate": ..., "candidate_weight": ...}}'
        )
    unknown = set(parameters) - {"stable", "candidate", "candidate_weight"}
    if unknown:
        raise bad_request(f"unknown load parameters: {', '.join(sorted(unknown))}")
    candidate = parameters.get("candidate")
    weight = parameters.get("candidate_weight", 0)
    if (candidate is not None and not isinstance(candidate, str)) or type(weight) is not int:
        raise bad_request("candidate must be a version string, candidate_weight an integer percent")
    try:
        return TrafficSplit(parameters["stable"], candidate, weight)
    except ValueError as err:
        raise bad_request(str(err)) from None


def _headers(scope: Scope) -> dict[str, str]:
    # Header names arrive lower-cased (ASGI); latin-1 never fails to decode.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def _error_body(message: str) -> bytes:
    return _json({"error": message})


async def _respond(
    send: Send, status: int, body: bytes, *, content_type: bytes = _JSON, headers: dict[str, str] | None = None
) -> None:
    raw_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
