"""`meridian diff`: the offline preview at a git ref against the working tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from meridian.diff import ROOT, DiffError, changed_keys, compare, diff_stack, markdown


def test_changed_keys_name_the_nested_inputs_that_differ() -> None:
    old = {"scalingConfig": {"minSize": 1.0, "maxSize": 2.0}, "tags": {"a": "1"}, "gone": 1}
    new = {"scalingConfig": {"minSize": 1.0, "maxSize": 4.0}, "tags": {"a": "1"}, "added": 2}
    assert changed_keys(old, new) == ["added", "gone", "scalingConfig.maxSize"]


def test_compare_sorts_resources_into_added_removed_changed() -> None:
    base = {"resources": [
        {"type": "t", "name": "kept", "inputs": {"x": 1}},
        {"type": "t", "name": "edited", "inputs": {"x": 1}},
        {"type": "t", "name": "dropped", "inputs": {}},
    ]}  # fmt: skip
    head = {"resources": [
        {"type": "t", "name": "kept", "inputs": {"x": 1}},
        {"type": "t", "name": "edited", "inputs": {"x": 2}},
        {"type": "u", "name": "new", "inputs": {}},
    ]}  # fmt: skip
    diff = compare("dev", "main", "0" * 40, base, head)
    assert diff.added == [("u", "new")] and diff.removed == [("t", "dropped")]
    assert diff.changed == [("t", "edited", ["x"])] and diff.unchanged == 1
    text = markdown(diff)
    assert "**1 to add, 1 to change, 1 to delete**, 1 unchanged." in text
    assert "| `t` | `edited` | `x` |" in text


def test_a_bad_ref_is_a_clear_error() -> None:
    with pytest.raises(DiffError, match="rev-parse"):
        diff_stack("dev", "no-such-ref-anywhere")


@pytest.mark.slow
def test_raising_a_gpu_bound_in_a_commit_shows_the_node_pool_change_and_its_cost(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(ROOT), str(repo)], check=True)
    stack_file = repo / "stacks" / "Pulumi.dev.yaml"
    before = stack_file.read_text()
    after = before.replace("min: 0, desired: 1, max: 2, spot: true}", "min: 0, desired: 1, max: 6, spot: true}", 1)
    assert after != before
    stack_file.write_text(after)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "commit", "--quiet", "-am", "more GPUs in us-east-1"], check=True)

    diff = diff_stack("dev", "HEAD~1", repo=repo)

    assert diff.added == [] and diff.removed == []
    changed = {name: keys for type_, name, keys in diff.changed if type_ == "kubernetes:karpenter.sh/v1:NodePool"}
    assert changed == {"us-east-1-karpenter-gpu-pool": ["spec.limits.nvidia.com/gpu"]}, diff.changed
    assert diff.head_cost.gpus_max == diff.base_cost.gpus_max + 4
    assert diff.head_cost.usd_hour_max > diff.base_cost.usd_hour_max
    assert "GPUs at max scale | 4 | 8 | +4 |" in markdown(diff)
    worktrees = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True, check=True)
    assert len(worktrees.stdout.splitlines()) == 1  # the base worktree was removed
