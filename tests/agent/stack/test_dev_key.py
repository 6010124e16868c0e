import stat
from pathlib import Path

from pydantic import SecretStr

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.users import UserRepository
from agent.stack.dev_key import DEV_KEY_FILE_NAME, DEV_USER_NAME, ensure_dev_api_key

PEPPER = SecretStr("test-pepper")


def _settings() -> Settings:
    return Settings(_env_file=None, api_key_pepper=PEPPER)


async def _owner(database_url: str, key: str) -> object:
    async with DatabaseSessionManager(database_url) as manager, manager.session() as session:
        return await ApiKeyRepository(session, PEPPER).resolve(key)


async def test_first_start_creates_dev_user_and_private_key_file(
    database_url: str, tmp_path: Path
) -> None:
    key = await ensure_dev_api_key(database_url, tmp_path, _settings())

    key_file = tmp_path / DEV_KEY_FILE_NAME
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with DatabaseSessionManager(database_url) as manager, manager.session() as session:
        dev = await UserRepository(session).get_by_name(DEV_USER_NAME)
    assert dev is not None
    assert await _owner(database_url, key) == dev.id


async def test_restart_reuses_the_stored_key(database_url: str, tmp_path: Path) -> None:
    first = await ensure_dev_api_key(database_url, tmp_path, _settings())

    second = await ensure_dev_api_key(database_url, tmp_path, _settings())

    assert second == first


async def test_stored_key_unknown_to_the_database_is_replaced(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / DEV_KEY_FILE_NAME).write_text("agk_not-a-real-key\n")

    key = await ensure_dev_api_key(database_url, tmp_path, _settings())

    assert key != "agk_not-a-real-key"
    assert (tmp_path / DEV_KEY_FILE_NAME).read_text().strip() == key
    assert await _owner(database_url, key) is not None


async def _is_admin(database_url: str, key: str) -> bool:
    async with DatabaseSessionManager(database_url) as manager, manager.session() as session:
        resolved = await ApiKeyRepository(session, PEPPER).lookup(key)
    assert resolved is not None
    return resolved.is_admin


async def test_the_dev_key_is_an_admin_key(database_url: str, tmp_path: Path) -> None:
    key = await ensure_dev_api_key(database_url, tmp_path, _settings())
    assert await _is_admin(database_url, key)


async def test_an_older_non_admin_dev_key_is_promoted(database_url: str, tmp_path: Path) -> None:
    async with DatabaseSessionManager(database_url) as manager, manager.session() as session:
        user = await UserRepository(session).get_or_create(DEV_USER_NAME)
        old, _ = await ApiKeyRepository(session, PEPPER).create_key(user.id, "agent up")
        await session.commit()
    (tmp_path / DEV_KEY_FILE_NAME).write_text(old + "\n")

    key = await ensure_dev_api_key(database_url, tmp_path, _settings())

    assert key == old
    assert await _is_admin(database_url, key)
