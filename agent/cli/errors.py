"""Turning bad settings into one clear line per setting, for every command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError

from agent.config import Settings, get_settings

SETTINGS_ERROR_EXIT_CODE = 2
ENV_PREFIX = "AGENT_"
# pydantic-settings joins nested fields (e.g. model_prices.gpt.input_per_million) with this.
NESTED_DELIMITER = "__"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_VALUE_ERROR_PREFIX = "Value error, "


def setting_name(location: Sequence[int | str]) -> str:
    """Name of the environment variable a validation error's location refers to.

    Args:
        location: The error's `loc`, e.g. `("model_prices", "gpt-4o", "input_per_million")`.

    Returns:
        e.g. `AGENT_MODEL_PRICES__GPT-4O__INPUT_PER_MILLION`; `AGENT_*` when empty.
    """
    if not location:
        return f"{ENV_PREFIX}*"
    first = str(location[0])
    if first.startswith((ENV_PREFIX, "TEMPORAL_")):
        # A field read under an explicit variable name (see `Settings.temporal_*`).
        return NESTED_DELIMITER.join([first, *(str(part).upper() for part in location[1:])])
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in location)


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per bad setting, naming its variable; never echoes values (may be secrets).

    Args:
        error: What `Settings()` raised.

    Returns:
        Lines like `AGENT_DATABASE_URL: must be a postgresql:// URL`.
    """
    lines: list[str] = []
    for detail in error.errors(include_url=False, include_input=False):
        message = str(detail["msg"]).removeprefix(_VALUE_ERROR_PREFIX)
        line = f"{setting_name(detail['loc'])}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


def _is_remote(url: str) -> bool:
    host = urlsplit(url).hostname
    return host is not None and host not in _LOCAL_HOSTS


def settings_problems(settings: Settings) -> list[str]:
    """Combinations of valid values that still cannot work, one line each.

    Args:
        settings: Validated settings.

    Returns:
        Lines naming the setting to fix; empty when all is well.
    """
    problems: list[str] = []
    if (
        settings.llm_base_url is not None
        and _is_remote(settings.llm_base_url)
        and settings.llm_api_key is None
    ):
        problems.append(
            f"{ENV_PREFIX}LLM_API_KEY: is required when {ENV_PREFIX}LLM_BASE_URL points at a "
            "remote provider"
        )
    return problems


def load_settings_or_exit(**overrides: Any) -> Settings:
    """Read and check the settings, or print one line per bad setting and exit with 2.

    Args:
        overrides: Field values that take precedence over the environment (CLI flags).

    Returns:
        The settings.

    Raises:
        typer.Exit: With code 2 when any setting is invalid.
    """
    try:
        settings = Settings(**overrides) if overrides else get_settings()
    except ValidationError as exc:
        problems = format_validation_error(exc)
    else:
        problems = settings_problems(settings)
        if not problems:
            return settings
    for line in problems:
        typer.echo(f"error: invalid setting {line}", err=True)
    raise typer.Exit(SETTINGS_ERROR_EXIT_CODE)
