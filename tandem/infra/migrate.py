"""Alembic migrations, driven from code so `tandem db upgrade` needs no alembic.ini."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: it takes half a second to import, which every `tandem`
# command would pay, most of them never migrating.

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in the transaction a migration runs in."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = connection.connection.driver_connection
        assert driver is not None  # (a connection just checked out of the pool has its driver's)
        if sqlite:
            # A migration that copies a table others refer to (batch mode) must drop it: with foreign
            # keys on, that fails. SQLite's own procedure: keys off outside the transaction, then a
            # foreign_key_check before the commit (https://sqlite.org/lang_altertable.html).
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # SQLAlchemy's autobegun transaction; SQLite began none
            # Python's sqlite3 begins a transaction only before a data change, so a migration's schema
            # changes were committed one by one, and a migration that failed halfway stayed halfway.
            # The driver leaves transactions alone now, and the migration runs in one, begun here.
            isolation, driver.isolation_level = driver.isolation_level, None
        try:
            with connection.begin():
                if sqlite:
                    connection.exec_driver_sql("BEGIN")
                yield connection
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").first()):
                    raise RuntimeError(f"the migration broke a foreign key: {tuple(broken)}")
        finally:
            if sqlite:
                driver.isolation_level = isolation
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with _migrating(engine) as connection:
        command.upgrade(_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with _migrating(engine) as connection:
        command.downgrade(_config(connection), revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the models (a developer command)."""
    from alembic import command

    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
