"""The shipped examples are valid as they are: the task file and the mirror's configuration go
through the validators Tandem itself uses, and the README shows exactly them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tandem.domain import repo_config
from tandem.domain.task_spec import load_task_file

ROOT = Path(__file__).parents[1]
TASK = (ROOT / "examples" / "task.yml").read_text()
CONFIG = (ROOT / "examples" / "tandem.yml").read_text()


def readme_yaml_block(first_line: str) -> str:
    """The README's indented ```yaml block that starts with first_line, dedented."""
    text = (ROOT / "README.md").read_text()
    [block] = re.findall(r"\n( *)```yaml\n(\1" + re.escape(first_line) + r".*?)\n\1```", text, re.S)
    indent = len(block[0])
    return "\n".join(line[indent:] for line in block[1].splitlines())


def test_the_example_task_is_a_valid_task():
    spec = load_task_file(TASK)
    assert "..." not in TASK
    assert spec.repo == "evals-org/mlflow" and len(spec.outputs) == 2
    assert {output.model for output in spec.outputs} == {"model-x-2026-10", "model-y-2026-09"}


def test_the_example_configuration_is_a_valid_mirror_configuration():
    config = repo_config.validate(repo_config.parse(CONFIG, "examples/tandem.yml"), "examples/tandem.yml")
    assert config.mirror is True


@pytest.mark.parametrize(("first_line", "example"), [("repo: ", TASK), ("mirror: true", CONFIG)])
def test_the_readme_shows_the_examples(first_line, example):
    assert yaml.safe_load(readme_yaml_block(first_line)) == yaml.safe_load(example)


def test_the_example_task_fits_the_sandbox_mirror(tmp_path):
    """Its patch applies to the sandbox's mirror and its rubric is the mirror's."""
    scenario = pytest.importorskip("tandem.sandbox.scenario")
    for path, content in scenario.MIRROR_FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    spec = load_task_file(TASK)
    [patch] = [output.patch for output in spec.outputs if output.patch]
    (tmp_path / "task.diff").write_text(patch)
    subprocess.run(["git", "apply", "--check", "task.diff"], cwd=tmp_path, check=True)
    mirror = repo_config.validate(repo_config.parse(scenario.MIRROR_FILES[".github/tandem.yml"], "sandbox"), "sandbox")
    assert set(spec.rubric) <= set(mirror.rubric.axes)
