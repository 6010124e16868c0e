import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from agent.cli.errors import format_validation_error, setting_name, settings_problems
from agent.config import Settings


def test_setting_name_maps_nested_locations_to_env_names() -> None:
    assert setting_name(("database_url",)) == "AGENT_DATABASE_URL"
    assert setting_name(("model_prices", "gpt", "input_per_million")) == (
        "AGENT_MODEL_PRICES__GPT__INPUT_PER_MILLION"
    )


def test_each_bad_setting_gives_one_line_naming_it_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_DATABASE_URL", "mysql://secret-password@db/x")
    monkeypatch.setenv("AGENT_API_PORT", "99999")

    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None)
    lines = format_validation_error(error.value)

    assert sorted(lines) == sorted(
        [
            "AGENT_DATABASE_URL: must be a postgresql:// URL",
            "AGENT_API_PORT: Input should be less than or equal to 65535",
        ]
    )
    assert all("secret-password" not in line for line in lines)


def test_remote_llm_without_key_is_a_problem() -> None:
    settings = Settings(_env_file=None, llm_base_url="https://api.openai.com/v1")

    assert settings_problems(settings) == [
        "AGENT_LLM_API_KEY: is required when AGENT_LLM_BASE_URL points at a remote provider"
    ]


def test_local_llm_without_key_and_remote_with_key_are_fine() -> None:
    local = Settings(_env_file=None, llm_base_url="http://127.0.0.1:9000/v1")
    remote = Settings(
        _env_file=None, llm_base_url="https://api.openai.com/v1", llm_api_key=SecretStr("k")
    )

    assert settings_problems(local) == []
    assert settings_problems(remote) == []


def test_agent_up_with_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AGENT_REDIS_URL": "http://not-redis"}

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from agent.cli.main import main; main()",
            "up",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == "error: invalid setting AGENT_REDIS_URL: must be a redis:// URL"
    assert not (tmp_path / "data").exists()
