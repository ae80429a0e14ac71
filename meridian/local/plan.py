"""What the local stack runs for the model pipeline, planned from the stack config alone.

The same entrypoints as the cluster, with only URLs and paths changed: the ServerApp's
environment (`contract.global_publish_env`, as components/k8s/superlink.py sets it) and each
region's localizer pass (`contract.LOCALIZER_COMMAND` + `contract.localizer_args`, as the
region's CronJob in components/k8s/localizer.py runs it), and the canary drill's candidates (the
localizer's `localize`, under the next version). Registries are directories under
`<out>/registry`, one prefix per region and `global`, as the cloud keeps one prefix per region
in its bucket; each region signs with its own key, the home's also signs the global model.
Standard library only, so the Pulumi side's tests can hold it against the Kubernetes objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.config import StackConfig
from workloads import contract

QUICK_TUNING = {"--finetune-epochs": "1", "--recovery-epochs": "1"}


@dataclass(frozen=True)
class LocalPlan:
    config: StackConfig
    out: Path  # absolute
    python: str  # the interpreter that runs every step
    quick: bool

    @property
    def keys(self) -> Path:
        return self.out / "keys"

    @property
    def registry_dir(self) -> Path:
        return self.out / "registry"

    @property
    def data(self) -> Path:
        return self.out / "data"

    def key(self, region: str, file: str) -> Path:
        """`region`'s signing key (contract.SIGNING_KEY_FILE) or its public key."""
        return self.keys / region / file

    def store(self, prefix: str) -> str:
        """The registry a region (or `global`) publishes to."""
        return (self.registry_dir / prefix).as_uri()

    def report(self, region: str) -> Path:
        return self.out / "localization" / f"{region}.json"

    def publish_env(self) -> dict[str, str]:
        """The SuperLink's environment: its ServerApp publishes the global model."""
        home = self.config.home
        return contract.global_publish_env(
            self.store(contract.GLOBAL_REGION), str(self.key(home, contract.SIGNING_KEY_FILE))
        )

    def localizer_argv(self, region: str) -> list[str]:
        """One localizer pass for `region`, as its CronJob runs it, plus `--report` (the local
        report's table; the cluster's pass logs it)."""
        flags = contract.localizer_args(
            global_registry=self.store(contract.GLOBAL_REGION),
            global_key=str(self.key(self.config.home, contract.TRUSTED_KEY_FILE)),
            region=region,
            data_url=(self.data / region).as_uri(),
            store=self.store(region),
            signing_key=str(self.key(region, contract.SIGNING_KEY_FILE)),
            task=self.config.federation.task,
            work_dir=str(self.out / "localization" / "work" / region),
            extra=QUICK_TUNING if self.quick else None,
        )
        return [self.python, *contract.LOCALIZER_COMMAND[1:], *flags, "--report", str(self.report(region))]

    def candidate_argv(
        self, region: str, global_model: Path, version: str, parent_version: str, shuffle_labels: bool
    ) -> list[str]:
        """The canary drill's next version for `region`: the localizer's `localize` of the same
        global model under a version of its own (`--shuffle-labels`: a deliberately worse one)."""
        flags = {
            "--global-model": str(global_model),
            "--task": self.config.federation.task,
            "--data-dir": str(self.data / region),
            "--region": region,
            "--store": self.store(region),
            "--signing-key": str(self.key(region, contract.SIGNING_KEY_FILE)),
            "--version": version,
            "--parent-version": parent_version,
            "--report": str(self.out / "localization" / "candidates" / f"{region}-{version}.json"),
            **(QUICK_TUNING if self.quick else {}),
        }
        argv = [self.python, *contract.LOCALIZER_COMMAND[1:-1], "localize"]
        argv += [part for flag, value in flags.items() for part in (flag, value)]
        return argv + (["--shuffle-labels"] if shuffle_labels else [])
