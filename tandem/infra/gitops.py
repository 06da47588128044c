"""The mirror's git side, with the real git CLI: a partial clone per mirror, commits built from
the base tree without a checkout, and one atomic push of both branches.

Git runs with argument lists, never a shell. The installation token reaches git only through
environment variables (GIT_CONFIG_COUNT/KEY/VALUE setting http.extraHeader): never in a URL,
an argument (which `ps` shows), a log line or an exception message. Nothing of the worker
user's own git setup applies (global and system config, global attributes), and paths are
always literal, never pathspecs: the same output makes the same commit on any machine.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path

from tandem.infra.errors import TandemError

# Commits on both sides come from this identity: nothing in them tells the models apart.
AUTHOR_NAME = "Tandem"
AUTHOR_EMAIL = "tandem@users.noreply.github.com"
_HEX = re.compile(r"[0-9a-f]{4,40}")
# What git says when the server refuses its credentials.
_REFUSED = re.compile(r"Authentication failed|returned error: 40[13]|could not read Username")
_KINDS = {"040000": "a folder", "120000": "a symbolic link", "160000": "a submodule"}
# GitHub refuses a push with a file larger than this (and warns from 50 MB).
MAX_FILE_BYTES = 100 * 2**20
# The cache's own configuration: it keeps the mirror's branches as its own (a bare clone keeps
# no refspec), and git's automatic housekeeping runs in the foreground, under the cache's lock.
CACHE_CONFIG = {"remote.origin.fetch": "+refs/heads/*:refs/heads/*", "gc.autodetach": "false"}
# Where git leaves its lock files: HEAD, config, packed-refs; each ref; commit-graph and packs.
_LOCKS = ("*.lock", "refs/**/*.lock", "objects/info/*.lock", "objects/pack/*.lock")


class GitError(TandemError):
    pass


class OutputDoesNotApply(TandemError):
    pass


class BranchMoved(GitError):
    """A push refused because branches moved since Tandem last saw them."""

    def __init__(self, branches: list[str]):
        self.branches = branches
        super().__init__(f"{', '.join(branches)} moved since Tandem last pushed")


def _folders(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b']."""
    parts = path.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def case_clash(paths: Iterable[str], tree: Iterable[str]) -> str | None:
    """Why one of paths (or one of its folders) collides with a different entry of tree that differs
    only in case, if one does: the two would be one file in checkouts on macOS and Windows."""
    spellings: dict[str, set[str]] = {}
    for entry in tree:
        spellings.setdefault(entry.casefold(), set()).add(entry)
    for path in paths:
        for name in [*_folders(path), path]:
            if others := spellings.get(name.casefold(), set()) - {name}:
                return f"{name} and {min(others)} differ only in case, so checkouts on macOS and Windows break"
    return None


def with_folders(paths: Iterable[str]) -> set[str]:
    return {name for path in paths for name in [*_folders(path), path]}


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "fatal:"))]
    return (errors or lines or ["git failed"])[0]


