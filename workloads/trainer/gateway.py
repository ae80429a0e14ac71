"""A path-filtering TLS gateway: TLS on each public-facing port, one route per port.

The SuperLink's: Flower 1.42 serves its Fleet, Control and runtime APIs on one HTTPS port, and
the Control API has no authentication, so the SuperLink listens on 127.0.0.1 only and this
proxy beside it is what the cluster reaches (see workloads/contract.py):

    python -m workloads.trainer.gateway --upstream https://127.0.0.1:9091 \\
        --route 9092=/v1/fleet/ --route 9093=/v1/control/ \\
        --certfile tls.crt --keyfile tls.key --ca-certfile ca.crt [--host 0.0.0.0]

The home's metrics receiver (components/k8s/metrics_receiver.py): the other regions'
Prometheus servers remote-write to the home's, and only through this, with a client
certificate of the federation CA (mutual TLS):

    python -m workloads.trainer.gateway --upstream http://monitoring-prometheus.monitoring.svc:9090 \\
        --route '9443=POST /api/v1/write' --client-ca-certfile ca.crt \\
        --certfile tls.crt --keyfile tls.key

A route is PORT=/PREFIX/ (any method, any path under the prefix) or PORT=METHOD /PATH (that
method on exactly that path). A request a port's route admits goes to the upstream as it came
(method, raw path and query, headers but the hop-by-hop ones, body) and its answer comes back
as it is, streamed both ways: Flower's Control API streams logs and run events. Anything else
answers 404 without reaching the upstream. An https upstream's certificate is verified against
--ca-certfile; an http one is for an upstream inside the cluster only. With
--client-ca-certfile, a client without a certificate signed by that CA (for client
authentication) is refused at the TLS handshake, before any request.
"""

from __future__ import annotations

import argparse
import logging
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import uvicorn

log = logging.getLogger("uvicorn.error")  # uvicorn configures this one

# RFC 9110 7.6.1: meaningful for one connection only, never forwarded. Host is the upstream's;
# uvicorn has already answered any `expect: 100-continue`.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",
    }
)
# Connecting and sending are bounded; reading is not, since Control API streams stay open for
# as long as a run's logs flow (Flower's own client sets no read timeout on them either).
_UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=10.0)


class GatewayError(ValueError):
    """A bad flag or file; the message names it."""


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


@dataclass(frozen=True)
class Route:
    port: int
    path: str  # a prefix ending in '/', or with `method` one exact path
    method: str | None = None  # None: any method under the prefix

    def admits(self, method: str, path: str) -> bool:
        # Dot segments are refused outright, so that no reading of the path by the upstream can
        # step out of the prefix that was checked here.
        if any(part in (".", "..") for part in path.split("/")):
            return False
        if self.method is None:
            return path.startswith(self.path)
        return method == self.method and path == self.path

    def __str__(self) -> str:
        return f"{self.path}*" if self.method is None else f"{self.method} {self.path}"


def parse_route(text: str) -> Route:
    port_text, sep, target = text.partition("=")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise GatewayError(
            f"--route {text!r}: expected PORT=PREFIX with PORT in 1-65535, e.g. 9092=/v1/fleet/ "
            "(or PORT=METHOD /PATH for one exact path, e.g. '9443=POST /api/v1/write')"
        )
    method, space, path = target.partition(" ")
    if space:
        if not (method.isalpha() and method.isupper() and path.startswith("/") and " " not in path):
            raise GatewayError(f"--route {text!r}: expected PORT=METHOD /PATH, e.g. '9443=POST /api/v1/write'")
        return Route(int(port_text), path, method)
    if not (target.startswith("/") and target.endswith("/") and len(target) > 1):
        # Without the closing slash, /v1/fleet would also admit /v1/fleetish.
        raise GatewayError(f"--route {text!r}: the prefix must start and end with '/', e.g. /v1/fleet/")
    return Route(int(port_text), target)


async def _respond(send: Any, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gateway:
    """The ASGI app: routes on the local port a request arrived on (scope["server"])."""

    def __init__(self, upstream: str, routes: Mapping[int, Route], upstream_tls: ssl.SSLContext | None) -> None:
        self.upstream = httpx.URL(upstream)
        self.routes = dict(routes)
        self._tls = upstream_tls
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # websockets are not served: Flower's APIs are plain HTTP

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(
                    verify=self._tls or True,  # None: a plain-http upstream, nothing to verify
                    timeout=_UPSTREAM_TIMEOUT,
                    follow_redirects=False,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = self.routes.get(scope["server"][1]) if scope.get("server") else None
        if route is None or not route.admits(scope["method"], scope["path"]):
            await _respond(send, 404, "not found\n")
            return
        assert self._client is not None, "the lifespan starts the upstream client"
        target = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in _HOP_BY_HOP]
        has_body = any(k in (b"content-length", b"transfer-encoding") and v != b"0" for k, v in scope["headers"])
        request = self._client.build_request(
            scope["method"],
            self.upstream.copy_with(raw_path=target),
            headers=headers,
            content=_body(receive) if has_body else None,
        )
        try:
            response = await self._client.send(request, stream=True)
        except _ClientGone:
            return
        except httpx.HTTPError as err:
            log.warning("upstream %s unreachable for %s %s: %r", self.upstream, scope["method"], scope["path"], err)
            await _respond(send, 502, "bad gateway: the upstream is unreachable\n")
            return
        try:
            await _relay(response, receive, send)
        finally:
            await response.aclose()


async def _body(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone  # abandons the upstream call
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _relay(response: httpx.Response, receive: Any, send: Any) -> None:
    """Stream the upstream's answer; stop (and so close the upstream stream) as soon as the
    client disconnects, even while the upstream is silent."""
    headers = [(k, v) for k, v in response.headers.raw if k.decode("latin-1").lower() not in _HOP_BY_HOP]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})

    async with anyio.create_task_group() as tasks:

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tasks.cancel_scope.cancel()

        tasks.start_soon(watch_disconnect)
        async for chunk in response.aiter_raw():  # raw: any content-encoding passes through
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        tasks.cancel_scope.cancel()


