"""Apply and revert the schema migrations in `agent/db/migrations` (Alembic, no alembic.ini).

The API the `agent db` command, `agent up` and the test fixtures share. The calls block:
call them from a thread in async code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import to_asyncpg_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Build an Alembic configuration for the project's migrations.

    Args:
        database_url: PostgreSQL URL to migrate.

    Returns:
        A configuration that needs no alembic.ini.
    """
    # Alembic is imported on use: it is slow to import and most commands never need it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats % specially; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", to_asyncpg_url(database_url).replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call from a thread in async code).

    Args:
        database_url: PostgreSQL URL to migrate.
        revision: Target revision.
    """
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade_database(database_url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision` (blocking; call from a thread in async code).

    Args:
        database_url: PostgreSQL URL to migrate.
        revision: Target revision.
    """
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)
