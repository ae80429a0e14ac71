"""`meridian local up`: the fleet of a `kubernetes`-only stack, as processes on this machine.

The same workloads `pulumi up` deploys, in the same order, from the same stack config:
credentials and data shards, and the front door's keys and certificates (front_door.py: every
public listener HTTPS, callers with an API key, edges escalating over mutual TLS, the canary
controllers on the admin ports) -> Prometheus (when installed; meridian/local/prometheus.py) and
each SuperNode's training-metrics exporter -> Flower SuperLink + one SuperNode per region (TLS,
node auth) -> federated training, whose ServerApp publishes the signed global model to the
local global registry -> per region, one pass of the localizer (`workloads.localization
follow`, the command the region's CronJob runs, built by the same `contract.localizer_args`)
publishing the region's signed variants to its own registry -> the registries served over HTTP
(the CDN's role, one path per region) -> one inference server per region and one edge server
per edge site, each following its region's `latest`, and one canary controller per region ->
simulated users -> the canary drill (meridian/local/canary.py) -> report (which artifact each
server and edge says it loaded, the drill's decision). Then it serves until Ctrl-C (or returns
at once with --detach). Only URLs and paths differ from the cluster: file:// registries and
data directories here, one metrics port per process instead of one per pod.

What does not wait on another step runs beside it, so the path to serving is only the steps
that must follow each other: the federation starts while this process makes keys and shards
and the monitoring processes and the CDN come up; the regions' localizer passes run side by
side from the moment the global model is published (the run ends and its processes stop
meanwhile; a run that fails still fails `up`); each region's server and edges start as soon as
its own pass has published. Every guarantee stays: servers load only artifacts whose signatures verify
with their region's key, and answer (ready) only then. Each phase's start and end are in the
report (`timeline_seconds`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from components.catalog import Cloud
from components.config import ConfigError, Region, StackConfig, load_stack
from meridian.local.front_door import Caller, FrontDoor
from meridian.local.latency import Site, edge_site_place, region_place
from meridian.local.load import LoadResult, run_load
from meridian.local.plan import LocalPlan
from meridian.local.prometheus import (
    INSTALL_HINT,
    PrometheusAPI,
    ScrapeTarget,
    find_prometheus,
    prometheus_argv,
    rule_files,
    write_config,
)
from meridian.local.report import (
    CANARY_PLOT,
    RunFacts,
    print_canary_summary,
    print_summary,
    update_canary,
    write_report,
)
from meridian.local.supervisor import LocalStackError, ProcessSpec, Running, Supervisor, read_state
from workloads import contract
from workloads.contract import MetricsApp
from workloads.processes import descendants, stop_pids
from workloads.serving.protocol import encode_json_request

if TYPE_CHECKING:
    from workloads.trainer.launch import LocalFederation, RunResult

SUPERLINK = "superlink"  # the federated run's ServerApp, scraped while it runs
# Servers poll their registry's `latest` this often: a published candidate enters within seconds.
RELOAD_INTERVAL_S = 2.0
T = TypeVar("T")


def _local_regions(config: StackConfig, stack: str) -> list[Region]:
    clouds = [r.name for r in config.regions if r.cloud is not Cloud.KUBERNETES]
    if clouds:
        raise LocalStackError(
            f"stack {stack!r} has cloud regions ({', '.join(clouds)}): the local stack runs "
            "only `kubernetes` regions; use `pulumi up` for the clouds"
        )
    return list(config.regions)


class _Stop(Exception):
    """Ctrl-C or SIGTERM: stop every process and leave nothing behind."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


