"""Build a server from its settings and run it: one process, one event loop (uvloop), one
app state, and up to three listeners, each a `uvicorn.Server` of its own on a socket bound
here (httptools, no access log: per-request logging would cost more CPU than the model), the
metrics on their own port (`ServingMetrics.serve`).

- PUBLIC on `--port`: HTTPS itself when `--tls-cert-file`/`--tls-key-file` are set, else
  plain HTTP behind a load balancer that terminates TLS.
- ESCALATION on `--escalation-port` (regional servers): mutual TLS; the handshake refuses any
  client without a certificate chaining to `--escalation-client-ca-file` for client use, and
  the verified certificate's common name (the edge) reaches the app in the request scope.
- ADMIN on `--admin-port`, only when an admin token is configured.

Every TLS listener takes TLS 1.2 and 1.3 only and, in TLS 1.2, only ECDHE key exchange with
AEAD ciphers (the ECDHE part of Mozilla's "intermediate" server configuration,
https://wiki.mozilla.org/Security/Server_Side_TLS); TLS 1.3's suites are all AEAD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from workloads.serving.app import PEER_EXTENSION, Answerer, InferenceApp, Role
from workloads.serving.devices import BatchingConfig, DeviceBatching
from workloads.serving.gate import announce, build_gate
from workloads.serving.metrics import ServingMetrics
from workloads.serving.models import ModelSource, RegistryModelSource
from workloads.serving.settings import LATEST, ServingSettings
from workloads.serving.versions import ModelRouter, TrafficSplit

log = logging.getLogger(__name__)


def registry_source(settings: ServingSettings) -> RegistryModelSource:
    return RegistryModelSource(
        settings.registry_url,
        settings.model_name,
        settings.region,
        settings.variant,
        settings.trusted_key,
        settings.cache_dir,
    )


def build_app(
    settings: ServingSettings,
    *,
    server_name: str,
    source: ModelSource | None = None,
    metrics: ServingMetrics | None = None,
    answerer: Answerer | None = None,
) -> InferenceApp:
    metrics = metrics or ServingMetrics()
    source = source or registry_source(settings)
    batching = DeviceBatching(
        cpu=BatchingConfig(settings.max_batch_size, settings.max_batch_wait_ms / 1000, settings.queue_capacity),
        cuda=BatchingConfig(
            settings.cuda_max_batch_size, settings.cuda_max_batch_wait_ms / 1000, settings.queue_capacity
        ),
        offload=settings.forward_offload,
    )
    # Following `latest` without a pinned candidate, the weight is each new version's share.
    judged = settings.stable == LATEST and settings.candidate is None
    return InferenceApp(
        ModelRouter(settings.model_name, source, batching, metrics),
        metrics,
        initial_split=TrafficSplit(LATEST)
        if judged
        else TrafficSplit(settings.stable, settings.candidate, settings.candidate_weight),
        latest_weight=settings.candidate_weight if judged else 0,
        server_name=server_name,
        max_body_bytes=settings.max_body_bytes,
        admin_token=settings.admin_token,
        answerer=answerer,
        latest_version=getattr(source, "latest", None),
        reload_interval_s=settings.reload_interval_s,
        gate=build_gate(settings, metrics),
    )


# ---- listeners ---------------------------------------------------------------------------


TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True)
class Listener:
    role: Role
    port: int  # 0: any free port (tests)
    tls: ssl.SSLContext | None
    certificate: tuple[Path, Path] | None = None  # the (cert, key) files `tls` serves, watched for renewal


def server_tls(cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> ssl.SSLContext:
    """A listener's TLS: TLS 1.2+, and with `client_ca_file` mutual TLS (a client certificate is
    required; OpenSSL verifies it for the `sslclient` purpose, so a server-only certificate of the
    same CA is refused too)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca_file)
    return context


def listeners(settings: ServingSettings) -> list[Listener]:
    """The listeners `settings` ask for; unusable certificate files stop the process, naming them."""
    public = _tls("--tls", settings.tls_cert_file, settings.tls_key_file)
    found = [Listener(Role.PUBLIC, settings.port, public, _files(settings.tls_cert_file, settings.tls_key_file))]
    if settings.escalation_port:
        assert settings.escalation_cert_file and settings.escalation_key_file and settings.escalation_client_ca_file
        tls = _tls(
            "--escalation",
            settings.escalation_cert_file,
            settings.escalation_key_file,
            settings.escalation_client_ca_file,
        )
        files = (settings.escalation_cert_file, settings.escalation_key_file)
        found.append(Listener(Role.ESCALATION, settings.escalation_port, tls, files))
    if settings.admin_token is not None:
        found.append(Listener(Role.ADMIN, settings.admin_port, None))
    return found


def _files(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    return (cert, key) if cert is not None and key is not None else None


CERTIFICATE_CHECK_SECONDS = 30.0


def _signature(files: tuple[Path, Path]) -> tuple[tuple[int, int, int], ...]:
    return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in (path.stat() for path in files))


