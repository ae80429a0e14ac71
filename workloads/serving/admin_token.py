"""The admin token: the bearer credential of a server's admin listener (model metadata and the
repository API), and what the canary controller presents there.

In the clusters it is a file, a Kubernetes Secret mounted read-only (ENV_ADMIN_TOKEN_FILE).
Rotating it is a stack config change: the kubelet swaps the mounted Secret's files in place
(an atomic rename of the `..data` symlink, within its sync period), so the file is re-read
whenever it changed (a `stat` per check: admin calls are a few per canary pass, never the
inference path). A rotated token is accepted at once; the one it replaced stays valid for
`grace_s` seconds (ENV_ADMIN_TOKEN_GRACE_S, default 600), counted from when this process saw
the change, so that servers and the controller, which see the new file at different moments,
never refuse each other during a rotation.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from workloads import contract

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 600.0


class AdminToken:
    """The current admin token (re-read from its file when the file changed) and the replaced
    ones still within their grace period."""

    def __init__(
        self,
        *,
        path: Path | None = None,
        value: str | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if (path is None) == (value is None):
            raise ValueError("an admin token comes from exactly one of a file or a value")
        self._path = path
        self._grace_s = grace_s
        self._clock = clock
        self._replaced: list[tuple[bytes, float]] = []  # (token, valid until), oldest first
        self._seen: tuple[int, int, int, int] | None = None  # the file's identity when last read
        self._current = b"" if value is None else value.encode()
        if path is not None:
            try:
                self._refresh_from(path)
            except OSError as err:
                raise SystemExit(
                    f"{contract.ENV_ADMIN_TOKEN_FILE}={path}: cannot read the admin token: {err}"
                ) from None
            if not self._current:
                raise SystemExit(f"{contract.ENV_ADMIN_TOKEN_FILE}={path}: the admin token file is empty")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AdminToken | None:
        """The file ENV_ADMIN_TOKEN_FILE names (how the clusters give it), else ENV_ADMIN_TOKEN;
        None when neither is set. An unreadable or empty file, or a bad grace period, stops the
        process, naming the variable."""
        raw_grace = environ.get(contract.ENV_ADMIN_TOKEN_GRACE_S) or str(DEFAULT_GRACE_S)
        try:
            grace_s = float(raw_grace)
        except ValueError:
            grace_s = -1.0
        if not 0 <= grace_s <= 86400:
            raise SystemExit(f"{contract.ENV_ADMIN_TOKEN_GRACE_S}={raw_grace!r}: not a number of seconds in 0..86400")
        if path := environ.get(contract.ENV_ADMIN_TOKEN_FILE):
            return cls(path=Path(path), grace_s=grace_s)
        if value := environ.get(contract.ENV_ADMIN_TOKEN):
            return cls(value=value, grace_s=grace_s)
        return None

    def current(self) -> str:
        """The token to present (the canary controller's side)."""
        self._refresh()
        return self._current.decode()

    def accepts(self, given: str) -> bool:
        """Whether `given` is the current token or a replaced one within its grace period.
        Every candidate is compared, in constant time each, whichever matches."""
        self._refresh()
        now = self._clock()
        self._replaced = [(token, until) for token, until in self._replaced if until > now]
        candidate = given.encode()
        matches = [hmac.compare_digest(candidate, token) for token in (self._current, *(t for t, _ in self._replaced))]
        return any(matches)

    def _refresh(self) -> None:
        if self._path is None:
            return
        try:
            self._refresh_from(self._path)
        except OSError as err:  # mid-swap, or the volume is away: keep the current token
            log.warning("cannot read the admin token file %s (keeping the current token): %s", self._path, err)

    def _refresh_from(self, path: Path) -> None:
        stat = os.stat(path)  # follows the Secret volume's symlinks to the live file
        identity = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if identity == self._seen:
            return
        token = path.read_bytes().strip()
        if not token:  # caught mid-write: read again next time
            return
        self._seen = identity
        if self._current and token != self._current:
            self._replaced.append((self._current, self._clock() + self._grace_s))
            log.warning(
                "the admin token in %s changed: the new one is accepted, the replaced one for %.0f s more",
                path,
                self._grace_s,
            )
        self._current = token
