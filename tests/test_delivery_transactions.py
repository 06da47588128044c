"""A delivery asks GitHub what its handlers need (the repository's config, the commenter's roles)
before its database transaction opens: an answer can wait seconds on a rate limit, and a
transaction held open that long holds its locks and a pooled connection with it."""

from __future__ import annotations

import pytest
from rq import get_current_job
from sqlalchemy import event

from tandem.domain import repo_config, roles
from tandem.infra import job_names
from tests.conftest import MIRROR_CONFIG, settle
from tests.support.ci import bot_comments, with_ci

REPO = "evals-org/mlflow"


@pytest.fixture
def open_transactions(services):
    """How many database transactions are open right now, counted on the engine."""
    count = [0]

    def began(_connection):
        count[0] += 1

    def ended(_connection):
        count[0] -= 1

    engine = services.storage.engine
    listeners = [("begin", began), ("commit", ended), ("rollback", ended)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    yield count
    for name, listener in listeners:
        event.remove(engine, name, listener)


def watch(monkeypatch, open_transactions, module, name: str) -> list[tuple[str, int]]:
    """Calls of module.name by delivery jobs (not the pair's sync), with the transactions open."""
    seen = []
    function = getattr(module, name)

    def call(*args, **kwargs):
        job = get_current_job()
        if job is not None and job.func_name == job_names.PROCESS_DELIVERY:
            seen.append((name, open_transactions[0]))
        return function(*args, **kwargs)

    monkeypatch.setattr(module, name, call)
    return seen


def test_a_slow_config_fetch_holds_no_transaction_open(github, services, pair, monkeypatch, open_transactions):
    seen = watch(monkeypatch, open_transactions, repo_config, "load")
    seen_roles = watch(monkeypatch, open_transactions, roles, "roles_of")
    repo_config.forget(services, REPO)  # fetched again, from a GitHub that says "wait" first
    github.faults.secondary_rate_limit(times=1, retry_after=1, method="POST", path_contains="/graphql")

    github.as_user("rater-three").comment(REPO, pair["A"], "/prefer A\nCleaner.")
    settle(github, services)
    github.as_user("rater-three").comment(REPO, pair["B"], "Looks fine.")  # no command: GitHub is not asked
    settle(github, services)

    assert (seen, seen_roles) == ([("load", 0)], [("roles_of", 0)])
    assert github.faults.pending == 0


def test_a_ci_report_that_may_finish_a_round_asks_for_the_config_first(
    github, services, pair, monkeypatch, open_transactions
):
    ci = with_ci(github)
    github.commit_files(REPO, {".github/tandem.yml": MIRROR_CONFIG + "require_ci: true\n"})
    repo_config.forget(services, REPO)
    seen = watch(monkeypatch, open_transactions, repo_config, "load")
    for head in pair["heads"].values():
        ci.check_run(REPO, head, "tests", status="completed", conclusion="success")
    settle(github, services)

    assert seen and all(open_ == 0 for _name, open_ in seen), seen
    assert any(body.startswith("**Tandem:** CI has finished") for body in bot_comments(github, pair["A"]))
