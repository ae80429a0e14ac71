"""A SuperNode's training records: one JSON line per local fit, appended by the ClientApp and
followed by the node's metrics exporter (`workloads.trainer.node_metrics`).

Why a file: the ClientApp runs in a fresh process per message, so it cannot hold counters or
serve a port; the file is what outlives it. The SuperNode passes its environment down to the
ClientApp (Flower 1.42: flower-supernode -> flower-superexec -> flwr-clientapp, each a plain
`subprocess.Popen` that inherits it), so `contract.ENV_TRAINING_RECORDS` set on the SuperNode
names the file in every ClientApp process.

    {"time": 1764500000.0, "run_id": 7, "round": 3, "region": "eu", "loss": 0.31,
     "examples": 540, "fit_seconds": 1.2, "uplink_bytes": 21760}

Bounded: when a record would take the file past `MAX_FILE_BYTES` (1 MiB, ~6,000 records at
~170 bytes) the writer renames it to `<file>.1` (replacing the previous one) and starts a new
file, so at most two generations (2 MiB) exist. The follower reads the file it has open to its end before it
moves on to the new one (an open file survives its rename), so no record is lost to a rotation.
Writers take an exclusive `flock` on the file, so concurrent ClientApp processes neither
interleave nor rotate twice; each record is one `write` to an O_APPEND descriptor, and a torn
last line (a writer killed mid-write) is closed off by the next writer's newline and skipped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class TrainingRecord:
    time: float  # Unix seconds, when the fit's reply was ready
    run_id: int
    round: int  # the server's round number
    region: str
    loss: float  # local training loss
    examples: int  # training examples of this fit
    fit_seconds: float  # local training time (the reply's train-seconds)
    uplink_bytes: int  # the update's payload as sent (after compression), what the SuperLink counts
    epsilon: float | None = None  # DP-SGD: the ε this region has spent in the run so far (absent: not private)

    def to_line(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> TrainingRecord:
        """ValueError for anything but one complete record."""
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"not JSON: {err}") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        values = {}
        for f in fields(cls):
            if f.name not in raw and f.default is not MISSING:
                continue
            value = raw.get(f.name)
            kind = {"int": int, "float": (int, float), "str": str, "float | None": (int, float, type(None))}[
                str(f.type)
            ]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"field {f.name!r} is {value!r}")
            values[f.name] = value
        return cls(**values)


def rotated(path: Path) -> Path:
    """The previous generation of `path`."""
    return path.with_name(f"{path.name}.1")


def append(path: Path, record: TrainingRecord, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Append `record` to `path` (created with its directory), rotating it first when full."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = record.to_line()
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if not _same_file(fd, path):
                continue  # another writer rotated it while we waited for the lock
            if size and size + len(line) > max_bytes:
                os.replace(path, rotated(path))
                continue
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # close off a torn line: it is skipped, this record is not
            os.write(fd, line)
            return
        finally:
            os.close(fd)  # also releases the lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class RecordFollower:
    """Reads the records appended since its last call, across rotations. Started on an
    existing file it reads everything retained (the previous generation, then the current one):
    a restarted exporter starts over from the file, as a restarted process does from zero."""

    def __init__(self, path: Path):
        self._path = path
        self._file: BinaryIO | None = None
        self._partial = b""  # a last line not complete yet
        self._started = False

    def read_new(self) -> list[TrainingRecord]:
        lines: list[bytes] = []
        if not self._started:
            self._started = True
            self._open_current()
            previous = rotated(self._path)
            if previous.exists() and not (self._file is not None and _same_file(self._file.fileno(), previous)):
                with previous.open("rb") as old:
                    lines += old.read().splitlines()  # a complete generation; a torn line is skipped below
        while True:
            if self._file is None and not self._open_current():
                break
            assert self._file is not None
            lines += self._complete_lines()
            if _same_file(self._file.fileno(), self._path):
                break
            # Rotated: nothing more is written to the file we hold; finish it, then follow the new one.
            lines += self._complete_lines()
            if self._partial:
                lines.append(self._partial)  # torn for good: skipped below, with a warning
            self._file.close()
            self._file, self._partial = None, b""
        return [record for line in lines if line.strip() and (record := self._parse(line)) is not None]

    def _open_current(self) -> bool:
        try:
            self._file = self._path.open("rb")
        except FileNotFoundError:
            return False  # no fit yet
        return True

    def _complete_lines(self) -> list[bytes]:
        assert self._file is not None
        if os.fstat(self._file.fileno()).st_size < self._file.tell():  # truncated in place
            self._file.seek(0)
            self._partial = b""
        data = self._partial + self._file.read()
        complete, _, self._partial = data.rpartition(b"\n")
        return complete.split(b"\n") if complete else []

    def _parse(self, line: bytes) -> TrainingRecord | None:
        try:
            return TrainingRecord.from_line(line)
        except ValueError as err:
            log.warning("skipping a malformed training record in %s (%s): %.120r", self._path, err, line)
            return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
