from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config import Settings
from agent.contract.tools import ToolRetry
from agent.tools.config import HttpServer, StdioServer, load_tools_config, parse_tools_config
from agent.tools.errors import ToolsConfigError


def _text(servers: dict[str, object]) -> str:
    return json.dumps({"mcpServers": servers})


def test_parses_stdio_and_http_servers_with_policy_defaults() -> None:
    # Arrange
    text = _text(
        {
            "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "env": {}},
            "docs": {"url": "http://127.0.0.1:9000/mcp", "headers": {"X-Key": "k"}},
        }
    )

    # Act
    config = parse_tools_config(text)

    # Assert
    time, docs = config.servers["time"], config.servers["docs"]
    assert isinstance(time, StdioServer)
    assert time.args == ("--local-timezone", "UTC")
    assert isinstance(docs, HttpServer)
    assert docs.headers == {"X-Key": "k"}
    assert (time.allow, time.approve, time.deny) == (None, (), ())
    assert time.retry is ToolRetry.NEVER
    assert time.timeout_seconds == 30.0


def test_policy_keys_sit_next_to_command() -> None:
    # Arrange
    text = _text(
        {
            "c": {
                "command": "x",
                "allow": ["a", "b"],
                "approve": ["b"],
                "deny": ["c"],
                "retry": "safe",
                "timeout_seconds": 2.5,
            }
        }
    )

    # Act
    server = parse_tools_config(text).servers["c"]

    # Assert
    assert server.allow == ("a", "b")
    assert server.approve == ("b",)
    assert server.retry is ToolRetry.SAFE
    assert server.timeout_seconds == 2.5
    assert [server.permits(name) for name in ("a", "b", "c", "d")] == [True, True, False, False]


def test_disabled_servers_are_left_out() -> None:
    config = parse_tools_config(_text({"off": {"command": "x", "disabled": True}}))

    assert config.servers == {}


@pytest.mark.parametrize(
    ("entry", "server", "field", "words"),
    [
        ({"command": "x", "retry": "sometimes"}, "time", "retry", "'safe' or 'never'"),
        ({"command": "x", "timeout_seconds": 0}, "time", "timeout_seconds", "greater than 0"),
        ({"command": "x", "aprove": ["a"]}, "time", "aprove", "unknown key"),
        ({"command": "x", "allow": "a"}, "time", "allow", "tuple"),
        ({"url": "ftp://host/mcp"}, "time", "url", "http(s)://"),
        ({"command": ""}, "time", "command", "at least 1"),
    ],
)
def test_a_bad_field_is_named_with_its_server(
    entry: dict[str, object], server: str, field: str, words: str
) -> None:
    # Act
    with pytest.raises(ToolsConfigError) as caught:
        parse_tools_config(_text({server: entry}), "mcp.json")

    # Assert
    assert (caught.value.server, caught.value.field) == (server, field)
    message = str(caught.value)
    assert message.startswith(f"mcp.json: mcpServers.{server}.{field}: ")
    assert words in message


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"command": "x", "url": "http://h/mcp"}, "keep one"),
        ({"args": []}, "needs `command`"),
        ({"command": "x", "allow": ["a"], "deny": ["a"]}, "both allowed and denied: a"),
        ({"command": "x", "approve": ["a"], "deny": ["a"]}, "both denied and needing approval"),
        ({"command": "x", "allow": ["a"], "approve": ["b"]}, "needing approval but not allowed: b"),
        ("mcp-server-time", "must be an object"),
    ],
)
def test_a_bad_server_entry_is_named(entry: object, words: str) -> None:
    with pytest.raises(ToolsConfigError) as caught:
        parse_tools_config(_text({"time": entry}))

    assert caught.value.server == "time"
    assert "mcpServers.time" in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize("name", ["a.b", "a__b", "-a", "a b", ""])
def test_a_server_name_must_fit_in_function_names(name: str) -> None:
    with pytest.raises(ToolsConfigError, match="server name") as caught:
        parse_tools_config(_text({name: {"command": "x"}}))

    assert caught.value.server == name


@pytest.mark.parametrize("text", ["{", "[]", '{"servers": {}}', '{"mcpServers": []}'])
def test_a_document_of_the_wrong_shape_is_refused(text: str) -> None:
    with pytest.raises(ToolsConfigError, match=r"^AGENT_MCP_SERVERS: "):
        parse_tools_config(text)


def test_loads_from_the_variable_or_the_file(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "mcp.json"
    path.write_text(_text({"from_file": {"command": "x"}}), encoding="utf-8")

    # Act
    from_variable = load_tools_config(Settings(mcp_servers=_text({"from_env": {"command": "x"}})))
    from_file = load_tools_config(Settings(mcp_config=path))
    neither = load_tools_config(Settings())

    # Assert
    assert list(from_variable.servers) == ["from_env"]
    assert list(from_file.servers) == ["from_file"]
    assert neither.servers == {}


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolsConfigError, match=r"AGENT_MCP_CONFIG: cannot read .*absent\.json"):
        load_tools_config(Settings(mcp_config=tmp_path / "absent.json"))


def test_a_file_with_bad_content_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(_text({"t": {"command": "x", "retry": "no"}}), encoding="utf-8")

    with pytest.raises(ToolsConfigError, match=rf"^{path}: mcpServers\.t\.retry: "):
        load_tools_config(Settings(mcp_config=path))


def test_setting_both_sources_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENT_MCP_SERVERS", _text({}))
    monkeypatch.setenv("AGENT_MCP_CONFIG", str(tmp_path / "mcp.json"))

    with pytest.raises(ValidationError, match="AGENT_MCP_SERVERS or AGENT_MCP_CONFIG, not both"):
        Settings()
