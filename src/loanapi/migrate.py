"""Alembic, driven from Python: upgrade to head, or drop everything and start again."""

import asyncio
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool

from loanapi.config import Settings
from loanapi.db import create_engine


def alembic_ini() -> Path:
    """alembic.ini of a source checkout, else of the working directory (the container's /app)."""
    candidates = [
        Path(os.environ["LOANAPI_ALEMBIC_INI"]) if "LOANAPI_ALEMBIC_INI" in os.environ else None,
        Path(__file__).resolve().parents[2] / "alembic.ini",
        Path.cwd() / "alembic.ini",
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate
    raise FileNotFoundError("alembic.ini not found; set LOANAPI_ALEMBIC_INI")


def alembic_config(database_url: str, *, configure_logging: bool = True) -> Config:
    config = Config(str(alembic_ini()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade(database_url: str, *, configure_logging: bool = True) -> None:
    command.upgrade(alembic_config(database_url, configure_logging=configure_logging), "head")


async def _drop_all(settings: Settings) -> None:
    engine = create_engine(settings, poolclass=pool.NullPool)
    async with engine.begin() as connection:

        def drop(sync_connection: Any) -> None:
            metadata = MetaData()
            metadata.reflect(sync_connection)
            metadata.drop_all(sync_connection)

        await connection.run_sync(drop)
    await engine.dispose()


def reset(settings: Settings) -> None:
    """Drop every table (the migration history included) and migrate from scratch."""
    asyncio.run(_drop_all(settings))
    upgrade(settings.database_url)
