"""What every cloud region (components/aws, components/gcp) is built from, whichever cloud it is
on: the Fleet decides these facts once per region and each cloud adds its own registry links.
Both clouds lay out their registry buckets the same way, so one CDN path serves either."""

from __future__ import annotations

from dataclasses import dataclass

from components.config import Region, StackConfig

# The home's registry bucket holds the global model under `global/`, beside its own region's
# variants under `<home>/`; the CDN serves both at the same paths (`/global/*`, `/<region>/*`).
GLOBAL_MODELS = "global"


def artifact_prefix(path: str) -> str:
    """The object prefix of a registry path (a region's name, or GLOBAL_MODELS), as grants name
    it: it ends in `/`, so one region's prefix never matches another's."""
    return f"{path}/"


@dataclass(frozen=True)
class CloudRegionArgs:
    config: StackConfig
    region: Region
    stack: str
    cidr: str  # this region's /16
    model_registry_url: str | None  # the URL of the CDN serving this cloud's registries; None: the bucket
    tags: dict[str, str]  # the stack's: the region's provider puts them on every resource it creates

    @property
    def is_home(self) -> bool:
        """The home region holds the model registry."""
        return self.region.name == self.config.home

    @property
    def unique_name(self) -> str:
        """`meridian-<stack>-<region>`: for what must be unique in the whole account or project."""
        return f"meridian-{self.stack}-{self.region.name}"
