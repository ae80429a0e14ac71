"""The federated run: Jobs at home that drive the SuperLink through its Control API, and
their config (the `flwr` CLI's connection, the node keys, the run config).

In order:
1. one Job per region registers its SuperNode's public key. Flower refuses a key registered
   twice and keeps registrations in its database, so each runs once per key: changes to its
   spec (a new trainer image) are ignored. To rotate a node key, replace the key and its Job
   (`pulumi up --replace`).
2. one Job submits the federated run. Its identity (Pulumi name, object name, label) is a key
   over what the run trains on: the run config it passes and `federation.dataVersion`. A new
   key is a new Job, so a new run; the old Job is deleted once the new one exists. A new
   trainer image alone is ignored (`ignore_changes` on its image): the run is one-shot, and
   code changes reach the cluster by the SuperLink's and SuperNodes' Deployments rolling, not
   by training again. The next keyed run starts on the image current then: a new key is a new
   resource, created from the program's values (an ignored value is only read from state when
   the same resource is updated or replaced).
   The Job runs `python -m workloads.trainer.submit`, not a bare `flwr run`: it stops every run
   of another key still going in the SuperLink (two runs would compete for the same
   SuperNodes), and tags the run with the key (run config `run-key`), so a retry of the Job
   (restartPolicy OnFailure) after a successful submit submits nothing.
Built by the SuperLink, whose children these objects are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.config import Federation
from components.k8s import network_policy as netpol
from components.k8s.flower import CONTROL_SERVICE, FLOWER_ENV, FLWR_CLI_APP, STATE_MOUNT, SUPERLINK_APP
from components.k8s.labels import metadata
from components.k8s.pods import Resources, config_map_volume, container, pod_spec, read_only_mount, secret_volume
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

CONNECTION = "meridian"  # the SuperLink connection name in the Jobs' config.toml
FLWR_CONFIG_MOUNT = "/etc/flwr"
PUBLIC_KEYS_MOUNT = "/etc/meridian/supernodes"
FLWR_CLI_RESOURCES = Resources("100m", "128Mi", "500m", "256Mi")


def run_config(federation: Federation) -> str:
    """The stack's federation settings as `flwr run --run-config` (TOML values), where the
    ServerApp runs: in the SuperLink container, serving its metrics to the cluster."""
    values = {
        **federation.run_config(),
        "out-dir": f"{STATE_MOUNT}/federated",
        "metrics-host": "0.0.0.0",
        "metrics-port": contract.TRAINER_METRICS_PORT,
    }
    return " ".join(f"{key}={json.dumps(value)}" for key, value in values.items())


RUN_JOB = "federated-run"  # the run Job's name is RUN_JOB-<run key>
RUN_KEY_LABEL = "meridian.io/run-key"
# The one container's image, as a Pulumi property path (https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/
# and /docs/iac/concepts/miscellaneous/property-paths/, read 2026-11-30).
RUN_IMAGE_PATH = "spec.template.spec.containers[0].image"


def run_key(federation: Federation) -> str:
    """What the run trains on, hashed: the run config the Job passes and the data version.
    The trainer image is not part of it (see the module docstring)."""
    keyed = json.dumps({"runConfig": run_config(federation), "dataVersion": federation.data_version}, sort_keys=True)
    return hashlib.sha256(keyed.encode()).hexdigest()[:10]


def run_job_name(federation: Federation) -> str:
    return f"{RUN_JOB}-{run_key(federation)}"


def run_job_options(depends_on: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
    """The run Job's own options: after the registrations; a new image alone changes nothing."""
    return pulumi.ResourceOptions(depends_on=list(depends_on), ignore_changes=[RUN_IMAGE_PATH])


@dataclass(frozen=True, kw_only=True)
class FederatedRunArgs:
    target: Target  # the home region's
    image: pulumi.Input[str]  # the trainer image: it carries the `flwr` CLI and the app
    trust: FederationTrust
    tls_secret: k8s.core.v1.Secret  # the SuperLink's: its CA file verifies the Control port
    superlink: k8s.apps.v1.Deployment  # the Jobs wait for it


def federated_run_jobs(name: str, args: FederatedRunArgs, parent: pulumi.Resource) -> None:
    """The registration Jobs, then the run's Job, as children of `parent` (the SuperLink)."""
    target = args.target
    control = f"{target.service_host(CONTROL_SERVICE)}:{contract.SUPERLINK_CONTROL_PORT}"
    ca_file = f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
    cli = Workload(target, FLWR_CLI_APP, parent)
    flwr_config = cli.config_map(
        f"{name}-flwr-config",
        "flwr-connection",
        {"config.toml": contract.flwr_connection_config(CONNECTION, control, ca_file)},
    )
    public_keys = cli.config_map(
        f"{name}-node-keys",
        "supernode-public-keys",
        {f"{region}.pub": key.public_openssh for region, key in args.trust.node_keys.items()},
    )
    account = cli.service_account(f"{name}-flwr-cli-sa", WorkloadIdentity())
    volumes = [
        secret_volume("tls", args.tls_secret.metadata.name, [contract.TLS_CA_FILE]),
        config_map_volume("flwr", flwr_config.metadata.name),
        config_map_volume("keys", public_keys.metadata.name),
    ]
    mounts = [
        read_only_mount("tls", contract.CERTS_MOUNT),
        read_only_mount("flwr", FLWR_CONFIG_MOUNT),
        read_only_mount("keys", PUBLIC_KEYS_MOUNT),
    ]

    def job(
        suffix: str,
        command: Sequence[str],
        opts: pulumi.ResourceOptions,
        extra_labels: dict[str, str] | None = None,
    ) -> k8s.batch.v1.Job:
        labels = {**target.labels(FLWR_CLI_APP, "federation"), **(extra_labels or {})}
        flwr = container(
            "flwr",
            args.image,
            resources=FLWR_CLI_RESOURCES,
            probes=None,
            command=list(command),
            environment={**FLOWER_ENV, "FLWR_HOME": FLWR_CONFIG_MOUNT},
            mounts=mounts,
        )
        return k8s.batch.v1.Job(
            f"{name}-{suffix}",
            metadata=metadata(suffix, target.namespace, labels),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=10,  # the SuperLink may still be starting
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=pod_spec(
                        [flwr], service_account=account.metadata.name, restart_policy="OnFailure", volumes=volumes
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(target.opts(parent), opts),
        )

    registrations = [
        job(
            f"register-{region}",
            ["flwr", "supernode", "register", f"{PUBLIC_KEYS_MOUNT}/{region}.pub", CONNECTION],
            pulumi.ResourceOptions(depends_on=[args.superlink], ignore_changes=["spec"]),
        )
        for region in args.trust.node_keys
    ]
    federation = target.config.federation
    submit = {
        "--connection": CONNECTION,
        "--app": contract.TRAINER_APP_DIR,
        "--run-key": run_key(federation),
        "--run-config": run_config(federation),
    }
    job(
        run_job_name(federation),
        [*contract.SUBMIT_RUN_COMMAND, *(part for option in submit.items() for part in option)],
        run_job_options(registrations),
        {RUN_KEY_LABEL: run_key(federation)},
    )
    cli.allow_traffic(
        f"{name}-flwr-cli-netpol",
        egress=[netpol.Rule([netpol.pods(target.selector(SUPERLINK_APP))], [contract.SUPERLINK_CONTROL_PORT])],
    )