class LocalFleet:
    def __init__(self, stack: str, config: StackConfig, out_dir: Path, quick: bool, port_base: int):
        self.stack = stack
        self.config = config
        self.regions = _local_regions(config, stack)
        self.out = out_dir.resolve()
        self.quick = quick
        self.python = sys.executable
        self.supervisor = Supervisor(self.out, {"stack": stack, "quick": quick, "port_base": port_base})
        self.started, self.started_at = time.monotonic(), time.time()
        self.timings: dict[str, float] = {}  # phase -> seconds
        self.timeline: dict[str, tuple[float, float]] = {}  # phase -> (start, end), seconds since `started`
        self.version = config.inference.canary.stable
        self.plan = LocalPlan(config, self.out, self.python, quick)
        self.registry_dir = self.plan.registry_dir  # <registry>/global and <registry>/<region>
        self.keys = self.plan.keys
        self.data = self.plan.data
        ports = iter(range(port_base, port_base + 100))
        self.registry_port = next(ports)
        self.server_ports = {r.name: next(ports) for r in self.regions}
        self.edge_ports = {s.name: next(ports) for r in self.regions for s in r.edge_sites}
        # Every process serves /metrics on a port of its own (contract.ENV_METRICS_PORT), as each
        # pod does in the clusters; the ServerApp's is the run config's `metrics-port`.
        self.metrics_ports = {name: next(ports) for name, *_ in self._metrics_endpoints()}
        self.prometheus_port = next(ports)
        # The front door's other listeners: each region's escalation listener (its edges, mutual
        # TLS) and each server's and edge's admin port (the repository API, its canary controller).
        self.escalation_ports = {r.name: next(ports) for r in self.regions}
        self.admin_ports = {name: next(ports) for name in self._model_servers()}
        self.prometheus = find_prometheus()
        self.front_door = FrontDoor(self.out)

    def _model_servers(self) -> list[str]:
        """Every regional server's and edge's process name."""
        return [name for region in self.regions for name in _served_by(region)]

    def caller(self) -> Caller:
        """The users' credentials, as `make up` wrote them."""
        return self.front_door.caller()

    def ensure_front_door(self) -> None:
        """Keys and certificates for this fleet, made once per out dir (see front_door.py)."""
        if not self.config.auth.api_keys:
            raise LocalStackError(
                f"the local stack's users call it with an API key: list one in `auth.apiKeys` of "
                f"stacks/Pulumi.{self.stack}.yaml"
            )
        edges = [f"edge-{s.name}" for r in self.regions for s in r.edge_sites]
        self.front_door.ensure(self.config.auth.api_keys[0], self._model_servers(), edges)

    # -- monitoring -----------------------------------------------------------------------------
    def _metrics_endpoints(self) -> list[tuple[str, MetricsApp, str, str | None]]:
        """(process, app, region, site) of every process Prometheus scrapes."""
        home = self.config.home
        endpoints: list[tuple[str, MetricsApp, str, str | None]] = [(SUPERLINK, MetricsApp.SUPERLINK, home, None)]
        for region in self.regions:
            endpoints += [
                (f"supernode-{region.name}", MetricsApp.SUPERNODE, region.name, None),
                (f"server-{region.name}", MetricsApp.SERVER, region.name, None),
                *((f"edge-{s.name}", MetricsApp.EDGE, region.name, s.name) for s in region.edge_sites),
            ]
            if self.config.inference.canary.analysis is not None:
                endpoints.append((f"canary-{region.name}", MetricsApp.CANARY, region.name, None))
        return endpoints

    def scrape_targets(self, training: bool) -> list[ScrapeTarget]:
        """What Prometheus scrapes: while `training`, the ServerApp too (it lives as long as the
        run, and so leaves the config once training is done)."""
        return [
            ScrapeTarget(name, app, region, self.metrics_ports[name], site)
            for name, app, region, site in self._metrics_endpoints()
            if (training or app is not MetricsApp.SUPERLINK)
        ]

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def prometheus_spec(self, binary: str) -> ProcessSpec:
        config = self.out / "prometheus" / "prometheus.yml"
        return ProcessSpec(
            name="prometheus",
            role="prometheus",
            argv=prometheus_argv(binary, config, self.out / "prometheus" / "data", self.prometheus_port),
            port=self.prometheus_port,
            health_url=f"{self.prometheus_url}/-/ready",
            url=self.prometheus_url,
        )

    @property
    def scrape_jobs(self) -> list[MetricsApp]:
        """One job per app, in every phase (see `scrape_config` on why a job stays when empty)."""
        return list(dict.fromkeys(app for _, app, _, _ in self._metrics_endpoints()))

    def write_scrape_config(self, training: bool) -> None:
        targets = self.scrape_targets(training)
        write_config(self.out / "prometheus" / "prometheus.yml", targets, rule_files(), self.scrape_jobs)

    def training_records(self, region: str) -> Path:
        """Where a region's ClientApp appends its training records (contract.ENV_TRAINING_RECORDS)."""
        return self.out / "federation" / "training" / f"{region}.jsonl"

    def node_metrics_specs(self) -> list[ProcessSpec]:
        """Each SuperNode's training-metrics exporter, reading what its ClientApp records."""
        specs = []
        for region in self.regions:
            name = f"supernode-{region.name}"
            port = self.metrics_ports[name]
            argv = [self.python, *contract.NODE_METRICS_COMMAND[1:], "--records", str(self.training_records(region.name)),
                    "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            specs.append(
                ProcessSpec(
                    name=f"{name}-metrics",
                    role="supernode-metrics",
                    argv=argv,
                    port=port,
                    url=f"http://127.0.0.1:{port}{contract.METRICS_PATH}",
                )
            )
        return specs

    def canary_specs(self) -> list[ProcessSpec]:
        """One canary controller per region, driving the region's server and edges."""
        specs: list[ProcessSpec] = []
        canary = self.config.inference.canary
        if canary.analysis is None or self.prometheus is None:  # the controller reads Prometheus
            return specs
        for region in self.regions:
            name = f"canary-{region.name}"
            port = self.metrics_ports[name]
            # The repository API answers on the admin ports only (plain HTTP on loopback, as
            # inside a cluster), with the admin token.
            targets = [f"http://127.0.0.1:{self.admin_ports[name]}" for name in _served_by(region)]
            flags = contract.canary_args(
                prometheus=self.prometheus_url,
                region=region.name,
                model=contract.MODEL_NAME,
                targets=",".join(targets),
                analysis=canary.analysis,
            )
            specs.append(
                ProcessSpec(
                    name=name,
                    role="canary",
                    argv=[self.python, *contract.CANARY_COMMAND[1:], *flags],
                    port=port,
                    url=f"http://127.0.0.1:{port}{contract.METRICS_PATH}",
                    env={
                        contract.ENV_METRICS_PORT: str(port),
                        contract.ENV_ADMIN_TOKEN_FILE: str(self.front_door.admin_token),
                    },
                )
            )
        return specs

    def _server_env(self, name: str) -> dict[str, str]:
        """What a regional server or an edge reads besides its flags: its listeners (public HTTPS
        with its own certificate, admin port with the admin token), who may call it, how much."""
        door = self.front_door
        return {
            contract.ENV_METRICS_PORT: str(self.metrics_ports[name]),
            contract.ENV_TLS_CERT_FILE: str(door.cert(name)),
            contract.ENV_TLS_KEY_FILE: str(door.key(name)),
            contract.ENV_ADMIN_PORT: str(self.admin_ports[name]),
            contract.ENV_ADMIN_TOKEN_FILE: str(door.admin_token),
            contract.ENV_API_KEYS_FILE: str(door.api_keys_file),
            contract.ENV_RATE_LIMITS: self.config.auth.rate_limits_json(),
        }

    def _escalation_env(self, region: str) -> dict[str, str]:
        """A regional server's escalation listener: mutual TLS, edges' certificates from the CA."""
        name = f"server-{region}"
        return {
            contract.ENV_ESCALATION_PORT: str(self.escalation_ports[region]),
            contract.ENV_ESCALATION_CERT_FILE: str(self.front_door.cert(name)),
            contract.ENV_ESCALATION_KEY_FILE: str(self.front_door.key(name)),
            contract.ENV_ESCALATION_CLIENT_CA_FILE: str(self.front_door.ca_cert),
        }

    def _upstream_env(self, edge: str) -> dict[str, str]:
        """An edge's side of the escalation: its client certificate, the region verified against the CA."""
        client = self.front_door.client_name(edge)
        return {
            contract.ENV_UPSTREAM_CA_FILE: str(self.front_door.ca_cert),
            contract.ENV_UPSTREAM_CERT_FILE: str(self.front_door.cert(client)),
            contract.ENV_UPSTREAM_KEY_FILE: str(self.front_door.key(client)),
        }

    # -- the serving processes, planned before any work so a busy port fails fast -----------
    def serving_specs(self) -> list[ProcessSpec]:
        registry_url = f"http://127.0.0.1:{self.registry_port}"
        inference = self.config.inference
        specs = [
            ProcessSpec(
                name="registry-cdn",
                role="registry",
                argv=[self.python, "-m", "workloads.registry", "serve", "--root", str(self.registry_dir),
                      "--host", "127.0.0.1", "--port", str(self.registry_port)],
                port=self.registry_port,
                url=registry_url,
            )
        ]  # fmt: skip
        common = [
            "--host", "127.0.0.1", "--stable", self.version, "--candidate-weight", str(inference.canary.weight),
            "--reload-interval-s", str(RELOAD_INTERVAL_S), "--max-batch-size", str(inference.max_batch_size),
            "--max-batch-wait-ms", str(inference.max_batch_wait_ms),
            "--queue-capacity", str(inference.queue_capacity), "--torch-threads", "1",
        ]  # fmt: skip
        for region in self.regions:
            # The region's CDN path and its signer's public key, as ClusterAccess.models gives them.
            source = ["--registry-url", f"{registry_url}/{region.name}",
                      "--trusted-key", str(self.plan.key(region.name, contract.TRUSTED_KEY_FILE)), *common]  # fmt: skip
            server = self._model_server(
                "server", region.name, self.server_ports[region.name], region.name, source,
                self._escalation_env(region.name),
            )  # fmt: skip
            specs.append(server)
            # Escalations go to the region's escalation listener, never its public one.
            upstream = f"https://127.0.0.1:{self.escalation_ports[region.name]}"
            edge_flags = ["--upstream-url", upstream,
                          "--confidence-threshold", str(inference.edge_confidence_threshold)]  # fmt: skip
            specs.extend(
                self._model_server(
                    "edge",
                    site.name,
                    self.edge_ports[site.name],
                    region.name,
                    [*edge_flags, *source],
                    self._upstream_env(f"edge-{site.name}"),
                )
                for site in region.edge_sites
            )
        return specs

    def _model_server(
        self, role: str, site: str, port: int, region: str, flags: list[str], env: dict[str, str]
    ) -> ProcessSpec:
        """A regional server or an edge server (`workloads.<role>`) on its local port, HTTPS."""
        name, url = f"{role}-{site}", f"https://127.0.0.1:{port}"
        argv = [self.python, "-m", f"workloads.{role}", "--port", str(port), "--region", region,
                "--cache-dir", str(self.out / "cache" / name), *flags]  # fmt: skip
        env = {**self._server_env(name), **env}
        listeners = (contract.ENV_ADMIN_PORT, contract.ENV_ESCALATION_PORT)
        return ProcessSpec(
            name=name,
            role=role,
            argv=argv,
            port=port,
            health_url=f"{url}{contract.READINESS_PATH}",
            url=url,
            env=env,
            ca_file=str(self.front_door.ca_cert),
            other_ports=tuple(int(env[variable]) for variable in listeners if variable in env),
        )

    def sites(self) -> list[Site]:
        sites = []
        for region in self.regions:
            server_url = f"https://127.0.0.1:{self.server_ports[region.name]}"
            sites.append(Site(f"server-{region.name}", region.name, region_place(region.residency), False, server_url))
            sites.extend(
                Site(
                    f"edge-{site.name}",
                    region.name,
                    edge_site_place(site.location),
                    True,
                    f"https://127.0.0.1:{self.edge_ports[site.name]}",
                )
                for site in region.edge_sites
            )
        return sites

    def _phase(self, name: str, started: float) -> None:
        """Record a phase's seconds, and when it ran since the fleet's start: phases overlap."""
        ended = time.monotonic()
        self.timings[name] = ended - started
        self.timeline[name] = (started - self.started, ended - self.started)

    def all_specs(self) -> list[ProcessSpec]:
        """Every long-running process, planned before any work so a busy port fails fast."""
        monitoring = [self.prometheus_spec(self.prometheus)] if self.prometheus else []
        return [*monitoring, *self.node_metrics_specs(), *self.serving_specs(), *self.canary_specs()]

    # -- 0. monitoring, up before training so that training is watched too ---------------------
    def monitor(self, registry: ProcessSpec) -> list[Running]:
        """Launch Prometheus, each SuperNode's metrics exporter and the registries' CDN (it needs
        only its directory) without waiting: they come up while the federation starts (`train`)."""
        if self.prometheus is None:
            print(f"prometheus is not on PATH: running without monitoring and without the canary drill; {INSTALL_HINT}")
            monitoring = []
        else:
            self.write_scrape_config(training=True)
            monitoring = [self.prometheus_spec(self.prometheus)]
        self.registry_dir.mkdir(parents=True)  # empty until the ServerApp publishes
        return [self.supervisor.launch(spec) for spec in [*monitoring, *self.node_metrics_specs(), registry]]

    # -- 1. federated training, the global model published ----------------------------------------
    def prepare(self) -> int:
        """Each region's signing key and data shard, and the example request; the model's size.
        In this process: no interpreter start-up per step."""
        from workloads.registry.signing import generate_keypair
        from workloads.tasks import load_task
        from workloads.tasks.__main__ import prepare_data

        started = time.monotonic()
        federation = self.config.federation
        names = [r.name for r in self.regions]
        for name in names:
            generate_keypair(self.keys / name)
        prepare_data(federation.task, names, self.data, 0, federation.dirichlet_alpha)
        x, _ = _test_examples(self.data, self.regions[:1])[self.regions[0].name]
        self.front_door.example_request.write_bytes(encode_json_request(x[:1]))
        parameters = sum(p.numel() for p in load_task(federation.task).build_model().parameters())
        self._phase("keys and data", started)
        return parameters

    def train(self, watchers: list[Running]) -> _Training:
        """The federated run, returned once its global model is published. Its SuperLink and
        SuperNodes start (mostly waiting on their processes; Flower imported off this thread)
        while this process makes the keys and shards and `watchers` come up."""
        names = [r.name for r in self.regions]
        rounds = 3 if self.quick else self.config.federation.rounds
        run_dir = self.out / "federation" / "run"
        run_config = {
            **self.config.federation.run_config(),
            "rounds": rounds,
            "out-dir": str(run_dir),
            "metrics-port": self.metrics_ports[SUPERLINK],
        }
        for name in names:
            self.training_records(name).parent.mkdir(parents=True, exist_ok=True)

        def start() -> LocalFederation:
            from workloads.trainer.launch import FederationError, LocalFederation, Node

            nodes = [Node(name, self.data / name, training_records=self.training_records(name)) for name in names]
            federation = LocalFederation(self.out / "federation", nodes, superlink_env=self.plan.publish_env())
            try:
                federation.start()
            except FederationError as err:
                raise LocalStackError(f"the federation did not start: {err}") from None
            return federation

        starting = _Background(start, "federation start", self._phase)
        parameters = self.prepare()
        waited = time.monotonic()
        self.supervisor.wait_ready(watchers, ready_timeout=60)
        self._phase("monitoring and CDN start", waited)
        federation_run = starting.join()
        started = time.monotonic()
        running = _Background(
            lambda: federation_run.run(run_config, timeout=60.0 + 90.0 * rounds, run_name="run"),
            "training rounds",
            self._phase,
        )
        training = _Training(running, federation_run, parameters, self._phase)
        _show_progress(running.thread, run_dir / "rounds.jsonl", rounds, until=self._global_published)
        if running.thread.is_alive():
            self._phase("global model published", started)
        else:  # it ended without publishing: say why
            training.finish()
        return training

    def _global_published(self) -> bool:
        """The run's ServerApp has published the global model (what each localizer pass follows)."""
        from workloads.registry.artifact import Variant
        from workloads.registry.store import latest_version

        store = self.plan.store(contract.GLOBAL_REGION)
        try:
            return latest_version(store, contract.MODEL_NAME, contract.GLOBAL_REGION, Variant.FP32) is not None
        except ValueError:  # the pointer caught mid-write: published on the next look
            return False

    # -- 2 and 3. each region's localizer pass, then its servers ---------------------------------
    def localize_and_serve(self, specs: list[ProcessSpec], training: _Training) -> dict[str, dict[str, Any]]:
        """Every region's localizer pass (the command its CronJob runs) side by side, from the
        moment the global model is published; each region's server and edges start as soon as
        its own pass has published (they load only what verifies), while the other passes still
        run: as in the cloud, they follow the registry, not the run, whose end (its status
        checked) overlaps with them; then each region's canary controller."""
        started = time.monotonic()
        passes = {f"localize-{region.name}": self.plan.localizer_argv(region.name) for region in self.regions}
        # Side by side, the passes share the cores rather than each spreading over all of them.
        threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // len(passes)))}
        reports: dict[str, dict[str, Any]] = {}
        launched: list[Running] = []
        for step in self.supervisor.run_each(passes, timeout=300, env=threads):
            region = step.removeprefix("localize-")
            report = self.plan.report(region)
            if not report.exists():  # the pass found nothing to do: no global model was published
                raise LocalStackError(f"{step} published nothing; see {self.supervisor.logs}")
            reports[region] = json.loads(report.read_text())
            served = _served_by(next(r for r in self.regions if r.name == region))
            launched += [self.supervisor.launch(spec) for spec in specs if spec.name in served]
        self._phase("localization", started)
        serving = time.monotonic()
        self.supervisor.wait_ready(launched, ready_timeout=120)
        self._phase("serving start", serving)
        self._phase("serving", self.started)  # every server and edge answers, its artifact verified
        training.finish()  # a run that failed after publishing fails `up` too
        controllers = time.monotonic()
        self.supervisor.start_all(self.canary_specs(), ready_timeout=60)
        if self.prometheus:  # the run is over: its ServerApp leaves the scrape config
            self.write_scrape_config(training=False)
            PrometheusAPI(self.prometheus_url).reload()
        self._phase("canary controllers start", controllers)
        return {region.name: reports[region.name] for region in self.regions}

    def loaded(self, specs: list[ProcessSpec]) -> dict[str, dict[str, str]]:
        """Which artifact each server and edge says it serves: its V2 model metadata (the
        stable version, and the artifact it loaded for it, `<model>/<version>/<region>/<variant>`)."""
        import httpx

        caller = self.caller()
        loaded = {}
        for spec in specs:
            if spec.role not in ("server", "edge"):
                continue
            url = f"{spec.url}/v2/models/{contract.MODEL_NAME}"
            metadata = httpx.get(url, headers=caller.headers, verify=caller.tls(), timeout=10).json()
            stable = metadata["parameters"]["stable"]
            description = metadata["parameters"]["artifacts"][stable]
            _, version, region, variant = description.split(" ", 1)[0].split("/")
            loaded[spec.name] = {"version": version, "region": region, "variant": variant, "loaded": description}
        return loaded

    # -- 4. users ------------------------------------------------------------------------------
    def load(self) -> LoadResult:
        started = time.monotonic()
        examples = _test_examples(self.data, self.regions)
        result = run_load(self.sites(), examples, 40 if self.quick else 300, self.caller())
        self._phase("load", started)
        return result

    # -- 5. the canary drill --------------------------------------------------------------------
    def drill(self, kind: str, seed: int = 0) -> dict[str, Any]:
        """One canary drill (meridian/local/canary.py), or why there is none."""
        from meridian.local.canary import CanaryDrill

        if kind == "off":
            return {"skipped": "--canary off"}
        if self.prometheus is None:
            return {"skipped": f"prometheus is not installed; {INSTALL_HINT}"}
        started = time.monotonic()
        drill = CanaryDrill(self, kind)
        print(f"canary drill: a {kind} candidate in {drill.region}, under load; the controller decides")
        section = drill.run(_test_examples(self.data, self.regions), seed)
        self._phase("canary drill", started)
        return section


