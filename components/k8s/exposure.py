"""How callers reach a region's server or one of its edge sites, per cloud, always over HTTPS:

- AWS and `kubernetes` regions: the workload's own LoadBalancer Service with one listener, 443
  (components/k8s/services.py `https_service`: ACM at the NLB, or TLS in the pods);
- GCP: a ClusterIP Service routed from the region's Gateway by host name
  (components/k8s/gateway.py), so every public name of the region shares its reserved IP.

Either way, what the public names resolve to comes back: the load balancer's host name or IP,
or the Gateway's address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.catalog import Cloud
from components.front_door import FrontDoor
from components.k8s import gateway
from components.k8s.services import https_service, load_balancer_address, service
from components.k8s.target import Target
from workloads import contract


def expose(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    front_door: FrontDoor,
    hosts: Sequence[str],
    *,
    parent: pulumi.Resource,
    selector: Mapping[str, str] | None = None,
) -> pulumi.Output[str]:
    """`name`'s Service for callers at `hosts`; returns the address those names resolve to.
    Its pods wait for the region's model, so `pulumi up` does not wait for ready endpoints."""
    if target.region.cloud is Cloud.GCP:
        svc = service(
            resource_name,
            name,
            target,
            app,
            {"http": contract.HTTP_PORT},
            public=False,
            parent=parent,
            selector=selector,
            gated_by_pipeline=True,
        )
        gateway.route(resource_name, target, name, app, svc, hosts, parent=parent)
        return gateway.address(front_door, target)
    svc = https_service(
        resource_name, name, target, app, front_door, parent=parent, selector=selector, gated_by_pipeline=True
    )
    return load_balancer_address(svc)
