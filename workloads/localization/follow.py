"""One pass of a region's localizer: follow the global model, hop by hop.

    python -m workloads.localization follow --global-registry URL --global-key PEM --region R \
        --data-url URL --store URL --signing-key REF --task T [--work-dir DIR]

Reads the global registry's `latest` global model (`ArtifactId(<model>, <version>, "global",
fp32)`, over file://, s3://, gs:// or https://). When the region's registry already holds that
version's three variants, signed, it is up to date and exits 0. Else it verifies the global
model with the home's public key (nothing else is trusted, so a wrong key stops it before any
work), syncs the region's data from `--data-url` (workloads/tasks/sync.py), localizes, and
publishes the missing variants with version = parent version = the global version.

A variant counts as published when its signature is there: `publish` writes it last. So a pass
cut off between variants leaves the earlier ones complete, and the next pass publishes only
the rest (localization is seeded, so the same inputs give the same models). One cut off inside
a variant leaves an unsigned directory that no reader accepts and `publish` will not
overwrite (artifacts are immutable): the pass fails naming it, for an operator to remove.
A Kubernetes CronJob runs this every few minutes (components/k8s/localizer.py); the local
stack runs it once per region (meridian/local/up.py), with the same flags
(`workloads.contract.localizer_args`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from workloads.contract import GLOBAL_REGION
from workloads.localization.localize import LocalizationConfig
from workloads.localization.publish import load_state_dict, localize_and_publish
from workloads.registry.artifact import WEIGHTS_FILE, ArtifactId, ArtifactRejected, Variant
from workloads.registry.signing import load_signer, load_trusted_key
from workloads.registry.store import fetch_verified, is_published, latest_version
from workloads.tasks import Shard, load_task
from workloads.tasks.sync import SyncError, sync_data

_TRANSPORT_ERRORS = (OSError, httpx.HTTPError)


class FollowError(RuntimeError):
    """The pass cannot go on; the message names the flag or URL at fault."""


@dataclass(frozen=True)
class Follow:
    global_registry: str
    global_key: Path
    region: str
    data_url: str
    store: str
    signing_key: str  # passed through to `publish` as it is: a PEM path or a KMS ref
    task: str
    work_dir: Path | None
    model_name: str
    config: LocalizationConfig


@dataclass(frozen=True)
class Outcome:
    status: str  # "no global model" | "up to date" | "published"
    version: str | None
    published: tuple[Variant, ...] = ()
    report: dict[str, Any] | None = None

    def message(self, follow: Follow) -> str:
        if self.version is None:
            return f"{follow.region}: no global model at {follow.global_registry} yet; nothing to do"
        if not self.published:
            return f"{follow.region}: up to date with global version {self.version} ({follow.store})"
        variants = ", ".join(v.value for v in self.published)
        return f"{follow.region}: published {variants} of version {self.version} to {follow.store}"


def _missing(follow: Follow, version: str) -> list[Variant]:
    try:
        return [
            v
            for v in Variant
            if not is_published(follow.store, ArtifactId(follow.model_name, version, follow.region, v))
        ]
    except _TRANSPORT_ERRORS as err:
        raise FollowError(f"--store {follow.store}: cannot read the region's registry ({err})") from err


def follow_once(follow: Follow) -> Outcome:
    """One pass (see the module docstring)."""
    try:
        trusted = load_trusted_key(follow.global_key)
    except (OSError, ValueError) as err:
        raise FollowError(f"--global-key {follow.global_key}: not a readable Ed25519 public key ({err})") from err
    try:
        signer = load_signer(follow.signing_key)  # fail now, not after minutes of training
    except (OSError, ValueError) as err:
        raise FollowError(f"--signing-key {follow.signing_key}: cannot sign with it ({err})") from err
    try:
        task = load_task(follow.task)
    except (ImportError, AttributeError, ValueError, KeyError) as err:
        raise FollowError(f"--task {follow.task}: {err}") from err
    try:
        version = latest_version(follow.global_registry, follow.model_name, GLOBAL_REGION, Variant.FP32)
    except _TRANSPORT_ERRORS as err:
        raise FollowError(
            f"--global-registry {follow.global_registry}: cannot read its latest version ({err})"
        ) from err
    if version is None:
        return Outcome("no global model", None)
    missing = _missing(follow, version)
    if not missing:
        return Outcome("up to date", version)

    work = follow.work_dir or Path(tempfile.mkdtemp(prefix="meridian-follow-"))
    try:
        artifact = ArtifactId(follow.model_name, version, GLOBAL_REGION, Variant.FP32)
        try:
            verified = fetch_verified(follow.global_registry, artifact, trusted, work / "global" / artifact.path)
        except ArtifactRejected as err:
            raise FollowError(f"--global-registry {follow.global_registry}: {err} (checked with --global-key)") from err
        except _TRANSPORT_ERRORS as err:
            raise FollowError(f"--global-registry {follow.global_registry}: cannot fetch {artifact} ({err})") from err
        if verified.manifest.task != follow.task:
            raise FollowError(
                f"--task {follow.task}: the global model {artifact} at {follow.global_registry} "
                f"was trained for task {verified.manifest.task!r}"
            )
        data_dir = work / "data"
        try:
            sync_data(follow.data_url, data_dir)
        except SyncError as err:
            raise FollowError(f"--data-url: {err}") from err
        try:
            report = localize_and_publish(
                task,
                follow.task,
                load_state_dict(verified.directory / WEIGHTS_FILE),
                Shard.load(data_dir),
                follow.config,
                model_name=follow.model_name,
                version=version,
                parent_version=version,
                region=follow.region,
                store=follow.store,
                signing_key=signer,
                variants=missing,
            )
        except FileExistsError as err:
            raise FollowError(
                f"--store {follow.store}: {err}; it has no signature, so an earlier pass was cut off while "
                "writing it: no reader accepts it; remove that directory for the next pass to publish it"
            ) from err
    finally:
        if follow.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return Outcome("published", version, tuple(missing), report)
