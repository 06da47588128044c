"""Log lines an on-call engineer can search: one line per event, as key=value pairs or JSON
(TANDEM_LOG_FORMAT=kv|json), each carrying the ids of what is being worked on.

The ids (delivery_id, job_id, task_id, installation_id, ...) are bound once, where a delivery or
job starts (workers.jobs), and every line logged inside shows them: a context variable, read by
a filter on the handler, so no log call repeats them. Tracebacks are kept, on the same line.

Secrets never reach a line: settings hold them as SecretStr, GitHub requests are logged without
headers or query strings (tandem.infra.github), and, in case an exception's text carries one anyway,
anything shaped like a GitHub token, a JWT or an Authorization value is masked on the way out.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

# (read-only: bind() sets a new mapping, so the shared default stays empty)
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "tandem_log_context", default=MappingProxyType({})
)

# GitHub's tokens (ghs_, ghp_, gho_, ghu_, ghr_, github_pat_), JWTs, and Authorization values.
_SECRET = re.compile(
    r"\b(?:gh[opsur]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|eyJ[\w-]+\.[\w-]+\.[\w-]+)"
    r"|(?i:\b(?:bearer|token|basic)\s+)[A-Za-z0-9+/=._-]{16,}"
)
# Record attributes that are not fields of the line (uvicorn adds color_message, for terminals).
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "context", "color_message"}


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside (in this thread or task) carries these fields."""
    token = _context.set({**_context.get(), **_present(fields)})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context, until the enclosing `bound` ends (the job does)."""
    _context.set({**_context.get(), **_present(fields)})


def current() -> dict[str, Any]:
    return dict(_context.get())


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def redact(text: str) -> str:
    return _SECRET.sub("[redacted]", text)


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record (as `record.context`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = _context.get()
        return True


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname,
        "logger": record.name,
        "msg": redact(record.getMessage()),
    }
    fields |= getattr(record, "context", None) or _context.get()
    # Fields given with `extra=` (tandem.infra.github's request lines).
    fields |= {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}
    if record.exc_info:
        fields["traceback"] = redact(formatter.formatException(record.exc_info))
    elif record.stack_info:
        fields["stack"] = redact(record.stack_info)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self), default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """key=value pairs (logfmt); values with spaces, quotes or newlines are quoted and escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_kv_value(value)}" for key, value in _fields(record, self).items())


def _kv_value(value: Any) -> str:
    text = str(value)
    if text and not re.search(r'[\s"=\\]', text):
        return text
    return json.dumps(text, ensure_ascii=False)


FORMATTERS = {"kv": KeyValueFormatter, "json": JsonFormatter}
_HANDLER = "tandem"


def configure(level: str = "INFO", fmt: str = "kv") -> None:
    """Log to stderr in the chosen format, for the whole process (uvicorn's too: `tandem serve`
    gives uvicorn no logging config of its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[fmt]())
    handler.addFilter(ContextFilter())
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # configured twice: once
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs each request at INFO with its whole URL; tandem.infra.github logs them without queries.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # RQ's worker logger is set to INFO when RQ is imported (if unset by then): three lines a job,
    # whatever the level asked for.
    logging.getLogger("rq.worker").setLevel(level.upper())