def _served_by(region: Region) -> list[str]:
    """The process names of a region's server and its edges."""
    return [f"server-{region.name}", *(f"edge-{site.name}" for site in region.edge_sites)]


class _Background(Generic[T]):
    """One step on a thread of its own, timed as a phase; `join` returns its result, or raises
    its error in the caller's thread."""

    def __init__(self, step: Callable[[], T], phase: str, record: Callable[[str, float], None]):
        self._outcome: dict[str, Any] = {}

        def run() -> None:
            started = time.monotonic()
            try:
                self._outcome["result"] = step()
            except BaseException as err:  # re-raised by `join`, in the thread that waits for it
                self._outcome["error"] = err
            record(phase, started)

        self.thread = threading.Thread(target=run, name=phase, daemon=True)
        self.thread.start()

    def join(self) -> T:
        self.thread.join()
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["result"]


class _Training:
    """The federated run from the moment its global model is published: the run still ends (its
    ServerApp exits, its log closes) and its SuperLink and SuperNodes stop while the regions
    localize."""

    def __init__(
        self,
        run: _Background[RunResult],
        federation: LocalFederation,
        parameters: int,
        record: Callable[[str, float], None],
    ):
        self.parameters = parameters
        self._run, self._federation, self._record = run, federation, record
        self._result: RunResult | None = None
        self._stopping: _Background[None] | None = None

    def finish(self) -> RunResult:
        """The completed run (LocalStackError if it failed); its processes then stop in the background."""
        from workloads.trainer.launch import FederationError

        if self._result is None:
            try:
                self._result = self._run.join()
            except FederationError as err:
                raise LocalStackError(f"federated training failed: {err}") from None
            finally:  # the SuperLink and SuperNodes have served their part
                self._stopping = _Background(self._federation.close, "federation stop", self._record)
        return self._result

    def stopped(self) -> None:
        """Wait until the federation's processes have stopped."""
        if self._stopping is not None:
            self._stopping.join()


