"""State objects -> the values GitHub would show for them.

Each function returns a plain dict with every field GitHub fills for that kind
of object (URLs, counts, timestamps, nested objects). The renderer then keeps
the fields the response or webhook schema lists and fills any required field
still missing, so one view serves every schema that embeds the object
(``simple-user`` in a PR, ``repository-webhooks`` in a delivery, ...).

URLs follow github.com's layout on the emulator's single origin:
API objects under ``{base}/repos/...``, ``{base}/users/...``; web pages at
``{base}/{owner}/{repo}/pull/{n}`` and so on.

Git-derived fields (a PR's head/base sha, commit counts, diff stats) are read
from the bare repositories when the view is built, through a ``GitSnapshot``
that reads each repository's refs once per request.
"""

from __future__ import annotations

from ..state import CheckRun
from ..util import q
from .pulls import PullViews
from .snapshot import GitSnapshot


class Views(PullViews):
    """Every view: accounts and apps, repositories, issues, pull requests; and checks, here."""

    # ------------------------------------------------------------------ checks

    def check_run(self, run: CheckRun, snap: GitSnapshot | None = None) -> dict:
        snap = snap or GitSnapshot()
        repo = run.repo
        full = f"{q(repo.owner.login)}/{q(repo.name)}"
        api = f"{self.base}/repos/{full}/check-runs/{run.id}"
        prs = []
        for issue in repo.issues.values():
            if issue.pr is not None and issue.state == "open":
                head, _ = self.pr_shas(issue, snap)
                if head == run.head_sha:
                    prs.append(self.pull_minimal(issue, snap))
        output = run.output or {}
        return {
            "id": run.id,
            "head_sha": run.head_sha,
            "node_id": run.node_id,
            "external_id": run.external_id if run.external_id is not None else "",
            "url": api,
            "html_url": f"{self.base}/{full}/runs/{run.id}",
            "details_url": run.details_url or f"{self.base}/{full}/runs/{run.id}",
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(output.get("annotations") or []),
                "annotations_url": f"{api}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": run.check_suite_id},
            "app": self.integration(run.app),
            "pull_requests": prs,
        }
