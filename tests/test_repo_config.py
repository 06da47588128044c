"""`.github/tandem.yml`: parsed, merged over the organization's default, cached, refreshed on push."""

from __future__ import annotations

import uuid

import pytest
from githubkit.exception import GraphQLFailed

from tandem.domain import repo_config
from tandem.domain.repo_config import RepoConfigError
from tandem.infra import delivery_queue
from tests.conftest import run_jobs


def test_the_repository_overrides_the_organization_key_by_key():
    merged = repo_config.merge(
        {"mirror": False, "rubric": {"axes": ["correctness"], "scale": [1, 7]}, "raters": ["a"]},
        {"mirror": True, "rubric": {"axes": ["security"]}},
    )
    config = repo_config.validate(merged, "x")
    assert config.mirror is True
    assert config.rubric.axes == ("security",) and config.rubric.scale == (1, 7)
    assert config.raters.users == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mirror: [", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping of settings"),
        ("mirror: true\nrubric: {scale: [5, 1]}\n", "rubric.scale: scale must be [lowest, highest]"),
        ("mirror: true\nraters_per_task: 0\n", "raters_per_task: Input should be greater than or equal to 1"),
        ("mirror: true\nunknown: 1\n", "unknown: Extra inputs are not permitted"),
        ("rubric: {axes: [code quality]}\n", "rubric.axes: axis 'code quality' must be one lower-case word"),
    ],
)
def test_an_invalid_config_is_a_clear_error(text, message):
    with pytest.raises(RepoConfigError) as error:
        repo_config.validate(
            repo_config.parse(text, "evals-org/mlflow/.github/tandem.yml"), "evals-org/mlflow/.github/tandem.yml"
        )
    assert message in str(error.value)
    assert str(error.value).startswith("evals-org/mlflow/.github/tandem.yml: ")


def test_the_organization_default_applies_and_is_cached_until_a_push(github, services):
    github.create_repository("evals-org", ".github", files={".github/tandem.yml": "raters_per_task: 3\n"})
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\n"})
    client = services.github.as_installation(github.installation.id)
    assert repo_config.load(services, client, "evals-org/mlflow").raters_per_task == 3

    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\nraters_per_task: 5\n"})
    reads = len(github.requests)
    assert repo_config.load(services, client, "evals-org/mlflow").raters_per_task == 3, "cached"
    assert len(github.requests) == reads

    # (GitHub's example push payloads are not among the fixtures; these are the fields read.)
    push = {
        "ref": "refs/heads/main",
        "repository": {"full_name": "evals-org/mlflow", "default_branch": "main"},
        "installation": {"id": github.installation.id},
    }
    delivery_queue.accept_delivery(services, str(uuid.uuid4()), "push", None, push)
    run_jobs(services)
    assert repo_config.load(services, client, "evals-org/mlflow").raters_per_task == 5


def test_a_push_to_another_branch_keeps_the_cache(services):
    services.redis.set("tandem:config:evals-org/mlflow", "{}")
    push = {"ref": "refs/heads/feature", "repository": {"full_name": "evals-org/mlflow", "default_branch": "main"}}
    delivery_queue.accept_delivery(services, str(uuid.uuid4()), "push", None, push)
    run_jobs(services)
    assert services.redis.get("tandem:config:evals-org/mlflow") == b"{}"


