"""The demand file `meridian plan --demand` reads: where users are, how fast they must be
answered, what a node serves, and what the layout may use. camelCase like the stacks, unknown
keys refused, and every mistake named by its field path, as components/config.py does.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from components.catalog import Cloud

# The stack config's conventions (camelCase, unknown keys refused, `field_error` sub-field errors and
# their reading into paths), so both files read and fail alike.
from components.config import ConfigModel, field_error, field_problem
from meridian.plan.metros import METROS

PLANNABLE_CLOUDS = (Cloud.AWS, Cloud.GCP)  # an existing cluster's place is not the planner's to choose


class DemandError(Exception):
    """A demand file mistake: the file, and one line per problem with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid demand ({len(problems)} problem(s))"]
        lines += [f"  {path or '<root>'}: {message}" for path, message in problems]
        super().__init__("\n".join(lines))


def nearest_names(word: str, names: list[str]) -> str:
    """`did you mean` text: the closest valid names, else all of them when there are few."""
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.5)
    return f"nearest: {', '.join(close)}" if close else f"known: {', '.join(sorted(names))}"


def check_clouds(clouds: list[str]) -> list[Cloud]:
    names = [c.value for c in PLANNABLE_CLOUDS]
    out: list[Cloud] = []
    for i, cloud in enumerate(clouds):
        if cloud not in names:
            raise field_error(f"[{i}]", f"unknown cloud {cloud!r}; {nearest_names(cloud, names)}")
        out.append(Cloud(cloud))
    return out


class MetroDemand(ConfigModel):
    metro: str
    requests_per_second: float = Field(gt=0, description="peak requests per second from this metro")
    residency: str | None = Field(default=None, description="serve only inside this zone (the metro's own)")

    @model_validator(mode="after")
    def _known(self) -> Self:
        if self.metro not in METROS:
            raise field_error("metro", f"unknown metro {self.metro!r}; {nearest_names(self.metro, list(METROS))}")
        zone = METROS[self.metro].residency
        if self.residency is not None and self.residency != (zone.value if zone else None):
            lies = f"lies in residency zone {zone.value}" if zone else "has no residency zone in the catalog"
            raise field_error("residency", f"{self.metro} {lies}; demand can only be kept in the metro's own zone")
        return self


class Slo(ConfigModel):
    p95_ms: float = Field(gt=0, le=10_000, description="user-perceived p95: network and serving")


class Capacity(ConfigModel):
    requests_per_second_per_gpu: float = Field(gt=0)
    requests_per_second_per_edge_node: float = Field(gt=0)
    headroom: float = Field(default=0.3, ge=0, le=10, description="spare capacity over the peak, as a fraction")


class Serving(ConfigModel):
    """Time spent serving one request (queue and model), p50 and p95, added to the network's.
    Defaults are assumptions for a small model on the catalog's accelerators; measure yours."""

    gpu_p50_ms: float = Field(default=8, ge=0)
    gpu_p95_ms: float = Field(default=15, ge=0)
    edge_p50_ms: float = Field(default=4, ge=0)
    edge_p95_ms: float = Field(default=10, ge=0)


class Budget(ConfigModel):
    max_usd_per_hour: float = Field(gt=0)


class Edge(ConfigModel):
    allowed: bool = True


class Demand(ConfigModel):
    metros: list[MetroDemand] = Field(min_length=1)
    slo: Slo
    capacity: Capacity
    clouds: list[str] = Field(default_factory=lambda: [c.value for c in PLANNABLE_CLOUDS], min_length=1)
    budget: Budget | None = None
    edge: Edge = Edge()
    serving: Serving = Serving()
    base: str | None = Field(default=None, description="a stack file whose non-placement settings the plan keeps")

    @field_validator("clouds")
    @classmethod
    def _clouds(cls, clouds: list[str]) -> list[str]:
        check_clouds(clouds)
        return clouds

    @model_validator(mode="after")
    def _each_metro_once(self) -> Self:
        names = [m.metro for m in self.metros]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise field_error(f"metros[{i}].metro", f"{name} is listed twice; give its total demand once")
        return self

    @property
    def allowed_clouds(self) -> list[Cloud]:
        return [Cloud(c) for c in self.clouds]


def parse_demand(raw: Any, source: str) -> Demand:
    try:
        return Demand.model_validate(raw)
    except ValidationError as err:
        problems = [field_problem(dict(e)) for e in err.errors()]
        # the stack config's reader points at its own model; this file's fields are here
        problems = [(path, msg.replace("components/config.py", "meridian/plan/demand.py")) for path, msg in problems]
        raise DemandError(source, problems) from None


def load_demand(path: Path) -> Demand:
    source = str(path)
    if not path.is_file():
        raise DemandError(source, [("", "no such file")])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DemandError(source, [("", f"not valid YAML: {err}")]) from None
    return parse_demand(raw if raw is not None else {}, source)
