"""The GCP project a region deploys into, and the Google service agents that act inside it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp


@dataclass(frozen=True)
class Project:
    id: str
    number: pulumi.Output[str]

    def service_agent(self, service: str) -> pulumi.Output[str]:
        """`serviceAccount:service-<number>@<service>.iam.gserviceaccount.com`."""
        return self.number.apply(lambda n: f"serviceAccount:service-{n}@{service}.iam.gserviceaccount.com")

    @property
    def workload_pool(self) -> str:
        return f"{self.id}.svc.id.goog"


def lookup_project(project_id: str, provider: gcp.Provider, depends_on: list[pulumi.Resource] | None = None) -> Project:
    """One invoke per region: the project number names the service agents. `depends_on`: what
    must exist first (the Resource Manager API it calls)."""
    found = gcp.organizations.get_project_output(
        project_id=project_id, opts=pulumi.InvokeOutputOptions(provider=provider, depends_on=depends_on)
    )
    return Project(id=project_id, number=found.number)
