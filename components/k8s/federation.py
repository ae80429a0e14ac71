"""Flower: the SuperLink at home, one SuperNode per region.

Flower 1.42 serves its Fleet, Control and runtime APIs on one HTTPS port, and the Control API
has no authentication. So the SuperLink binds 127.0.0.1 only, and a path-filtering gateway in
its pod (workloads.contract.SUPERLINK_GATEWAY_MODULE) terminates TLS on two ports:
- the Fleet port forwards only /v1/fleet/ and is public through a LoadBalancer (TLS with the
  federation CA, plus SuperNode authentication: only registered node keys are admitted);
- the Control port forwards only /v1/control/ and has a ClusterIP Service, reachable only from
  this namespace by NetworkPolicy.
A SuperNode reads only its region's data, from a directory: a read-only PersistentVolumeClaim
on an existing cluster, else an emptyDir its init container fills from the region's bucket
through the pod's cloud identity, which can read that bucket and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.config import Federation
from components.k8s import network_policy as netpol
from components.k8s.inference import service_account
from components.k8s.labels import metadata
from components.k8s.monitoring import scrape_annotations
from components.k8s.security import Resources, container, grpc_probe, pod_spec, tcp_probe
from components.k8s.services import load_balancer_address, service
from components.k8s.trust import FederationTrust
from components.k8s.target import Target
from workloads import contract

SUPERLINK_APP = "superlink"
SUPERNODE_APP = "supernode"
FLWR_CLI_APP = "flwr-cli"  # Jobs running the `flwr` CLI against the Control API
FLEET_SERVICE = "superlink-fleet"
CONTROL_SERVICE = "superlink-control"
CONNECTION = "meridian"  # the SuperLink connection name in the registration Jobs' config.toml
FLWR_CONFIG_MOUNT = "/etc/flwr"
PUBLIC_KEYS_MOUNT = "/etc/meridian/supernodes"
STATE_MOUNT = "/var/lib/flwr"
STATE_SIZE = "5Gi"
# SuperNode registrations live in the SuperLink's database: it is kept on a volume, so a
# restarted SuperLink still admits the registered nodes.
DATABASE = f"{STATE_MOUNT}/superlink.db"

SUPERLINK_RESOURCES = Resources("500m", "1Gi", "2", "4Gi")
GATEWAY_RESOURCES = Resources("100m", "128Mi", "500m", "256Mi")
SUPERNODE_RESOURCES = Resources("1", "2Gi", "2", "8Gi")
FLWR_CLI_RESOURCES = Resources("100m", "128Mi", "500m", "256Mi")
SYNC_RESOURCES = Resources("250m", "256Mi", "1", "1Gi")
DATA_SIZE = "10Gi"  # node-local scratch for a region's training data copied from its bucket

FLOWER_ENV = {
    "FLWR_DISABLE_UPDATE_CHECK": "1",  # no calls home from the cluster
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_HOME": f"{contract.CACHE_MOUNT}/flwr",  # the root filesystem is read-only
}


def run_config(federation: Federation) -> str:
    """The stack's federation settings as `flwr run --run-config` (TOML values); the keys are
    the trainer's (workloads/trainer/pyproject.toml), the enum values the same strings."""
    values: dict[str, str | int | float] = {
        "task": federation.task,
        "strategy": federation.strategy.value,
        "rounds": federation.rounds,
        "min-regions": federation.min_regions,
        "local-epochs": federation.local_epochs,
        "compression": federation.compression.value,
        "topk-fraction": federation.topk_fraction,
        "proximal-mu": federation.proximal_mu,
        "round-timeout": float(federation.round_timeout_seconds),
        "out-dir": f"{STATE_MOUNT}/federated",  # the ServerApp runs in the SuperLink container
        "metrics-host": "0.0.0.0",
        "metrics-port": contract.TRAINER_METRICS_PORT,
    }
    return " ".join(f"{key}={json.dumps(value)}" for key, value in values.items())


def _health_address() -> str:
    return f"0.0.0.0:{contract.FLOWER_HEALTH_PORT}"


