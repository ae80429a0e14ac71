"""Serve a registry directory over HTTP the way a CDN in front of the bucket does.

Strong ETags, `If-None-Match` (304), single-range `Range` requests with `If-Range` (206/416),
HEAD, and cache headers: artifact files are immutable, `latest` pointers must be revalidated.
The local stack uses it as the CDN; tests use it as a real HTTP peer. Read-only, no listings.

    python -m workloads.registry serve --root DIR [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from workloads.registry.artifact import LATEST_DIR

log = logging.getLogger(__name__)

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 1 << 16


class RegistryRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RegistryHTTPServer  # pyright: ignore[reportIncompatibleVariableOverride]

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _resolve(self) -> Path | None:
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        if not relative or any(part in ("", ".", "..") for part in relative.split("/")):
            return None
        path = (self.server.root / relative).resolve()
        if not path.is_relative_to(self.server.root) or not path.is_file():
            return None
        return path

    def _serve(self, send_body: bool) -> None:
        path = self._resolve()
        if path is None:
            self._reply_empty(HTTPStatus.NOT_FOUND)
            return
        stat = path.stat()
        size = stat.st_size
        # mtime + size, as nginx does: files are replaced, never edited in place.
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": (
                "no-cache" if path.parent.parent.name == LATEST_DIR else "public, max-age=31536000, immutable"
            ),
        }
        if etag in (tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")):
            self._reply_empty(HTTPStatus.NOT_MODIFIED, headers)
            return
        start, end = 0, size - 1
        status = HTTPStatus.OK
        requested = _RANGE.fullmatch(self.headers.get("Range", "").strip())
        if_range = self.headers.get("If-Range")
        if requested and (if_range is None or if_range == etag):
            first, last = requested.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            elif last:  # the last N bytes
                start = max(size - int(last), 0)
            if not (first or last) or start >= size or start > end:
                self._reply_empty(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {**headers, "Content-Range": f"bytes */{size}"}
                )
                return
            status = HTTPStatus.PARTIAL_CONTENT
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self.send_response(status)
        content_type = "application/json" if path.suffix == ".json" else "application/octet-stream"
        for name, value in {**headers, "Content-Type": content_type, "Content-Length": str(end - start + 1)}.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            with path.open("rb") as file:
                file.seek(start)
                self.send_body(file, end - start + 1)

    def send_body(self, file: BinaryIO, length: int) -> None:
        """Copy `length` bytes of `file` to the client (a seam for tests that cut transfers)."""
        while length > 0:
            chunk = file.read(min(_CHUNK, length))
            if not chunk:
                break
            self.wfile.write(chunk)
            length -= len(chunk)

    def _reply_empty(self, status: HTTPStatus, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", "0")
        self.end_headers()


class RegistryHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, address: tuple[str, int], handler: type[RegistryRequestHandler]) -> None:
        self.root = root.resolve()
        super().__init__(address, handler)


class RegistryServer:
    """A registry directory served on a background thread: `with RegistryServer(root) as s: s.url`."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        handler: type[RegistryRequestHandler] = RegistryRequestHandler,
    ) -> None:
        if not root.is_dir():
            raise NotADirectoryError(f"registry root {root} is not a directory")
        self._server = RegistryHTTPServer(root, (host, port), handler)
        # A short poll interval: close() (shutdown) returns within it, which keeps tests quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="registry-http", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (the CLI)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def start(self) -> RegistryServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
