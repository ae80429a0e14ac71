"""The project's Google APIs are enabled once per stack, before anything that calls them: every
GCP resource of every shipped stack waits (itself or through a component above it) for the
`gcp.projects.Service` of the API it calls, and a destroy leaves the APIs on."""

from __future__ import annotations

from components.catalog import Cloud
from components.gcp.services import API_OF, Api, api_of, required_apis
from meridian.mocks import Inventory, Recorded
from tests.components.cloud_queries import config_of, regions_on

SERVICE = "gcp:projects/service:Service"


def _services(inventory: Inventory) -> dict[str, Recorded]:
    return {r.inputs["service"]: r for r in inventory.of_type(SERVICE)}


def _waits_for(inventory: Inventory, resource: Recorded) -> set[str]:
    """What a resource waits for: its own dependencies and those of every component above it
    (a child registers only once its parent has, and a component only once its own
    dependencies exist)."""
    components: dict[str, list[Recorded]] = {}
    for r in inventory.resources:
        if not r.custom:
            components.setdefault(r.name, []).append(r)
    waits, parent = set(resource.dependencies), resource.parent
    seen: set[str] = set()
    while parent is not None and parent not in seen:
        seen.add(parent)
        above = components.get(parent, [])
        for component in above:
            waits |= set(component.dependencies)
        parent = above[0].parent if above else None
    return waits


def test_each_gcp_stack_enables_every_api_once_and_keeps_it_on_destroy(stack: str, inventory: Inventory) -> None:
    services = inventory.of_type(SERVICE)
    if not regions_on(stack, Cloud.GCP):
        assert services == []
        return
    gcp_home = config_of(stack).home_region.cloud is Cloud.GCP
    assert sorted(s.inputs["service"] for s in services) == sorted(a.value for a in required_apis(gcp_home))
    for service in services:
        assert service.inputs["disableOnDestroy"] is False
        assert service.inputs["disableDependentServices"] is False
        assert (service.provider or "").startswith("gcp-") and service.inputs["project"]


def test_every_gcp_resource_waits_for_the_api_it_calls(stack: str, inventory: Inventory) -> None:
    services = _services(inventory)
    resources = [r for r in inventory.resources if r.custom and r.type.startswith("gcp:") and r.type != SERVICE]
    for resource in resources:
        if resource.type.startswith("pulumi:providers:"):
            continue
        api = api_of(resource.type)
        assert api is not None, f"{resource.type}: which API does it call? add it to API_OF"
        assert api.value in services, f"{resource.type} {resource.name}: {api} is not enabled"
        assert services[api.value].name in _waits_for(inventory, resource), (
            f"{resource.type} {resource.name} does not wait for {api}"
        )


def test_api_of_reads_the_pulumi_gcp_module() -> None:
    assert api_of("gcp:container/nodePool:NodePool") is Api.CONTAINER
    assert api_of("gcp:serviceaccount/iAMMember:IAMMember") is Api.IAM
    assert api_of("aws:s3/bucket:Bucket") is None
    assert set(API_OF.values()) <= set(Api)
    assert Api.DNS not in required_apis(gcp_home=False) and Api.DNS in required_apis(gcp_home=True)
