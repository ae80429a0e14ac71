"""The canary analysis on Kubernetes: where a stack sets `inference.canary.analysis`, each region
runs one controller from the server image, with exactly the flags the local stack builds
(contract.canary_args), finds every server and edge replica through headless Services, and
shares one generated admin token with them; its network reaches only those replicas and the
cluster's Prometheus. Without analysis there is no controller and no token (the servers'
repository API stays off)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from components.config import Region, namespace_values, parse, stack_file
from components.k8s import canary
from components.k8s.monitoring import MONITORING_NAMESPACE, PROMETHEUS_POD_LABELS, PROMETHEUS_PORT, PROMETHEUS_URL
from components.k8s.namespace import namespace_name
from components.k8s.serving import ADMIN_PORT_NAME, EDGE_APP, SERVER_APP
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.harness import deploy
from tests.components.k8s.manifests import containers, env_of, flags, manifest, plain
from workloads import contract


def _analysed(deployed: Deployed) -> bool:
    return deployed.config.inference.canary.analysis is not None


def _controllers(deployed: Deployed, region: Region) -> list[dict[str, Any]]:
    return [
        d
        for d in deployed.objects("Deployment")
        if d["metadata"]["namespace"] == namespace_name(region.name) and d["metadata"]["name"] == canary.CANARY_APP
    ]


TOKEN_FILE = f"{contract.ADMIN_TOKEN_MOUNT}/{canary.ADMIN_TOKEN_KEY}"


def _reads_token_file(deployment: dict[str, Any], container: dict[str, Any]) -> bool:
    """The container is given the admin token as a file, from the token's Secret mounted read-only."""
    if env_of(container).get(contract.ENV_ADMIN_TOKEN_FILE) != TOKEN_FILE:
        return False
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == contract.ADMIN_TOKEN_MOUNT]
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    return mount["readOnly"] and volume["secret"]["secretName"] == canary.ADMIN_TOKEN_SECRET


def _inference_deployments(deployed: Deployed, region: Region) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (d, c)
        for d in deployed.objects("Deployment")
        if d["metadata"]["namespace"] == namespace_name(region.name)
        for c in containers(d)
        if c["name"] in (SERVER_APP, EDGE_APP)
    ]


def _inference_containers(deployed: Deployed, region: Region) -> list[dict[str, Any]]:
    return [
        c
        for d in deployed.objects("Deployment")
        if d["metadata"]["namespace"] == namespace_name(region.name)
        for c in containers(d)
        if c["name"] in (SERVER_APP, EDGE_APP)
    ]


def _driven(region: Region) -> list[str]:
    return [SERVER_APP, *([EDGE_APP] if region.edge_sites else [])]


def test_production_stacks_judge_new_versions_and_others_swap_them_in(deployed: Deployed) -> None:
    stack_canary = deployed.config.inference.canary
    for region in deployed.config.regions:
        assert len(_controllers(deployed, region)) == (1 if _analysed(deployed) else 0)
        for c in _inference_containers(deployed, region):
            assert env_of(c)[contract.ENV_CANDIDATE_WEIGHT] == str(stack_canary.weight)
            assert contract.ENV_ADMIN_TOKEN not in env_of(c), "never a plain value in the pod spec"
        for d, c in _inference_deployments(deployed, region):
            assert _reads_token_file(d, c) == _analysed(deployed)


def test_the_controller_runs_the_contract_command_with_the_stacks_thresholds(deployed: Deployed) -> None:
    analysis = deployed.config.inference.canary.analysis
    if analysis is None:
        pytest.skip("no canary analysis in this stack")
    for region in deployed.config.regions:
        (deployment,) = _controllers(deployed, region)
        assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
        (container,) = containers(deployment)
        targets = ",".join(
            f"dns+http://{canary.replicas_service(app)}.{namespace_name(region.name)}.svc.cluster.local:"
            f"{contract.ADMIN_PORT}"
            for app in _driven(region)
        )
        assert container["command"] == list(contract.CANARY_COMMAND)
        assert container["args"] == contract.canary_args(
            prometheus=PROMETHEUS_URL, region=region.name, model=contract.MODEL_NAME, targets=targets, analysis=analysis
        )
        assert flags(container)["--window"] == str(analysis.window_seconds)
        assert container["livenessProbe"]["httpGet"]["port"] == contract.METRICS_PORT
        assert env_of(container)[contract.ENV_METRICS_PORT] == str(contract.METRICS_PORT)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == contract.MetricsApp.CANARY


def test_one_generated_token_is_shared_by_the_controller_servers_and_edges(deployed: Deployed) -> None:
    if not _analysed(deployed):
        pytest.skip("no canary analysis in this stack")
    passwords = _admin_token_passwords(deployed.resources)
    assert len(passwords) == len(deployed.config.regions)
    assert all(p.inputs["length"] == canary.ADMIN_TOKEN_LENGTH and not p.inputs["special"] for p in passwords)
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        secret = deployed.named("Secret", namespace, canary.ADMIN_TOKEN_SECRET)
        assert set(secret["stringData"]) == {canary.ADMIN_TOKEN_KEY}
        (deployment,) = _controllers(deployed, region)
        (controller,) = containers(deployment)
        readers = [(deployment, controller), *_inference_deployments(deployed, region)]
        assert len(readers) == 2 + len(region.edge_sites)
        for d, c in readers:
            assert _reads_token_file(d, c)


