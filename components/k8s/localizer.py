"""A region's localizer: the second hop of the model pipeline, as the region's own work.

A CronJob runs one pass of `python -m workloads.localization follow` (the trainer image) every
few minutes: it reads the home's global registry's `latest`, and when the region's registry
lacks that version it verifies the global model with the home's public key, copies the
region's data from its own bucket, fine-tunes, prunes and quantizes, signs with the region's
signer and publishes to the region's registry, in its residency zone. Nothing reaches across
clusters: the region only reads the global registry, which the home publishes to.

Why a CronJob, not a controller loop: a global model comes once per federated run (hours
apart), so polling a small pointer every 10 minutes delays a region's new model by at most that
and costs one short pod when nothing changed, while no process sits resident between runs;
`concurrencyPolicy: Forbid` gives one pass at a time for free (a long localization is never
doubled), a failed pass is a failed Job to see in `kubectl get jobs`, and the next tick retries
it. `startingDeadlineSeconds` skips a pass missed by more than 5 minutes (the next comes anyway,
and the controller never counts up the missed schedules that stop a CronJob); a hung pass is
killed by `activeDeadlineSeconds`, so it cannot hold the Forbid lock forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import LOCALIZER_SERVICE_ACCOUNT_NAME, ModelRegistry, WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.labels import metadata
from components.k8s.pods import container, pod_spec, read_only_mount
from components.k8s.supernode import DATA_SIZE, SUPERNODE_RESOURCES, SYSTEM_POOL
from components.k8s.target import Target
from components.k8s.workload import Workload
from workloads import contract

LOCALIZER_APP = LOCALIZER_SERVICE_ACCOUNT_NAME  # the cloud identity trusts the ServiceAccount by this name
SCHEDULE = "*/10 * * * *"  # see the module docstring
STARTING_DEADLINE_SECONDS = 300
BACKOFF_LIMIT = 2  # a pass retried twice (a transient bucket error), then the next tick
ACTIVE_DEADLINE_SECONDS = 3600  # fine-tuning a federated task's model takes minutes, not hours
# It trains the federation's task on the region's data again (fine-tuning, then pruning
# recovery), as the SuperNode does each round: the same CPU and memory, and CPU torch too.
LOCALIZER_RESOURCES = SUPERNODE_RESOURCES
WORK_MOUNT = contract.DATA_MOUNT  # scratch: the global model and the region's data, copied in
SOURCE_DATA_MOUNT = "/var/lib/meridian/data"  # an existing cluster's data volume, read-only
KEYS_VOLUME = "keys"


@dataclass(frozen=True, kw_only=True)
class LocalizerArgs:
    target: Target
    image: pulumi.Input[str]  # the trainer image: it carries workloads.localization and torch
    models: ModelRegistry  # the region's own registry: published to, signed by its signer
    global_models: ModelRegistry  # the home's: read at `read_url`, verified with its public key
    data_url: pulumi.Input[str]  # s3://, gs:// (copied in with the pod's identity) or pvc://<claim>
    identity: WorkloadIdentity  # reads the data bucket and global registry, writes the region's registry


class Localizer(pulumi.ComponentResource):
    """The region's localizer CronJob, its identity, keys and network allowances."""

    def __init__(self, name: str, args: LocalizerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:Localizer", name, None, opts)
        target, signer = args.target, args.models.signer
        region = target.region
        workload = Workload(target, LOCALIZER_APP, self)
        account = workload.service_account(f"{name}-sa", args.identity)
        trust = workload.config_map(
            f"{name}-global-trust",
            "global-model-trust",
            {contract.GLOBAL_TRUSTED_KEY_FILE: args.global_models.signer.public_key_pem},
        )
        # One keys directory: the home's public key, and the region's PEM signing key where
        # the signer has one (an existing cluster; with a KMS the key never leaves it).
        sources = [
            k8s.core.v1.VolumeProjectionArgs(
                config_map=k8s.core.v1.ConfigMapProjectionArgs(
                    name=trust.metadata.name,
                    items=[
                        k8s.core.v1.KeyToPathArgs(
                            key=contract.GLOBAL_TRUSTED_KEY_FILE, path=contract.GLOBAL_TRUSTED_KEY_FILE
                        )
                    ],
                )
            )
        ]
        if signer.private_key_pem is not None:
            signing = workload.secret(
                f"{name}-signing-secret", "localizer-signing", {contract.SIGNING_KEY_FILE: signer.private_key_pem}
            )
            sources.append(
                k8s.core.v1.VolumeProjectionArgs(
                    secret=k8s.core.v1.SecretProjectionArgs(
                        name=signing.metadata.name,
                        items=[
                            k8s.core.v1.KeyToPathArgs(key=contract.SIGNING_KEY_FILE, path=contract.SIGNING_KEY_FILE)
                        ],
                    )
                )
            )
        volumes = [
            # Readable by the pod's group (fsGroup) alone, like every Secret volume of ours.
            k8s.core.v1.VolumeArgs(
                name=KEYS_VOLUME, projected=k8s.core.v1.ProjectedVolumeSourceArgs(sources=sources, default_mode=0o440)
            ),
            k8s.core.v1.VolumeArgs(name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=DATA_SIZE)),
        ]
        mounts = [
            read_only_mount(KEYS_VOLUME, contract.KEYS_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK_MOUNT),
        ]
        data_url: pulumi.Input[str] = args.data_url
        if region.kubernetes is not None:  # the region's data volume, as its SuperNode reads it
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name="data",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=region.kubernetes.data_volume_claim, read_only=True
                    ),
                )
            )
            mounts.append(read_only_mount("data", SOURCE_DATA_MOUNT))
            data_url = f"file://{SOURCE_DATA_MOUNT}"
        localizer = container(
            LOCALIZER_APP,
            args.image,
            resources=LOCALIZER_RESOURCES,
            probes=None,  # runs to completion
            command=list(contract.LOCALIZER_COMMAND),
            args=contract.localizer_args(
                global_registry=args.global_models.read_url,
                global_key=f"{contract.KEYS_MOUNT}/{contract.GLOBAL_TRUSTED_KEY_FILE}",
                region=region.name,
                data_url=data_url,
                store=args.models.store_url,
                signing_key=signer.key_ref,
                task=target.config.federation.task,
                work_dir=WORK_MOUNT,
            ),
            environment={contract.ENV_REGION: region.name},
            mounts=mounts,
        )
        labels = target.labels(LOCALIZER_APP, "localization")
        pod = pod_spec(
            [localizer],
            service_account=account.metadata.name,
            volumes=volumes,
            restart_policy="Never",  # a failed pass is a new pod (backoffLimit), its log kept
            node_selector=SYSTEM_POOL if region.kubernetes is None else None,  # CPU work, as the SuperNode
        )
        k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=metadata(LOCALIZER_APP, target.namespace, labels),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=SCHEDULE,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
                successful_jobs_history_limit=1,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=BACKOFF_LIMIT,
                        active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=pod
                        ),
                    ),
                ),
            ),
            opts=target.opts(self),
        )
        # Outbound only: the buckets and the global registry's CDN over HTTPS (what it may read
        # and write there is its cloud identity's business), and DNS.
        workload.allow_traffic(f"{name}-netpol", egress=netpol.cloud_apis(region.cloud))
        self.register_outputs({})
