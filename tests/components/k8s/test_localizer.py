"""The model pipeline's Kubernetes side: each region's localizer CronJob follows the home's
global registry and publishes to the region's own; the SuperLink's ServerApp publishes the
global model. Both run exactly what the local stack runs, apart from URLs and paths.
Every test runs on both sources, but those comparing values with a ClusterAccess compare with
the harness's (tests/components/k8s/harness.py) and so run on the "components" source only; the
clouds' own values are specified in tests/components/aws and tests/components/gcp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.catalog import Cloud
from components.cluster_access import LOCALIZER_SERVICE_ACCOUNT_NAME
from components.config import Region, load_stack
from components.k8s import localizer
from components.k8s.namespace import namespace_name
from components.k8s.supernode import SUPERNODE_RESOURCES
from meridian.local.plan import LocalPlan
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.harness import PUBLIC_KEY_PEM, access_for
from tests.components.k8s.manifests import containers, env_of, flags, pod_spec
from workloads import contract

# Flags whose values are URLs or paths: the only ones that differ between the cluster and the
# local stack. `--report` is the local stack's own (its report's table; the CronJob logs it).
LOCATIONS = {"--global-registry", "--global-key", "--data-url", "--store", "--signing-key", "--work-dir"}
LOCAL_ONLY = {"--report"}


@pytest.fixture
def harness_access(source: str) -> None:
    if source == "program":
        pytest.skip("compares with the harness's ClusterAccess, which the program does not use")


def _cron_job(deployed: Deployed, region: Region) -> dict[str, Any]:
    return deployed.named("CronJob", namespace_name(region.name), localizer.LOCALIZER_APP)


def _container(deployed: Deployed, region: Region) -> dict[str, Any]:
    (container,) = _cron_job(deployed, region)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


def test_every_region_runs_one_pass_at_a_time_every_ten_minutes(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        cron = _cron_job(deployed, region)["spec"]
        assert (cron["schedule"], cron["timeZone"], cron["concurrencyPolicy"]) == ("*/10 * * * *", "Etc/UTC", "Forbid")
        assert cron["startingDeadlineSeconds"] == localizer.STARTING_DEADLINE_SECONDS
        job = cron["jobTemplate"]["spec"]
        assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (2, 3600)
        assert job["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.usefixtures("harness_access")
def test_it_follows_the_homes_global_registry_and_publishes_to_its_own(deployed: Deployed) -> None:
    home = deployed.config.home_region
    global_models = access_for(home, home=True).global_models
    assert global_models is not None
    for region in deployed.config.regions:
        access = access_for(region)
        assert access.models is not None
        container = _container(deployed, region)
        assert container["command"] == list(contract.LOCALIZER_COMMAND)
        data_url = access.data_url if region.kubernetes is None else f"file://{localizer.SOURCE_DATA_MOUNT}"
        assert flags(container) == {
            "--global-registry": global_models.read_url,
            "--global-key": f"{contract.KEYS_MOUNT}/{contract.GLOBAL_TRUSTED_KEY_FILE}",
            "--region": region.name,
            "--data-url": data_url,
            "--store": access.models.store_url,
            "--signing-key": access.models.signer.key_ref,
            "--task": deployed.config.federation.task,
            "--work-dir": localizer.WORK_MOUNT,
        }
        trust = deployed.named("ConfigMap", namespace_name(region.name), "global-model-trust")
        assert trust["data"] == {contract.GLOBAL_TRUSTED_KEY_FILE: PUBLIC_KEY_PEM.format(region=home.name)}


@pytest.mark.usefixtures("harness_access")
def test_it_runs_the_trainer_image_as_the_localizer_identity_on_cpu(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        spec = pod_spec(_cron_job(deployed, region))
        assert spec is not None
        assert spec["serviceAccountName"] == LOCALIZER_SERVICE_ACCOUNT_NAME
        account = deployed.named("ServiceAccount", namespace_name(region.name), LOCALIZER_SERVICE_ACCOUNT_NAME)
        assert (account["metadata"].get("annotations") or {}) == access_for(region).localizer_identity.annotations
        container = _container(deployed, region)
        assert "/trainer@" in container["image"] or "/trainer:" in container["image"]
        assert container["resources"]["requests"] == {
            "cpu": SUPERNODE_RESOURCES.cpu_request,
            "memory": SUPERNODE_RESOURCES.memory_request,
        }
        assert "nvidia.com/gpu" not in container["resources"]["limits"]
        assert env_of(container)[contract.ENV_REGION] == region.name


def test_a_pem_signing_key_is_mounted_read_only_and_a_kms_key_never_enters_the_cluster(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        signing = [
            s
            for s in deployed.objects("Secret")
            if (s["metadata"].get("namespace"), s["metadata"]["name"]) == (namespace, "localizer-signing")
        ]
        spec = pod_spec(_cron_job(deployed, region))
        assert spec is not None
        (keys,) = [v for v in spec["volumes"] if v["name"] == localizer.KEYS_VOLUME]
        projected = [next(iter(source)) for source in keys["projected"]["sources"]]
        mount = next(m for m in _container(deployed, region)["volumeMounts"] if m["name"] == localizer.KEYS_VOLUME)
        assert mount == {"name": localizer.KEYS_VOLUME, "mountPath": contract.KEYS_MOUNT, "readOnly": True}
        if region.cloud is Cloud.KUBERNETES:
            (secret,) = signing
            assert list(secret["stringData"]) == [contract.SIGNING_KEY_FILE]
            assert projected == ["configMap", "secret"] and keys["projected"]["defaultMode"] == 0o440
        else:
            assert signing == [] and projected == ["configMap"]


def test_its_network_policy_lets_out_only_dns_and_https(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        policy = deployed.named("NetworkPolicy", namespace_name(region.name), localizer.LOCALIZER_APP)
        assert "ingress" not in policy["spec"] and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert ports <= {53, 443, 80, 988}  # DNS, HTTPS, and GKE's metadata server for Workload Identity
        assert 443 in ports and (80 in ports) == (region.cloud is Cloud.GCP)


@pytest.mark.usefixtures("harness_access")
def test_the_superlink_publishes_to_the_global_registry_with_the_home_signer(deployed: Deployed) -> None:
    global_models = access_for(deployed.config.home_region, home=True).global_models
    assert global_models is not None
    superlink = deployed.named("Deployment", namespace_name(deployed.config.home), "superlink")
    env = env_of(next(c for c in containers(superlink) if c["name"] == "superlink"))
    assert {k: env[k] for k in contract.global_publish_env("", "")} == contract.global_publish_env(
        global_models.store_url, global_models.signer.key_ref
    )


def test_the_cluster_and_the_local_stack_run_the_same_commands(deployed: Deployed, tmp_path: Path) -> None:
    """The local stack's plan (meridian/local/plan.py) against this stack's Kubernetes objects:
    the same module, the same flags, the same values apart from URLs and paths; the same
    environment makes the ServerApp publish."""
    local = load_stack("local")
    plan = LocalPlan(local, tmp_path, "python", quick=False)
    home_env = env_of(
        next(
            c
            for c in containers(deployed.named("Deployment", namespace_name(deployed.config.home), "superlink"))
            if c["name"] == "superlink"
        )
    )
    assert set(plan.publish_env()) <= set(home_env)
    for region in deployed.config.regions:
        container = _container(deployed, region)
        argv = plan.localizer_argv(local.home)
        assert ["python", *argv[1:4]] == container["command"]
        ours, theirs = flags({"args": argv[4:]}), flags(container)
        assert set(ours) - LOCAL_ONLY == set(theirs)
        # The region and the task are each stack's own config; anything else (tuning) is the same.
        assert (ours["--task"], theirs["--task"]) == (local.federation.task, deployed.config.federation.task)
        same = {
            flag: value for flag, value in ours.items() if flag not in LOCATIONS | LOCAL_ONLY | {"--region", "--task"}
        }
        assert same == {flag: theirs[flag] for flag in same}, "the local stack's tuning differs from the cluster's"
        assert str(ours["--data-url"]).startswith("file://") and str(ours["--store"]).startswith("file://")
