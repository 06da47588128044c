"""A bare git repository driven through the real ``git`` CLI.

Everything the REST API says about refs, commits, trees and blobs is read from
and written to the repository on disk, so a ``git push`` to ``clone_url`` is
seen by the next API call and a commit made through the API is seen by
``git``. Commands run as argument lists (never through a shell), with a
scrubbed environment so the user's git config cannot change their output.

Writes to one repository are serialised by ``self.lock``; reads need no lock
(git's own ref and object stores are safe for concurrent readers).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ZERO_SHA = "0" * 40


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str):
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass
class Person:
    name: str
    email: str
    date: str  # ISO 8601, e.g. 2026-03-10T12:00:00Z


@dataclass
class CommitInfo:
    sha: str
    tree: str
    parents: list[str]
    author: Person
    committer: Person
    message: str


@dataclass
class TreeEntry:
    mode: str
    type: str  # blob | tree | commit
    sha: str
    size: int | None
    path: str


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    return env


_ENV = _base_env()


def _git_date(iso_date: str) -> str:
    """git accepts ISO 8601 with a ``Z``; make the zone explicit to be safe."""
    return iso_date.replace("Z", "+0000") if iso_date.endswith("Z") else iso_date


def _parse_person(line: str) -> Person:
    # "Name <email> 1700000000 +0000"
    from .util import iso

    name, _, rest = line.partition(" <")
    email, _, when = rest.partition("> ")
    seconds = int(when.split()[0]) if when else 0
    return Person(name=name, email=email, date=iso(seconds))


class GitRepo:
    def __init__(self, git_dir: Path):
        self.git_dir = Path(git_dir)
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ plumbing

    def run(self, *args: str, input: bytes | None = None, env: dict | None = None, check: bool = True) -> bytes:
        full_env = _ENV if env is None else {**_ENV, **env}
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], input=input, capture_output=True, env=full_env
        )
        if check and proc.returncode != 0:
            raise GitError(list(args), proc.returncode, proc.stderr.decode(errors="replace"))
        return proc.stdout

    def text(self, *args: str, **kw) -> str:
        return self.run(*args, **kw).decode("utf-8", errors="replace")

    @classmethod
    def init_bare(cls, git_dir: Path, default_branch: str) -> GitRepo:
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(git_dir)],
            check=True,
            env=_ENV,
            capture_output=True,
        )
        repo = cls(git_dir)
        repo.configure()
        return repo

    def configure(self) -> None:
        """Allow partial clones (``--filter=blob:none``) and fetching any sha.

        Appended to the repository's config file in git's own syntax (one write
        instead of one ``git config`` process per key); ``git config --get``
        reads them back.
        """
        with open(self.git_dir / "config", "a", encoding="utf-8") as f:
            f.write(
                "[uploadpack]\n\tallowFilter = true\n\tallowAnySHA1InWant = true\n[core]\n\tlogAllRefUpdates = false\n"
            )

    # ------------------------------------------------------------------ refs

    def refs(self) -> dict[str, str]:
        """All refs -> sha (one ``git for-each-ref``)."""
        out = self.text("for-each-ref", "--format=%(objectname) %(refname)")
        refs = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            refs[name] = sha
        return refs

    def ref_sha(self, ref: str) -> str | None:
        out = self.run("rev-parse", "--verify", "--quiet", ref + "^{}", check=False)
        sha = out.decode().strip()
        return sha or None

    def resolve(self, rev: str) -> str | None:
        """A branch, tag, full ref or (abbreviated) sha -> full sha, or None."""
        if not rev or rev.startswith("-"):
            return None
        for candidate in (f"refs/heads/{rev}", f"refs/tags/{rev}", rev):
            out = (
                self.run("rev-parse", "--verify", "--quiet", "--end-of-options", candidate + "^{commit}", check=False)
                .decode()
                .strip()
            )
            if out:
                return out
        return None

    def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        """Move ``ref`` to ``new``; with ``old``, only if it still points there
        (``old=ZERO_SHA``: only if it does not exist yet)."""
        args = ["update-ref", "--no-deref", ref, new]
        if old is not None:
            args.append(old)
        self.run(*args)

    def delete_ref(self, ref: str) -> None:
        self.run("update-ref", "-d", ref)

    # ------------------------------------------------------------------ objects

    def object_type(self, sha: str) -> str | None:
        if not sha or sha.startswith("-"):
            return None
        out = self.run("cat-file", "-t", sha, check=False).decode().strip()
        return out or None

    def object_size(self, sha: str) -> int:
        return int(self.text("cat-file", "-s", sha).strip())

    def write_blob(self, data: bytes) -> str:
        return self.text("hash-object", "-w", "--stdin", input=data).strip()

    def read_blob(self, sha: str) -> bytes:
        return self.run("cat-file", "blob", sha)

    def read_commit(self, sha: str) -> CommitInfo | None:
        if self.object_type(sha) != "commit":
            return None
        raw = self.text("cat-file", "commit", sha)
        header, _, message = raw.partition("\n\n")
        tree, parents, author, committer = "", [], None, None
        for line in header.splitlines():
            key, _, rest = line.partition(" ")
            if key == "tree":
                tree = rest
            elif key == "parent":
                parents.append(rest)
            elif key == "author":
                author = _parse_person(rest)
            elif key == "committer":
                committer = _parse_person(rest)
        if author is None or committer is None:  # git writes both into every commit
            raise ValueError(f"commit {sha} has no author or committer")
        full = self.text("rev-parse", sha).strip()
        return CommitInfo(full, tree, parents, author, committer, message)

    def ls_tree(self, tree_ish: str, recursive: bool = False, path: str | None = None) -> list[TreeEntry]:
        args = ["ls-tree", "-l", "-z"]
        if recursive:
            args += ["-r", "-t"]
        args.append(tree_ish)
        if path is not None:
            args += ["--", path]
        out = self.text(*args)
        entries = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, name = record.partition("\t")
            mode, otype, sha, size = meta.split()
            entries.append(TreeEntry(mode, otype, sha, None if size == "-" else int(size), name))
        return entries

    def tree_of(self, commit: str) -> str:
        return self.text("rev-parse", commit + "^{tree}").strip()

    def entry_at(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry for ``path`` in ``commit`` (None: absent)."""
        path = path.strip("/")
        if not path:
            return TreeEntry("040000", "tree", self.tree_of(commit), None, "")
        entries = self.ls_tree(commit, path=path)
        for entry in entries:
            if entry.path == path:
                return entry
        return None

    def build_tree(self, base_tree: str | None, changes: list[dict]) -> str:
        """Write a tree: ``base_tree`` plus ``changes``.

        Each change is ``{"path", "mode", "type", "sha"}`` (``sha`` None
        deletes the path, a directory included; a ``tree`` entry replaces the
        whole subtree). Uses a private index file, so nested paths and
        deletions behave exactly as git's; four git commands whatever the
        number of changes.
        """
        with tempfile.TemporaryDirectory(prefix="emu-index-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            self.run("read-tree", *([base_tree] if base_tree else ["--empty"]), env=env)
            paths = [c["path"].strip("/") for c in changes]
            if paths:
                # Clear every touched path first: a deletion, or a file that
                # replaces a directory (or the reverse), must drop old entries.
                # -f: git would compare the entries with files of the process's
                # directory (a bare repository's stand-in work tree), not ours.
                self.run("rm", "--cached", "-f", "-r", "-q", "--ignore-unmatch", "--", *paths, env=env)
            blobs = [c for c in changes if c.get("sha") is not None and c["type"] != "tree"]
            if blobs:
                info = "".join(f"{c['mode']} {c['sha']}\t{c['path'].strip('/')}\0" for c in blobs)
                self.run("update-index", "--add", "-z", "--index-info", input=info.encode("utf-8"), env=env)
            for c in changes:
                if c.get("sha") is not None and c["type"] == "tree":
                    # (--prefix insists on a work tree; it is not touched without -u)
                    self.run(
                        "read-tree", f"--prefix={c['path'].strip('/')}/", c["sha"], env={**env, "GIT_WORK_TREE": tmp}
                    )
            return self.text("write-tree", env=env).strip()

    def commit_tree(self, tree: str, parents: list[str], message: str, author: Person, committer: Person) -> str:
        args = ["commit-tree", tree]
        for p in parents:
            args += ["-p", p]
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": _git_date(author.date),
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": _git_date(committer.date),
        }
        return self.text(*args, input=message.encode("utf-8"), env=env).strip()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return (
            subprocess.run(
                ["git", "--git-dir", str(self.git_dir), "merge-base", "--is-ancestor", ancestor, descendant],
                env=_ENV,
                capture_output=True,
            ).returncode
            == 0
        )

    def merge_base(self, a: str, b: str) -> str | None:
        out = self.run("merge-base", a, b, check=False).decode().strip()
        return out or None

    def count_commits(self, base: str, head: str) -> int:
        return int(self.text("rev-list", "--count", f"{base}..{head}").strip() or 0)

    def diff_files(self, base: str, head: str) -> list[dict]:
        """Per-file changes from ``base`` to ``head``: status, counts, patch."""
        status_out = self.text("diff", "--no-renames", "--name-status", "-z", base, head)
        parts = [p for p in status_out.split("\0") if p]
        statuses = {parts[i + 1]: parts[i] for i in range(0, len(parts) - 1, 2)}
        numstat = self.text("diff", "--no-renames", "--numstat", "-z", base, head)
        files: list[dict[str, Any]] = []
        for record in numstat.split("\0"):
            if not record:
                continue
            added, deleted, path = record.split("\t", 2)
            files.append(
                {
                    "filename": path,
                    "status": statuses.get(path, "M"),
                    "additions": 0 if added == "-" else int(added),
                    "deletions": 0 if deleted == "-" else int(deleted),
                }
            )
        for f in files:
            f["patch"] = self._file_patch(base, head, f["filename"])
        return files

    def _file_patch(self, base: str, head: str, path: str) -> str:
        out = self.text("diff", "--no-renames", "--no-color", base, head, "--", path)
        # GitHub's ``patch`` is the hunks only, without the diff header.
        index = out.find("\n@@")
        return out[index + 1 :] if index >= 0 else ""

    def fetch_into(self, source: GitRepo, refspec: str) -> None:
        """Copy objects and a ref from another bare repository (used for forks and
        for ``refs/pull/N/head`` of cross-repository pull requests)."""
        self.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", str(source.git_dir), refspec)
