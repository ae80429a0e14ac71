"""Every container of every stack runs restricted, bounded, probed and pinned by digest."""

from __future__ import annotations

import re

from components.k8s.front_door_tls import serves_https
from components.k8s.gpu import has_gpus
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import all_containers, containers, pod_spec
from workloads import contract

DIGEST_PINNED = re.compile(r"^[a-z0-9.:-]+(/[a-z0-9._-]+)+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")
GPU = "nvidia.com/gpu"


def _workloads(deployed: Deployed) -> list[dict]:
    return [o for o in deployed.objects() if pod_spec(o) is not None]


def test_every_container_is_restricted(deployed: Deployed) -> None:
    checked = 0
    for obj in _workloads(deployed):
        for c in all_containers(obj):
            where = f"{obj['kind']} {obj['metadata']['name']}/{c['name']}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == contract.RUN_AS_UID, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            checked += 1
    assert checked >= 4


def test_every_pod_runs_as_the_image_user_without_an_api_token(deployed: Deployed) -> None:
    for obj in _workloads(deployed):
        spec = pod_spec(obj)
        assert spec is not None
        assert spec["securityContext"]["runAsUser"] == contract.RUN_AS_UID
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False, obj["metadata"]["name"]


def test_writable_paths_are_emptydir_scratch_only(deployed: Deployed) -> None:
    for obj in _workloads(deployed):
        spec = pod_spec(obj)
        assert spec is not None
        scratch = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in all_containers(obj):
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert mounts["/tmp"]["name"] in scratch
            assert mounts[contract.CACHE_MOUNT]["name"] in scratch
            for path, mount in mounts.items():
                if mount["name"] not in scratch and path != "/var/lib/flwr":  # the SuperLink's state PVC
                    assert mount.get("readOnly") is True, f"{c['name']} writes {path}"


def test_every_container_has_requests_and_limits(deployed: Deployed) -> None:
    for obj in _workloads(deployed):
        for c in all_containers(obj):
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{c['name']} {bound}"


def test_every_long_running_container_has_both_probes(deployed: Deployed) -> None:
    for obj in deployed.objects("Deployment"):
        spec = pod_spec(obj)
        assert spec is not None
        for c in spec["containers"]:  # init containers run to completion: Kubernetes forbids probes
            assert c.get("livenessProbe") and c.get("readinessProbe"), c["name"]


def test_servers_are_probed_on_the_contract_health_paths(deployed: Deployed) -> None:
    """Over HTTPS where the pods serve it themselves (`kubernetes` regions: front_door_tls.py)."""
    https = {namespace_name(r.name) for r in deployed.config.regions if serves_https(r)}
    for obj in deployed.objects("Deployment"):
        scheme = {"scheme": "HTTPS"} if obj["metadata"]["namespace"] in https else {}
        for c in containers(obj):
            if c["name"] in ("server", "edge"):
                live = {"path": contract.LIVENESS_PATH, "port": contract.HTTP_PORT, **scheme}
                assert c["livenessProbe"]["httpGet"] == live
                assert c["readinessProbe"]["httpGet"] == {**live, "path": contract.READINESS_PATH}
            elif c["name"] in ("superlink", "supernode"):
                assert c["livenessProbe"]["grpc"]["port"] == contract.FLOWER_HEALTH_PORT


def test_every_image_is_pinned_by_digest(deployed: Deployed) -> None:
    for obj in _workloads(deployed):
        for c in all_containers(obj):
            assert DIGEST_PINNED.match(c["image"]), c["image"]


def test_images_come_from_their_regions_registry(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        expected = deployed.image_registries[region.name]
        for obj in _workloads(deployed):
            if obj["metadata"]["namespace"] == namespace_name(region.name):
                for c in all_containers(obj):
                    assert c["image"].startswith(expected + "/"), c["image"]


def test_the_inference_server_alone_gets_one_gpu_and_tolerates_the_gpu_taint_where_the_region_has_gpus(
    deployed: Deployed,
) -> None:
    """The SuperNode trains with CPU torch, so it holds no GPU (test_supernode.py)."""
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        for name in ("server",):
            obj = deployed.named("Deployment", namespace, name)
            (c,) = containers(obj)
            spec = pod_spec(obj)
            assert spec is not None
            tolerations = spec.get("tolerations") or []
            if has_gpus(region):
                assert c["resources"]["limits"][GPU] == "1" == c["resources"]["requests"][GPU]
                assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in tolerations
            else:
                assert GPU not in c["resources"]["limits"]
                assert not tolerations
    for obj in deployed.objects("Deployment"):
        if obj["metadata"]["name"] != "server":
            for c in containers(obj):
                assert GPU not in c["resources"]["limits"], c["name"]
