"""Build a server from its settings and run it on uvicorn (uvloop + httptools, no access log:
per-request logging would cost more CPU than the model), its metrics on their own port."""

from __future__ import annotations

import logging

import torch
import uvicorn

from workloads.serving.app import Answerer, InferenceApp
from workloads.serving.gate import announce, build_gate
from workloads.serving.metrics import ServingMetrics
from workloads.serving.models import ModelSource, RegistryModelSource
from workloads.serving.settings import LATEST, ServingSettings
from workloads.serving.versions import BatchingConfig, ModelRouter, TrafficSplit


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
    batching = BatchingConfig(settings.max_batch_size, settings.max_batch_wait_ms / 1000, settings.queue_capacity)
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


def run(app: InferenceApp, settings: ServingSettings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(settings.torch_threads)
    announce(app.gate, settings.port)
    app.metrics.serve(settings.host, settings.metrics_port)  # its own thread, ends with the process
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