def alias_bomb(levels: int, width: int = 9) -> str:
    """A few hundred bytes of YAML whose aliases expand to width**levels strings."""
    lines = ["a0: &a0 [lol]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + f"\nlabels: {{tandem: *a{levels}}}\n"


@pytest.mark.parametrize(
    "text",
    [
        alias_bomb(9),  # 540 bytes; 387 million strings expanded
        "mirror: &yes true\nraters_per_task: 2\n",
        "raters: &people [octocat]\nreviewers: *people\n",
    ],
)
def test_anchors_and_aliases_are_refused_before_anything_expands_them(text):
    with pytest.raises(RepoConfigError, match=r"anchors and aliases .* are not allowed"):
        repo_config.parse(text, "evals-org/mlflow/.github/tandem.yml")


def test_a_config_nested_too_deeply_is_a_clear_error():
    with pytest.raises(RepoConfigError, match="nested too deeply"):
        repo_config.parse("mirror: " + "[" * 20_000 + "]" * 20_000, "x")


def test_an_aliased_config_on_a_mirror_is_refused_and_nothing_is_cached(github, services):
    # Small enough (a million strings) that the code before the fix survived caching it.
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\n" + alias_bomb(6, width=10)})
    client = services.github.as_installation(github.installation.id)
    with pytest.raises(RepoConfigError, match="anchors and aliases"):
        repo_config.load(services, client, "evals-org/mlflow")
    assert services.redis.get("tandem:config:evals-org/mlflow") is None


def test_an_oversized_config_is_refused_unread(github, services):
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\n" + "# padding\n" * 7000})
    client = services.github.as_installation(github.installation.id)
    with pytest.raises(RepoConfigError, match="larger than 64 KB"):
        repo_config.load(services, client, "evals-org/mlflow")
    assert services.redis.get("tandem:config:evals-org/mlflow") is None


def test_the_cache_holds_the_checked_text_and_never_an_invalid_file(github, services):
    text = "mirror: true\nraters_per_task: 4  # four\n"
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": text})
    client = services.github.as_installation(github.installation.id)
    assert repo_config.load(services, client, "evals-org/mlflow").raters_per_task == 4
    assert services.redis.get("tandem:config:evals-org/mlflow") == text.encode()
    assert services.redis.get("tandem:config:evals-org/.github") == b"", "no organization default: empty text"

    repo_config.forget(services, "evals-org/mlflow")
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\nraters_per_task: 0\n"})
    with pytest.raises(RepoConfigError, match="raters_per_task"):
        repo_config.load(services, client, "evals-org/mlflow")
    assert services.redis.get("tandem:config:evals-org/mlflow") is None


def test_both_files_are_read_in_one_query_and_only_what_the_cache_lacks(github, services):
    github.create_repository("evals-org", ".github", files={".github/tandem.yml": "raters_per_task: 3\n"})
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\n"})
    client = services.github.as_installation(github.installation.id)
    github.reset_requests()
    assert repo_config.load(services, client, "evals-org/mlflow").raters_per_task == 3
    assert [f"{r.method} {r.path}" for r in github.requests if r.token_kind == "installation"] == ["POST /graphql"]

    repo_config.forget(services, "evals-org/mlflow")
    github.reset_requests()
    assert repo_config.load(services, client, "evals-org/mlflow").mirror
    [query] = github.requests
    assert sorted(query.json["variables"].values()) == ["HEAD:.github/tandem.yml", "evals-org", "mlflow"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({".github/tandem.yml/x": "a\n"}, "is not a file"),
        ({".github/tandem.yml": b"mirror: true\n\x00"}, "is not UTF-8 text"),
        ({".github/tandem.yml": b"mirror: \xff\n"}, "is not UTF-8 text"),
    ],
)
def test_a_config_that_is_not_a_text_file_is_a_clear_error(github, services, files, message):
    github.commit_files("evals-org/mlflow", files)
    client = services.github.as_installation(github.installation.id)
    with pytest.raises(RepoConfigError, match=f"evals-org/mlflow/.github/tandem.yml: {message}"):
        repo_config.load(services, client, "evals-org/mlflow")


def test_an_error_other_than_not_found_is_raised_and_nothing_is_cached(github, services):
    """Only NOT_FOUND means "no file" (the repository is out of reach or has none)."""
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\n"})
    github.core.state.repo("evals-org", "mlflow").private = True
    del github.installation.permissions["contents"]  # before the installation's first token
    client = services.github.as_installation(github.installation.id)
    with pytest.raises(GraphQLFailed) as failed:
        repo_config.load(services, client, "evals-org/mlflow")
    assert [error.type for error in failed.value.response.errors] == ["NOT_FOUND", "FORBIDDEN"]  # no .github
    assert services.redis.get("tandem:config:evals-org/mlflow") is None


def test_the_round_timeout_reads_as_people_write_it():
    from datetime import timedelta

    from tandem.domain.repo_config import Followups

    assert Followups(round_timeout="90m").round_timeout == timedelta(minutes=90)
    assert Followups(round_timeout="2d").round_timeout == timedelta(days=2)
    assert Followups().round_timeout == timedelta(hours=24) and Followups().max_rounds == 5
    with pytest.raises(ValueError):
        Followups(round_timeout="0s")
