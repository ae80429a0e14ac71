"""A Kubernetes Secret volume on disk, updated the way the kubelet updates one, for the tests of
what re-reads a mounted Secret (the admin token)."""

from __future__ import annotations

import os
from pathlib import Path


class MountedSecret:
    """A Secret volume as the kubelet writes it (its atomic writer): the data in a timestamped
    directory, `..data` a symlink to it, and each key a symlink through `..data`. An update
    writes a new directory and renames a new `..data` link over the old one."""

    def __init__(self, directory: Path, key: str, value: str):
        self.directory = directory
        self.path = directory / key
        self._key = key
        self._generation = 0
        directory.mkdir(parents=True)
        self.update(value)
        self.path.symlink_to(f"..data/{key}")

    def update(self, value: str) -> None:
        self._generation += 1
        data = self.directory / f"..2026_11_30_{self._generation}"
        data.mkdir()
        (data / self._key).write_text(f"{value}\n")
        staged = self.directory / "..data_tmp"
        staged.symlink_to(data.name)
        os.replace(staged, self.directory / "..data")
