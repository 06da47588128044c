"""Comments Tandem posts on a pair's PRs outside the answers to commands: asking reviewers
again when a rater resubmits a returned vote, and telling raters that both sides' CI has
finished (with `require_ci`). Each is posted once however often its job is retried. They say
nothing of the models.
"""

from __future__ import annotations

from githubkit import GitHub
from githubkit.exception import RequestFailed

from tandem.infra import redis_keys
from tandem.infra.services import Services

POSTED_TTL = 14 * 24 * 3600


def _comment_once(services: Services, client: GitHub, repo: str, pr_number: int, text: str, *, occasion: str) -> None:
    """Post ``text`` once per ``occasion`` (the same words can be due again on another one: a
    vote returned and resubmitted twice). The key is claimed before posting, so two runs of the
    job cannot both post; a failed post gives the claim back for the retry."""
    owner, name = repo.split("/", 1)
    key = redis_keys.notice(repo, pr_number, occasion, text)
    if not services.redis.set(key, 1, nx=True, ex=POSTED_TTL):
        return
    try:
        client.rest.issues.create_comment(owner, name, pr_number, body=text)
    except BaseException:
        services.redis.delete(key)
        raise


def ask_again(
    services: Services,
    installation_id: int,
    repo: str,
    pr_number: int,
    reviewers: list[str],
    rater: str,
    round_number: int,
    *,
    judgment_id: int,
) -> None:
    """Request the reviewers who returned a vote as reviewers of the PR it was resubmitted on
    (``judgment_id``: the resubmitted vote); GitHub refuses someone who cannot review the
    repository (422): they are mentioned instead."""
    if not reviewers:
        return
    owner, name = repo.split("/", 1)
    client = services.github.as_installation(installation_id)
    try:
        client.rest.pulls.request_reviewers(owner, name, pr_number, reviewers=reviewers)
        return
    except RequestFailed as exc:
        if exc.response.status_code != 422:
            raise
    mentions = " ".join(f"@{login}" for login in reviewers)
    text = f"{mentions}: @{rater} resubmitted their vote in round {round_number}; it waits for your review."
    _comment_once(services, client, repo, pr_number, text, occasion=f"resubmitted-{judgment_id}")


def ci_finished(services: Services, installation_id: int, repo: str, pr_numbers: list[int], round_number: int) -> None:
    """Tell the raters on both PRs that the round takes votes now."""
    client = services.github.as_installation(installation_id)
    text = (
        f"**Tandem:** CI has finished on both options for round {round_number}. "
        "Votes count from now on: `/prefer A`, `/prefer B`, `/prefer tie` or `/prefer neither`."
    )
    for number in pr_numbers:
        _comment_once(services, client, repo, number, text, occasion=f"ci-finished-{round_number}")
