"""The git side, on a real bare repository: commits from outputs without a checkout."""

from __future__ import annotations

import socket
import subprocess
from datetime import UTC, datetime

import pytest

from tandem.infra.gitops import GitError, MirrorClone, OutputDoesNotApply


@pytest.fixture
def clone(tmp_path) -> MirrorClone:
    source, bare = tmp_path / "source", tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True)
    (source / "a.txt").write_text("one\n")
    (source / "d").mkdir()
    (source / "d" / "f.txt").write_text("f\n")
    (source / "link").symlink_to("a.txt")
    (source / "dlink").symlink_to("d")
    subprocess.run(["git", "add", "."], cwd=source, check=True)
    subprocess.run(
        ["git", "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "init"], cwd=source, check=True
    )
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    mirror = MirrorClone(tmp_path / "cache", "1", bare.as_uri(), token="ghs_never-in-argv")
    mirror.fetch()
    return mirror


def test_a_path_git_would_silently_skip_fails_the_output(clone):
    base, _branch = clone.resolve("main")
    with pytest.raises(OutputDoesNotApply, match=r"\./x\.py: not a path git can store"):
        clone.build_commit(base, patch=None, files={"./x.py": "x\n"}, message="m", when=datetime.now(UTC))


def test_the_same_output_makes_the_same_commit(clone):
    base, _branch = clone.resolve("main")
    when = datetime(2026, 11, 1, tzinfo=UTC)
    first = clone.build_commit(base, patch=None, files={"b.txt": "b\n"}, message="m", when=when)
    again = clone.build_commit(base, patch=None, files={"b.txt": "b\n"}, message="m", when=when)
    assert first == again  # so a re-run's push is a no-op


def test_the_token_reaches_git_only_through_its_environment(clone, monkeypatch):
    seen = []
    real_run = subprocess.run

    def spy(argv, *args, **kwargs):
        seen.append((argv, kwargs.get("env") or {}))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    clone.fetch()
    clone.remote_branches(["main"])
    clone.check_reachable(60)
    assert seen
    for argv, env in seen:
        assert not any("ghs_never-in-argv" in part for part in argv)
        assert "ghs_never-in-argv" not in clone.clone_url
        assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")


def test_a_mirror_address_that_never_answers_is_a_git_error_naming_no_token(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel accepts the connection; nothing ever answers on it
        mirror = MirrorClone(tmp_path / "cache", "1", f"http://127.0.0.1:{silent.getsockname()[1]}/o/r.git", "ghs_x")
        with pytest.raises(GitError, match=r"^git ls-remote: no answer within 0\.5 s$"):
            mirror.check_reachable(0.5)


def build(clone: MirrorClone, *, files=None, patch=None) -> str:
    base, _branch = clone.resolve("main")
    return clone.build_commit(base, patch=patch, files=files, message="m", when=datetime(2026, 11, 1, tzinfo=UTC))


def tree_of(clone: MirrorClone, commit: str) -> dict[str, tuple[str, bytes]]:
    """{path: (mode, content)} of every file in a commit's tree (a link's content is its target)."""
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "-z", commit], cwd=clone.path, capture_output=True, text=True, check=True
    ).stdout
    files = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, _kind, sha = meta.split()
        content = subprocess.run(["git", "cat-file", "blob", sha], cwd=clone.path, capture_output=True, check=True)
        files[path] = (mode, content.stdout)
    return files


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"link": "two\n"}, "link: is a symbolic link at the base; a file map can only write or delete files"),
        ({"dlink/x.txt": "x\n"}, "dlink/x.txt: dlink is a symbolic link at the base"),
        ({"a.txt/x.txt": "x\n"}, "a.txt/x.txt: a.txt is a file at the base"),
        ({"d": "x\n"}, "d: is a folder at the base; a file map can only write or delete files"),
        ({"d": None}, "d: is a folder at the base; a file map can only write or delete files"),
    ],
)
def test_a_file_map_never_silently_replaces_a_link_a_folder_or_a_file(clone, files, problem):
    with pytest.raises(OutputDoesNotApply) as error:
        build(clone, files=files)
    assert str(error.value) == problem


def test_a_file_map_may_delete_a_link(clone):
    tree = tree_of(clone, build(clone, files={"link": None, "dlink": None}))
    assert set(tree) == {"a.txt", "d/f.txt"}


