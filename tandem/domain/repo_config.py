"""`.github/tandem.yml`: the repository's Tandem settings, read from its default branch.

As in Probot, an organization-wide default lives in the organization's `.github` repository
(same path) and the repository's own file overrides it key by key. Each file's text is cached
in Redis once it has been checked, and dropped when the default branch of its repository is pushed.

The file comes from a mirror, so it is untrusted: its size is capped, and YAML anchors and aliases
are refused, since a few hundred bytes of nested aliases expand to gigabytes once serialized.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from githubkit import GitHub
from githubkit.exception import GraphQLFailed
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from tandem.domain.quoting import code_span
from tandem.domain.task_spec import LeakSettings
from tandem.domain.vocabulary import DEFAULT_AXES, DEFAULT_SCALE, checked_axes
from tandem.infra import redis_keys
from tandem.infra.errors import Refused, TandemError
from tandem.infra.services import Services

if TYPE_CHECKING:
    from tandem.infra.models import Task

PATH = ".github/tandem.yml"
MAX_FILE_BYTES = 64 * 1024
CACHE_TTL = 600
_INTEGER = re.compile(r"[+-]?[0-9]+")


class RepoConfigError(TandemError):
    pass


class People(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)  # team slugs in the repository's organization

    def names(self) -> set[str]:
        return {user.lower() for user in self.users}


def _checked_axes(axes: tuple[str, ...]) -> tuple[str, ...]:
    if not checked_axes(axes):
        raise ValueError("a rubric needs at least one axis")
    return axes


def _checked_scale(scale: tuple[int, int]) -> tuple[int, int]:
    low, high = scale
    if low >= high:
        raise ValueError("scale must be [lowest, highest] with lowest < highest")
    return scale


@dataclass(frozen=True)
class Rubric:
    """The axes a repository's raters score with /rate, and the scale of the scores: the
    `rubric` setting, or one built in code (which may spell an axis in capitals)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    # Checked as the setting is read, so that a problem names rubric.axes or rubric.scale; a rubric
    # built in code is checked by __post_init__, by the same rules, once its axes are lower-cased.
    axes: Annotated[tuple[str, ...], AfterValidator(_checked_axes)] = DEFAULT_AXES
    scale: Annotated[tuple[int, int], AfterValidator(_checked_scale)] = DEFAULT_SCALE

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", _checked_axes(tuple(str(axis).strip().lower() for axis in self.axes)))
        low, high = self.scale
        object.__setattr__(self, "scale", _checked_scale((int(low), int(high))))

    @classmethod
    def of(cls, config: RepoConfig | Rubric | None = None) -> Rubric:
        """The rubric of a repository's config, a rubric itself, or the default one for None."""
        if isinstance(config, RepoConfig):
            return config.rubric
        return config or cls()

    @classmethod
    def for_task(cls, task: Task, default: RepoConfig | Rubric | None = None) -> Rubric:
        """The task's own axes if it has some (Task.rubric), else the default's; the default's scale."""
        default = cls.of(default)
        return cls(tuple(task.rubric), default.scale) if task.rubric else default

    def score(self, axis: str, value: str | int) -> tuple[str, int]:
        """Return (axis, score) checked against the rubric, or raise Refused naming it."""
        name = axis.strip().lower()
        if name not in self.axes:
            raise Refused(f"unknown axis {code_span(axis)}; this repository's axes are {', '.join(self.axes)}")
        low, high = self.scale
        text = str(value).strip()
        if not (text.isascii() and _INTEGER.fullmatch(text)) or not low <= int(text) <= high:
            raise Refused(f"{name} must be an integer from {low} to {high}")
        return name, int(text)


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tandem: str = "tandem"
    pending: str = "tandem:pending"
    judged: str = "tandem:judged"
    approved: str = "tandem:approved"