def _existing_file(flag: str, path: Path) -> Path:
    if not path.is_file():
        raise GatewayError(f"{flag} {path}: no such file")
    return path


def _upstream_url(text: str, ca_file: Path | None) -> str:
    url = httpx.URL(text)
    if url.scheme not in ("https", "http") or not url.host or url.port is None:
        raise GatewayError(f"--upstream {text!r}: expected https://HOST:PORT, or http://HOST:PORT inside the cluster")
    if (url.scheme == "https") != (ca_file is not None):
        raise GatewayError(
            f"--upstream {text!r}: expected https://HOST:PORT with --ca-certfile (the upstream's CA), "
            "or http://HOST:PORT without it"
        )
    return text.rstrip("/")


def _ca_context(flag: str, path: Path, purpose: ssl.Purpose) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(purpose, cafile=str(_existing_file(flag, path)))
    except ssl.SSLError as err:
        raise GatewayError(f"{flag} {path}: not a PEM CA certificate ({err.reason})") from err


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as err:
        raise GatewayError(f"--route {port}=...: cannot listen on {host}:{port}: {err.strerror}") from err


def build(args: argparse.Namespace) -> tuple[uvicorn.Config, list[socket.socket]]:
    """Check every flag and file, then bind the ports; GatewayError names what is wrong."""
    routes: list[Route] = args.route
    ports = [route.port for route in routes]
    if not routes:
        raise GatewayError("give at least one --route PORT=PREFIX")
    if len(set(ports)) != len(ports):
        raise GatewayError(f"--route: each port takes one prefix, got ports {ports}")
    upstream = _upstream_url(args.upstream, args.ca_certfile)
    upstream_tls = _ca_context("--ca-certfile", args.ca_certfile, ssl.Purpose.SERVER_AUTH) if args.ca_certfile else None
    client_auth: dict[str, Any] = {}
    if args.client_ca_certfile is not None:
        _ca_context("--client-ca-certfile", args.client_ca_certfile, ssl.Purpose.CLIENT_AUTH)  # a clear error now
        # OpenSSL verifies a client's chain for the `sslclient` purpose: a certificate whose
        # extended key usage lacks clientAuth (a server's) is refused like one of another CA.
        client_auth = {"ssl_ca_certs": str(args.client_ca_certfile), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    config = uvicorn.Config(
        Gateway(upstream, {route.port: route for route in routes}, upstream_tls),
        ssl_certfile=str(_existing_file("--certfile", args.certfile)),
        ssl_keyfile=str(_existing_file("--keyfile", args.keyfile)),
        **client_auth,
        lifespan="on",
        proxy_headers=False,  # nothing in front of it is trusted to set X-Forwarded-*
        server_header=False,
    )
    try:
        config.load()  # loads the certificate and key now, so a bad pair fails with its name
    except ssl.SSLError as err:
        raise GatewayError(f"--certfile {args.certfile} / --keyfile {args.keyfile}: unusable ({err.reason})") from err
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sockets.append(_listen(args.host, port))  # noqa: PERF401 - on failure, close those already open
    except GatewayError:
        for sock in sockets:
            sock.close()
        raise
    return config, sockets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.trainer.gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--upstream", required=True, help="https://HOST:PORT (the SuperLink), or http://HOST:PORT inside the cluster"
    )
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="PORT=PREFIX",
        help="listen on PORT and forward only paths starting with PREFIX, or with PORT='METHOD /PATH' "
        "only that method on that exact path (repeatable)",
    )
    parser.add_argument("--certfile", required=True, type=Path, help="this gateway's TLS certificate (PEM)")
    parser.add_argument("--keyfile", required=True, type=Path, help="its private key (PEM)")
    parser.add_argument(
        "--ca-certfile", type=Path, help="CA that signed the upstream's certificate (an https upstream only)"
    )
    parser.add_argument(
        "--client-ca-certfile",
        type=Path,
        help="require a client certificate signed by this CA (mutual TLS); without it, no client certificate is asked",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    args = parser.parse_args(argv)
    try:
        args.route = [parse_route(text) for text in args.route]
        config, sockets = build(args)
    except GatewayError as err:
        print(f"gateway: {err}", file=sys.stderr)
        return 2
    for route in args.route:
        log.info("port %d forwards %s to %s", route.port, route, args.upstream)
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
