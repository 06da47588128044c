"""HelpSteer3's preference format: one row per (task, round) with ``context``, ``response1``,
``response2``, ``overall_preference`` and ``individual_preference``.

The responses are in a fixed model order (the two models sorted by name: ``model1`` first), never
in display order. Each rater's counted vote is a score in -3..3: negative prefers response1,
positive response2, its size the strength (1 slightly, 2 clearly, 3 much), 0 a tie or neither;
``individual_preference`` holds one {score, reasoning, rater_login} per rater, and
``overall_preference`` is their mean rounded half away from zero. ``context`` is the user turns
(what both sides were asked); each response is the side's whole change from the base at the round's
head.

The votes are read once and grouped (only their scores and reasons are kept), then the groups'
responses are loaded a batch of tasks at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats.context import load as load_context
from tandem.domain.export_formats.preferences import margin
from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.source import BATCH_SIZE, votes
from tandem.domain.vocabulary import SIDES, Verdict


def rows(session: Session, selection: Selection) -> Iterator[dict[str, Any]]:
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    for item in votes(session, selection, context=False):
        row = item.row
        group = groups.get((row["task_id"], row["round"]))
        if group is None:
            group = groups[(row["task_id"], row["round"])] = _group(row)
        group["individual_preference"].append(
            {"score": _score(row, group["model1"]), "reasoning": row["rationale"], "rater_login": row["rater_login"]}
        )
        group["judgment_ids"].append(row["id"])
        group["blind"] = group["blind"] and row["blind"]
        group["gold"] = group["gold"] or row["gold"]
    keys = iter(sorted(groups))
    while batch := list(islice(keys, BATCH_SIZE)):
        contexts = load_context(session, {task_id for task_id, _ in batch}, selection.team)
        for task_id, number in batch:
            group, task = groups.pop((task_id, number)), contexts[task_id]
            letters = {model: letter for letter, model in task.models.items()}
            scores = [entry["score"] for entry in group["individual_preference"]]
            yield {
                "context": task.user_messages(number),
                "response1": task.change(number, letters[group["model1"]]).text(selection.with_files),
                "response2": task.change(number, letters[group["model2"]]).text(selection.with_files),
                "overall_preference": _rounded_mean(scores),
                **group,
            }


def _group(row: dict[str, Any]) -> dict[str, Any]:
    model1, model2 = sorted((row["model_a"], row["model_b"]))
    return {
        "individual_preference": [],
        "model1": model1,
        "model2": model2,
        "task_id": row["task_id"],
        "round": row["round"],
        "repo": row["repo"],
        "judgment_ids": [],
        "round_head_sha_a": row["round_head_sha_a"],
        "round_head_sha_b": row["round_head_sha_b"],
        "blind": True,
        "gold": False,
        "task_metadata": row["task_metadata"],
    }


def _score(row: dict[str, Any], model1: str) -> int:
    """-3..3: negative for the side holding model1, positive for the other, 0 for neither."""
    if row["verdict"] not in SIDES:
        return 0
    winner = row["model_a"] if row["verdict"] == Verdict.A else row["model_b"]
    return -margin(row) if winner == model1 else margin(row)


def _rounded_mean(scores: list[int]) -> int:
    mean = sum(scores) / len(scores)
    return int(math.copysign(math.floor(abs(mean) + 0.5), mean))