def _show_progress(worker: threading.Thread, rounds_file: Path, rounds: int, until: Callable[[], bool]) -> None:
    """Live table of the rounds as the trainer writes them, until the run ends or `until()`."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    started = time.monotonic()

    def table() -> Table:
        view = Table(title=f"federated training ({time.monotonic() - started:.0f} s)")
        for column in ("round", "global acc", "per-region acc", "uplink bytes", "round s"):
            view.add_column(column)
        records = []
        if rounds_file.exists():
            records = [json.loads(line) for line in rounds_file.read_text().splitlines() if line.strip()]
        for r in records:
            regions = r.get("regions") or {}
            view.add_row(
                f"{r['round']}/{rounds}",
                f"{(r.get('global') or {}).get('accuracy') or 0:.3f}",
                " ".join(f"{name}={part.get('accuracy') or 0:.2f}" for name, part in sorted(regions.items())),
                f"{r.get('uplink_payload_bytes', 0):,}",
                f"{(r.get('seconds') or {}).get('round', 0):.1f}",
            )
        if len(records) < rounds:
            view.add_row(f"{len(records) + 1}/{rounds}", "...", "", "", "")
        return view

    with Live(table(), console=Console(), refresh_per_second=2, transient=False) as live:
        while worker.is_alive() and not until():
            live.update(table())
            worker.join(timeout=0.5)
        live.update(table())


def _test_examples(data: Path, regions: list[Region]) -> dict[str, tuple[Any, Any]]:
    """Each region's held-out split: never seen in training or localization."""
    from workloads.tasks import Shard

    shards = {r.name: Shard.load(data / r.name) for r in regions}
    return {name: (shard.x_test, shard.y_test) for name, shard in shards.items()}


