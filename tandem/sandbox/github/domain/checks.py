"""Check runs, and the check suite GitHub completes around them."""

from __future__ import annotations

from .. import errors
from ..state import App, CheckRun, Repository
from ..util import iso, node_id
from .base import DomainBase


class Checks(DomainBase):
    def create_check_run(self, repo: Repository, app: App, fields: dict) -> CheckRun:
        name, head_sha = fields.get("name"), fields.get("head_sha")
        if not name:
            raise errors.missing_field("CheckRun", "name")
        if not head_sha:
            raise errors.missing_field("CheckRun", "head_sha")
        if repo.git.object_type(head_sha) != "commit":
            raise errors.validation(message="No commit found for SHA: " + head_sha)
        with self.state.lock:
            ident = self.state.next_id("check_run")
            suite = next(
                (
                    r.check_suite_id
                    for r in self.state.check_runs.values()
                    if r.repo is repo and r.app is app and r.head_sha == head_sha
                ),
                None,
            )
            run = CheckRun(
                id=ident,
                node_id=node_id("CheckRun", ident),
                repo=repo,
                app=app,
                head_sha=repo.git.resolve(head_sha) or head_sha,
                name=name,
                check_suite_id=suite or self.state.next_id("check_suite"),
            )
            self._apply_check_fields(run, fields)
            self.state.check_runs[ident] = run
            # "created" and "completed" go to every app subscribed to check_run (a CI app's runs
            # reach the others); "rerequested" and "requested_action" would go to the owner only.
            self.emit(repo, "check_run", "created", app.bot, {"check_run": self.views.check_run(run)})
            return run

    def update_check_run(self, run: CheckRun, fields: dict) -> CheckRun:
        with self.state.lock:
            was_completed = run.status == "completed"
            self._apply_check_fields(run, fields)
            if run.status == "completed" and not was_completed:
                self.emit(run.repo, "check_run", "completed", run.app.bot, {"check_run": self.views.check_run(run)})
                self._suite_completed(run)
            return run

    def _suite_completed(self, run: CheckRun) -> None:
        """``check_suite`` ``completed`` once every run of the suite has completed, with the
        conclusion GitHub gives a suite: the first failing one, else success (or neutral)."""
        runs = [r for r in self.state.check_runs.values() if r.check_suite_id == run.check_suite_id]
        if any(r.status != "completed" for r in runs):
            return
        conclusions = [r.conclusion for r in runs]
        failing = [c for c in conclusions if c not in ("success", "neutral", "skipped")]
        conclusion = failing[0] if failing else ("success" if "success" in conclusions else "neutral")
        suite = {
            "id": run.check_suite_id,
            "head_sha": run.head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "app": self.views.integration(run.app),
            "created_at": min(r.started_at or iso() for r in runs),
            "updated_at": iso(),
            "latest_check_runs_count": len(runs),
            "pull_requests": [],
        }
        self.emit(run.repo, "check_suite", "completed", run.app.bot, {"check_suite": suite})

    @staticmethod
    def _apply_check_fields(run: CheckRun, fields: dict) -> None:
        for key in ("name", "details_url", "external_id", "started_at"):
            if key in fields:
                setattr(run, key, fields[key])
        if "output" in fields and isinstance(fields["output"], dict):
            run.output = {**run.output, **fields["output"]}
        status = fields.get("status")
        conclusion = fields.get("conclusion")
        if conclusion is not None or fields.get("completed_at"):
            if conclusion is None:
                raise errors.missing_field("CheckRun", "conclusion")
            status = "completed"
        if status == "completed" and conclusion is None and run.conclusion is None:
            raise errors.missing_field("CheckRun", "conclusion")
        if status is not None:
            run.status = status
        if conclusion is not None:
            run.conclusion = conclusion
        if run.status in ("in_progress", "completed") and not run.started_at:
            run.started_at = iso()
        if run.status == "completed":
            run.completed_at = fields.get("completed_at") or run.completed_at or iso()
        elif run.started_at is None and run.status == "queued" and "started_at" not in fields:
            run.started_at = iso()
