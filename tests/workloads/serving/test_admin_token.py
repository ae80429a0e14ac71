"""The admin token: read from the file a Kubernetes Secret is mounted as, re-read when the
kubelet swaps the Secret's files in place, the replaced token accepted for a grace period and
refused after it: unit by unit, then under a running server's admin listener (no restart)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.workloads.serving.mounted_secret import MountedSecret
from tests.workloads.serving.support import LOAD, MODEL, Registry, app_for, listening, make_registry
from workloads import contract
from workloads.serving.admin_token import DEFAULT_GRACE_S, AdminToken


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rotated_token_is_accepted_at_once_and_the_replaced_one_only_within_the_grace_period(
    tmp_path: Path,
) -> None:
    secret = MountedSecret(tmp_path / "admin", "token", "first")
    clock = Clock()
    token = AdminToken(path=secret.path, grace_s=60, clock=clock)
    assert token.accepts("first") and not token.accepts("second") and not token.accepts("")
    secret.update("second")
    assert token.accepts("second") and token.accepts("first")
    clock.now += 59
    assert token.accepts("first")
    clock.now += 2
    assert not token.accepts("first") and token.accepts("second")
    assert token.current() == "second"


def test_a_token_file_caught_empty_mid_update_keeps_the_current_token(tmp_path: Path) -> None:
    secret = MountedSecret(tmp_path / "admin", "token", "first")
    token = AdminToken(path=secret.path, grace_s=60)
    secret.update("")
    assert token.accepts("first") and token.current() == "first"
    secret.update("second")
    assert token.current() == "second"


def test_the_token_file_wins_over_the_variable_and_the_grace_period_comes_from_the_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    path.write_text("from-the-secret\n")
    environ = {contract.ENV_ADMIN_TOKEN_FILE: str(path), contract.ENV_ADMIN_TOKEN: "from-env"}
    from_file = AdminToken.from_environ(environ)
    assert from_file is not None and from_file.current() == "from-the-secret"
    from_env = AdminToken.from_environ({contract.ENV_ADMIN_TOKEN: "from-env"})
    assert from_env is not None and from_env.accepts("from-env")
    assert AdminToken.from_environ({}) is None
    assert DEFAULT_GRACE_S == 600


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "cannot read the admin token"),
        ("empty", "the admin token file is empty"),
        ("bad grace", f"{contract.ENV_ADMIN_TOKEN_GRACE_S}='soon': not a number of seconds"),
    ],
)
def test_an_unusable_token_file_or_grace_period_stops_the_process_naming_it(
    tmp_path: Path, setup: str, message: str
) -> None:
    path = tmp_path / "token"
    environ = {contract.ENV_ADMIN_TOKEN_FILE: str(path)}
    if setup == "empty":
        path.write_text("  \n")
    if setup == "bad grace":
        path.write_text("token")
        environ[contract.ENV_ADMIN_TOKEN_GRACE_S] = "soon"
    with pytest.raises(SystemExit, match=message):
        AdminToken.from_environ(environ)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path, {"v1": 1})


def test_a_running_server_takes_the_rotated_token_and_refuses_the_replaced_one_after_the_grace_period(
    registry: Registry, tmp_path: Path
) -> None:
    secret = MountedSecret(tmp_path / "admin", "token", "before")
    clock = Clock()
    app = app_for(registry, tmp_path / "cache", admin_token=AdminToken(path=secret.path, grace_s=600, clock=clock))
    metadata = f"/v2/models/{MODEL}"

    def status(client: httpx.Client, token: str) -> int:
        return client.get(metadata, headers={"authorization": f"Bearer {token}"}).status_code

    with listening(app) as urls, httpx.Client(base_url=str(urls.admin)) as admin:
        assert (status(admin, "before"), status(admin, "after")) == (200, 401)
        secret.update("after")
        assert (status(admin, "after"), status(admin, "before")) == (200, 200), "both, during the grace period"
        clock.now += 601
        assert (status(admin, "after"), status(admin, "before")) == (200, 401)
        loaded = admin.post(LOAD, json={"parameters": {"stable": "v1"}}, headers={"authorization": "Bearer after"})
    assert loaded.status_code == 200