async def refresh_certificates(listeners: Sequence[Listener], interval: float = CERTIFICATE_CHECK_SECONDS) -> None:
    """Serve a renewed certificate from the next handshake on, without a restart. Pulumi renews
    the stack CA's certificates 30 days before they expire and the kubelet swaps a mounted
    Secret's files in place, but a process that read them once would serve the old one until it
    expired. `load_cert_chain` on a live context replaces its certificate for new connections.
    A half-swapped pair (new certificate, old key) fails to load and is tried again next time."""
    watched = [(listener, _signature(listener.certificate)) for listener in listeners if listener.certificate]
    while watched:
        await asyncio.sleep(interval)
        for i, (listener, seen) in enumerate(watched):
            assert listener.tls is not None and listener.certificate is not None
            try:
                now = _signature(listener.certificate)
                if now != seen:
                    listener.tls.load_cert_chain(*listener.certificate)
                    watched[i] = (listener, now)
                    log.info(
                        "the %s listener serves its renewed certificate %s", listener.role, listener.certificate[0]
                    )
            except (OSError, ssl.SSLError) as err:
                log.error("the %s listener keeps its current certificate: %s", listener.role, err)


def _tls(flags: str, cert: Path | None, key: Path | None, client_ca: Path | None = None) -> ssl.SSLContext | None:
    if cert is None or key is None:
        return None
    try:
        return server_tls(cert, key, client_ca)
    except (OSError, ssl.SSLError) as err:
        raise SystemExit(f"{flags}-cert-file {cert} / {flags}-key-file {key} / CA {client_ca}: {err}") from None


def bind(host: str, listener: Listener) -> socket.socket:
    """The listener's socket, bound now, so that a busy port stops the process before it serves."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, listener.port))
    except OSError as err:
        sock.close()
        raise SystemExit(f"the {listener.role} listener cannot bind {host}:{listener.port}: {err}") from None
    return sock


class _PeerNamingProtocol(HttpToolsProtocol):
    """httptools' protocol, adding the verified client certificate's common name to every
    request's scope (uvicorn 0.49 does not fill ASGI's `tls` extension). Only the escalation
    listener uses it: the public path pays nothing."""

    _peer: dict[str, str]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        certificate: Any = transport.get_extra_info("peercert") or {}
        names = [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"]
        self._peer = {"common_name": names[0] if names else ""}

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {PEER_EXTENSION: self._peer}  # type: ignore[typeddict-item]


class _Server(uvicorn.Server):
    """One listener. The process handles the signals once, for all of them (`Listeners`):
    uvicorn's own handler would stop only the last server started."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Listeners:
    """The app behind its listeners on one event loop: the app starts once, every listener
    serves until `stop()`, then the app shuts down."""

    def __init__(
        self,
        app: InferenceApp,
        bound: Sequence[tuple[Listener, socket.socket]],
        certificate_check_s: float = CERTIFICATE_CHECK_SECONDS,
    ):
        self.app = app
        self._listeners = [listener for listener, _ in bound]
        self._certificate_check_s = certificate_check_s
        self.sockets = {listener.role: sock for listener, sock in bound}
        self._servers = [
            (
                _Server(
                    uvicorn.Config(
                        app.listener(listener.role),
                        http=_PeerNamingProtocol if listener.role is Role.ESCALATION else "httptools",
                        ws="none",
                        lifespan="off",
                        access_log=False,
                        log_level="warning",
                        timeout_graceful_shutdown=10,
                        ssl_context_factory=None if listener.tls is None else _given(listener.tls),
                    )
                ),
                sock,
            )
            for listener, sock in bound
        ]

    @property
    def started(self) -> bool:
        """Whether every listener accepts connections."""
        return all(server.started for server, _ in self._servers)

    def port(self, role: Role) -> int:
        return self.sockets[role].getsockname()[1]

    async def serve(self) -> None:
        await self.app.startup()
        renewals = asyncio.get_running_loop().create_task(
            refresh_certificates(self._listeners, self._certificate_check_s)
        )
        try:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in self._servers))
        finally:
            renewals.cancel()
            await self.app.shutdown()

    def stop(self) -> None:
        """Stop accepting, finish in-flight requests, then shut the app down (any thread)."""
        for server, _ in self._servers:
            server.should_exit = True


def _given(context: ssl.SSLContext) -> Any:
    return lambda config, default: context


def run(app: InferenceApp, settings: ServingSettings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(settings.torch_threads)
    group = Listeners(app, [(listener, bind(settings.host, listener)) for listener in listeners(settings)])
    announce(app.gate, settings.port)
    app.metrics.serve(settings.host, settings.metrics_port)  # its own thread, ends with the process
    for role in group.sockets:
        log.info("%s listener on %s:%d", role, settings.host, group.port(role))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, group.stop)
        await group.serve()

    uvloop.run(main())
