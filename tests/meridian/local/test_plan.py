"""The local stack's model pipeline steps (meridian/local/plan.py) are the cluster's commands
with local paths: the localizer's real argument parser accepts them, and the ServerApp gets the
environment that makes it publish. (tests/components/k8s/test_localizer.py holds them equal to
the Kubernetes objects.)"""

from __future__ import annotations

from pathlib import Path

from components.config import load_stack
from meridian.local.plan import LocalPlan
from workloads import contract
from workloads.localization.__main__ import build_parser


def test_each_regions_pass_is_the_localizers_follow_with_file_urls(tmp_path: Path) -> None:
    config = load_stack("local")
    plan = LocalPlan(config, tmp_path, "python3", quick=True)
    for region in config.regions:
        argv = plan.localizer_argv(region.name)
        assert argv[:4] == ["python3", "-m", "workloads.localization", "follow"]
        args = build_parser().parse_args(argv[3:])
        assert (args.command, args.region, args.task) == ("follow", region.name, config.federation.task)
        assert args.global_registry == (tmp_path / "registry" / "global").as_uri()
        assert args.store == (tmp_path / "registry" / region.name).as_uri()
        assert args.data_url == (tmp_path / "data" / region.name).as_uri()
        assert args.global_key == tmp_path / "keys" / config.home / contract.TRUSTED_KEY_FILE
        assert args.signing_key == str(tmp_path / "keys" / region.name / contract.SIGNING_KEY_FILE)
        assert (args.finetune_epochs, args.recovery_epochs) == (1, 1)  # --quick


def test_the_server_app_publishes_to_the_global_registry_signed_by_the_home(tmp_path: Path) -> None:
    config = load_stack("local")
    assert LocalPlan(config, tmp_path, "python3", quick=False).publish_env() == {
        contract.ENV_GLOBAL_STORE_URL: (tmp_path / "registry" / "global").as_uri(),
        contract.ENV_SIGNING_KEY: str(tmp_path / "keys" / config.home / contract.SIGNING_KEY_FILE),
    }


def test_the_drills_candidate_is_the_localizers_localize_under_the_next_version(tmp_path: Path) -> None:
    config = load_stack("local")
    plan = LocalPlan(config, tmp_path, "python3", quick=True)
    weights = tmp_path / "global.safetensors"
    for shuffle in (False, True):
        argv = plan.candidate_argv("local-us", weights, "20261130.101500.1", "20261130.101500", shuffle)
        assert argv[:4] == ["python3", "-m", "workloads.localization", "localize"]
        args = build_parser().parse_args(argv[3:])
        assert (args.region, args.version, args.parent_version) == ("local-us", "20261130.101500.1", "20261130.101500")
        assert (args.global_model, args.data_dir) == (weights, tmp_path / "data" / "local-us")
        assert args.store == (tmp_path / "registry" / "local-us").as_uri()
        assert args.signing_key == str(tmp_path / "keys" / "local-us" / contract.SIGNING_KEY_FILE)
        assert args.shuffle_labels is shuffle
