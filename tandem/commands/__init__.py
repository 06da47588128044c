"""Slash commands that raters write in pull request comments."""

from tandem.commands.parser import Invocation, find_invocations

__all__ = ["Invocation", "find_invocations"]
