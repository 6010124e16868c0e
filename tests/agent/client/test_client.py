"""The API client against the real stack, and its pure helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.client import AgentApiClient, ApiRequestError, ApiTarget, ApiTargetError, resolve_target
from agent.client.cursors import CursorStore
from agent.client.models import MilestoneOut
from agent.client.plan import PlanDocument, parse_plan_document, plan_document, plan_edit_between
from agent.config import Settings
from agent.contract.breakpoints import ResumeAction
from agent.contract.protocol import MessageKind
from agent.contract.task import MilestoneSpec
from agent.events.types import BreakpointKind, EventType, MilestoneStatus, TaskStatus
from agent.stack.info import StackInfo
from tests.agent.client.stack import RunningStack

GOAL = "Write a short report on durable execution [milestones=2]"


def _milestone(key: str, depends_on: list[str] | None = None) -> MilestoneOut:
    return MilestoneOut(
        id=uuid.uuid4(),
        key=key,
        title=f"Title {key}",
        description="",
        depends_on=depends_on or [],
        status=MilestoneStatus.PENDING,
    )


async def test_task_with_breakpoint_streams_pauses_resumes_and_completes(
    stack: RunningStack,
) -> None:
    # Arrange
    async with AgentApiClient(stack.target) as api:
        task = await api.create_task(GOAL, breakpoints=[BreakpointKind.AFTER_PLAN])
        seqs: list[int] = []
        resumed = False
        # Act
        async for message in api.stream_events(task.id):
            if message.kind is not MessageKind.EVENT or message.event is None:
                continue
            assert message.cursor is not None
            seqs.append(message.cursor)
            if message.event.type is EventType.TASK_PAUSED and not resumed:
                detail = await api.get_task(task.id)
                assert detail.paused is not None
                await api.resume(task.id, detail.paused.breakpoint_id, ResumeAction.CONTINUE)
                resumed = True
            if message.event.type is EventType.TASK_COMPLETED:
                break
        final = await api.get_task(task.id)
        page = await api.list_events(task.id, after_seq=0, limit=500)

    # Assert
    assert resumed
    assert final.status is TaskStatus.COMPLETED
    assert final.result
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e.sequence_number for e in page.items] == seqs


async def test_stream_resumes_after_a_cursor_without_repeats(stack: RunningStack) -> None:
    # Arrange
    async with AgentApiClient(stack.target) as api:
        task = await api.create_task(GOAL, breakpoints=[BreakpointKind.AFTER_PLAN])
        first: list[int] = []
        async for message in api.stream_events(task.id):
            if message.kind is MessageKind.EVENT and message.cursor is not None:
                first.append(message.cursor)
                if message.event is not None and message.event.type is EventType.TASK_PAUSED:
                    break

        # Act
        later: list[int] = []
        async for message in api.stream_events(task.id, after_seq=first[-1]):
            if message.kind is MessageKind.CAUGHT_UP:
                break
            if message.kind is MessageKind.EVENT and message.cursor is not None:
                later.append(message.cursor)

    # Assert
    assert first == list(range(1, len(first) + 1))
    assert later == []


async def test_errors_carry_status_and_code(stack: RunningStack) -> None:
    # Arrange
    bad = ApiTarget(url=stack.api_url, api_key=SecretStr("agk_nope"))

    # Act / Assert
    async with AgentApiClient(stack.target) as api:
        with pytest.raises(ApiRequestError) as missing:
            await api.get_task(uuid.uuid4())
    async with AgentApiClient(bad) as api:
        with pytest.raises(ApiRequestError) as refused:
            await api.list_tasks()
    assert missing.value.status == 404
    assert refused.value.status == 401


async def test_console_config_names_the_temporal_ui(stack: RunningStack) -> None:
    async with AgentApiClient(stack.target) as api:
        config = await api.console_config()
    assert config.temporal_ui_url == stack.settings.temporal_ui_url


def test_target_prefers_environment_then_stack_file(tmp_path: Path) -> None:
    # Arrange
    info = StackInfo(
        api_url="http://127.0.0.1:9999/",
        temporal_address="127.0.0.1:7233",
        temporal_namespace="default",
        temporal_ui_url="http://127.0.0.1:8233",
        task_queue="q",
        database_url="postgresql://x@127.0.0.1/db",
        redis_url=None,
        llm_base_url=None,
        api_key="agk_from_stack",
        pid=1,
        started_at=datetime.now(UTC),
    )
    info.write(tmp_path)
    from_env = Settings(
        _env_file=None,
        api_url="http://api.example:8000",
        api_key=SecretStr("agk_env"),
    )
    from_file = Settings(_env_file=None, data_dir=tmp_path)

    # Act
    env_target = resolve_target(from_env, tmp_path)
    file_target = resolve_target(from_file)

    # Assert
    assert env_target.url == "http://api.example:8000"
    assert env_target.api_key.get_secret_value() == "agk_env"
    assert file_target.url == "http://127.0.0.1:9999"
    assert file_target.api_key.get_secret_value() == "agk_from_stack"
    assert file_target.workflow_url("task-1") == (
        "http://127.0.0.1:8233/namespaces/default/workflows/task-1"
    )
    with pytest.raises(ApiTargetError, match="AGENT_API_URL"):
        resolve_target(Settings(_env_file=None, data_dir=tmp_path / "none"))


def test_cursor_store_round_trips(tmp_path: Path) -> None:
    store = CursorStore(tmp_path)
    task_id = uuid.uuid4()
    assert store.load(task_id) == 0
    store.save(task_id, 17)
    assert store.load(task_id) == 17
    assert store.path(task_id) == tmp_path / "follow" / f"{task_id}.seq"


def test_plan_edit_between_finds_adds_removes_and_changes() -> None:
    # Arrange
    before = [_milestone("a"), _milestone("b", ["a"]), _milestone("c", ["a"])]
    after = PlanDocument(
        milestones=[
            MilestoneSpec(key="a", title="Title a"),
            MilestoneSpec(key="b", title="Renamed", depends_on=[]),
            MilestoneSpec(key="d", title="New", depends_on=["b"]),
        ]
    )

    # Act
    edit = plan_edit_between(before, after)

    # Assert
    assert edit is not None
    assert [m.key for m in edit.add] == ["d"]
    assert edit.remove == ["c"]
    assert len(edit.change) == 1
    change = edit.change[0]
    assert (change.key, change.title, change.depends_on, change.description) == (
        "b",
        "Renamed",
        [],
        None,
    )


def test_unchanged_plan_document_is_no_edit() -> None:
    before = [_milestone("a"), _milestone("b", ["a"])]
    assert plan_edit_between(before, parse_plan_document(plan_document(before))) is None
