"""Errors that carry a message meant for a person: one line, naming the problem and what to do."""

from typing import TypeVar

T = TypeVar("T")


def known(value: T | None, what: str) -> T:
    """A value Tandem's own state guarantees (a column set by an earlier step): None there is a bug, said as such."""
    if value is None:
        raise RuntimeError(f"{what} is missing")
    return value


class TandemError(Exception):
    """Base class: the message is safe to show (it never contains a secret)."""


class ConfigError(TandemError):
    """A setting is missing or malformed."""


class ServiceUnavailable(TandemError):
    """Redis, the database or GitHub cannot be reached."""


class NotFound(TandemError):
    pass


class RateLimited(TandemError):
    """GitHub (or our own write budget) asks us to wait longer than a job should sleep in place."""

    def __init__(self, seconds: float, what: str):
        self.seconds = seconds
        super().__init__(f"rate limited by {what}: retry in {seconds:.0f} s")


class Unprocessable(TandemError):
    """A delivery's payload cannot be processed (malformed, or a value the database cannot
    store): no retry can help, so it is parked with this reason instead."""


class Refused(TandemError):
    """A write the judging rules refuse. The message is written for the person whose comment
    asked for it (tandem.domain.commands.CommandError adds the command as written)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
