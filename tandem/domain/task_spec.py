"""The task file a research team submits (YAML or JSON): what to compare, on which mirror.

repo: evals-org/mlflow          # the mirror repository (installed, `mirror: true`)
base: 3f2a1c9                   # commit SHA or branch on the mirror
prompt: |
  Fix the command injection ...
outputs:                        # exactly two (or `models: [x, y]` and no outputs: the
                                # model runner answers round 1, see tandem.domain.rounds)
  - model: model-x-2026-10      # secret: never shown on GitHub
    patch: |                    # a git-style unified diff against base
      diff --git a/... b/...
  - model: model-y-2026-09
    files:                      # or whole files: path -> new content, null deletes
      src/app.py: "..."
rubric: [correctness, security]  # optional, default from the repository's config
raters: [octocat]               # optional: review requests
metadata: {source: "..."}       # optional, kept and exported, never shown
gold: {preferred: model-x-2026-10, note: "..."}  # optional: the expected verdict (a model,
                                # tie or neither), for raters' gold accuracy; never shown
leaks: {on_leak: refuse, words: [...]}  # optional: the identity-leak scan (tandem.domain.leaks)
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tandem.domain.vocabulary import LOGIN, Verdict, checked_axes
from tandem.infra import gitops
from tandem.infra.errors import TandemError

MAX_OUTPUT_BYTES = 10 * 1024 * 1024  # a patch or a set of files
MAX_PROMPT_CHARS = 60_000  # leaves room in a PR body (GitHub caps it at 65,536)
_REPO = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")
_REF = re.compile(r"[A-Za-z0-9._/-]{1,255}")


class InvalidTask(TandemError):
    """Every problem with a task file, each naming its field."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['problem']}" for e in errors))


def output_label(position: int, model: str) -> str:
    """An output as its submitter knows it (they never see the letter Tandem drew for it)."""
    return f"outputs[{position}] ({model})"


def same_change(models: list[str], where: str) -> str:
    """Why two outputs that make the same change are refused: two PRs with one head commit."""
    first, second = (output_label(position, model) for position, model in enumerate(models))
    return f"{first} and {second} make the same change {where}; the two PRs would be identical"


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=255)
    patch: str | None = None
    files: dict[str, str | None] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> OutputSpec:
        if (self.patch is None) == (self.files is None):
            raise ValueError("give exactly one of patch or files")
        if self.patch is not None and not self.patch.strip():
            raise ValueError("patch is empty")
        if self.files is not None and not self.files:
            raise ValueError("files is empty")
        size = len((self.patch or "").encode()) + sum(len((v or "").encode()) for v in (self.files or {}).values())
        if size > MAX_OUTPUT_BYTES:
            raise ValueError(f"output is {size / 1e6:.1f} MB; the limit is {MAX_OUTPUT_BYTES // 2**20} MB")
        return self

    @field_validator("files")
    @classmethod
    def _safe_paths(cls, files: dict[str, str | None] | None) -> dict[str, str | None] | None:
        for path in files or {}:
            parts = path.split("/")
            # Exactly git's own spelling of a path: anything else git would drop or reinterpret.
            if (
                any(part in ("", ".", "..") for part in parts)
                or any(part.lower() == ".git" for part in parts)
                or "\\" in path
                or "\0" in path
            ):
                raise ValueError(f"{path!r} is not a relative path inside the repository")
        written = [path for path, content in (files or {}).items() if content is not None]
        if clash := gitops.case_clash(written, gitops.with_folders(written)):
            raise ValueError(clash)
        return files


class GoldSpec(BaseModel):
    """What a gold task's raters are expected to prefer: one of its models, tie or neither."""

    model_config = ConfigDict(extra="forbid")

    preferred: str = Field(min_length=1, max_length=255)
    note: str = Field(default="", max_length=10_000)


GOLD_VERDICTS = (Verdict.TIE, Verdict.NEITHER)