def test_headless_services_list_every_server_and_edge_replica(deployed: Deployed) -> None:
    if not _analysed(deployed):
        pytest.skip("no canary analysis in this stack")
    for region in deployed.config.regions:
        for app in _driven(region):
            service = deployed.named("Service", namespace_name(region.name), canary.replicas_service(app))["spec"]
            assert service["clusterIP"] == "None"
            assert service["selector"] == {"app.kubernetes.io/name": app, "meridian.io/region": region.name}
            # the admin port: the repository API answers there only, never on the public port
            assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(contract.ADMIN_PORT, "admin")]


def test_the_controller_reaches_only_the_replicas_and_prometheus(deployed: Deployed) -> None:
    if not _analysed(deployed):
        pytest.skip("no canary analysis in this stack")
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}},
        "podSelector": {"matchLabels": PROMETHEUS_POD_LABELS},
    }
    for region in deployed.config.regions:
        spec = deployed.named("NetworkPolicy", namespace_name(region.name), canary.CANARY_APP)["spec"]
        (ingress,) = spec["ingress"]
        assert ingress["from"] == [prometheus], "only the scraper comes in"
        assert [p["port"] for p in ingress["ports"]] == [contract.METRICS_PORT]
        _dns, replicas, monitoring = spec["egress"]
        assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in replicas["to"]] == _driven(
            region
        )
        assert all("namespaceSelector" not in peer for peer in replicas["to"]), "this namespace only"
        assert [p["port"] for p in replicas["ports"]] == [contract.ADMIN_PORT]
        assert monitoring["to"] == [prometheus] and [p["port"] for p in monitoring["ports"]] == [PROMETHEUS_PORT]


def test_servers_and_edges_open_the_admin_port_only_where_a_controller_drives_them(deployed: Deployed) -> None:
    """No caller, no listener: without analysis nothing holds a token, so the repository API
    stays off (the servers' public port never serves it)."""
    grace = deployed.config.auth.admin_token.grace_seconds
    for region in deployed.config.regions:
        for c in _inference_containers(deployed, region):
            env = env_of(c)
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            if _analysed(deployed):
                assert ports[ADMIN_PORT_NAME] == contract.ADMIN_PORT
                assert env[contract.ENV_ADMIN_PORT] == str(contract.ADMIN_PORT)
                assert env[contract.ENV_ADMIN_TOKEN_GRACE_S] == str(grace)
            else:
                assert ADMIN_PORT_NAME not in ports
                assert contract.ENV_ADMIN_PORT not in env and contract.ENV_ADMIN_TOKEN_GRACE_S not in env


def _admin_token_passwords(resources: Iterable[Any]) -> list[Any]:
    """The canary's admin token RandomPasswords (SuperNode pods have their own, for the runner)."""
    return [
        r
        for r in resources
        if r.type == "random:index/randomPassword:RandomPassword" and r.name.endswith("-admin-token")
    ]


def _admin_tokens(rotation: int, grace_seconds: int) -> tuple[list[Any], set[str], set[str]]:
    """Deploy aws-prod at this rotation: its RandomPasswords' keepers, the tokens in the
    Secrets, and the servers' grace."""
    values = namespace_values(yaml.safe_load(stack_file("aws-prod").read_text())["config"])
    values["auth"]["adminToken"] = {"rotation": rotation, "graceSeconds": grace_seconds}
    resources, _ = deploy(parse(values, source="aws-prod"))
    keepers = [plain(r.inputs)["keepers"] for r in _admin_token_passwords(resources)]
    objects = [manifest(r.type, r.inputs) for r in resources if r.type.startswith("kubernetes:core/v1:Secret")]
    tokens = {
        o["stringData"][canary.ADMIN_TOKEN_KEY] for o in objects if o["metadata"]["name"] == canary.ADMIN_TOKEN_SECRET
    }
    graces = {
        env_of(c)[contract.ENV_ADMIN_TOKEN_GRACE_S]
        for r in resources
        if r.type == "kubernetes:apps/v1:Deployment"
        for c in containers(manifest(r.type, r.inputs))
        if c["name"] in (SERVER_APP, EDGE_APP)
    }
    return keepers, tokens, graces


def test_bumping_the_rotation_replaces_every_admin_token_and_the_servers_keep_the_old_one_for_the_grace() -> None:
    keepers, first, graces = _admin_tokens(rotation=1, grace_seconds=900)
    assert keepers and all(k == {"rotation": "1"} for k in keepers)
    assert graces == {"900"}
    keepers, second, _ = _admin_tokens(rotation=2, grace_seconds=900)
    assert all(k == {"rotation": "2"} for k in keepers), "a changed keeper replaces the RandomPassword"
    assert first and second and not first & second
