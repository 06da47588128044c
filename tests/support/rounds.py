"""Follow-up rounds as a test drives them: a rater's /followup on the PRs, and the models' answers."""

from __future__ import annotations

from tandem.domain.task_spec import OutputSpec
from tests.conftest import settle

REPO = "evals-org/mlflow"
X, Y = "model-x-2026-10", "model-y-2026-09"
FOLLOWUP = "Use an argument list, not a shell, and add a test."


def answers(tag: str = "") -> list[OutputSpec]:
    return [
        OutputSpec(
            model=X, files={"src/app.py": f"X = 1  # round 2{tag}\n", "tests/test_app.py": "def test(): pass\n"}
        ),
        OutputSpec(model=Y, files={"src/app.py": f"Y = 2  # round 2{tag}\n"}),
    ]


def ask_followup(github, services, pair, who: str = "rater-one", body: str = FOLLOWUP) -> None:
    github.as_user(who).comment(REPO, pair["A"], f"/followup {body}")
    settle(github, services)