class LeakSettings(BaseModel):
    """``leaks:`` in a task and in `.github/tandem.yml` (tandem.domain.leaks); unset keys fall back from
    the task to the repository to the defaults."""

    model_config = ConfigDict(extra="forbid")

    on_leak: Literal["refuse", "flag"] | None = None
    words: list[str] | None = Field(default=None, max_length=1000)

    def over(self, defaults: LeakSettings) -> LeakSettings:
        """These settings, with the unset ones taken from ``defaults``."""
        return LeakSettings(
            on_leak=self.on_leak or defaults.on_leak,
            words=defaults.words if self.words is None else self.words,
        )


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str
    base: str
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    # Either the two outputs, or the two models whose runner answers round 1 (tandem.domain.rounds).
    outputs: list[OutputSpec] | None = None
    models: list[str] | None = None
    rubric: list[str] | None = None
    raters: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    gold: GoldSpec | None = None
    leaks: LeakSettings | None = None

    def model_names(self) -> list[str]:
        return [output.model for output in self.outputs] if self.outputs is not None else list(self.models or ())

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not _REPO.fullmatch(value):
            raise ValueError("must be owner/name")
        return value

    @field_validator("base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not _REF.fullmatch(value) or value.startswith("-") or ".." in value:
            raise ValueError("must be a commit SHA or a branch name")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty")
        return value

    @model_validator(mode="after")
    def _outputs_or_models(self) -> TaskSpec:
        if (self.models is None) == (self.outputs is None):
            raise ValueError("give either two outputs, or two models (the runner then answers round 1)")
        return self

    @field_validator("models")
    @classmethod
    def _two_models(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(value) != 2 or len(set(value)) != 2):
            raise ValueError(f"exactly two different models are compared; got {value}")
        if any(not model.strip() or len(model) > 255 for model in value or ()):
            raise ValueError("a model name is empty or longer than 255 characters")
        return value

    @field_validator("outputs")
    @classmethod
    def _two(cls, value: list[OutputSpec] | None) -> list[OutputSpec] | None:
        if value is None:
            return value
        if len(value) != 2:
            raise ValueError(f"exactly two outputs are compared; got {len(value)}")
        if value[0].model == value[1].model:
            raise ValueError("the two outputs come from the same model")
        if (value[0].patch, value[0].files) == (value[1].patch, value[1].files):
            raise ValueError(same_change([output.model for output in value], "(identical text)"))
        return value

    @field_validator("rubric")
    @classmethod
    def _rubric(cls, value: list[str] | None) -> list[str] | None:
        # Empty: the repository's axes (tandem.domain.repo_config.Rubric.for_task).
        return None if value is None else list(checked_axes(value))

    @field_validator("raters")
    @classmethod
    def _raters(cls, value: list[str]) -> list[str]:
        for login in value:
            if not LOGIN.fullmatch(login):
                raise ValueError(f"{login!r} is not a GitHub login")
        return value


def _field(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "(task)"


def parse_task(data: Any) -> TaskSpec:
    """Validate a decoded task; InvalidTask lists every problem, each naming its field."""
    if not isinstance(data, dict):
        raise InvalidTask([{"field": "(task)", "problem": "must be a mapping with repo, base, prompt and outputs"}])
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidTask(
            [
                {"field": _field(error["loc"]), "problem": error["msg"].removeprefix("Value error, ")}
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from None
    if spec.gold is not None and spec.gold.preferred not in (*spec.model_names(), *GOLD_VERDICTS):
        problem = f"must be one of the task's models {spec.model_names()}, tie or neither"
        raise InvalidTask([{"field": "gold.preferred", "problem": problem}])
    return spec


def load_task_file(text: str) -> TaskSpec:
    """A task from YAML or JSON text (JSON is YAML, but its errors read better as JSON's)."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidTask([{"field": "(file)", "problem": f"not valid YAML or JSON: {exc}".splitlines()[0]}]) from None
    return parse_task(data)
