"""The git side, on a real bare repository: commits from outputs without a checkout."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from tandem.gitops import MirrorClone, OutputDoesNotApply


@pytest.fixture
def clone(tmp_path) -> MirrorClone:
    source, bare = tmp_path / "source", tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True)
    (source / "a.txt").write_text("one\n")
    subprocess.run(["git", "add", "."], cwd=source, check=True)
    subprocess.run(["git", "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "init"], cwd=source, check=True)
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
    assert seen
    for argv, env in seen:
        assert not any("ghs_never-in-argv" in part for part in argv)
        assert "ghs_never-in-argv" not in clone.clone_url
        assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
