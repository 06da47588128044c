"""CI on a pair's mirror, as the CI and returns tests drive it."""

from __future__ import annotations

from tests import github_views as views

REPO = "evals-org/mlflow"
CI_EVENTS = ["check_run", "check_suite", "status"]


def with_ci(github):
    """Tandem subscribed to CI events (as app.yml asks), and a CI app installed on the mirror."""
    tandem_app = github.core.state.apps_by_slug["tandem"]
    tandem_app.events = sorted(set(tandem_app.events) | set(CI_EVENTS))
    github.register_app(slug="ci", name="CI", events=[])
    github.install_app("evals-org", repositories="all", app="ci")
    return github.as_app("ci")


def bot_comments(github, number: int) -> list[str]:
    return [c["body"] for c in views.comments(github, REPO, number) if c["user"] == "tandem[bot]"]
