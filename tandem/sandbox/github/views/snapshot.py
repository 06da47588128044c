"""Git refs read once per request, for the git-derived fields of views."""

from __future__ import annotations

from ..state import Repository


class GitSnapshot:
    """Refs of each repository, read once (lazily) for the duration of a request."""

    def __init__(self) -> None:
        self._refs: dict[int, dict[str, str]] = {}

    def refs(self, repo: Repository) -> dict[str, str]:
        refs = self._refs.get(repo.id)
        if refs is None:
            refs = self._refs[repo.id] = repo.git.refs()
        return refs

    def branch_sha(self, repo: Repository, branch: str) -> str | None:
        return self.refs(repo).get(f"refs/heads/{branch}")

    def invalidate(self, repo: Repository) -> None:
        self._refs.pop(repo.id, None)
