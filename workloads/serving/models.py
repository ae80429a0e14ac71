"""What a server serves: a loaded model version, and where versions come from.

The servers only see `ModelSource.load(version) -> LoadedModel`; the real source reads signed
artifacts from the registry (verified before any byte reaches torch), tests may pass any
object with the same method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from workloads.registry.artifact import WEIGHTS_FILE, ArtifactId, Variant
from workloads.registry.signing import load_trusted_key
from workloads.registry.store import fetch_verified, latest_version
from workloads.registry.verified import load_model


@dataclass(frozen=True)
class LoadedModel:
    """One model version, ready to answer: float32 (batch, *input_shape) -> class probabilities."""

    version: str
    module: torch.nn.Module
    input_shape: tuple[int, ...]
    num_classes: int
    device: torch.device = torch.device("cpu")
    description: str = ""  # what was loaded (variant, artifact digest), for metadata and logs

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            if self.device.type == "cuda":
                return self._predict_cuda(x)
            logits = self.module(torch.from_numpy(x).to(self.device, non_blocking=True))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def _predict_cuda(self, x: np.ndarray) -> np.ndarray:
        """Both copies from and to page-locked host memory (torch's caching host allocator
        reuses its blocks), queued without blocking behind the kernels on the current stream;
        one synchronisation at the end, in the calling thread (the device's worker thread:
        devices.py), before the host reads the result."""
        inputs = torch.from_numpy(x).pin_memory().to(self.device, non_blocking=True)
        probabilities = torch.softmax(self.module(inputs).float(), dim=1).to("cpu", non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return probabilities.numpy()


class ModelSource(Protocol):
    """Where model versions come from. `load` blocks (download, verify, deserialize): the
    servers call it in a worker thread, never on the event loop. It raises on any artifact it
    cannot trust; the caller keeps serving what it had."""

    def load(self, version: str) -> LoadedModel: ...


class RegistryModelSource:
    """Signed artifacts from the model registry (fsspec URL, or http(s):// through the CDN with
    ETag revalidation and resumable downloads): fetched, verified, then loaded."""

    def __init__(
        self,
        store_url: str,
        model: str,
        region: str,
        variant: str,
        trusted_key: Path,
        cache_dir: Path,
        device: torch.device | None = None,
    ):
        self.store_url = store_url
        self.model = model
        self.region = region
        self.variant = Variant(variant)
        self._trusted_key = load_trusted_key(trusted_key)  # fail at start on a bad key file
        self._cache_dir = cache_dir
        # Dynamic int8 modules run on CPU only; the full model uses the GPU when there is one.
        cuda = torch.cuda.is_available() and self.variant is not Variant.INT8
        self._device = device or torch.device("cuda" if cuda else "cpu")

    def load(self, version: str) -> LoadedModel:
        artifact = ArtifactId(self.model, version, self.region, self.variant)
        verified = fetch_verified(self.store_url, artifact, self._trusted_key, self._cache_dir / artifact.path)
        module = load_model(verified).eval().to(self._device)
        architecture = verified.manifest.architecture
        digest = verified.manifest.files[WEIGHTS_FILE].sha256[:12]
        return LoadedModel(
            version=version,
            module=module,
            input_shape=tuple(architecture["input_shape"]),
            num_classes=int(architecture["num_classes"]),
            device=self._device,
            description=f"{artifact} (weights sha256 {digest}..., {verified.bytes_downloaded} bytes downloaded)",
        )

    def latest(self) -> str | None:
        return latest_version(self.store_url, self.model, self.region, self.variant)
