"""The regional inference server: config reaches its env, its scaling and its Service."""

from __future__ import annotations

from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, env_of
from workloads import contract


def test_server_env_comes_from_the_contract_and_the_stack(deployed: Deployed) -> None:
    inference = deployed.config.inference
    for region in deployed.config.regions:
        (server,) = containers(deployed.named("Deployment", namespace_name(region.name), "server"))
        env = env_of(server)
        assert env[contract.ENV_REGION] == region.name
        assert env[contract.ENV_MAX_BATCH_SIZE] == str(inference.max_batch_size)
        assert env[contract.ENV_CUDA_MAX_BATCH_SIZE] == str(inference.cuda_max_batch_size)
        assert float(env[contract.ENV_MAX_BATCH_WAIT_MS]) == inference.max_batch_wait_ms
        assert env[contract.ENV_QUEUE_CAPACITY] == str(inference.queue_capacity)
        assert env[contract.ENV_STABLE_VERSION] == inference.canary.stable
        assert env[contract.ENV_CANDIDATE_WEIGHT] == str(inference.canary.weight)
        assert env.get(contract.ENV_CANDIDATE_VERSION) == inference.canary.candidate
        assert env[contract.ENV_MODEL_VARIANT] == contract.REGIONAL_MODEL_VARIANT
        assert env[contract.ENV_TRUSTED_KEY] == f"{contract.KEYS_MOUNT}/{contract.TRUSTED_KEY_FILE}"
        assert env[contract.ENV_REGISTRY_URL] == deployed.model_registry_urls[region.name]


def test_server_reports_the_address_its_public_names_resolve_to(deployed: Deployed) -> None:
    """How the server is exposed per cloud: tests/components/k8s/test_exposure.py."""
    for region in deployed.config.regions:
        assert deployed.named("Service", namespace_name(region.name), "server")
        assert deployed.inference_endpoints[region.name]
