"""New repositories, commits through the API or the UI, forks."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping

from .. import errors
from ..gitrepo import _ENV as GIT_ENV
from ..gitrepo import ZERO_SHA, GitRepo
from ..state import Account, Repository
from ..util import iso, node_id
from .base import person
from .pulls import PullRequests

POST_RECEIVE = """#!{python}
# Installed by the GitHub emulator: tell it about pushes, as GitHub's own
# receive hooks do, so it can send pull_request "synchronize" webhooks.
import json, os, sys, urllib.request
updates = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
try:
    with open({url_file!r}) as f:
        url = f.read().strip()
except OSError:
    sys.exit(0)
body = json.dumps({{"git_dir": {git_dir!r}, "updates": updates,
                   "pusher": os.environ.get("GITHUB_EMULATOR_PUSHER")}}).encode()
request = urllib.request.Request(url + "/_emulator/post-receive", data=body,
                                 headers={{"Content-Type": "application/json"}})
try:
    urllib.request.urlopen(request, timeout=60).read()
except Exception as exc:
    print("github-emulator: push not reported:", exc, file=sys.stderr)
"""


class Repositories(PullRequests):  # a commit moves a branch, and the pull requests on it
    def _install_hook(self, git: GitRepo) -> None:
        hook = git.git_dir / "hooks" / "post-receive"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(
            POST_RECEIVE.format(python=sys.executable, url_file=str(self.url_file), git_dir=str(git.git_dir.resolve()))
        )
        hook.chmod(0o755)

    def _new_repo_object(
        self, owner: Account, name: str, git: GitRepo, private: bool, default_branch: str, **kw
    ) -> Repository:
        ident = self.state.next_id("repo")
        repo = Repository(
            id=ident,
            node_id=node_id("Repository", ident),
            owner=owner,
            name=name,
            private=private,
            default_branch=default_branch,
            git=git,
            **kw,
        )
        self.state.repos[repo.full_name.lower()] = repo
        self.state.repos_by_id[ident] = repo
        return repo

    def create_repository(
        self,
        owner: Account,
        name: str,
        files: Mapping[str, str | bytes] | None,
        default_branch: str,
        private: bool,
        description: str | None,
        author: Account | None,
    ) -> Repository:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name) or name in (".", ".."):
            raise ValueError(f"invalid repository name: {name!r}")
        with self.state.lock:
            if self.state.repo(owner.login, name) is not None:
                raise ValueError(f"repository {owner.login}/{name} exists")
            git_dir = self.root / owner.login / f"{name}.git"
            if git_dir.exists():
                raise ValueError(f"{git_dir} exists")
            git = GitRepo.init_bare(git_dir, default_branch)
            self._install_hook(git)
            repo = self._new_repo_object(owner, name, git, private, default_branch, description=description)
        if files:
            self.commit_files(repo, files, default_branch, "Initial commit", author or owner, notify=False)
        return repo

    def commit_files(
        self,
        repo: Repository,
        files: Mapping[str, str | bytes | None],
        branch: str,
        message: str,
        author: Account,
        notify: bool = True,
        sender: Account | None = None,
    ) -> str:
        """Commit ``files`` ({path: str | bytes | None}) on top of ``branch``
        (created from the default branch when missing). Returns the new sha."""
        git = repo.git
        with git.lock:
            ref = f"refs/heads/{branch}"
            parent = git.ref_sha(ref)
            if parent is None and branch != repo.default_branch:
                parent = git.ref_sha(f"refs/heads/{repo.default_branch}")
            changes = []
            for path, content in files.items():
                path = path.strip("/")
                if content is None:
                    changes.append({"path": path, "sha": None})
                    continue
                data = content.encode() if isinstance(content, str) else bytes(content)
                changes.append({"path": path, "mode": "100644", "type": "blob", "sha": git.write_blob(data)})
            base_tree = git.tree_of(parent) if parent else None
            tree = git.build_tree(base_tree, changes)
            who = person(author)
            sha = git.commit_tree(
                tree, [parent] if parent else [], message if message.endswith("\n") else message + "\n", who, who
            )
            old = git.ref_sha(ref)
            git.update_ref(ref, sha, old or ZERO_SHA)
        if notify:
            self.on_ref_updated(repo, ref, old, sha, sender or author)
        with self.state.lock:
            repo.pushed_at = iso()
        return sha

    def fork(self, source: Repository, owner: Account, name: str | None, default_branch_only: bool) -> Repository:
        name = name or source.name
        with self.state.lock:
            existing = self.state.repo(owner.login, name)
            if existing is not None:
                if existing.fork_of is source:
                    return existing  # GitHub answers 202 with the existing fork
                raise errors.custom("Repository", "name", "name already exists on this account")
            git_dir = self.root / owner.login / f"{name}.git"
            args = ["git", "clone", "--quiet", "--bare"]
            if default_branch_only:
                args += ["--single-branch", "--branch", source.default_branch]
            with source.git.lock:
                subprocess.run([*args, str(source.git_dir), str(git_dir)], check=True, capture_output=True, env=GIT_ENV)
            git = GitRepo(git_dir)
            git.configure()
            self._install_hook(git)
            repo = self._new_repo_object(
                owner, name, git, source.private, source.default_branch, description=source.description, fork_of=source
            )
            return repo