def _flower_probes() -> tuple[k8s.core.v1.ProbeArgs, k8s.core.v1.ProbeArgs]:
    return grpc_probe(contract.FLOWER_HEALTH_PORT), grpc_probe(contract.FLOWER_HEALTH_PORT, period=5)


def _secret_volume(name: str, secret: pulumi.Input[str], files: Sequence[str]) -> k8s.core.v1.VolumeArgs:
    """Only the listed files of a Secret, readable by the pod's group (fsGroup) alone."""
    return k8s.core.v1.VolumeArgs(
        name=name,
        secret=k8s.core.v1.SecretVolumeSourceArgs(
            secret_name=secret,
            default_mode=0o440,
            items=[k8s.core.v1.KeyToPathArgs(key=f, path=f) for f in files],
        ),
    )


def _mount(volume: str, path: str) -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=volume, mount_path=path, read_only=True)


def _secret(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    data: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
    secret_type: str = "Opaque",
) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "credentials")),
        type=secret_type,
        string_data=dict(data),
        opts=target.opts(parent),
    )


def _config_map(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    data: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "config")),
        data=dict(data),
        opts=target.opts(parent),
    )


def _subject_alt_names(hosts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split host names from IP addresses: they go in different certificate fields."""
    dns: list[str] = []
    ips: list[str] = []
    for host in hosts:
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.append(host)
    return dns, ips


class SuperLink(pulumi.ComponentResource):
    """The home region's SuperLink (with its ServerApp subprocess) and the node registrations."""

    address: pulumi.Output[str]  # "<load balancer host>:<fleet port>", for the other regions
    internal_address: str  # the Fleet Service inside the home cluster, for the home SuperNode

    def __init__(
        self,
        name: str,
        target: Target,
        image: pulumi.Input[str],
        trust: FederationTrust,
        identity: WorkloadIdentity,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("meridian:k8s:SuperLink", name, None, opts)
        account = service_account(f"{name}-sa", SUPERLINK_APP, target, SUPERLINK_APP, identity, self)
        fleet = service(
            f"{name}-fleet-service",
            FLEET_SERVICE,
            target,
            SUPERLINK_APP,
            {"fleet": contract.SUPERLINK_FLEET_PORT},
            public=True,
            parent=self,
        )
        service(
            f"{name}-control-service",
            CONTROL_SERVICE,
            target,
            SUPERLINK_APP,
            {"control": contract.SUPERLINK_CONTROL_PORT},
            public=False,
            parent=self,
        )
        public_host = load_balancer_address(fleet)
        self.internal_address = f"{target.service_host(FLEET_SERVICE)}:{contract.SUPERLINK_FLEET_PORT}"
        in_cluster = [
            name_
            for svc in (FLEET_SERVICE, CONTROL_SERVICE)
            for name_ in (svc, f"{svc}.{target.namespace_name}", f"{svc}.{target.namespace_name}.svc", target.service_host(svc))
        ]
        names = public_host.apply(lambda host: _subject_alt_names([host, *in_cluster, "localhost", "127.0.0.1"]))
        cert_pem, key_pem = trust.server_certificate(
            f"{name}-tls", names.apply(lambda n: n[0]), names.apply(lambda n: n[1]), self
        )
        tls_secret = _secret(
            f"{name}-tls-secret",
            "superlink-tls",
            target,
            SUPERLINK_APP,
            {contract.TLS_CERT_FILE: cert_pem, contract.TLS_KEY_FILE: key_pem, contract.TLS_CA_FILE: trust.ca_cert_pem},
            self,
            secret_type="kubernetes.io/tls",
        )
        signing_secret = _secret(
            f"{name}-signing-secret",
            "artifact-signing",
            target,
            SUPERLINK_APP,
            {contract.SIGNING_KEY_FILE: trust.signing_private_key_pem},
            self,
        )
        state = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-state",
            metadata=metadata("superlink-state", target.namespace, target.labels(SUPERLINK_APP, "state")),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": STATE_SIZE}),
            ),
            opts=target.opts(self),
        )
        ca_file, cert_file, key_file = (
            f"{contract.CERTS_MOUNT}/{f}" for f in (contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE)
        )
        superlink = container(
            SUPERLINK_APP,
            image,
            resources=SUPERLINK_RESOURCES,
            probes=_flower_probes(),
            command=["flower-superlink"],
            args=[
                "--ssl-ca-certfile", ca_file,
                "--ssl-certfile", cert_file,
                "--ssl-keyfile", key_file,
                "--enable-supernode-auth",
                "--disable-runtime-dependency-installation",  # else `uv sync` per run
                "--host", "127.0.0.1",
                "--port", str(contract.SUPERLINK_SERVERAPPIO_PORT),
                "--database", DATABASE,
                "--health-server-address", _health_address(),
            ],
            environment={
                **FLOWER_ENV,
                contract.ENV_REGION: target.region.name,
                contract.ENV_MODEL_NAME: contract.MODEL_NAME,
                contract.ENV_SIGNING_KEY: f"{contract.KEYS_MOUNT}/{contract.SIGNING_KEY_FILE}",
            },
            ports={"health": contract.FLOWER_HEALTH_PORT, "metrics": contract.TRAINER_METRICS_PORT},
            mounts=[
                _mount("tls", contract.CERTS_MOUNT),
                _mount("signing", contract.KEYS_MOUNT),
                k8s.core.v1.VolumeMountArgs(name="state", mount_path=STATE_MOUNT),
            ],
        )
        gateway = container(
            "gateway",
            image,
            resources=GATEWAY_RESOURCES,
            probes=(tcp_probe(contract.SUPERLINK_FLEET_PORT), tcp_probe(contract.SUPERLINK_CONTROL_PORT, period=5)),
            command=["python", "-m", contract.SUPERLINK_GATEWAY_MODULE],
            args=[
                "--upstream", f"https://127.0.0.1:{contract.SUPERLINK_SERVERAPPIO_PORT}",
                "--route", f"{contract.SUPERLINK_FLEET_PORT}={contract.FLEET_PATH_PREFIX}",
                "--route", f"{contract.SUPERLINK_CONTROL_PORT}={contract.CONTROL_PATH_PREFIX}",
                "--certfile", cert_file,
                "--keyfile", key_file,
                "--ca-certfile", ca_file,
            ],
            ports={"fleet": contract.SUPERLINK_FLEET_PORT, "control": contract.SUPERLINK_CONTROL_PORT},
            mounts=[_mount("tls", contract.CERTS_MOUNT)],
        )
        tls_files = (contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(SUPERLINK_APP, target.namespace, target.labels(SUPERLINK_APP, "federation")),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,  # one federation state; a second SuperLink would split the nodes
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),  # RWO state volume
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=target.selector(SUPERLINK_APP)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=target.labels(SUPERLINK_APP, "federation"),
                        annotations=scrape_annotations(contract.TRAINER_METRICS_PORT),
                    ),
                    spec=pod_spec(
                        [superlink, gateway],
                        service_account=account.metadata.name,
                        volumes=[
                            _secret_volume("tls", tls_secret.metadata.name, tls_files),
                            _secret_volume("signing", signing_secret.metadata.name, [contract.SIGNING_KEY_FILE]),
                            k8s.core.v1.VolumeArgs(
                                name="state",
                                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name=state.metadata.name
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=target.opts(self),
        )
        netpol.allow(
            f"{name}-netpol",
            SUPERLINK_APP,
            target.namespace,
            target.selector(SUPERLINK_APP),
            target.labels(SUPERLINK_APP, "network"),
            ingress=[
                netpol.Rule([netpol.anywhere(), netpol.pods(target.selector(SUPERNODE_APP))], [contract.SUPERLINK_FLEET_PORT]),
                netpol.Rule([netpol.this_namespace()], [contract.SUPERLINK_CONTROL_PORT]),
                netpol.Rule([netpol.in_cluster()], [contract.TRAINER_METRICS_PORT]),  # scrapers
            ],
            egress=[netpol.Rule([netpol.public_internet()], [netpol.HTTPS_PORT])]
            + netpol.cloud_identity_rules(target.region.cloud),
            opts=target.opts(self),
        )
        self._control_jobs(name, target, image, trust, tls_secret, deployment)
        self.address = public_host.apply(lambda host: f"{host}:{contract.SUPERLINK_FLEET_PORT}")
        self.register_outputs({"address": self.address, "internalAddress": self.internal_address})

    def _control_jobs(
        self,
        name: str,
        target: Target,
        image: pulumi.Input[str],
        trust: FederationTrust,
        tls_secret: k8s.core.v1.Secret,
        superlink: k8s.apps.v1.Deployment,
    ) -> None:
        """Jobs that drive the SuperLink through its Control API, in order:

        1. one per region registers its SuperNode's public key. Flower refuses a key registered
           twice and keeps registrations in its database, so each runs once per key: changes
           to its spec (a new trainer image) are ignored. To rotate a node key, replace the key
           and its Job (`pulumi up --replace`).
        2. one submits the federated run with the stack's federation settings. It is replaced,
           so a new run starts, whenever those settings or the trainer image change.
        """
        control = f"{target.service_host(CONTROL_SERVICE)}:{contract.SUPERLINK_CONTROL_PORT}"
        flwr_config = _config_map(
            f"{name}-flwr-config",
            "flwr-connection",
            target,
            FLWR_CLI_APP,
            {
                "config.toml": (
                    f'[superlink]\ndefault = "{CONNECTION}"\n\n'
                    f'[superlink.{CONNECTION}]\naddress = "{control}"\n'
                    f'root-certificates = "{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"\n'
                )
            },
            self,
        )
        public_keys = _config_map(
            f"{name}-node-keys",
            "supernode-public-keys",
            target,
            FLWR_CLI_APP,
            {f"{region}.pub": key.public_openssh for region, key in trust.node_keys.items()},
            self,
        )
        account = service_account(f"{name}-flwr-cli-sa", FLWR_CLI_APP, target, FLWR_CLI_APP, WorkloadIdentity(), self)
        volumes = [
            _secret_volume("tls", tls_secret.metadata.name, [contract.TLS_CA_FILE]),
            k8s.core.v1.VolumeArgs(
                name="flwr", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=flwr_config.metadata.name)
            ),
            k8s.core.v1.VolumeArgs(
                name="keys", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=public_keys.metadata.name)
            ),
        ]
        mounts = [
            _mount("tls", contract.CERTS_MOUNT),
            _mount("flwr", FLWR_CONFIG_MOUNT),
            _mount("keys", PUBLIC_KEYS_MOUNT),
        ]

        def job(
            suffix: str, command: Sequence[str], opts: pulumi.ResourceOptions
        ) -> k8s.batch.v1.Job:
            labels = target.labels(FLWR_CLI_APP, "federation")
            cli = container(
                "flwr",
                image,
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
                            [cli], service_account=account.metadata.name, restart_policy="OnFailure", volumes=volumes
                        ),
                    ),
                ),
                opts=pulumi.ResourceOptions.merge(target.opts(self), opts),
            )

        registrations = [
            job(
                f"register-{region}",
                ["flwr", "supernode", "register", f"{PUBLIC_KEYS_MOUNT}/{region}.pub", CONNECTION],
                pulumi.ResourceOptions(depends_on=[superlink], ignore_changes=["spec"]),
            )
            for region in trust.node_keys
        ]
        job(
            "federated-run",
            ["flwr", "run", contract.TRAINER_APP_DIR, CONNECTION, "--run-config", run_config(target.config.federation)],
            pulumi.ResourceOptions(depends_on=registrations, delete_before_replace=True),
        )
        netpol.allow(
            f"{name}-flwr-cli-netpol",
            FLWR_CLI_APP,
            target.namespace,
            target.selector(FLWR_CLI_APP),
            target.labels(FLWR_CLI_APP, "network"),
            egress=[netpol.Rule([netpol.pods(target.selector(SUPERLINK_APP))], [contract.SUPERLINK_CONTROL_PORT])],
            opts=target.opts(self),
        )


