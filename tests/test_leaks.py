"""The identity-leak scan: what it finds and what it leaves alone, and what a finding does to a
task (refused, or recorded and no longer blind) and to a round's outputs from the runner."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.domain import export, leaks, rounds, tasks
from tandem.domain.task_spec import InvalidTask, LeakSettings, OutputSpec, parse_task
from tandem.infra import tokens
from tandem.infra.models import Task
from tandem.infra.tokens import Scope
from tests.conftest import MIRROR_CONFIG, settle, small_task

REPO = "evals-org/mlflow"
X, Y = "model-x-2026-10", "model-y-2026-09"
WORDS = list(leaks.IDENTITY_WORDS)


def found(*outputs: OutputSpec, metadata=None, words=WORDS) -> set[tuple[str, str, str, str]]:
    return {
        (f["model"], f["field"], f["found"], f["kind"])
        for f in leaks.scan(list(outputs), models=[X, Y], metadata=metadata or {}, words=words)
    }


def test_model_names_metadata_values_and_identity_words_are_found_in_either_output():
    x = OutputSpec(model=X, files={"src/app.py": "# Written by MODEL-Y-2026-09 for suite-alpha\nX = 1\n"})
    y = OutputSpec(
        model=Y,
        patch="From: bot\nSubject: fix it, as an AI\n   language model would\n\n"
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x\n+y  # Claude\n",
    )
    assert found(x, y, metadata={"suite": "suite-alpha", "n": 12345, "tag": "ab"}) == {
        (X, "outputs.0.files.src/app.py", Y, "model name"),
        (X, "outputs.0.files.src/app.py", "suite-alpha", "metadata value"),
        (Y, "outputs.1.patch", "as an AI language model", "identity word"),
        (Y, "outputs.1.patch", "Claude", "identity word"),
    }


def test_paths_count_but_what_the_repository_already_had_does_not():
    patch = (
        "diff --git a/notes.md b/gemini/notes.md\n--- a/notes.md\n+++ b/gemini/notes.md\n"
        "@@ -1,2 +1,2 @@ def openai_client():\n import openai\n-# GPT helper\n+# helper\n"
    )
    assert found(OutputSpec(model=X, patch=patch)) == {(X, "outputs.0.patch", "Gemini", "identity word")}


@pytest.mark.parametrize(
    "text",
    [
        "gpt_tokenizer = load()",  # part of an identifier
        "chatgptish = 1",
        "x = 'ab'  # a metadata value under three characters",
        "step = 12345",  # a number in the metadata
        "claudette = True",
    ],
)
def test_whole_words_only_and_short_or_numeric_values_are_ignored(text):
    assert found(OutputSpec(model=X, files={"a.py": text}), metadata={"tag": "ab", "n": 12345}) == set()


def test_the_word_list_can_be_replaced():
    output = OutputSpec(model=X, files={"a.py": "# OpenAI and AcmeLM\n"})
    assert {f[2] for f in found(output, words=["AcmeLM"])} == {"AcmeLM"}
    assert found(output, words=[]) == set()


def test_the_tasks_settings_win_over_the_repositorys_which_win_over_the_defaults():
    repo = LeakSettings(on_leak="refuse", words=["acme"])
    assert LeakSettings().over(repo) == repo
    assert LeakSettings(on_leak="flag").over(repo) == LeakSettings(on_leak="flag", words=["acme"])
    assert LeakSettings(words=[]).over(LeakSettings()) == LeakSettings(words=[])


def leaky_task(blinding, **overrides) -> dict:
    """A task whose first output gives its author away (an identity word, never a model name:
    a flagged task still opens, and model names must never reach GitHub)."""
    data = small_task(blinding, **overrides)
    data["outputs"][0]["files"] = {"src/app.py": "# As an AI language model, I fixed it.\nX = 1\n"}
    return data


def test_a_flagged_task_records_what_was_found_and_is_not_blind_in_the_export(github, services, blinding):
    task_id = tasks.submit(services, parse_task(leaky_task(blinding)), "test")
    clean_id = tasks.submit(services, parse_task(small_task(blinding)), "test")
    settle(github, services)
    with services.storage.transaction() as session:
        # Tasks submitted through tasks.submit belong to the default team.
        token = tokens.create_token(session, "lab", team="default", scopes=[Scope.READ, Scope.EXPORT])
        reader = tokens.create_token(session, "embed", team="default", scopes=[Scope.READ])
    with TestClient(create_app(services)) as client:
        flagged, clean = (
            client.get(f"/api/tasks/{i}", headers={"Authorization": f"Bearer {token}"}).json()
            for i in (task_id, clean_id)
        )
        # The findings name a model: a token that may not export sees only how many there are.
        read_only = client.get(f"/api/tasks/{task_id}", headers={"Authorization": f"Bearer {reader}"}).json()
        listed = client.get("/api/tasks", headers={"Authorization": f"Bearer {reader}"}).json()["tasks"]
    assert flagged["status"] == "open" and flagged["blind"] is False
    assert flagged["leaks"] == [
        {
            "round": 1,
            "model": X,
            "field": "outputs.0.files.src/app.py",
            "found": "as an AI language model",
            "kind": "identity word",
        }
    ]
    assert clean["blind"] is True and clean["leaks"] == []
    assert (read_only["blind"], read_only["leaks"]) == (False, 1)
    assert X not in json.dumps(read_only) and X not in json.dumps(listed)

    pulls = {side: number for side, number in _pulls(services, task_id).items()}
    github.as_user("rater-one").comment(REPO, pulls["A"], "/prefer A")
    settle(github, services)
    out = io.StringIO()
    with services.storage.transaction() as session:
        export.export_judgments(session, out)
    [row] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (row["task_id"], row["blind"]) == (task_id, False)


def _pulls(services, task_id: int) -> dict[str, int]:
    with services.storage.transaction() as session:
        return {side.letter: side.pr_number for side in session.get(Task, task_id).pair.sides}


def test_a_task_that_says_refuse_is_rejected_by_field_through_the_api(github, services, blinding):
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "lab", team="lab", scopes=[Scope.SUBMIT])
    with TestClient(create_app(services)) as client:
        response = client.post(
            "/api/tasks",
            json=leaky_task(blinding, leaks={"on_leak": "refuse"}),
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "outputs.0.files.src/app.py"
    assert f"outputs[0] ({X}) names 'as an AI language model' (identity word)" in error["problem"]
    assert "on_leak: refuse" in error["problem"]
    with services.storage.transaction() as session:
        assert session.query(Task).count() == 0


def test_the_repositorys_config_chooses_refuse_and_its_words(github, services, blinding):
    github.commit_files(REPO, {".github/tandem.yml": MIRROR_CONFIG + "leaks:\n  on_leak: refuse\n  words: [AcmeLM]\n"})
    settle(github, services)
    with pytest.raises(InvalidTask) as refused:
        tasks.submit(
            services,
            parse_task(
                small_task(blinding, prompt="Fix it. Written by AcmeLM?")
                | {
                    "outputs": [
                        {"model": X, "files": {"src/app.py": "# AcmeLM\n"}},
                        {"model": Y, "files": {"src/app.py": "Y = 2\n"}},
                    ]
                }
            ),
            "test",
        )
    assert [e["field"] for e in refused.value.errors] == ["outputs.0.files.src/app.py"]
    # Its words replace the defaults: an "AI language model" now passes; the task can still say flag.
    assert tasks.submit(services, parse_task(leaky_task(blinding)), "test")
    task_id = tasks.submit(
        services,
        parse_task(
            small_task(blinding, leaks={"on_leak": "flag"})
            | {
                "outputs": [
                    {"model": X, "files": {"src/app.py": "# AcmeLM\n"}},
                    {"model": Y, "files": {"src/app.py": "Y = 2\n"}},
                ]
            }
        ),
        "test",
    )
    with services.storage.transaction() as session:
        assert [f["found"] for f in session.get(Task, task_id).leaks] == ["AcmeLM"]


def test_a_rounds_outputs_from_the_runner_are_scanned_too(github, services, blinding):
    data = small_task(blinding, models=[X, Y], leaks={"on_leak": "refuse"})
    del data["outputs"]
    task_id = tasks.submit(services, parse_task(data), "test")
    settle(github, services)
    leaky = [
        OutputSpec(model=Y, files={"src/app.py": "Y = 2\n"}),
        OutputSpec(model=X, files={"src/app.py": f"X = 1  # {Y} would do it differently\n"}),
    ]
    with pytest.raises(InvalidTask) as refused:
        rounds.submit_outputs(services, task_id, 1, leaky, submitted_by="runner")
    [error] = refused.value.errors
    assert (
        error["field"] == "outputs.1.files.src/app.py"
        and f"outputs[1] ({X}) names '{Y}' (model name)" in error["problem"]
    )
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.leaks) == ("awaiting_outputs", [])
        task.leak_settings = {"on_leak": "flag"}
    # Flagged instead: recorded with its round, and the round goes ahead (not settled here: the
    # model name would go to GitHub, which the blinding audit of every test forbids).
    assert rounds.submit_outputs(services, task_id, 1, leaky, submitted_by="runner") == "accepted"
    with services.storage.transaction() as session:
        assert session.get(Task, task_id).leaks == [
            {"round": 1, "model": X, "field": "outputs.1.files.src/app.py", "found": Y, "kind": "model name"}
        ]


# A patch can carry a path, or a file's whole text, in lines other than its added ones.
BINARY_NOTES = (
    "diff --git a/NOTES.md b/NOTES.md\nnew file mode 100644\n"
    "index 0000000000000000000000000000000000000000..011a063d9fbf7e7d87971641c024666a5b1b2c38\n"
    "GIT binary patch\nliteral 19\nacmWG9$}A~K%~MFKRB+BoEKNz(;{pIi{RWQ!\n\nliteral 0\nHcmV?d00001\n\n"
)  # `git diff --binary` of a new NOTES.md reading "Written by Claude.\n" (marked binary by .gitattributes)
BINARY_DELTA = (
    "diff --git a/DATA.md b/DATA.md\n"
    "index bc6aaeecfdb5eae5f254f5117287ef6df97f399f..bb4af2de57e530a0823cdddef51f98d7d03aa1f2 100644\n"
    "GIT binary patch\ndelta 35\nqcmdlLzBPQq1W~c@qRf(#)I5cxN(JYf#L|>hg^bjq)Xl3!`NaVLs|`B<\n\n"
    "delta 40\nvcmdlQzAJpg1X1an%)C?uLrY5q13eQ<OLI$0OCuvAV>1f_L$l4xMES)43WEz^\n\n"
)  # the same of a 400-line DATA.md whose line 200 becomes "Written by Claude here"


@pytest.mark.parametrize(
    ("patch", "name"),
    [
        ("diff --git a/CLAUDE.md b/CLAUDE.md\nnew file mode 100644\nindex 0000000..e69de29\n", "Claude"),
        (
            f"diff --git a/src/app.py b/src/{Y}.py\nsimilarity index 100%\nrename from src/app.py\n"
            f"rename to src/{Y}.py\n",
            Y,
        ),
        (
            "diff --git a/src/app.py b/src/gemini.py\nsimilarity index 100%\ncopy from src/app.py\n"
            "copy to src/gemini.py\n",
            "Gemini",
        ),
        (BINARY_NOTES, "Claude"),
        (BINARY_DELTA, "Claude"),
    ],
    ids=["empty new file", "rename", "copy", "binary literal", "binary delta"],
)
def test_what_a_patch_writes_outside_its_added_lines_is_scanned_too(patch, name):
    assert {f[2] for f in found(OutputSpec(model=X, patch=patch))} == {name}


def test_a_runners_rename_to_a_model_name_is_refused_before_it_reaches_github(github, services, blinding):
    data = small_task(blinding, models=[X, Y], leaks={"on_leak": "refuse"})
    del data["outputs"]
    task_id = tasks.submit(services, parse_task(data), "test")
    settle(github, services)
    renamed = (
        f"diff --git a/src/app.py b/src/{Y}.py\nsimilarity index 100%\nrename from src/app.py\nrename to src/{Y}.py\n"
    )
    outputs = [OutputSpec(model=X, files={"src/app.py": "X = 1\n"}), OutputSpec(model=Y, patch=renamed)]
    with pytest.raises(InvalidTask):  # accepted, the model's name would be a file name on its PR
        rounds.submit_outputs(services, task_id, 1, outputs, submitted_by="runner")
