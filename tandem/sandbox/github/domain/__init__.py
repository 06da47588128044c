"""What happens on GitHub when someone changes something.

Each method of ``Domain`` is one change as GitHub performs it: it validates like GitHub
(raising ``ApiError`` with GitHub's status and message), changes the state and
the git repositories, and queues the webhooks GitHub would send. REST
handlers (acting as an app's bot) and ``UserActions`` (acting as a person on
github.com) both call these, so an API call and a UI action have the same
effects.

Everything runs under ``State.lock`` so that the state a webhook body shows is
the state right after its change, and deliveries are queued in the order the
changes happened.
"""

from __future__ import annotations

from .accounts import Accounts
from .checks import Checks
from .comments import Comments
from .installations import Installations
from .repositories import Repositories
from .reviewers import Reviewers
from .reviews import Reviews


class Domain(Accounts, Repositories, Reviewers, Comments, Reviews, Checks, Installations):
    """Every change, one module per part of GitHub (pull requests and labels come in
    through ``Repositories``)."""
