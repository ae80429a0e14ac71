"""The workloads' pins agree: every image's requirements, the trainer app's dependencies and the
development environment name the versions of workloads/requirements.lock, and every
third-party module the workloads' code imports is pinned by name, not only as some other
package's dependency. Read as text: no install, under a second."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "workloads"
IMAGES = sorted(path.parent.name for path in WORKLOADS.glob("*/requirements.txt"))
# What the workloads' environment runs (Makefile: up, down, bench, test-workloads); the modules of
# ours these import (e.g. the stack config model) are followed.
ENTRY_POINTS = [
    WORKLOADS,
    ROOT / "meridian" / "__main__.py",
    ROOT / "meridian" / "local",
    ROOT / "meridian" / "data",
    ROOT / "bench" / "federated.py",
    ROOT / "bench" / "serving.py",
    ROOT / "tests" / "workloads",
    ROOT / "tests" / "meridian" / "local",
    ROOT / "tests" / "meridian" / "data",
    ROOT / "tests" / "e2e",
]
# Pinned for the servers without an import of their own: uvicorn loads them by name, fsspec
# opens s3:// through s3fs and gs:// through gcsfs.
PLUGINS = {"uvloop", "httptools", "s3fs", "gcsfs"}


def pins(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line (extras dropped; options and comments skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            requirement = Requirement(text)
            found[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return found


LOCK = pins(WORKLOADS / "requirements.lock")


def drift(pinned: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    return {name: (version, LOCK.get(name)) for name, version in pinned.items() if LOCK.get(name) != version}


def test_there_are_images_to_check() -> None:
    assert {"edge", "server", "trainer"} <= set(IMAGES)  # the glob found them


@pytest.mark.parametrize("image", IMAGES)
def test_every_image_pins_the_versions_of_the_lock(image: str) -> None:
    assert drift(pins(WORKLOADS / image / "requirements.txt")) == {}


def test_the_development_environment_pins_the_versions_of_the_lock() -> None:
    assert drift(pins(WORKLOADS / "requirements-dev.txt")) == {}


def test_the_trainer_apps_dependencies_admit_the_versions_of_the_lock() -> None:
    project = tomllib.loads((WORKLOADS / "trainer" / "pyproject.toml").read_text())["project"]
    refused = {}
    for text in project["dependencies"]:
        requirement = Requirement(text)
        locked = LOCK.get(canonicalize_name(requirement.name))
        if locked is None or not requirement.specifier.contains(locked):
            refused[text] = locked
    assert refused == {}


def test_every_third_party_import_is_pinned_by_name() -> None:
    pinned = set(pins(WORKLOADS / "requirements-dev.txt"))
    for image in IMAGES:
        pinned |= set(pins(WORKLOADS / image / "requirements.txt"))
    providers = packages_distributions()
    unpinned = {
        module: where
        for module, where in third_party_imports().items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & pinned
    }
    assert unpinned == {}


def test_every_pin_of_the_development_environment_is_used() -> None:
    providers = packages_distributions()
    imported = {canonicalize_name(d) for module in third_party_imports() for d in providers.get(module, [])}
    unused = set(pins(WORKLOADS / "requirements-dev.txt")) - imported - PLUGINS
    assert unused == set()


def third_party_imports() -> dict[str, str]:
    """Top-level module -> one file importing it, over ENTRY_POINTS and the modules of ours they import."""
    queue = [file for entry in ENTRY_POINTS for file in (entry.rglob("*.py") if entry.is_dir() else [entry])]
    seen, found = set(queue), {}
    while queue:
        path = queue.pop()
        for module in imported_modules(path):
            top = module.split(".")[0]
            if (ROOT / top).is_dir():
                for ours in own_files(module):
                    if ours not in seen:
                        seen.add(ours)
                        queue.append(ours)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]  # a submodule, maybe
    return modules


def own_files(module: str) -> list[Path]:
    """The files of a module of ours, and of each package on its way (their __init__ runs too)."""
    parts = module.split(".")
    files = [ROOT.joinpath(*parts[:n], "__init__.py") for n in range(1, len(parts) + 1)]
    files.append(ROOT.joinpath(*parts).with_suffix(".py"))
    return [file for file in files if file.is_file()]
