"""A region's Flower SuperNode: trains on that region's data only, with its own node key.

Two containers of one pod, from the trainer image: the SuperNode (`--isolation process`; it
talks to the SuperLink and keeps the run's state) and its long-lived ClientApp process
(workloads/trainer/clientapp_runner.py), which acquires each message's task from the node's
Runtime API on the pod's loopback, authenticated by a shared random secret, and runs it in a
process forked warm from itself: no interpreter start and no torch import per message, as
Flower's default per-message `flwr-clientapp` process would pay. Only the ClientApp container
mounts the region's data; the SuperNode polls the SuperLink every FLEET_POLL_SECONDS when
idle, instead of Flower's fixed 3 s (workloads/trainer/supernode.py).

It reads its data from a directory: a read-only PersistentVolumeClaim on an existing cluster,
else an emptyDir its init container fills from the region's bucket through the pod's cloud
identity, which can read that bucket and nothing else.

It runs on CPU: the trainer image installs CPU torch (workloads/trainer/requirements.txt: the
federated models are small) and the ClientApp never asks for CUDA, so a GPU given to it would
sit idle, held from the inference servers. It requests no GPU and does not tolerate the GPU
taint; in a cloud region it is pinned to the system pool (the untainted CPU nodes every cloud
layer labels `meridian.io/pool: system`). On an existing cluster, whose nodes carry none of our
labels, it goes wherever the cluster schedules CPU work. Training on GPUs would take a CUDA
build of the trainer image and a GPU request together, never one without the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster_access import POOL_LABEL, WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.flower import FLOWER_ENV, SUPERLINK_APP, SUPERNODE_APP, flower_probes, health_address
from components.k8s.monitors import scraped
from components.k8s.pods import Resources, container, pod_spec, read_only_mount, secret_volume, tcp_probe
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

SUPERNODE_RESOURCES = Resources("250m", "512Mi", "1", "2Gi")  # messages in flight, no training
CLIENTAPP_RESOURCES = Resources("1", "2Gi", "2", "8Gi")  # local training and evaluation
FLEET_POLL_SECONDS = "0.5"  # idle: two authenticated requests a second to the SuperLink per region
SUPEREXEC_SECRET_BYTES = 32
SYNC_RESOURCES = Resources("250m", "256Mi", "1", "1Gi")
METRICS_RESOURCES = Resources("50m", "64Mi", "200m", "128Mi")
# The ClientApp (forked by its runner, whose environment it has) appends its rounds here; the
# metrics sidecar reads them: both containers mount the pod's cache emptyDir.
TRAINING_RECORDS = f"{contract.CACHE_MOUNT}/training-records.jsonl"
SYSTEM_POOL = {POOL_LABEL: "system"}  # the cloud layers' CPU pool (components/aws|gcp/cluster.py)
CLIENTAPP_CONTAINER = "clientapp"
SUPEREXEC_MOUNT = "/etc/meridian/superexec"
DATA_SIZE = "10Gi"  # node-local scratch for a region's training data copied from its bucket


@dataclass(frozen=True, kw_only=True)
class SuperNodeArgs:
    target: Target
    image: pulumi.Input[str]  # the trainer image
    trust: FederationTrust  # holds this region's node key and the CA that signs the SuperLink
    identity: WorkloadIdentity  # may read this region's data bucket, nothing else
    superlink_address: pulumi.Input[str]  # "<host>:<fleet port>"
    data_url: pulumi.Input[str]  # s3://, gs:// (copied in) or pvc://<claim> (mounted)


class SuperNode(pulumi.ComponentResource):
    """A region's SuperNode: trains on that region's data only, with its own node key."""

    def __init__(self, name: str, args: SuperNodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:SuperNode", name, None, opts)
        target = args.target
        region = target.region
        workload = Workload(target, SUPERNODE_APP, self)
        account = workload.service_account(f"{name}-sa", args.identity)
        # Whoever holds it may take the node's tasks from its Runtime API: the runner alone.
        superexec_secret = random.RandomPassword(
            f"{name}-superexec-secret",
            length=SUPEREXEC_SECRET_BYTES,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        auth = workload.secret(
            f"{name}-auth-secret",
            "supernode-auth",
            {
                contract.NODE_KEY_FILE: args.trust.node_key(region.name).private_openssh,
                contract.TLS_CA_FILE: args.trust.ca_cert_pem,
                contract.SUPEREXEC_SECRET_FILE: superexec_secret.result,
            },
        )
        volumes = [
            secret_volume("ca", auth.metadata.name, [contract.TLS_CA_FILE]),
            secret_volume("node-key", auth.metadata.name, [contract.NODE_KEY_FILE]),
            secret_volume("superexec", auth.metadata.name, [contract.SUPEREXEC_SECRET_FILE]),
        ]
        secret_mount = read_only_mount("superexec", SUPEREXEC_MOUNT)
        secret_flag = ["--superexec-auth-secret-file", f"{SUPEREXEC_MOUNT}/{contract.SUPEREXEC_SECRET_FILE}"]
        mounts = [read_only_mount("ca", contract.CERTS_MOUNT), read_only_mount("node-key", contract.KEYS_MOUNT)]
        init: list[k8s.core.v1.ContainerArgs] = []
        if region.kubernetes is not None:
            data_source = k8s.core.v1.VolumeArgs(
                name="data",
                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                    claim_name=region.kubernetes.data_volume_claim, read_only=True
                ),
            )
        else:
            # The region's bucket, copied in by the trainer image with this pod's cloud identity,
            # which can read this bucket and nothing else.
            data_source = k8s.core.v1.VolumeArgs(
                name="data", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=DATA_SIZE)
            )
            init.append(
                container(
                    "sync-data",
                    args.image,
                    resources=SYNC_RESOURCES,
                    probes=None,
                    command=list(contract.DATA_SYNC_COMMAND),
                    args=["--source", args.data_url, "--dest", contract.DATA_MOUNT],
                    environment={contract.ENV_REGION: region.name},
                    mounts=[k8s.core.v1.VolumeMountArgs(name="data", mount_path=contract.DATA_MOUNT)],
                )
            )
        volumes.append(data_source)
        node_config = f'region="{region.name}" {contract.NODE_DATA_DIR_KEY}="{contract.DATA_MOUNT}"'
        node = container(
            SUPERNODE_APP,
            args.image,
            resources=SUPERNODE_RESOURCES,
            probes=flower_probes(),
            command=["python", "-m", contract.SUPERNODE_MODULE],
            args=[
                "--superlink",
                args.superlink_address,
                "--root-certificates",
                f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}",
                "--auth-supernode-private-key",
                f"{contract.KEYS_MOUNT}/{contract.NODE_KEY_FILE}",
                "--node-config",
                node_config,
                "--isolation",
                "process",
                *secret_flag,
                "--host",
                "127.0.0.1",  # the Runtime API: this pod's containers only
                "--port",
                str(contract.SUPERNODE_CLIENTAPPIO_PORT),
                "--health-server-address",
                health_address(),
            ],
            environment={
                **FLOWER_ENV,
                contract.ENV_REGION: region.name,
                contract.ENV_FLEET_POLL_SECONDS: FLEET_POLL_SECONDS,
            },
            ports={"health": contract.FLOWER_HEALTH_PORT},
            mounts=[*mounts, secret_mount],
        )
        client_app = container(
            CLIENTAPP_CONTAINER,
            args.image,
            resources=CLIENTAPP_RESOURCES,  # CPU only: see the module docstring
            probes=(tcp_probe(contract.CLIENTAPP_HEALTH_PORT), tcp_probe(contract.CLIENTAPP_HEALTH_PORT, period=5)),
            command=["python", "-m", contract.CLIENTAPP_RUNNER_MODULE],
            args=[
                "--runtime-api-address",
                f"127.0.0.1:{contract.SUPERNODE_CLIENTAPPIO_PORT}",
                *secret_flag,
                "--health-port",
                str(contract.CLIENTAPP_HEALTH_PORT),
            ],
            environment={
                **FLOWER_ENV,
                contract.ENV_REGION: region.name,
                contract.ENV_DATA_DIR: contract.DATA_MOUNT,
                contract.ENV_TRAINING_RECORDS: TRAINING_RECORDS,
            },
            ports={"app-health": contract.CLIENTAPP_HEALTH_PORT},
            mounts=[read_only_mount("data", contract.DATA_MOUNT), secret_mount],
        )
        # Flower exports no metrics: this sidecar serves the region's training rounds.
        node_metrics = container(
            "node-metrics",
            args.image,
            resources=METRICS_RESOURCES,
            probes=(tcp_probe(contract.METRICS_PORT), tcp_probe(contract.METRICS_PORT, period=5)),
            command=list(contract.NODE_METRICS_COMMAND),
            args=["--records", TRAINING_RECORDS, "--host", "0.0.0.0", "--port", str(contract.METRICS_PORT)],
            environment={contract.ENV_REGION: region.name},
            ports={"metrics": contract.METRICS_PORT},
        )
        workload.deployment(
            f"{name}-deployment",
            pod_spec(
                [node, client_app, node_metrics],
                init_containers=init,
                service_account=account.metadata.name,
                volumes=volumes,
                node_selector=SYSTEM_POOL if region.kubernetes is None else None,
            ),
            component="federation",
            replicas=1,  # one node identity per region: two pods would share one node key
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
            gated_by_pipeline=True,  # ready once the region's data is pushed to its bucket
        )
        workload.allow_traffic(
            f"{name}-netpol",
            # In: the cluster's Prometheus, on the metrics port. Out: the SuperLink (any address:
            # its load balancer may be private on an existing cluster) on the Fleet port, and the
            # data bucket over HTTPS.
            ingress=[scraped()],
            egress=[
                netpol.Rule(
                    [netpol.anywhere(), netpol.pods(target.selector(SUPERLINK_APP))], [contract.SUPERLINK_FLEET_PORT]
                ),
                *netpol.cloud_apis(region.cloud),
            ],
        )
        self.register_outputs({})
