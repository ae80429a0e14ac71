"""Edge servers: one Deployment per edge site, on that site's nodes, escalating to its region."""

from __future__ import annotations

from components.k8s.edge import EDGE_SITE_LABEL, ZONE_LABEL
from components.k8s.front_door_tls import ESCALATION_SERVICE
from components.k8s.namespace import namespace_name
from components.k8s.pods import GPU_RESOURCE
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, env_of, pod_spec
from workloads import contract


def test_one_edge_deployment_per_site_on_that_sites_nodes(deployed: Deployed) -> None:
    threshold = deployed.config.inference.edge_confidence_threshold
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        edges = [
            d
            for d in deployed.objects("Deployment")
            if d["metadata"]["namespace"] == namespace and d["metadata"]["name"].startswith("edge-")
        ]
        assert len(edges) == len(region.edge_sites)
        for site in region.edge_sites:
            obj = deployed.named("Deployment", namespace, f"edge-{site.name}")
            spec = pod_spec(obj)
            assert spec is not None
            assert spec["nodeSelector"] == {ZONE_LABEL: site.location, EDGE_SITE_LABEL: site.name}
            assert {"key": EDGE_SITE_LABEL, "operator": "Equal", "value": site.name, "effect": "NoSchedule"} in spec[
                "tolerations"
            ]
            (edge,) = containers(obj)
            env = env_of(edge)
            # the servers' escalation port, mutual TLS (test_front_door_tls.py)
            assert env[contract.ENV_UPSTREAM_URL] == (
                f"https://{ESCALATION_SERVICE}.{namespace}.svc.cluster.local:{contract.ESCALATION_PORT}"
            )
            assert float(env[contract.ENV_CONFIDENCE_THRESHOLD]) == threshold
            assert env[contract.ENV_MODEL_VARIANT] == contract.EDGE_MODEL_VARIANT
            assert GPU_RESOURCE not in edge["resources"]["limits"]
            if deployed.edge_endpoints is not None:
                assert deployed.edge_endpoints[region.name][site.name]
