"""What regional and edge servers share: a disruption budget each (their metrics: test_monitoring.py)."""

from __future__ import annotations

from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_every_inference_deployment_has_a_disruption_budget(deployed: Deployed) -> None:
    budgets = deployed.objects("PodDisruptionBudget")
    inference = [
        d for d in deployed.objects("Deployment") if any(c["name"] in ("server", "edge") for c in containers(d))
    ]
    assert len(inference) == len(deployed.config.regions) + sum(len(r.edge_sites) for r in deployed.config.regions)
    for d in inference:
        labels = d["spec"]["template"]["metadata"]["labels"]
        matching = [
            b
            for b in budgets
            if b["metadata"]["namespace"] == d["metadata"]["namespace"] and _selects(b["spec"]["selector"], labels)
        ]
        assert len(matching) == 1, d["metadata"]["name"]
        assert matching[0]["spec"]["maxUnavailable"] == 1
