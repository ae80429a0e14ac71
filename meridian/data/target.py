"""Which bucket holds a region's data: the one the stack's own outputs name, never a URL typed by hand.

The program exports `regions.<name>.dataUrl` per region (components/fleet.py). Cloud buckets
are auto-named by Pulumi at `pulumi up` (a random suffix: components/aws/storage.py,
components/gcp/storage.py), so for `aws` and `gcp` regions the outputs are the only source of
truth: `--outputs FILE` (what `pulumi stack output --json --stack STACK` printed) or, when the
Pulumi CLI is installed, that command run here. A `kubernetes` region (an existing cluster) names
its data volume in the stack file itself (components/existing_cluster.py: `pvc://<claim>`); it
is not a bucket, so it is refused with what to do instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.catalog import Cloud, Residency
from components.config import STACKS_DIR, ConfigError, Region, load_stack, stack_file
from meridian.data.errors import DataRefused

ROOT = STACKS_DIR.parent
# The URL scheme of each cloud's data bucket, as components/aws/region.py and
# components/gcp/region.py build `dataUrl`.
BUCKET_SCHEMES: dict[Cloud, str] = {Cloud.AWS: "s3", Cloud.GCP: "gs"}


@dataclass(frozen=True)
class DataTarget:
    """A region's data bucket, with what the residency check needs to know about the region."""

    stack: str
    stack_source: str  # stacks/Pulumi.<stack>.yaml, for messages
    region: str
    cloud: Cloud
    residency: Residency
    url: str  # s3://bucket[/prefix] or gs://bucket[/prefix]

    @property
    def bucket(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]


def _source(stack: str, stacks_dir: Path) -> str:
    path = stack_file(stack, stacks_dir)
    return f"stacks/{path.name}" if stacks_dir == STACKS_DIR else str(path)


def find_region(stack: str, region: str, stacks_dir: Path = STACKS_DIR) -> Region:
    """The stack's region of that name; refused (naming the stack file and its regions) otherwise."""
    try:
        config = load_stack(stack, stacks_dir)
    except ConfigError as err:
        raise DataRefused(str(err)) from None
    for candidate in config.regions:
        if candidate.name == region:
            return candidate
    names = ", ".join(r.name for r in config.regions)
    raise DataRefused(f"region {region!r} is not in {_source(stack, stacks_dir)}; its regions: {names}")


def stack_outputs(stack: str, outputs_file: Path | None) -> tuple[dict[str, Any], str]:
    """(outputs, where they came from): the file given, else `pulumi stack output --json`."""
    if outputs_file is not None:
        try:
            document = json.loads(outputs_file.read_text())
        except OSError as err:
            raise DataRefused(f"--outputs {outputs_file}: cannot read it ({err.strerror})") from None
        except json.JSONDecodeError as err:
            raise DataRefused(f"--outputs {outputs_file}: not JSON ({err})") from None
        source = str(outputs_file)
    else:
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise DataRefused(
                f"stack {stack}: its buckets are named by Pulumi at `pulumi up`, and no Pulumi CLI is "
                f"installed here: pass --outputs FILE, written by `pulumi stack output --json --stack {stack} > FILE`"
            )
        command = [pulumi, "stack", "output", "--json", "--stack", stack]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DataRefused(f"`{' '.join(command[1:])}` failed: {done.stderr.strip() or done.stdout.strip()}")
        document = json.loads(done.stdout)
        source = f"`pulumi stack output --json --stack {stack}`"
    if not isinstance(document, dict):
        raise DataRefused(f"{source}: expected the JSON object `pulumi stack output --json` prints")
    return document, source


def resolve_target(
    stack: str, region: str, outputs_file: Path | None = None, stacks_dir: Path = STACKS_DIR
) -> DataTarget:
    """The data bucket of `region` in `stack`, or DataRefused saying why there is none to write to."""
    config_region = find_region(stack, region, stacks_dir)
    source = _source(stack, stacks_dir)
    if config_region.cloud is Cloud.KUBERNETES:
        target = config_region.kubernetes
        assert target is not None  # the config model requires the block for `kubernetes` regions
        raise DataRefused(
            f"region {region} of {source} is an existing cluster: its data lives in the "
            f"PersistentVolumeClaim {target.data_volume_claim!r} (context {target.context}), not a bucket; "
            "copy it there with `kubectl cp` into a pod that mounts that claim"
        )
    outputs, outputs_source = stack_outputs(stack, outputs_file)
    regions = outputs.get("regions")
    entry = regions.get(region) if isinstance(regions, dict) else None
    url = entry.get("dataUrl") if isinstance(entry, dict) else None
    if not isinstance(url, str):
        raise DataRefused(
            f"{outputs_source} has no regions.{region}.dataUrl: are these the outputs of stack {stack} "
            f"after `pulumi up --stack {stack}`?"
        )
    scheme = BUCKET_SCHEMES[config_region.cloud]
    if not url.startswith(f"{scheme}://") or not url[len(scheme) + 3 :].split("/", 1)[0]:
        raise DataRefused(
            f"{outputs_source}: regions.{region}.dataUrl is {url!r}, but region {region} is on "
            f"{config_region.cloud} in {source}, whose data bucket is a {scheme}:// URL: outputs of another stack?"
        )
    return DataTarget(
        stack=stack,
        stack_source=source,
        region=region,
        cloud=config_region.cloud,
        residency=config_region.residency,
        url=url.rstrip("/"),
    )
