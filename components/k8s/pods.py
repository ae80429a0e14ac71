"""Containers, pod specs and their volumes, built in one place so every workload is `restricted`.

Every container gets: a non-root uid, a read-only root filesystem with emptyDir scratch at
/tmp and the cache mount, no privilege escalation, all capabilities dropped, the
RuntimeDefault seccomp profile, requests and limits, and both probes. Callers cannot opt
out: the arguments that would weaken it do not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import GPU_TAINT_KEY
from workloads import contract

GPU_RESOURCE = "nvidia.com/gpu"
SCRATCH_MOUNTS = {"tmp": "/tmp", "cache": contract.CACHE_MOUNT}
SCRATCH_SIZE = "1Gi"

_SECCOMP = k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container; GPUs are whole devices (request == limit)."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    gpus: int = 0

    def args(self) -> k8s.core.v1.ResourceRequirementsArgs:
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        if self.gpus:
            requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(self.gpus)
        return k8s.core.v1.ResourceRequirementsArgs(requests=requests, limits=limits)


@dataclass(frozen=True)
class SecretFiles:
    """Keys of one Secret as read-only files in one directory, each file's path named by an
    environment variable: kept out of the pod spec and the process environment (CKV_K8S_35),
    and renewed in place when the Secret changes."""

    secret: pulumi.Input[str]  # the Secret's name
    volume_name: str
    mount: str  # the directory they are mounted at
    files: Mapping[str, str]  # environment variable -> the key (file name) whose path it holds

    def volume(self) -> k8s.core.v1.VolumeArgs:
        return secret_volume(self.volume_name, self.secret, list(self.files.values()))

    def environment(self) -> dict[str, str]:
        return {variable: f"{self.mount}/{key}" for variable, key in self.files.items()}


def container_security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=contract.RUN_AS_UID,
        run_as_group=contract.RUN_AS_UID,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        privileged=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=_SECCOMP,
    )


def http_probe(
    path: str, port: int, *, period: int = 10, failures: int = 3, https: bool = False
) -> k8s.core.v1.ProbeArgs:
    """`https`: the port serves TLS; the kubelet then connects with TLS and skips verifying the
    certificate (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/)."""
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=port, scheme="HTTPS" if https else None),
        period_seconds=period,
        timeout_seconds=2,
        failure_threshold=failures,
    )


def grpc_probe(port: int, *, period: int = 10, failures: int = 3) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        grpc=k8s.core.v1.GRPCActionArgs(port=port),
        period_seconds=period,
        timeout_seconds=2,
        failure_threshold=failures,
    )


def tcp_probe(port: int, *, period: int = 10) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=port),
        period_seconds=period,
        timeout_seconds=2,
        failure_threshold=3,
    )


def secret_volume(name: str, secret: pulumi.Input[str], files: Sequence[str]) -> k8s.core.v1.VolumeArgs:
    """Only the listed files of a Secret, readable by the pod's group (fsGroup) alone."""
    return k8s.core.v1.VolumeArgs(
        name=name,
        secret=k8s.core.v1.SecretVolumeSourceArgs(
            secret_name=secret,
            default_mode=0o440,
            items=[k8s.core.v1.KeyToPathArgs(key=f, path=f) for f in files],
        ),
    )


def config_map_volume(name: str, config_map: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(name=name, config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map))


def read_only_mount(volume: str, path: str) -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=volume, mount_path=path, read_only=True)


def env(values: Mapping[str, pulumi.Input[str]]) -> list[k8s.core.v1.EnvVarArgs]:
    return [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in values.items()]


def container(
    name: str,
    image: pulumi.Input[str],
    *,
    resources: Resources,
    probes: tuple[k8s.core.v1.ProbeArgs, k8s.core.v1.ProbeArgs] | None,
    command: Sequence[pulumi.Input[str]] | None = None,
    args: Sequence[pulumi.Input[str]] | None = None,
    environment: Mapping[str, pulumi.Input[str]] | None = None,
    secret_files: Sequence[SecretFiles] = (),
    ports: Mapping[str, int] | None = None,
    mounts: Sequence[k8s.core.v1.VolumeMountArgs] = (),
    startup: k8s.core.v1.ProbeArgs | None = None,
) -> k8s.core.v1.ContainerArgs:
    """A restricted container; scratch volumes come from `pod_spec`.

    `probes` is (liveness, readiness); None only for run-to-completion containers (Jobs and
    init containers), which serve nothing to probe.
    """
    liveness, readiness = probes if probes is not None else (None, None)
    scratch = [k8s.core.v1.VolumeMountArgs(name=volume, mount_path=path) for volume, path in SCRATCH_MOUNTS.items()]
    return k8s.core.v1.ContainerArgs(
        name=name,
        image=image,
        # The digest fixes the content; Always still makes the kubelet check that this pod's
        # node may pull it, rather than reusing a copy another tenant pulled.
        image_pull_policy="Always",
        command=list(command) if command is not None else None,
        args=list(args) if args is not None else None,
        env=env(
            {
                contract.ENV_CACHE_DIR: contract.CACHE_MOUNT,
                **(environment or {}),
                **{variable: path for f in secret_files for variable, path in f.environment().items()},
            }
        ),
        ports=[
            k8s.core.v1.ContainerPortArgs(name=port_name, container_port=port, protocol="TCP")
            for port_name, port in (ports or {}).items()
        ]
        or None,
        resources=resources.args(),
        liveness_probe=liveness,
        readiness_probe=readiness,
        startup_probe=startup,
        security_context=container_security(),
        volume_mounts=scratch + list(mounts) + [read_only_mount(f.volume_name, f.mount) for f in secret_files],
    )


def pod_spec(
    containers: Sequence[k8s.core.v1.ContainerArgs],
    *,
    service_account: pulumi.Input[str],
    volumes: Sequence[k8s.core.v1.VolumeArgs] = (),
    gpu: bool = False,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[k8s.core.v1.TolerationArgs] = (),
    restart_policy: str | None = None,
    init_containers: Sequence[k8s.core.v1.ContainerArgs] = (),
) -> k8s.core.v1.PodSpecArgs:
    """A pod that runs as RUN_AS_UID and mounts no API token (none of ours calls the API)."""
    scratch = [
        k8s.core.v1.VolumeArgs(name=volume, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=SCRATCH_SIZE))
        for volume in SCRATCH_MOUNTS
    ]
    all_tolerations = list(tolerations)
    if gpu:  # GPU nodes carry this taint so that only GPU work lands on them
        all_tolerations.append(k8s.core.v1.TolerationArgs(key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule"))
    return k8s.core.v1.PodSpecArgs(
        containers=list(containers),
        init_containers=list(init_containers) or None,
        service_account_name=service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=contract.RUN_AS_UID,
            run_as_group=contract.RUN_AS_UID,
            fs_group=contract.RUN_AS_UID,
            seccomp_profile=_SECCOMP,
        ),
        volumes=scratch + list(volumes),
        node_selector=dict(node_selector) if node_selector else None,
        tolerations=all_tolerations or None,
        restart_policy=restart_policy,
    )
