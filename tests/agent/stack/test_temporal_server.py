from pathlib import Path

from agent.stack.temporal_server import TemporalDevServer, project_search_attributes


def _values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def test_command_registers_every_search_attribute_and_keeps_state_in_data_dir(
    tmp_path: Path,
) -> None:
    server = TemporalDevServer(data_dir=tmp_path, port=17233, ui_port=18233)

    args = server.command({"TaskStatus": "Keyword", "CostUsd": "Double"})

    assert args[1:3] == ["server", "start-dev"]
    assert _values(args, "--search-attribute") == ["CostUsd=Double", "TaskStatus=Keyword"]
    assert _values(args, "--db-filename") == [str(tmp_path / "temporal" / "temporal.db")]
    assert _values(args, "--port") == ["17233"]
    assert _values(args, "--ui-port") == ["18233"]
    assert "--headless" not in args
    assert server.ui_url == "http://127.0.0.1:18233"
    assert _values(args, "--dynamic-config-value") == ["system.enableActivityEagerExecution=true"]


def test_command_without_ui_is_headless_and_creates_custom_namespace(tmp_path: Path) -> None:
    server = TemporalDevServer(data_dir=tmp_path, port=17233, ui_port=None, namespace="agents")

    args = server.command({})

    assert "--headless" in args
    assert "--ui-port" not in args
    assert _values(args, "--namespace") == ["agents"]
    assert server.ui_url is None


def test_project_search_attributes_use_dev_server_type_names() -> None:
    attributes = project_search_attributes()

    assert attributes["TaskStatus"] == "Keyword"
    assert set(attributes.values()) <= {
        "Text",
        "Keyword",
        "Int",
        "Double",
        "Bool",
        "Datetime",
        "KeywordList",
    }