class MirrorClone:
    """A worker-side bare, blob-less clone of one mirror repository."""

    def __init__(
        self,
        cache_dir: Path,
        key: str,
        clone_url: str,
        token: str | None = None,
        refresh: Callable[[], str] | None = None,
    ):
        self.path = Path(cache_dir) / f"{key}.git"
        self.clone_url = clone_url
        self._token = token
        self._refresh = refresh  # a new token, when GitHub refuses this one (revoked)

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        # HOME and XDG_CONFIG_HOME lead to a folder that does not exist, so git finds no
        # ~/.config/git/attributes (nor anything else of the worker user's) either.
        nowhere = str(self.path.parent / ".no-home")
        env |= {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": nowhere,
            "XDG_CONFIG_HOME": nowhere,
            "GIT_LITERAL_PATHSPECS": "1",
            "LC_ALL": "C",
        }
        if self._token:
            credentials = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {credentials}",
            }
        return env | dict(extra or {})

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check=True,
        timeout: float = 600,
    ) -> str:
        result = self._run(args, input, env, timeout)
        if result.returncode != 0 and self._refresh and _REFUSED.search(result.stderr.decode(errors="replace")):
            self._token = self._refresh()
            result = self._run(args, input, env, timeout)
        if check and result.returncode != 0:
            raise GitError(f"git {args[0]}: {_first_error(result.stderr.decode(errors='replace'))}")
        return result.stdout.decode(errors="replace").strip()

    def _run(self, args: tuple[str, ...], input: bytes | None, env: Mapping[str, str] | None, timeout: float):
        return subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args],
            cwd=self.path if self.path.exists() else None,
            input=input,
            capture_output=True,
            env=self._env(env),
            timeout=timeout,
            check=False,
        )

    def check_reachable(self, timeout: float) -> None:
        """Raise GitError, with git's reason, unless git reaches the mirror at clone_url with this
        clone's token (`git ls-remote` of HEAD): what `tandem doctor` asks before a pair finds out."""
        try:
            self.git("ls-remote", "--", self.clone_url, "HEAD", timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GitError(f"git ls-remote: no answer within {timeout:g} s") from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[MirrorClone]:
        """One worker at a time per clone (git's own locks would fail the second one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self

    def fetch(self) -> None:
        """Clone on first use; later, bring every branch up to date (commits and trees, no blobs).

        Call it holding the lock. A cache that is not whole (a worker killed while an older
        Tandem made it) is made again; lock files left by a git killed in it are removed (under
        the cache's lock no other git runs in it: they would fail every later fetch)."""
        if not self._is_whole():
            self._clone()
            return
        for pattern in _LOCKS:
            for stale in self.path.glob(pattern):
                stale.unlink(missing_ok=True)
        self.git("fetch", "--prune", "--no-tags", "--filter=blob:none", "origin")

    def _is_whole(self) -> bool:
        """A finished clone, with the cache's configuration, and branches."""
        if not (self.path / "HEAD").exists():
            return False
        names = "|".join(re.escape(name) for name in CACHE_CONFIG)
        listing = self.git("config", "--local", "--get-regexp", f"^({names})$", check=False).splitlines()
        if sorted(listing) != sorted(f"{name} {value}" for name, value in CACHE_CONFIG.items()):
            return False
        return bool(self.git("for-each-ref", "--count=1", "refs/heads/"))

    def _clone(self) -> None:
        """Clone beside the cache, then rename the clone into place: a worker killed at any
        moment leaves either no cache or a whole one (and perhaps a partial clone, removed here
        next time)."""
        partial = self.path.with_suffix(".partial")
        for leftover in (partial, self.path):
            shutil.rmtree(leftover, ignore_errors=True)
        self.git("clone", "--bare", "--filter=blob:none", "--no-tags", "--", self.clone_url, str(partial))
        for name, value in CACHE_CONFIG.items():
            self.git("config", "--file", str(partial / "config"), name, value)
        partial.rename(self.path)

    def default_branch(self) -> str:
        return self.git("symbolic-ref", "--short", "HEAD")

    def resolve(self, base: str) -> tuple[str, str]:
        """(commit SHA, branch the PRs target) for a branch name or a commit SHA on the mirror."""
        sha = self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{base}^{{commit}}", check=False)
        if sha:
            return sha, base
        if _HEX.fullmatch(base.lower()):
            sha = self.git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
            if not sha and len(base) == 40:
                self.git("fetch", "--filter=blob:none", "origin", base, check=False)
                sha = self.git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
            if sha:
                return sha, self.default_branch()
        raise OutputDoesNotApply(f"base {base!r} is neither a branch nor a commit of the mirror")

    def build_tree(self, base_sha: str, *, patch: str | None, files: Mapping[str, str | None] | None) -> str:
        """The tree of base_sha with the output applied, as `git apply` would; no checkout needed.

        It writes objects only (no refs, no shared index), so it needs no lock on the clone."""
        with tempfile.TemporaryDirectory(prefix="tandem-") as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.git("read-tree", base_sha, env=index)
            if patch is not None:
                self._apply_patch(patch, Path(scratch), index)
            else:
                self._write_files(files or {}, base_sha, Path(scratch), index)
            tree = self.git("write-tree", env=index)
        self._refuse_case_clashes(base_sha, tree)
        return tree

    def build_commit(
        self, base_sha: str, *, patch: str | None, files: Mapping[str, str | None] | None, message: str, when: datetime
    ) -> str:
        """A commit on base_sha with the output applied (see build_tree)."""
        tree = self.build_tree(base_sha, patch=patch, files=files)
        stamp = f"@{int(when.timestamp())} +0000"
        identity = {
            "GIT_AUTHOR_NAME": AUTHOR_NAME,
            "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_NAME": AUTHOR_NAME,
            "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
            "GIT_COMMITTER_DATE": stamp,
        }
        return self.git("commit-tree", tree, "-p", base_sha, "-F", "-", input=message.encode(), env=identity)

    def _apply_patch(self, patch: str, scratch: Path, index: dict[str, str]) -> None:
        patch_file = scratch / "output.patch"
        patch_file.write_text(patch if patch.endswith("\n") else patch + "\n")
        result = subprocess.run(
            ["git", "apply", "--cached", "--binary", "--whitespace=nowarn", str(patch_file)],
            cwd=self.path,
            capture_output=True,
            env=self._env(index),
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise OutputDoesNotApply(_describe_apply_failure(result.stderr.decode(errors="replace")))

    def _write_files(
        self, files: Mapping[str, str | None], base_sha: str, scratch: Path, index: dict[str, str]
    ) -> None:
        written = {path: content for path, content in files.items() if content is not None}
        modes = self._modes(base_sha, sorted(with_folders(files)))
        self._refuse_replacing(files, modes)
        blob_dir = scratch / "blobs"
        blob_dir.mkdir()
        sources = []
        for number, content in enumerate(written.values()):
            source = blob_dir / str(number)
            source.write_bytes(content.encode())
            sources.append(str(source))
        shas = (
            self.git("hash-object", "-w", "--stdin-paths", input="\n".join(sources).encode()).split() if sources else []
        )
        entries = []
        for (path, _content), sha in zip(written.items(), shas, strict=True):
            entries.append(f"{modes.get(path, '100644')} {sha}\t{path}")
        for path in (p for p, content in files.items() if content is None):
            if path not in modes:
                raise OutputDoesNotApply(f"{path}: cannot delete, it does not exist at the base")
            entries.append(f"0 {'0' * 40}\t{path}")
        self.git("update-index", "-z", "--index-info", input="".join(e + "\0" for e in entries).encode(), env=index)
        # update-index skips a path it finds invalid with only a warning: make sure none was.
        # (--stage, so that no entry starts with the path, which git() would strip of spaces.)
        staged = self.git("ls-files", "-z", "--stage", "--", *written, env=index) if written else ""
        listed = {entry.split("\t", 1)[1] for entry in staged.split("\0") if entry}
        if missing := sorted(set(written) - listed):
            raise OutputDoesNotApply(f"{missing[0]}: not a path git can store")

    @staticmethod
    def _refuse_replacing(files: Mapping[str, str | None], modes: Mapping[str, str]) -> None:
        """A file map holds regular files: writing one must not silently turn a link, a submodule
        or a folder at the base into a file (nor a link or a file on its way into a folder)."""
        for path, content in files.items():
            for folder in _folders(path):
                if modes.get(folder, "040000") != "040000":
                    raise OutputDoesNotApply(f"{path}: {folder} is {_KINDS.get(modes[folder], 'a file')} at the base")
            kind = _KINDS.get(modes.get(path, ""))
            if kind and (content is not None or modes[path] == "040000"):
                raise OutputDoesNotApply(f"{path}: is {kind} at the base; a file map can only write or delete files")

    def _refuse_case_clashes(self, base_sha: str, tree: str) -> None:
        added = self.git("diff-tree", "-r", "-z", "--name-only", "--diff-filter=A", "--no-renames", base_sha, tree)
        added_paths = [path for path in added.split("\0") if path]
        if not added_paths:
            return
        listing = self.git("ls-tree", "-r", "-t", "-z", "--name-only", "--full-tree", tree)
        if clash := case_clash(added_paths, filter(None, listing.split("\0"))):
            raise OutputDoesNotApply(clash)

    def _modes(self, base_sha: str, paths: list[str]) -> dict[str, str]:
        if not paths:
            return {}
        listing = self.git("ls-tree", "-z", "--full-tree", base_sha, "--", *paths)
        modes = {}
        for entry in filter(None, listing.split("\0")):
            meta, path = entry.split("\t", 1)
            modes[path] = meta.split()[0]
        return modes

    def push(self, refs: Mapping[str, str], *, expected: Mapping[str, str] | None = None) -> None:
        """Push {branch: sha} in one atomic push: both branches land, or neither.

        With expected ({branch: sha it must still be at}), nothing is overwritten: if any branch
        moved since, the whole push is refused (BranchMoved)."""
        specs = [f"{sha}:refs/heads/{branch}" for branch, sha in refs.items()]
        leases = [f"--force-with-lease=refs/heads/{branch}:{sha}" for branch, sha in (expected or {}).items()]
        try:
            self.git("push", "--atomic", "--porcelain", *leases, "origin", *specs)
        except GitError:
            if not expected:
                raise
            remote = self.remote_branches(list(refs))
            if remote == dict(refs):  # an earlier run's push landed: nothing to do
                return
            if moved := sorted(b for b in expected if remote.get(b) != expected[b]):
                raise BranchMoved(moved) from None
            raise

    def diff(self, base_sha: str, head_sha: str) -> str:
        """The change from base_sha to head_sha as `git apply` takes it (binary files included)."""
        if base_sha == head_sha:
            return ""
        return self.git("diff", "--binary", "--no-renames", "--no-ext-diff", base_sha, head_sha) + "\n"

    def change(self, base_sha: str, head_sha: str) -> tuple[str, dict[str, str | None]]:
        """What head_sha changes from base_sha, for people and trainers rather than `git apply`:
        the unified diff (a binary file shows as "Binary files ... differ"), and the text of each
        regular file it adds or changes ({path: text}; None for a deleted file; binary files, links
        and submodules left out)."""
        diff = self._raw("diff", "--no-renames", "--no-ext-diff", "--no-color", base_sha, head_sha)
        raw = self.git("diff-tree", "-r", "-z", "--no-renames", base_sha, head_sha)
        fields = raw.split("\0")
        files: dict[str, str | None] = {}
        wanted: dict[str, str] = {}
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            _old_mode, new_mode, _old_sha, new_sha, status = meta.lstrip(":").split()
            if status == "D":
                files[path] = None
            elif new_mode in ("100644", "100755"):
                wanted[path] = new_sha
        for path, content in zip(wanted, self._blobs(list(wanted.values())), strict=True):
            if b"\0" not in content:
                with contextlib.suppress(UnicodeDecodeError):
                    files[path] = content.decode()
        return diff.decode(errors="replace"), files

    def _blobs(self, shas: list[str]) -> list[bytes]:
        """The contents of these blobs, in one `git cat-file --batch`."""
        if not shas:
            return []
        output = self._raw("cat-file", "--batch", input="".join(f"{sha}\n" for sha in shas).encode())
        contents, at = [], 0
        for _sha in shas:
            header_end = output.index(b"\n", at)
            size = int(output[at:header_end].split()[2])
            contents.append(output[header_end + 1 : header_end + 1 + size])
            at = header_end + 1 + size + 1
        return contents

    def _raw(self, *args: str, input: bytes | None = None) -> bytes:
        """git's output as bytes, exactly (git() decodes and strips it)."""
        result = subprocess.run(
            ["git", *args], cwd=self.path, input=input, capture_output=True, env=self._env(), timeout=600, check=False
        )
        if result.returncode != 0:
            raise GitError(f"git {args[0]}: {_first_error(result.stderr.decode(errors='replace'))}")
        return result.stdout

    def written_sizes(self, base_sha: str, tree: str) -> dict[str, int]:
        """{path: size} of each file tree adds or changes from base_sha with content of its own (a
        rename's or a copy's content, the base's, is on the mirror already: it is not read, nor
        fetched)."""
        raw = self.git("diff-tree", "-r", "-z", "--no-renames", base_sha, tree)
        fields = raw.split("\0")
        new = {}
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            _old_mode, new_mode, _old_sha, new_sha, status = meta.lstrip(":").split()
            if status != "D" and new_mode != "160000":  # a submodule's commit is not here
                new[path] = new_sha
        if not new:
            return {}
        listing = self.git("ls-tree", "-r", "-z", "--full-tree", base_sha)
        at_base = {entry.split("\t", 1)[0].split()[2] for entry in listing.split("\0") if entry}
        own = {path: sha for path, sha in new.items() if sha not in at_base}
        if not own:
            return {}
        checked = self.git("cat-file", "--batch-check", input="".join(f"{sha}\n" for sha in own.values()).encode())
        sizes = {line.split()[0]: int(line.split()[2]) for line in checked.splitlines()}
        return {path: sizes[sha] for path, sha in own.items()}

    def has_commit(self, sha: str) -> bool:
        return bool(self.git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", check=False))

    def remote_branches(self, branches: list[str]) -> dict[str, str]:
        """{branch: sha} of those branches that exist on the mirror."""
        listing = self.git("ls-remote", "--heads", "origin", *(f"refs/heads/{b}" for b in branches))
        found = {}
        for line in filter(None, listing.splitlines()):
            sha, ref = line.split("\t", 1)
            found[ref.removeprefix("refs/heads/")] = sha
        return found

    def delete_branches(self, branches: list[str]) -> None:
        existing = self.remote_branches(branches)
        if existing:
            self.git("push", "--atomic", "--porcelain", "origin", *(f":refs/heads/{b}" for b in existing))

    def archive(self, sha: str) -> bytes:
        """The commit's tree as a tar archive (its blobs fetched as needed: the clone has none)."""
        return self._raw("archive", "--format=tar", sha)


def _describe_apply_failure(stderr: str) -> str:
    """git's own words, which name the file and the hunk: 'patch failed: src/app.py:12'."""
    lines = [line.removeprefix("error: ").strip() for line in stderr.splitlines() if line.strip()]
    return "; ".join(lines[:3]) or "the patch does not apply"
