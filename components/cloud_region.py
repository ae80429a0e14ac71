"""What every cloud region (components/aws, components/gcp) is built from, whichever cloud it is
on: the Fleet decides these facts once per region and each cloud adds its own registry links.
Both clouds also confine a region's trainer to the same prefix of the model registry."""

from __future__ import annotations

from dataclasses import dataclass

from components.config import Region, StackConfig


def artifact_prefix(region: str) -> str:
    """A region's trainer publishes its localized models under this registry prefix only."""
    return f"models/{region}/"


# The home's registry holds the global model under this prefix (`<store>/global`, CDN path
# `/global/*`); each region's own registry holds its variants under its name (`/<region>/*`).
GLOBAL_MODELS_PREFIX = "global"


@dataclass(frozen=True)
class CloudRegionArgs:
    config: StackConfig
    region: Region
    stack: str
    cidr: str  # this region's /16
    model_registry_url: str | None  # the CDN's URL; None: read the registry bucket directly
    tags: dict[str, str]  # the stack's: the region's provider puts them on every resource it creates

    @property
    def is_home(self) -> bool:
        """The home region holds the model registry."""
        return self.region.name == self.config.home

    @property
    def unique_name(self) -> str:
        """`meridian-<stack>-<region>`: for what must be unique in the whole account or project."""
        return f"meridian-{self.stack}-{self.region.name}"