@pytest.mark.parametrize(
    ("files", "patch", "problem"),
    [
        ({"A.TXT": "x\n"}, None, "A.TXT and a.txt differ only in case"),
        ({"D/g.txt": "x\n"}, None, "D and d differ only in case"),
        ({"Link": "x\n"}, None, "Link and link differ only in case"),
        (
            None,
            "diff --git a/A.txt b/A.txt\nnew file mode 100644\n--- /dev/null\n+++ b/A.txt\n@@ -0,0 +1 @@\n+x\n",
            "A.txt and a.txt differ only in case",
        ),
    ],
)
def test_an_added_path_that_differs_only_in_case_from_another_is_refused(clone, files, patch, problem):
    with pytest.raises(OutputDoesNotApply, match=problem):
        build(clone, files=files, patch=patch)


def test_renaming_a_file_to_another_case_is_allowed(clone):
    tree = tree_of(clone, build(clone, files={"a.txt": None, "A.txt": "one\n"}))
    assert tree["A.txt"] == ("100644", b"one\n") and "a.txt" not in tree


@pytest.mark.parametrize("path", [":(top)x", ":(exclude)a.txt", ":!x", "*", "d/[f].txt"])
def test_paths_are_literal_never_pathspecs(clone, path):
    tree = tree_of(clone, build(clone, files={path: "literal\n"}))
    assert tree[path] == ("100644", b"literal\n")
    assert tree["a.txt"] == ("100644", b"one\n")


def test_the_worker_users_own_git_setup_changes_nothing(clone, tmp_path, monkeypatch):
    """A hostile global config and global attributes: line endings rewritten, fetches redirected."""
    decoy = tmp_path / "decoy.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(decoy)], check=True)
    subprocess.run(["git", "-C", str(decoy), "config", "uploadpack.allowFilter", "true"], check=True)
    subprocess.run(["git", "push", "-q", str(decoy), "HEAD:refs/heads/main"], cwd=clone.path, check=True)
    home = tmp_path / "hostile-home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".gitconfig").write_text(
        f'[core]\n\tautocrlf = true\n[url "{decoy.as_uri()}"]\n\tinsteadOf = {clone.clone_url}\n'
    )
    (home / ".config" / "git" / "attributes").write_text("* text eol=lf\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    subprocess.run(["git", "-C", str(decoy), "branch", "only-in-decoy"], check=True)

    fresh = MirrorClone(tmp_path / "cache2", "1", clone.clone_url)
    fresh.fetch()
    assert fresh.git("branch", "--list", "only-in-decoy") == "", "fetched from the decoy"
    tree = tree_of(fresh, build(fresh, files={"crlf.txt": "a\r\nb\r\n"}))
    assert tree["crlf.txt"] == ("100644", b"a\r\nb\r\n")


def test_a_change_is_the_diff_and_the_text_of_the_files_it_changed(clone):
    base, _branch = clone.resolve("main")
    when = datetime(2026, 11, 1, tzinfo=UTC)
    head = clone.build_commit(
        base,
        patch=None,
        message="m",
        when=when,
        files={"a.txt": "one \ntwo  \n", "d/f.txt": None, "new.bin": "x\0y", "n.txt": "ünïcode\n"},
    )
    diff, files = clone.change(base, head)
    assert files == {"a.txt": "one \ntwo  \n", "d/f.txt": None, "n.txt": "ünïcode\n"}  # binary left out
    # Exactly git's diff: trailing spaces kept, a binary file named, not encoded.
    assert "\n+two  \n" in diff and "Binary files /dev/null and b/new.bin differ" in diff
    assert "deleted file mode 100644" in diff and diff.endswith("\n")
    assert clone.change(base, base) == ("", {})


def test_git_refused_its_token_asks_once_for_a_fresh_one(tmp_path):
    """A revoked token: GitHub answers git 401. git cannot refresh a token; the clone asks for a
    fresh one once and runs the command again (real git over HTTP, against a server that knows
    only the fresh token, and has no repository to give)."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tandem.infra.gitops import GitError

    seen: list[str] = []

    class GitHubRefusing(BaseHTTPRequestHandler):
        def do_GET(self):
            scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
            seen.append(base64.b64decode(credentials).decode() if scheme == "Basic" else "")
            fresh = seen[-1] == "x-access-token:ghs_fresh"
            self.send_response(404 if fresh else 401)
            if not fresh:
                self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHubRefusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    refreshed = []
    url = f"http://127.0.0.1:{server.server_address[1]}/evals-org/mlflow.git"
    clone = MirrorClone(
        tmp_path / "cache", "1", url, token="ghs_revoked", refresh=lambda: refreshed.append(1) or "ghs_fresh"
    )
    try:
        with pytest.raises(GitError) as failed:
            clone.fetch()
    finally:
        server.shutdown()
    assert refreshed == [1]
    assert (seen[0], seen[-1]) == ("x-access-token:ghs_revoked", "x-access-token:ghs_fresh")
    assert "ghs_" not in str(failed.value)
