"""Tandem answers every command on GitHub: +1 when recorded; confused plus one reply with the
exact error and a pointer to /help when not; a reply for commands that answer (/help). A review
cannot take a reaction, so commands in a review body are acknowledged by a reply saying what
was recorded.

The results arrive as plain dicts ({"ok", "reply", "changed", "message"}) because they cross
the queue.
"""

from __future__ import annotations

from typing import Literal

from githubkit.exception import RequestFailed

from tandem.infra import redis_keys
from tandem.infra.services import Services

ANSWERED_TTL = 14 * 24 * 3600


def _reply_text(author: str, results: list[dict], source: str = "comment") -> str | None:
    failures = [r["message"] for r in results if not r["ok"]]
    # A review's recorded commands are said in words; one processed again (changed False) was
    # acknowledged the first time.
    answers = [
        r["message"] for r in results if r["ok"] and (r["reply"] or (source == "review" and r.get("changed", True)))
    ]
    if not failures and not answers:
        return None
    parts = [f"@{author}"]
    if failures:
        parts.append("Not recorded:\n\n" + "\n".join(f"- {message}" for message in failures))
        parts.append("Write `/help` for the commands and how to use them.")
    parts += answers
    return "\n\n".join(parts)


def acknowledge(
    services: Services,
    installation_id: int,
    repo: str,
    pr_number: int,
    source: str,
    source_id: int,
    author: str,
    outsider: bool,
    results: list[dict],
) -> None:
    """Answer the commands of one comment (source "comment") or review body (source "review").

    An outsider (no role on the repository) is told why once a day per PR, not once per comment:
    anyone can comment on a public mirror, and every reply spends the installation's writes.
    """
    if not results:
        return
    owner, name = repo.split("/", 1)
    client = services.github.as_installation(installation_id)
    if source == "comment":  # reviews have no reactions: the reply says what was recorded
        reaction: Literal["+1", "confused"] = "+1" if all(r["ok"] for r in results) else "confused"
        try:
            client.rest.reactions.create_for_issue_comment(owner, name, source_id, content=reaction)
        except RequestFailed as exc:
            if exc.response.status_code != 404:  # the comment was deleted meanwhile
                raise
    text = _reply_text(author, results, source)
    if text is None:
        return
    if outsider and not services.redis.set(redis_keys.told_outsider(repo, pr_number, author), 1, nx=True, ex=24 * 3600):
        return
    # A retried job must not answer twice: remember what was answered (after answering).
    key = redis_keys.answered(repo, pr_number, source, source_id, text)
    if services.redis.exists(key):
        return
    client.rest.issues.create_comment(owner, name, pr_number, body=text)
    services.redis.set(key, 1, ex=ANSWERED_TTL)
