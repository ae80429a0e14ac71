"""What every workload repeats: its ServiceAccount carries its own cloud identity and no token."""

from __future__ import annotations

from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed

IDENTITY_ANNOTATION = {"aws": "eks.amazonaws.com/role-arn", "gcp": "iam.gke.io/gcp-service-account"}


def test_service_accounts_carry_their_own_cloud_identity_and_no_token(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        identities = {}
        for name in ("supernode", "server"):
            account = deployed.named("ServiceAccount", namespace, name)
            assert account["automountServiceAccountToken"] is False
            annotations = account["metadata"].get("annotations") or {}
            if region.kubernetes is None:
                identities[name] = annotations[IDENTITY_ANNOTATION[region.cloud]]
            else:
                assert not annotations
        # The trainer reads the region's data; the server only the registry: never one role.
        if identities:
            assert identities["supernode"] != identities["server"]
