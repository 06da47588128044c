"""Database engine and transactions. SQLite is the embedded default; PostgreSQL in production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Engine, Enum, String, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from tandem.infra.errors import ConfigError, ServiceUnavailable


def utcnow() -> datetime:
    return datetime.now(UTC)


class iso_text(FunctionElement):
    """A UTCDateTime column as exports write times, ISO 8601 in UTC with microseconds and a Z
    (2026-05-09T07:35:25.000000Z), written by the database: a reader of many rows (the export)
    builds no datetime objects."""

    type = String()
    inherit_cache = True


@compiles(iso_text, "postgresql")
def _iso_text_postgresql(element, compiler, **kw) -> str:
    moment = compiler.process(element.clauses, **kw)
    return f"to_char({moment} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


@compiles(iso_text, "sqlite")
def _iso_text_sqlite(element, compiler, **kw) -> str:
    # SQLAlchemy stores a SQLite datetime as UTC text, always with microseconds: 2026-05-09 07:35:25.000000.
    return f"replace({compiler.process(element.clauses, **kw)}, ' ', 'T') || 'Z'"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use tandem.infra.db.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


def one_of(values: type[StrEnum], constraint: str) -> Enum:
    """A string column that holds one of ``values`` (tandem.domain.vocabulary): anything else is refused
    by the database, through the CHECK constraint named ``constraint``."""
    return Enum(
        values,
        native_enum=False,
        create_constraint=True,
        name=constraint,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


def make_engine(url: str) -> Engine:
    """An engine for url; a ConfigError naming TANDEM_DATABASE_URL if the URL is unusable."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"TANDEM_DATABASE_URL: not a database URL: {_redact(url)}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"TANDEM_DATABASE_URL: {backend} is not supported; use sqlite:/// or postgresql://")
    kwargs: dict = {"pool_pre_ping": True}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"TANDEM_DATABASE_URL: {exc}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the app read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable)"


def check_database(engine: Engine) -> None:
    """Raise ServiceUnavailable, naming the database, when it cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        raise ServiceUnavailable(
            f"database {engine.url.render_as_string(hide_password=True)} cannot be reached: {reason}"
        ) from None


_HELD = "held rows"  # in a session's info: the rows it loaded, kept alive (Storage.transaction)


def _hold(session: Session, instance: object) -> None:
    if (held := session.info.get(_HELD)) is not None:
        held.append(instance)


class Storage:
    """The engine and a session factory; `transaction()` commits on success, rolls back on error."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        event.listen(self._sessions, "loaded_as_persistent", _hold)

    @classmethod
    def from_url(cls, url: str) -> Storage:
        return cls(make_engine(url))

    @contextlib.contextmanager
    def transaction(self, *, hold_rows: bool = False) -> Iterator[Session]:
        """``hold_rows``: keep every row the session loads until it ends. The session holds rows
        weakly, so a row a function loaded and let go was read again by the next that asked for it
        by id (a delivery's round, three times); a transaction that reads a few rows can keep them."""
        with self._sessions() as session, session.begin():
            if hold_rows:
                session.info[_HELD] = []
            yield session
