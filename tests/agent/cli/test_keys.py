"""`agent keys create`, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from agent.cli.main import app
from agent.config import get_settings
from agent.db.models import ApiKey, User
from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.users import UserRepository
from agent.stack.info import StackInfo

PEPPER = "cli-test-pepper"
KEY_LINE = re.compile(r"^agk_[A-Za-z0-9_-]{32}$")
UNREACHABLE_DATABASE_URL = "postgresql://postgres@127.0.0.1:1/none"
CLI = [sys.executable, "-c", "from agent.cli.main import main; main()"]


async def _run_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    full_env = {**base, "AGENT_API_KEY_PEPPER": PEPPER, "AGENT_DATA_DIR": str(cwd), **env}
    process = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        cwd=cwd,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        list(args), process.returncode, stdout.decode(), stderr.decode()
    )


def _stack_info(database_url: str, pid: int) -> StackInfo:
    return StackInfo(
        api_url="http://127.0.0.1:1",
        temporal_address="127.0.0.1:2",
        temporal_namespace="default",
        temporal_ui_url=None,
        task_queue="q",
        database_url=database_url,
        redis_url=None,
        llm_base_url=None,
        api_key="agk_x",
        pid=pid,
        started_at=datetime.now(UTC),
    )


async def _owner_of(session_manager: DatabaseSessionManager, key: str) -> str | None:
    async with session_manager.session() as session:
        user_id = await ApiKeyRepository(session, SecretStr(PEPPER)).resolve(key)
        if user_id is None:
            return None
        user = await UserRepository(session).get_by_id(user_id)
        return user.name if user is not None else None


async def test_create_prints_the_key_alone_and_it_resolves(
    tmp_path: Path, database_url: str, session_manager: DatabaseSessionManager
) -> None:
    # Arrange
    env = {"AGENT_DATABASE_URL": database_url}

    # Act
    first = await _run_cli(tmp_path, env, "keys", "create", "--user", "carol", "--name", "laptop")
    second = await _run_cli(tmp_path, env, "keys", "create", "--user", "carol")

    # Assert
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 1
    assert KEY_LINE.match(lines[0])
    assert "shown only this once" in first.stderr
    assert lines[0] not in first.stderr
    assert second.stdout != first.stdout
    assert await _owner_of(session_manager, lines[0]) == "carol"
    assert await _owner_of(session_manager, second.stdout.strip()) == "carol"
    async with session_manager.session() as session:
        labels = (await session.execute(select(ApiKey.name).order_by(ApiKey.created_at))).all()
        users = (
            await session.execute(select(func.count()).where(User.name == "carol"))
        ).scalar_one()
    assert [label for (label,) in labels] == ["laptop", None]
    assert users == 1


async def test_uses_the_database_of_a_running_stack(
    tmp_path: Path, database_url: str, session_manager: DatabaseSessionManager
) -> None:
    # Arrange: this test process stands in for a running `agent up`.
    _stack_info(database_url, os.getpid()).write(tmp_path)

    # Act
    result = await _run_cli(tmp_path, {}, "keys", "create", "--user", "erin")

    # Assert
    assert result.returncode == 0, result.stderr
    assert await _owner_of(session_manager, result.stdout.strip()) == "erin"


async def test_create_admin_makes_an_admin_key(
    tmp_path: Path, database_url: str, session_manager: DatabaseSessionManager
) -> None:
    env = {"AGENT_DATABASE_URL": database_url}

    admin = await _run_cli(tmp_path, env, "keys", "create", "--user", "ops", "--admin")
    plain = await _run_cli(tmp_path, env, "keys", "create", "--user", "ops")

    assert admin.returncode == plain.returncode == 0, admin.stderr + plain.stderr
    assert "admin key" in admin.stderr
    async with session_manager.session() as session:
        repo = ApiKeyRepository(session, SecretStr(PEPPER))
        admin_grant = await repo.lookup(admin.stdout.strip())
        plain_grant = await repo.lookup(plain.stdout.strip())
    assert admin_grant is not None
    assert admin_grant.is_admin
    assert plain_grant is not None
    assert not plain_grant.is_admin


async def test_list_revoke_rotate(
    tmp_path: Path, database_url: str, session_manager: DatabaseSessionManager
) -> None:
    env = {"AGENT_DATABASE_URL": database_url}
    first = (await _run_cli(tmp_path, env, "keys", "create", "--user", "gus")).stdout.strip()
    second = (
        await _run_cli(tmp_path, env, "keys", "create", "--user", "gus", "--name", "ci")
    ).stdout.strip()

    listed = await _run_cli(tmp_path, env, "keys", "list", "--user", "gus")
    revoked = await _run_cli(tmp_path, env, "keys", "revoke", first[:12])
    rotated = await _run_cli(tmp_path, env, "keys", "rotate", second[:12])
    unknown = await _run_cli(tmp_path, env, "keys", "revoke", "agk_missing")
    after = await _run_cli(tmp_path, env, "keys", "list", "--user", "gus", "--all")

    assert listed.returncode == revoked.returncode == rotated.returncode == 0, listed.stderr
    assert first[:12] in listed.stdout
    assert second[:12] in listed.stdout
    assert first not in listed.stdout
    assert second not in listed.stdout
    new = rotated.stdout.strip()
    assert KEY_LINE.match(new)
    assert unknown.returncode == 1
    assert "no single key" in unknown.stderr
    assert await _owner_of(session_manager, first) is None
    assert await _owner_of(session_manager, second) is None
    assert await _owner_of(session_manager, new) == "gus"
    assert len(after.stdout.splitlines()) == 4  # header, two revoked, the replacement


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """In-process CLI runs: no AGENT_* from outside, no .env, fresh settings."""
    for name in list(os.environ):
        if name.startswith("AGENT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_without_a_database_exits_2_with_one_line(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--user", "frank"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "AGENT_DATABASE_URL" in result.stderr


def test_a_stale_stack_file_is_not_used(cli_env: Path, database_url: str) -> None:
    # Arrange: a stack file whose process has exited.
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    _stack_info(database_url, int(finished.stdout)).write(cli_env)

    # Act
    result = CliRunner().invoke(app, ["keys", "create", "--user", "gina"])

    # Assert
    assert result.exit_code == 2
    assert "not running" in result.stderr
    assert result.stdout == ""


def test_an_unreadable_stack_file_is_reported(cli_env: Path) -> None:
    (cli_env / "stack.json").write_text("{not json")
    result = CliRunner().invoke(app, ["keys", "create", "--user", "hal"])
    assert result.exit_code == 2
    assert "unreadable" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--user", ""],
        ["--user", "   "],
        ["--user", "x" * 256],
        ["--user", "a", "--name", "n" * 256],
    ],
)
def test_rejects_bad_names(cli_env: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app, ["keys", "create", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
