"""What every object of the export (tandem.domain.export) carries besides its own row: its task and
round, the pair's models, and the rater's current scores and line comments in the round, read in
bulk for a batch of objects, by index.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from tandem.domain import ci
from tandem.infra import bulk
from tandem.infra.models import LineComment, Output, Rating, Round, RoundSide, Side, Task


def tasks(connection: Connection, task_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Each task's repository, and the fields every object of the task ends with: its base, its
    metadata, whether it is gold (and its answer), and whether it is blind: the leak scan found
    nothing in its outputs that could tell raters which model wrote them (tandem.domain.leaks)."""
    found: dict[int, dict[str, Any]] = {}
    columns = (Task.id, Task.repo_full_name, Task.base, Task.base_sha, Task.metadata_, Task.gold, Task.leaks)
    for task_id, repo, base, base_sha, metadata, gold, leaks in connection.execute(
        select(*columns).where(bulk.among(connection, Task.id, task_ids))
    ).all():
        found[task_id] = {
            "repo": repo,
            "context": {
                "task_base": base,
                "task_base_sha": base_sha,
                "task_metadata": metadata or {},
                "gold": gold is not None,
                "gold_answer": gold,
                "blind": not leaks,
            },
        }
    return found


def rounds(connection: Connection, round_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Each round's number and prompt, who asked for it, its state and times, and the heads it
    put on the PRs."""
    found: dict[int, dict[str, Any]] = {}
    columns = (
        Round.id,
        Round.number,
        Round.prompt,
        Round.author_login,
        Round.status,
        Round.closed_reason,
        Round.created_at,
        Round.opened_at,
        Round.closed_at,
    )  # not the outputs: JSON, decoded for nothing
    for row in bulk.dicts(
        connection.execute(select(*bulk.plain(*columns)).where(bulk.among(connection, Round.id, round_ids)))
    ):
        found[row["id"]] = {
            "round": row["number"],
            "round_prompt": row["prompt"],
            "round_author": row["author_login"],
            "round_status": row["status"],
            "round_closed_reason": row["closed_reason"],
            "round_started_at": row["created_at"],
            "round_opened_at": row["opened_at"],
            "round_closed_at": row["closed_at"],
            "round_head_sha_a": None,
            "round_head_sha_b": None,
        }
    for round_id, sides in ci.rounds_ci(connection, round_ids).items():
        found[round_id]["round_ci"] = ci.view(sides)
    for round_id in found:
        found[round_id].setdefault("round_ci", ci.view({}))
    for round_id, letter, head_sha in bulk.tuples(
        connection.execute(
            select(RoundSide.round_id, RoundSide.letter, RoundSide.head_sha).where(
                bulk.among(connection, RoundSide.round_id, round_ids)
            )
        )
    ):
        found[round_id][f"round_head_sha_{letter.lower()}"] = head_sha
    return found


@dataclass(frozen=True)
class Batch:
    """What a batch's objects carry besides their own row, read in bulk."""

    tasks: dict[int, dict[str, Any]]
    rounds: dict[int, dict[str, Any]]
    models: dict[tuple[int, str], str]
    ratings: dict[tuple[int, int], dict[str, dict[str, int]]]
    line_comments: dict[tuple[int, int], list[dict[str, Any]]]

    @classmethod
    def read(cls, connection: Connection, task_ids: set[int], pair_ids: set[int], keys: set[tuple[int, int]]) -> Batch:
        """For a batch's tasks, pairs and (round, rater) pairs: the tasks and rounds, the models
        of the pairs, and the raters' current scores and their line comments in the rounds."""
        models: dict[tuple[int, str], str] = {
            (pair_id, letter): model
            for pair_id, letter, model in bulk.tuples(
                connection.execute(
                    select(Side.pair_id, Side.letter, Output.model)
                    .join(Output, Output.id == Side.output_id)
                    .where(bulk.among(connection, Side.pair_id, pair_ids))
                )
            )
        }
        return cls(
            tasks=tasks(connection, task_ids),
            rounds=rounds(connection, {round_id for round_id, _rater in keys}),
            models=models,
            ratings=_ratings(connection, keys),
            line_comments=_line_comments(connection, keys),
        )

    def shared(self, task_id: int, pair_id: int, round_id: int) -> dict[str, Any]:
        """The fields every object has, in order: the task and round, and the rater, their
        scores and line comments (null here: they are each object's own)."""
        task, round_ = self.tasks[task_id], self.rounds[round_id]
        return {
            "task_id": task_id,
            "pair_id": pair_id,
            "repo": task["repo"],
            "round": round_["round"],
            "round_prompt": round_["round_prompt"],
            "round_author": round_["round_author"],
            "round_head_sha_a": round_["round_head_sha_a"],
            "round_head_sha_b": round_["round_head_sha_b"],
            "round_ci": round_["round_ci"],
            "rater_id": None,
            "rater_login": None,
            "ratings": None,
            "line_comments": None,
            "model_a": self.models.get((pair_id, "A")),
            "model_b": self.models.get((pair_id, "B")),
            **task["context"],
        }


def _ratings(connection: Connection, keys: set[tuple[int, int]]) -> dict[tuple[int, int], dict[str, dict[str, int]]]:
    """Each rater's current scores in each round: {side: {axis: score}}, in the order given."""
    found: dict[tuple[int, int], dict[str, dict[str, int]]] = {}
    # By round and rater, each one's in the order given: one lookup per rater, not per score.
    last_round = last_rater = None
    for round_id, rater_id, side, axis, score in bulk.tuples(
        connection.execute(
            bulk.of_pairs(
                connection,
                select(Rating.round_id, Rating.rater_id, Rating.side, Rating.axis, Rating.score),
                Rating.round_id,
                Rating.rater_id,
                keys,
            )
            .where(Rating.superseded_at.is_(None))
            .order_by(Rating.round_id, Rating.rater_id, Rating.id)
        )
    ):
        if round_id != last_round or rater_id != last_rater:
            last_round, last_rater = round_id, rater_id
            scores = found[(round_id, rater_id)] = {}
        of_side = scores.get(side)
        if of_side is None:
            of_side = scores[side] = {}
        of_side[axis] = score
    return found


_LINE_COMMENT_FIELDS = (
    "side",
    "path",
    "line",
    "start_line",
    "diff_side",
    "commit_sha",
    "body",
    "comment_id",
    "comment_url",
    "created_at",
    "updated_at",
)


def _line_comments(connection: Connection, keys: set[tuple[int, int]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Each rater's line comments in each round that stand (not deleted), in the order written."""
    found: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    columns = bulk.plain(*(LineComment.__table__.c[name] for name in ("round_id", "author_id", *_LINE_COMMENT_FIELDS)))
    for round_id, author_id, *fields in bulk.tuples(
        connection.execute(
            bulk.of_pairs(connection, select(*columns), LineComment.round_id, LineComment.author_id, keys)
            .where(LineComment.deleted_at.is_(None))
            .order_by(LineComment.id)
        )
    ):
        found[(round_id, author_id)].append(dict(zip(_LINE_COMMENT_FIELDS, fields, strict=True)))
    return found
