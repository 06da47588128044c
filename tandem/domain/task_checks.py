"""A submitted task checked against its mirror, so that a bad task is answered 400 at once rather
than 202 and a failure the submitter learns of only by polling. The worker still checks all of it
when it opens the pair: this is the first line, not the last.

Where it runs: in the process that takes the submission (the API or the CLI), which may hold no
clone of the mirror. So GitHub answers what it answers cheaply: the mirror's `tandem.yml` and its
`mirror: true` (through the cached config), and the base (a branch through the git refs API, a
full commit SHA through the git commits API; a short SHA is left to the worker). When this machine
does hold the workers' clone of the mirror (one host, or a shared TANDEM_GIT_CACHE_DIR), both
outputs are also built on that base there, exactly as the worker will build them: a patch that does
not apply, a file map that cannot be written, and two outputs making the same tree are refused too.
The clone is never fetched here (a fetch moves refs, under the workers' lock); git brings in the
base commit and the blobs a patch needs on its own, and building writes nothing but objects.

When GitHub cannot answer (unreachable, rate limited, the app not set up yet), the checks are
skipped and the task is queued as before: the worker checks, and retries while GitHub is away.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed

from tandem.domain import mirrors, repo_config
from tandem.domain.task_spec import InvalidTask, OutputSpec, TaskSpec, output_label, same_change
from tandem.infra import gitops
from tandem.infra.errors import ConfigError, RateLimited
from tandem.infra.services import Services

log = logging.getLogger(__name__)

_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_SHORT_SHA = re.compile(r"[0-9a-f]{4,39}")


@dataclass(frozen=True)
class Mirror:
    """What a check needs of the repository row."""

    id: int
    installation_id: int


def check(services: Services, spec: TaskSpec, mirror: Mirror) -> None:
    """Raise InvalidTask listing, by field, what is already known to fail on the mirror."""
    try:
        problems = _problems(services, spec, mirror)
    except (GitHubException, RateLimited, ConfigError, gitops.GitError) as exc:
        log.warning(
            "%s: submission checks skipped, the worker will check (%s)", spec.repo, type(exc).__name__, exc_info=True
        )
        return
    if problems:
        raise InvalidTask(problems)


def resolve_base(services: Services, repo: str, base: str) -> tuple[str, str] | None:
    """(commit SHA, branch the PRs target) of a task's base, from the workers' clone (fetched), for
    a task whose runner answers round 1 and needs the base's SHA; None if git cannot say now (the
    worker resolves it when it opens the pair)."""
    try:
        clone = mirrors.clone_of(services, repo)
        with clone.locked():
            clone.fetch()
            return clone.resolve(base)
    except (GitHubException, RateLimited, gitops.GitError, gitops.OutputDoesNotApply) as exc:
        log.warning("%s: base not resolved at submission (%s)", repo, type(exc).__name__, exc_info=True)
        return None


def settings(services: Services, repo: str, installation_id: int) -> repo_config.RepoConfig:
    """The mirror's settings (the defaults when GitHub cannot say now)."""
    try:
        return repo_config.load(services, services.github.as_installation(installation_id), repo)
    except (GitHubException, RateLimited, ConfigError, repo_config.RepoConfigError) as exc:
        log.warning("%s: settings unknown, the defaults apply (%s)", repo, type(exc).__name__, exc_info=True)
        return repo_config.RepoConfig()


def _problems(services: Services, spec: TaskSpec, mirror: Mirror) -> list[dict[str, str]]:
    client = services.github.as_installation(mirror.installation_id)
    problems = []
    try:
        repo_config.load_mirror(services, client, spec.repo)
    except repo_config.RepoConfigError as exc:
        problems.append({"field": "repo", "problem": str(exc)})
    base_sha = _base_on_github(client, spec.repo, spec.base)
    if base_sha is None:
        if _SHORT_SHA.fullmatch(spec.base):
            return problems  # a short SHA that is no branch: only the clone can tell, and the worker will
        problems.append({"field": "base", "problem": f"{spec.base!r} is neither a branch nor a commit of {spec.repo}"})
        return problems
    clone = _local_clone(services, spec.repo, mirror)
    if clone is not None:
        problems += _output_problems(clone, spec, base_sha)
    return problems


def _base_on_github(client: GitHub, repo: str, base: str) -> str | None:
    """The commit a base names, as the worker resolves it: a branch first, then a full SHA."""
    owner, name = repo.split("/", 1)
    try:
        return client.rest.git.get_ref(owner, name, f"heads/{base}").parsed_data.object_.sha
    except RequestFailed as exc:
        if exc.response.status_code != 404:
            raise
    if not _FULL_SHA.fullmatch(base):
        return None
    try:
        return client.rest.git.get_commit(owner, name, base).parsed_data.sha
    except RequestFailed as exc:
        if exc.response.status_code not in (404, 422):
            raise
    return None


def _local_clone(services: Services, repo: str, mirror: Mirror) -> gitops.MirrorClone | None:
    # Looked for before a token is asked for: a mirror no worker has fetched yet has no clone.
    url = mirrors.clone_url(services, repo)
    if not (gitops.MirrorClone(services.settings.git_cache_dir, str(mirror.id), url).path / "HEAD").exists():
        return None
    return mirrors.clone(services, repo, mirror.id, mirror.installation_id)


def _output_problems(clone: gitops.MirrorClone, spec: TaskSpec, base_sha: str) -> list[dict[str, str]]:
    outputs = list(spec.outputs or ())
    return build_problems(clone, outputs, [(base_sha, spec.base)] * len(outputs), same=f"on {spec.base}")


def build_problems(
    clone: gitops.MirrorClone, outputs: list[OutputSpec], starts: list[tuple[str, str]], *, same: str
) -> list[dict[str, str]]:
    """Build each output on its start, (commit, what to call it), exactly as the worker will: an
    output that does not apply, one that writes a file GitHub would refuse (a patch's binary hunk
    inflates a thousandfold: the push would fail, after every retry), two that change the same."""
    problems, trees = [], []
    for position, (output, (start, where)) in enumerate(zip(outputs, starts, strict=True)):
        field = f"outputs.{position}.{'patch' if output.patch is not None else 'files'}"
        label = output_label(position, output.model)
        try:
            trees.append(clone.build_tree(start, patch=output.patch, files=output.files))
        except gitops.OutputDoesNotApply as exc:
            problems.append({"field": field, "problem": f"{label} does not apply to {where}: {exc}"})
            continue
        for path, size in sorted(clone.written_sizes(start, trees[-1]).items()):
            if size > gitops.MAX_FILE_BYTES:
                megabytes, limit = f"{size / 2**20:.1f}", gitops.MAX_FILE_BYTES // 2**20
                problem = f"{label} writes {path} of {megabytes} MB; GitHub takes files up to {limit} MB"
                problems.append({"field": field, "problem": problem})
    if len(trees) == 2 and trees[0] == trees[1]:
        problems.append({"field": "outputs", "problem": same_change([output.model for output in outputs], same)})
    return problems
