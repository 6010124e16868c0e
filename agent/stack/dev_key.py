"""The dev API key `agent up` prints: created once, kept in `DIR/dev_api_key`."""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings

DEV_USER_NAME = "dev"
DEV_KEY_NAME = "agent up"
DEV_KEY_FILE_NAME = "dev_api_key"


async def ensure_dev_api_key(database_url: str, data_dir: Path, settings: Settings) -> str:
    """Placeholder until the repositories land."""
    path = data_dir / DEV_KEY_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    import secrets

    key = "ak_" + secrets.token_urlsafe(24)
    path.write_text(key)
    path.chmod(0o600)
    return key
