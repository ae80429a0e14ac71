"""Fetching artifacts over HTTP(S), as edge servers do through the CDN.

- Conditional GETs: each file's ETag is kept beside it (`.etags.json` in the artifact's
  directory), so a refetch of an unchanged artifact costs a few 304s and no body bytes.
- Resumable downloads: a body cut off mid-way stays as `<file>.part` with its ETag; the next
  attempt (in this call, or a later one after a crash) asks only for the rest with
  `Range` + `If-Range`, and starts over if the server's copy changed meanwhile.
- Verification before use: new bytes stay in `.part` files until the signature and every hash
  check out; a rejected download is deleted, the previously verified files are left untouched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import TracebackType

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from workloads.registry.artifact import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    ArtifactId,
    ArtifactRejected,
    Variant,
)
from workloads.registry.verified import VerifiedArtifact, check_file, verify_manifest

ETAGS_FILE = ".etags.json"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")


class _Restart(Exception):
    """The server's partial answer does not continue our .part file: download it again."""


class HttpRegistry:
    """A read-only registry at an http(s):// base URL (the same layout as the bucket)."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0, attempts: int = 3) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=True)

    def __enter__(self) -> HttpRegistry:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def latest_version(self, model: str, region: str, variant: Variant | str) -> str | None:
        """The version the registry's `latest` pointer names, or None if nothing is published."""
        path = ArtifactId(model, "0", region, Variant(variant)).latest_path
        response = self.client.get(f"{self.base_url}/{path}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return str(response.json()["version"])

    def fetch_verified(self, artifact: ArtifactId, trusted_key: Ed25519PublicKey, dest_dir: Path) -> VerifiedArtifact:
        """Bring `dest_dir` up to date with `artifact` and verify it; see `store.fetch_verified`."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        download = _Download(self, f"{self.base_url}/{artifact.path}", dest_dir)
        try:
            manifest_path = download.sync(MANIFEST_FILE)
            signature_path = download.sync(SIGNATURE_FILE)
            manifest = verify_manifest(
                artifact,
                manifest_path.read_bytes() if manifest_path else None,
                signature_path.read_bytes() if signature_path else None,
                trusted_key,
            )
            for name, entry in manifest.files.items():
                path = download.sync(name)
                if path is None:
                    raise ArtifactRejected(str(artifact), name, "missing from the registry")
                check_file(artifact, name, path, entry)
        except ArtifactRejected as rejection:
            download.discard(rejection.file)
            raise
        download.commit()
        return VerifiedArtifact(manifest, dest_dir, download.received)


class _Download:
    """The files of one artifact being brought up to date in `dest_dir`."""

    def __init__(self, registry: HttpRegistry, url: str, dest_dir: Path) -> None:
        self.registry, self.url, self.dest_dir = registry, url, dest_dir
        self.etags_path = dest_dir / ETAGS_FILE
        self.etags: dict[str, str] = json.loads(self.etags_path.read_text()) if self.etags_path.is_file() else {}
        self.fresh: list[str] = []  # names whose new bytes wait in .part files
        self.received = 0

    def _save_etags(self) -> None:
        self.etags_path.write_text(json.dumps(self.etags, sort_keys=True))

    def sync(self, name: str) -> Path | None:
        """The path holding the server's current bytes of `name` (the local file if the server
        answered 304, else a completed `.part`), or None if the server has no such file."""
        for attempt in range(1, self.registry.attempts + 1):
            try:
                return self._attempt(name)
            except (httpx.TransportError, _Restart):
                if attempt == self.registry.attempts:
                    raise
        raise AssertionError("unreachable")

    def _attempt(self, name: str) -> Path | None:
        target, partial = self.dest_dir / name, self.dest_dir / f"{name}.part"
        part_key = partial.name
        headers: dict[str, str] = {}
        offset = None
        if target.is_file() and name in self.etags:
            headers["If-None-Match"] = self.etags[name]
        elif partial.is_file() and part_key in self.etags:
            offset = partial.stat().st_size
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = self.etags[part_key]
        with self.registry.client.stream("GET", f"{self.url}/{name}", headers=headers) as response:
            if response.status_code == 304:
                return target
            if response.status_code == 404:
                return None
            if response.status_code == 416 and offset is not None:
                # The .part already holds the whole file (a run stopped before committing it).
                if response.headers.get("content-range") == f"bytes */{offset}":
                    return self._fresh(name)
                partial.unlink()
                self.etags.pop(part_key, None)
                raise _Restart(f"{name}: the server's copy is shorter than ours")
            response.raise_for_status()
            mode = "wb"
            if response.status_code == 206:
                match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
                if offset is None or not match or int(match.group(1)) != offset:
                    partial.unlink(missing_ok=True)
                    self.etags.pop(part_key, None)
                    raise _Restart(f"{name}: unexpected Content-Range")
                mode = "ab"
            etag = response.headers.get("etag")
            if etag:
                self.etags[part_key] = etag
            else:
                self.etags.pop(part_key, None)  # cannot resume safely without a validator
            self._save_etags()  # before the body: a crash mid-way can still resume
            with partial.open(mode) as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
                    self.received += len(chunk)
        return self._fresh(name)

    def _fresh(self, name: str) -> Path:
        if name not in self.fresh:
            self.fresh.append(name)
        return self.dest_dir / f"{name}.part"

    def commit(self) -> None:
        for name in self.fresh:
            (self.dest_dir / f"{name}.part").replace(self.dest_dir / name)
            etag = self.etags.pop(f"{name}.part", None)
            if etag:
                self.etags[name] = etag
            else:
                self.etags.pop(name, None)
        self._save_etags()

    def discard(self, rejected: str) -> None:
        """Drop the new bytes, and the ETag of the rejected file so that a local copy that went
        bad is downloaded again next time instead of being revalidated with a 304."""
        for name in self.fresh:
            (self.dest_dir / f"{name}.part").unlink(missing_ok=True)
            self.etags.pop(f"{name}.part", None)
        self.etags.pop(rejected, None)
        self._save_etags()
