"""The first hop of the model pipeline: the run's final global model, published signed.

When a run completes, the ServerApp publishes `model.safetensors` (kept on its volume as
before, with model.json) as `ArtifactId(MODEL_NAME, <UTC completion time YYYYMMDD.HHMMSS>,
"global", fp32)` to the store in ENV_GLOBAL_STORE_URL, signed with ENV_SIGNING_KEY (a PEM path
or a KMS key ref, passed through to `publish`). Both come from the SuperLink's environment
(workloads/contract.py says why); with no store configured nothing is published, and the log
says so. Every region's localizer follows this store's `latest` (workloads/localization/follow.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from workloads.contract import ENV_GLOBAL_STORE_URL, ENV_SIGNING_KEY, GLOBAL_REGION, MODEL_NAME
from workloads.registry.artifact import ArtifactId, Manifest, Variant
from workloads.registry.store import publish
from workloads.tasks import load_task
from workloads.trainer.records import MODEL_FILE

logger = logging.getLogger("flwr").getChild("meridian")

VERSION_FORMAT = "%Y%m%d.%H%M%S"  # sorts by time under workloads.registry.store.version_order


def global_version(completed: datetime) -> str:
    return completed.astimezone(UTC).strftime(VERSION_FORMAT)


def publish_global_model(
    out_dir: Path, info: Mapping[str, Any], environ: Mapping[str, str], completed: datetime | None = None
) -> Manifest | None:
    """Publish the run's final model (what `train` saved in `out_dir`, described by `info`);
    None, logged, where no global store is configured."""
    store = environ.get(ENV_GLOBAL_STORE_URL)
    if not store:
        logger.info("Meridian: %s is not set: the global model is not published", ENV_GLOBAL_STORE_URL)
        return None
    signing_key = environ.get(ENV_SIGNING_KEY)
    if not signing_key:
        raise ValueError(f"{ENV_GLOBAL_STORE_URL} is set ({store}) but {ENV_SIGNING_KEY} is not: nothing signs it")
    task = load_task(info["task_reference"])
    model = task.build_model()
    model.load_state_dict(load_file(str(out_dir / MODEL_FILE)))
    version = global_version(completed or datetime.now(UTC))
    metrics = {k: float(v) for k, v in info["metrics"].items() if k in ("loss", "accuracy") and v is not None}
    manifest = publish(
        model,
        task,
        store,
        signing_key,
        artifact=ArtifactId(MODEL_NAME, version, GLOBAL_REGION, Variant.FP32),
        parent_version=version,  # the global model is the root of its line
        metrics={**metrics, "rounds": float(info["round"])},
        task_ref=info["task_reference"],
    )
    logger.info("Meridian: published the global model as %s to %s", manifest.artifact_id, store)
    return manifest