class Followups(BaseModel):
    """Who may start a round with /followup, how many rounds a task may have, and how long the
    model runner has to answer one before it expires."""

    model_config = ConfigDict(extra="forbid")

    allowed: Literal["raters", "reviewers", "nobody"] = "raters"  # vocabulary.Role, in the plural
    max_rounds: int = Field(default=5, ge=1, le=100)
    round_timeout: timedelta = timedelta(hours=24)

    @field_validator("round_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """'90m', '24h', '2d' (or seconds, or ISO 8601)."""
        if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", value)):
            return timedelta(seconds=int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]])
        return value

    @field_validator("round_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value


class Review(BaseModel):
    """How reviewers accept votes: how many approvals a vote needs, and whether a reviewer may
    review the votes of a task they rated too."""

    model_config = ConfigDict(extra="forbid")

    approvals: int = Field(default=1, ge=1, le=10)
    reviewers_may_rate: bool = False


class Dashboard(BaseModel):
    """Who gets the dashboard's research role, beside TANDEM_DASHBOARD_TEAMS: read from the
    organization's own file (its `.github` repository) only, as it speaks for the organization."""

    model_config = ConfigDict(extra="forbid")

    teams: list[str] = Field(default_factory=list)  # team slugs in the organization


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mirror: bool = False
    raters: People = Field(default_factory=People)
    reviewers: People = Field(default_factory=People)
    rubric: Rubric = Field(default_factory=Rubric)
    raters_per_task: int = Field(default=1, ge=1, le=20)
    labels: Labels = Field(default_factory=Labels)
    followups: Followups = Field(default_factory=Followups)
    leaks: LeakSettings = Field(default_factory=LeakSettings)  # the identity-leak scan (tandem.domain.leaks)
    review: Review = Field(default_factory=Review)
    # Votes in a round count only once both sides' CI has finished on the round's heads.
    require_ci: bool = False
    dashboard: Dashboard = Field(default_factory=Dashboard)

    @field_validator("raters", "reviewers", mode="before")
    @classmethod
    def _plain_list_means_users(cls, value: Any) -> Any:
        return {"users": value} if isinstance(value, list) else value


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: every node is written out where it is used."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def parse(text: str | None, source: str) -> dict[str, Any]:
    """The mapping in one file (empty when there is no file); RepoConfigError when it is not YAML."""
    if text is None:
        return {}
    if len(text.encode()) > MAX_FILE_BYTES:
        raise RepoConfigError(f"{source}: larger than {MAX_FILE_BYTES // 1024} KB")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)
    except yaml.YAMLError as exc:
        raise RepoConfigError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise RepoConfigError(f"{source}: not valid YAML (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RepoConfigError(f"{source}: must be a mapping of settings")
    return data


def merge(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate(data: dict[str, Any], source: str) -> RepoConfig:
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise RepoConfigError(f"{source}: {'; '.join(problems)}") from None


# One query for every file a load lacks: the organization's and the repository's, read at their
# default branch (HEAD), cost one request where the REST contents API takes one each.
_FILE = "{alias}: repository(owner: ${alias}o, name: ${alias}n) {{ object(expression: $path) {{ {fields} }} }}"
_FIELDS = "__typename ... on Blob { byteSize isBinary text }"


def _read_files(client: GitHub, full_names: list[str]) -> dict[str, str | None]:
    """Each repository's file text, None where it has none or is out of the installation's reach
    (GitHub's NOT_FOUND, which the REST API answers 404); any other error is raised."""
    aliases = {f"r{index}": full_name for index, full_name in enumerate(full_names)}
    variables: dict[str, str] = {"path": f"HEAD:{PATH}"}
    for alias, full_name in aliases.items():
        variables[f"{alias}o"], variables[f"{alias}n"] = full_name.split("/", 1)
    declared = "".join(f", ${alias}o: String!, ${alias}n: String!" for alias in aliases)
    fields = " ".join(_FILE.format(alias=alias, fields=_FIELDS) for alias in aliases)
    query = f"query($path: String!{declared}) {{ {fields} }}"
    try:
        data = client.graphql.request(query, variables)
    except GraphQLFailed as exc:
        errors = exc.response.errors or []
        if not all(error.type == "NOT_FOUND" and error.path and error.path[0] in aliases for error in errors):
            raise
        data = exc.response.data or {}
    return {
        full_name: _text_of((data.get(alias) or {}).get("object"), full_name) for alias, full_name in aliases.items()
    }


def _text_of(found: dict | None, full_name: str) -> str | None:
    if found is None:
        return None
    if found.get("__typename") != "Blob":
        raise RepoConfigError(f"{full_name}/{PATH}: is not a file")
    if found["byteSize"] > MAX_FILE_BYTES:
        raise RepoConfigError(f"{full_name}/{PATH}: larger than {MAX_FILE_BYTES // 1024} KB")
    if found["isBinary"] or found["text"] is None:
        raise RepoConfigError(f"{full_name}/{PATH}: is not UTF-8 text")
    return found["text"]


def _texts(services: Services, client: GitHub, full_names: list[str]) -> list[str]:
    """The files' texts ("" for none), from the cache or else read together. Only text that
    parsed and validated on its own is cached, so the cache never holds what was refused."""
    keys = [redis_keys.repo_config(full_name) for full_name in full_names]
    texts: list[str | None] = [
        cached.decode() if isinstance(cached, bytes) else cached  # str if the client decodes
        for cached in services.redis.mget(keys)
    ]
    missing = [full_name for full_name, text in zip(full_names, texts, strict=True) if text is None]
    if missing:
        read = _read_files(client, missing)
        for index, full_name in enumerate(full_names):
            if texts[index] is None:
                text = texts[index] = read[full_name] or ""
                validate(parse(text, f"{full_name}/{PATH}"), f"{full_name}/{PATH}")
                services.redis.set(keys[index], text, ex=CACHE_TTL)
    return [text or "" for text in texts]


@functools.lru_cache(maxsize=256)
def _config(defaults: str, text: str, owner: str, full_name: str) -> RepoConfig:
    """Parsed once per process for the same texts: every vote asks for its repository's config.
    The result is shared, so it is never modified."""
    merged = merge(parse(defaults, f"{owner}/.github/{PATH}"), parse(text, f"{full_name}/{PATH}"))
    return validate(merged, f"{full_name}/{PATH}")


def load(services: Services, client: GitHub, full_name: str) -> RepoConfig:
    """The repository's config merged over its organization's default (cached)."""
    owner = full_name.split("/", 1)[0]
    if full_name.lower() == f"{owner}/.github".lower():
        return _config("", *_texts(services, client, [full_name]), owner, full_name)
    return _config(*_texts(services, client, [f"{owner}/.github", full_name]), owner, full_name)


def organization(services: Services, client: GitHub, org: str) -> RepoConfig:
    """The organization's own file, in its `.github` repository (the defaults of its repositories)."""
    return load(services, client, f"{org}/.github")


def forget(services: Services, full_name: str) -> None:
    """Drop the cached file of a repository (its default branch changed)."""
    services.redis.delete(redis_keys.repo_config(full_name))


def load_mirror(services: Services, client: GitHub, full_name: str) -> RepoConfig:
    """The config of a repository Tandem may open pairs on; RepoConfigError says why it may not."""
    try:
        config = load(services, client, full_name)
    except RepoConfigError as exc:
        raise RepoConfigError(f"invalid configuration: {exc}") from None
    if not config.mirror:
        raise RepoConfigError(
            f"{full_name} is not marked as a mirror: add `mirror: true` to {PATH} on its default branch"
        )
    return config
