"""A GitHub emulator for tests: a real HTTP server on loopback that answers
GitHub's REST API (as described by GitHub's OpenAPI description), keeps real
git repositories, and sends signed webhooks. See README.md."""

from .actions import Resource, UserActions
from .core import RecordedRequest
from .emulator import GitHubEmulator
from .errors import ApiError
from .faults import Faults
from .secondary import SecondaryLimits
from .state import Account, App, Delivery, Installation, Repository
from .webhooks import sign

__all__ = [
    "Account",
    "ApiError",
    "App",
    "Delivery",
    "Faults",
    "GitHubEmulator",
    "Installation",
    "RecordedRequest",
    "Repository",
    "Resource",
    "SecondaryLimits",
    "UserActions",
    "sign",
]