def up(stack: str, out_dir: Path, quick: bool, detach: bool, port_base: int, canary: str) -> int:
    try:
        config = load_stack(stack)
    except ConfigError as err:
        raise LocalStackError(str(err)) from None
    fleet = LocalFleet(stack, config, out_dir, quick, port_base)
    fleet.supervisor.claim()  # refuses to start over a running fleet
    fleet.ensure_front_door()  # kept across runs (not among the stale outputs below)
    for stale in ("registry", "federation", "localization", "cache", "keys", "logs", "data", "prometheus"):
        shutil.rmtree(fleet.out / stale, ignore_errors=True)
    (fleet.out / CANARY_PLOT).unlink(missing_ok=True)
    fleet.supervisor.logs.mkdir(parents=True, exist_ok=True)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    keep_running = False
    try:
        fleet.supervisor.check_ports(fleet.all_specs())
        registry, *specs = fleet.serving_specs()
        training = fleet.train(fleet.monitor(registry))
        localized = fleet.localize_and_serve(specs, training)
        rounds, parameters = training.finish().rounds, training.parameters
        loaded = fleet.loaded(specs)
        load = fleet.load()
        drill = fleet.drill(canary)
        training.stopped()  # the SuperLink and SuperNodes, stopping since the run ended
        facts = RunFacts(
            stack=stack,
            task=config.federation.task,
            strategy=str(config.federation.strategy),
            compression=str(config.federation.compression),
            parameters=parameters,
            rounds=rounds,
            localization=localized,
            loaded=loaded,
            timings=fleet.timings,
            timeline=fleet.timeline,
            started_at=fleet.started_at,
            canary=drill,
        )
        summary = write_report(facts, load, fleet.out)
        print_summary(summary)
        print(f"report: {fleet.out / 'report.md'}; logs: {fleet.supervisor.logs}")
        if summary["failed_requests"]:
            raise LocalStackError(f"{summary['failed_requests']} requests failed, e.g. {summary['errors'][:2]}")
        for child in fleet.supervisor.children:
            print(f"  {child.spec.name:<30} {child.spec.url}")
        home = f"https://127.0.0.1:{fleet.server_ports[config.home]}"
        print(f"call it as a user (the API key stays in its file):\n  {fleet.front_door.curl(home)}")
        if detach:
            keep_running = True
            print(
                "detached: `python -m meridian local status` / `python -m meridian local canary good|bad` / "
                "`python -m meridian local down`"
            )
            return 0
        print("serving; Ctrl-C stops every process")
        while True:
            if problems := fleet.supervisor.crashed():
                raise LocalStackError("a process crashed; stopping the rest.\n" + "\n".join(problems))
            time.sleep(1.0)
    except _Stop:
        print("stopping the local fleet")
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not keep_running:
            fleet.supervisor.stop_all()
            stop_pids(descendants(os.getpid())[1:])  # e.g. a `flwr run` cut off mid-training


def canary_drill(out_dir: Path, kind: str) -> int:
    """`meridian local canary good|bad`: one more drill on a running (detached) fleet; the
    report's canary section and plot are replaced by this drill's."""
    state = read_state(out_dir / "state.json")
    if not state or not state.get("fleet"):
        raise LocalStackError("no local fleet is running (start one with `make up ARGS=--detach`)")
    started = state["fleet"]
    fleet = LocalFleet(started["stack"], load_stack(started["stack"]), out_dir, started["quick"], started["port_base"])
    section = fleet.drill(kind, seed=int(time.time()))
    summary = update_canary(fleet.out, section)
    print_canary_summary(summary["canary"])
    return 0