class SuperNode(pulumi.ComponentResource):
    """A region's SuperNode: trains on that region's data only, with its own node key."""

    def __init__(
        self,
        name: str,
        target: Target,
        image: pulumi.Input[str],
        trust: FederationTrust,
        identity: WorkloadIdentity,
        superlink_address: pulumi.Input[str],
        data_url: pulumi.Input[str],
        gpus: int,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("meridian:k8s:SuperNode", name, None, opts)
        region = target.region
        account = service_account(f"{name}-sa", SUPERNODE_APP, target, SUPERNODE_APP, identity, self)
        auth = _secret(
            f"{name}-auth-secret",
            "supernode-auth",
            target,
            SUPERNODE_APP,
            {contract.NODE_KEY_FILE: trust.node_key(region.name).private_openssh, contract.TLS_CA_FILE: trust.ca_cert_pem},
            self,
        )
        volumes = [
            _secret_volume("ca", auth.metadata.name, [contract.TLS_CA_FILE]),
            _secret_volume("node-key", auth.metadata.name, [contract.NODE_KEY_FILE]),
        ]
        mounts = [_mount("ca", contract.CERTS_MOUNT), _mount("node-key", contract.KEYS_MOUNT)]
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
                    image,
                    resources=SYNC_RESOURCES,
                    probes=None,
                    command=list(contract.DATA_SYNC_COMMAND),
                    args=["--source", data_url, "--dest", contract.DATA_MOUNT],
                    environment={contract.ENV_REGION: region.name},
                    mounts=[k8s.core.v1.VolumeMountArgs(name="data", mount_path=contract.DATA_MOUNT)],
                )
            )
        volumes.append(data_source)
        mounts.append(_mount("data", contract.DATA_MOUNT))
        node_config = f'region="{region.name}" {contract.NODE_DATA_DIR_KEY}="{contract.DATA_MOUNT}"'
        node = container(
            SUPERNODE_APP,
            image,
            resources=replace(SUPERNODE_RESOURCES, gpus=gpus),
            probes=_flower_probes(),
            command=["flower-supernode"],
            args=[
                "--superlink", superlink_address,
                "--root-certificates", f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}",
                "--auth-supernode-private-key", f"{contract.KEYS_MOUNT}/{contract.NODE_KEY_FILE}",
                "--node-config", node_config,
                "--isolation", "subprocess",
                "--host", "127.0.0.1",
                "--port", str(contract.SUPERNODE_CLIENTAPPIO_PORT),
                "--health-server-address", _health_address(),
            ],
            environment={**FLOWER_ENV, contract.ENV_REGION: region.name, contract.ENV_DATA_DIR: contract.DATA_MOUNT},
            ports={"health": contract.FLOWER_HEALTH_PORT},
            mounts=mounts,
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(SUPERNODE_APP, target.namespace, target.labels(SUPERNODE_APP, "federation")),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,  # one node identity per region: two pods would share one node key
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=target.selector(SUPERNODE_APP)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=target.labels(SUPERNODE_APP, "federation")),
                    spec=pod_spec(
                        [node],
                        init_containers=init,
                        service_account=account.metadata.name,
                        volumes=volumes,
                        gpu=gpus > 0,
                    ),
                ),
            ),
            opts=target.opts(self),
        )
        netpol.allow(
            f"{name}-netpol",
            SUPERNODE_APP,
            target.namespace,
            target.selector(SUPERNODE_APP),
            target.labels(SUPERNODE_APP, "network"),
            # Only outbound: the SuperLink (any address: its load balancer may be private on
            # an existing cluster) on the Fleet port, and the data bucket over HTTPS.
            egress=[
                netpol.Rule(
                    [netpol.anywhere(), netpol.pods(target.selector(SUPERLINK_APP))], [contract.SUPERLINK_FLEET_PORT]
                ),
                netpol.Rule([netpol.public_internet()], [netpol.HTTPS_PORT]),
                *netpol.cloud_identity_rules(region.cloud),
            ],
            opts=target.opts(self),
        )
        self.register_outputs({})
