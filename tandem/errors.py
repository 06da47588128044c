"""Errors that carry a message meant for a person: one line, naming the problem and what to do."""

from tandem.quoting import code_span


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


class CommandError(TandemError):
    """A command that cannot be carried out. The message is written for the person who typed it.

    ``command`` is the command as written (``/prefer C``); the command runner fills it in, and
    ``str()`` then reads "`/prefer C`: the side must be A, B, tie or neither", the command quoted
    by tandem.quoting.
    """

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command

    def __str__(self) -> str:
        return f"{code_span(self.command)}: {self.message}" if self.command else self.message
