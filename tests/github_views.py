"""Read the emulator's state the way a person looks at github.com, for assertions in tests.

Reading state directly (not through the REST API) keeps the emulator's request log to what
the app itself sent.
"""

from __future__ import annotations

from typing import Any


def pulls(emu, repo: str, state: str = "open") -> list[dict[str, Any]]:
    found = []
    for issue in emu.repo(repo).issues.values():
        if issue.pr is None or (state != "all" and issue.state != state):
            continue
        head_sha = emu.repo(repo).git.ref_sha(f"refs/heads/{issue.pr.head_ref}")
        found.append(
            {
                "number": issue.number,
                "title": issue.title,
                "body": issue.body or "",
                "state": issue.state,
                "draft": issue.pr.draft,
                "html_url": f"{emu.url}/{repo}/pull/{issue.number}",
                "labels": [label.name for label in issue.labels],
                "requested_reviewers": [user.login for user in issue.pr.requested_reviewers],
                "head_ref": issue.pr.head_ref,
                "head_sha": head_sha or issue.pr.last_head_sha,
                "base_ref": issue.pr.base_ref,
                "user": issue.user.login,
            }
        )
    return sorted(found, key=lambda pull: pull["number"])


def comments(emu, repo: str, number: int) -> list[dict[str, Any]]:
    found = []
    for comment in emu.core.state.issue_comments.values():
        if comment.repo.full_name == repo and comment.issue_number == number:
            found.append(
                {
                    "id": comment.id,
                    "user": comment.user.login,
                    "body": comment.body,
                    "reactions": [(r.user.login, r.content) for r in comment.reactions],
                }
            )
    return sorted(found, key=lambda comment: comment["id"])


def check_runs(emu, repo: str, head_sha: str) -> list[dict[str, Any]]:
    return [
        {"id": run.id, "name": run.name, "status": run.status, "conclusion": run.conclusion, "output": run.output}
        for run in emu.core.state.check_runs.values()
        if run.repo.full_name == repo and run.head_sha == head_sha
    ]


def branches(emu, repo: str) -> list[str]:
    return sorted(ref.removeprefix("refs/heads/") for ref in emu.repo(repo).git.refs() if ref.startswith("refs/heads/"))
