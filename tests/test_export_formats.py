"""The training formats on real rows (SQLite and PostgreSQL), each loaded the way its consumer
loads it: `datasets.load_dataset("json" | "parquet", ...)`, offline."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tandem.domain.export_formats import FORMATS, Selection, write
from tandem.domain.export_formats.writing import line
from tests.support.export_data import DIFF, build

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
datasets = pytest.importorskip("datasets")


@pytest.fixture
def tasks(storage) -> dict[str, int]:
    return build(storage)


def load(storage, tmp_path: Path, name: str, *, parquet: bool = False, team: str | None = "default", **options):
    """The format's file, loaded by `datasets` (the team's tasks only, as the API exports)."""
    path = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.{'parquet' if parquet else 'jsonl'}"
    with (
        storage.transaction() as session,
        open(path, "wb") as out,
    ):
        count = write(session, name, Selection(team=team, **options), out, parquet=parquet)
    if count == 0:
        return []
    loaded = datasets.load_dataset("parquet" if parquet else "json", data_files=str(path), split="train")
    assert len(loaded) == count
    return list(loaded)


def keyed(rows: list[dict], tasks: dict[str, int]) -> dict[tuple[str, int, str], dict]:
    """{(task name, round, rater): row}, for rows with their provenance at the top or in metadata."""
    names = {task_id: name for name, task_id in tasks.items()}
    found = {}
    for row in rows:
        where = row.get("metadata", row)
        key = (names[where["task_id"]], where["round"], where.get("rater_login"))
        assert key not in found
        found[key] = row
    return found


PROVENANCE = {
    "task_id",
    "round",
    "rater_login",
    "rater_id",
    "judgment_id",
    "head_sha_a",
    "head_sha_b",
    "round_head_sha_a",
    "round_head_sha_b",
    "blind",
    "gold",
    "review_state",
    "task_metadata",
}
SINGLE_A, SINGLE_B = "patch of model-y\n", "patch of model-x\n"  # A showed the second model


def with_files(number: int, letter: str) -> str:
    return DIFF[(number, letter)] + f"\n=== pager.py ===\n{letter}{number}\n"


def test_trl_has_prompt_chosen_rejected_and_a_margin_for_approved_current_votes(storage, tasks, tmp_path):
    rows = keyed(load(storage, tmp_path, "trl"), tasks)
    assert set(rows) == {("single", 1, "alice"), ("single", 1, "bob"), ("multi", 1, "alice"), ("multi", 2, "alice")}
    assert PROVENANCE | {"prompt", "chosen", "rejected", "margin"} <= set(rows["single", 1, "alice"])
    alice = rows["single", 1, "alice"]
    assert (alice["prompt"], alice["chosen"], alice["rejected"], alice["margin"]) == (
        "Fix the pager",
        SINGLE_B,
        SINGLE_A,
        3.0,
    )
    assert (alice["chosen_model"], alice["rejected_model"], alice["responses_recorded"]) == (
        "model-x",
        "model-y",
        False,
    )
    assert (rows["single", 1, "bob"]["chosen"], rows["single", 1, "bob"]["margin"]) == (SINGLE_A, 1.0)
    second = rows["multi", 2, "alice"]
    assert second["prompt"] == "Fix the pager\n\nFollow-up 1:\nAdd a test."
    assert (second["chosen"], second["rejected"], second["margin"]) == (DIFF[(2, "B")], DIFF[(2, "A")], 2.0)
    assert second["responses_recorded"] and second["blind"] and not second["gold"]
    assert second["task_metadata"] == {"suite": "s2"}

    unapproved = keyed(load(storage, tmp_path, "trl", include_unapproved=True), tasks)
    assert set(unapproved) - set(rows) == {("single", 1, "dave")}
    assert set(keyed(load(storage, tmp_path, "trl", round=2, metadata={"suite": "s2"}), tasks)) == {
        ("multi", 2, "alice")
    }
    assert load(storage, tmp_path, "trl", metadata={"suite": "nowhere"}) == []


def test_trl_conversational_gives_each_side_its_conversation(storage, tasks, tmp_path):
    rows = keyed(load(storage, tmp_path, "trl", conversational=True, with_files=True), tasks)
    second = rows["multi", 2, "alice"]
    assert second["prompt"] == [{"role": "user", "content": "Fix the pager"}]
    assert second["chosen"] == [
        {"role": "assistant", "content": with_files(1, "B")},
        {"role": "user", "content": "Add a test."},
        {"role": "assistant", "content": with_files(2, "B")},
    ]
    assert [m["content"] for m in second["rejected"]] == [with_files(1, "A"), "Add a test.", with_files(2, "A")]
    assert rows["multi", 1, "alice"]["chosen"] == [{"role": "assistant", "content": with_files(1, "A")}]


def test_openai_dpo_has_input_messages_and_one_assistant_message_per_output(storage, tasks, tmp_path):
    rows = keyed(load(storage, tmp_path, "openai-dpo"), tasks)
    assert set(rows) == {("single", 1, "alice"), ("single", 1, "bob"), ("multi", 1, "alice"), ("multi", 2, "alice")}
    second = rows["multi", 2, "alice"]
    assert set(second) == {"input", "preferred_output", "non_preferred_output", "metadata"}
    assert second["input"]["messages"] == [
        {"role": "user", "content": "Fix the pager"},
        {"role": "user", "content": "Add a test."},
    ]
    assert second["preferred_output"] == [{"role": "assistant", "content": DIFF[(2, "B")]}]
    assert second["non_preferred_output"] == [{"role": "assistant", "content": DIFF[(2, "A")]}]
    assert set(second["metadata"]) >= PROVENANCE
    assert (second["metadata"]["preferred_model"], second["metadata"]["margin"]) == ("model-y", 2)


def test_helpsteer3_orders_responses_by_model_and_scores_each_rater(storage, tasks, tmp_path):
    rows = keyed(load(storage, tmp_path, "helpsteer3"), tasks)
    assert set(rows) == {("single", 1, None), ("multi", 1, None), ("multi", 2, None)}
    single = rows["single", 1, None]
    assert {"context", "response1", "response2", "overall_preference", "individual_preference"} <= set(single)
    # model-x (response1) was shown as B: alice's "B much" is -3, bob's "A slightly" +1, neither 0.
    assert (single["model1"], single["response1"], single["response2"]) == ("model-x", SINGLE_B, SINGLE_A)
    assert single["context"] == [{"role": "user", "content": "Fix the pager"}]
    assert [(p["rater_login"], p["score"], p["reasoning"]) for p in single["individual_preference"]] == [
        ("alice", -3, "A crashes on page 0."),
        ("bob", 1, "A is shorter."),
        ("carol", 0, ""),
    ]
    assert single["overall_preference"] == -1  # the mean, -2/3, rounded
    multi = rows["multi", 1, None]
    assert [p["score"] for p in multi["individual_preference"]] == [-2, 0] and multi["overall_preference"] == -1
    assert rows["multi", 2, None]["overall_preference"] == 2
    assert rows["multi", 2, None]["response1"] == DIFF[(2, "A")]  # model-x is A in this task

    dropped = keyed(load(storage, tmp_path, "helpsteer3", ties="drop"), tasks)
    assert [p["score"] for p in dropped["single", 1, None]["individual_preference"]] == [-3, 1]
    assert dropped["multi", 1, None]["overall_preference"] == -2


def test_battles_follow_the_arena_convention(storage, tasks, tmp_path):
    rows = keyed(load(storage, tmp_path, "battles"), tasks)
    winners = {key: (row["model_a"], row["model_b"], row["winner"]) for key, row in rows.items()}
    assert winners == {
        ("single", 1, "alice"): ("model-y", "model-x", "model_b"),
        ("single", 1, "bob"): ("model-y", "model-x", "model_a"),
        ("single", 1, "carol"): ("model-y", "model-x", "tie (bothbad)"),
        ("multi", 1, "alice"): ("model-x", "model-y", "model_a"),
        ("multi", 1, "bob"): ("model-x", "model-y", "tie"),
        ("multi", 2, "alice"): ("model-x", "model-y", "model_b"),
    }
    alice = rows["single", 1, "alice"]
    assert PROVENANCE | {"judge", "turn", "tstamp", "on_side", "strength"} <= set(alice)
    assert (alice["judge"], alice["turn"], alice["on_side"]) == ("alice", 1, "A")
    assert isinstance(alice["tstamp"], float)
    dropped = keyed(load(storage, tmp_path, "battles", ties="drop"), tasks)
    assert {row["winner"] for row in dropped.values()} == {"model_a", "model_b"} and len(dropped) == 4


def test_ratings_are_one_row_per_score_with_the_sides_model(storage, tasks, tmp_path):
    [score] = load(storage, tmp_path, "ratings")
    assert set(score) >= PROVENANCE
    assert (score["kind"], score["side"], score["model"], score["axis"], score["score"], score["verdict"]) == (
        "judgment",
        "B",
        "model-x",
        "correctness",
        5,
        "B",
    )
    scores = load(storage, tmp_path, "ratings", include_unapproved=True)
    standalone = [(s["kind"], s["rater_login"], s["model"], s["score"]) for s in scores if s["kind"] == "ratings"]
    assert standalone == [("ratings", "eve", "model-y", 2)]


def test_jsonl_is_the_raw_export_with_standalone_scores_and_unvoted_follow_ups(storage, tasks, tmp_path):
    rows = load(storage, tmp_path, "jsonl")
    kinds = {(row["kind"], row["rater_login"], row["round"]) for row in rows if row["task_id"] != tasks["multi"]}
    assert ("ratings", "eve", 1) in kinds
    unvoted = [row for row in rows if row["kind"] == "round" and row["round"] == 3]
    assert [row["round_prompt"] for row in unvoted] == ["Document it."]
    assert all(row["blind"] is True and row["gold"] is False for row in rows)
    assert tasks["theirs"] not in {row["task_id"] for row in rows}
    assert tasks["theirs"] in {row["task_id"] for row in load(storage, tmp_path, "jsonl", team=None)}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_loads_as_parquet_with_the_same_rows(storage, tasks, tmp_path, name):
    options = {"include_unapproved": True}
    as_json, as_parquet = (
        load(storage, tmp_path, name, **options),
        load(storage, tmp_path, name, parquet=True, **options),
    )
    assert len(as_parquet) == len(as_json) > 0
    assert [without_nulls(row) for row in as_parquet] == [without_nulls(row) for row in as_json]


def without_nulls(value):
    """A row as Arrow sees it: a key missing from an object is the same as a null."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def test_a_team_sees_only_its_tasks_in_every_format(storage, tasks, tmp_path):
    texts = {}
    for name in FORMATS:
        out = io.BytesIO()
        with storage.transaction() as session:
            write(session, name, Selection(team="other-team", include_unapproved=True), out)
        texts[name] = out.getvalue().decode()
    assert all("model-x" not in text and "Fix the pager" not in text for text in texts.values())
    assert "model-p" in texts["battles"] and "Their secret task" in texts["trl"]


def test_a_line_is_what_json_dumps_writes_whatever_the_keys_and_integers():
    # orjson is tried without non-string keys first, and refuses integers beyond 64 bits: both
    # fall back, to the same text.
    for row in (
        {"kind": "judgment", "rationale": "é ✓", "scores": [1.5, None, True]},
        {"ratings": {1: {"correctness": 4}}, "side": "A"},
        {"task_metadata": {"seed": 2**70}},
    ):
        assert line(row) == (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
