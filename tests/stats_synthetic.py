"""Synthetic judgments drawn from known model strengths (for the statistics tests and
bench/stats.py): pairs of random models with random sides, each judged by a few raters who
follow Bradley–Terry, some of them with a planted position bias or always answering A."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from tandem.domain.statistics.records import STRENGTHS


@dataclass
class Plan:
    models: int = 6
    pairs: int = 200
    raters: int = 6
    raters_per_pair: int = 3
    tie_share: float = 0.0  # ties and neither, drawn regardless of the models
    position_logit: float = 0.0  # every rater's extra log-odds for the side shown as A
    always_a: tuple[str, ...] = ()  # raters who always answer A
    spread: float = 1.0  # standard deviation of the true strengths
    seed: int = 0
    strengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        true = np.sort(rng.normal(0, self.spread, self.models))[::-1]
        self.strengths = true - true.mean()

    @property
    def model_names(self) -> list[str]:
        return [f"model-{i:02d}" for i in range(self.models)]  # model-00 is the strongest

    @property
    def rater_names(self) -> list[str]:
        return [f"rater-{i:02d}" for i in range(self.raters)]


@dataclass
class Pairs:
    """Columns, one entry per pair or per judgment (``rater``, ``pair``, ``verdict``...)."""

    model_a: np.ndarray
    model_b: np.ndarray
    pair: np.ndarray
    rater: np.ndarray
    verdict: np.ndarray  # "A", "B", "tie", "neither"
    strength: np.ndarray  # a strength or None
    seconds: np.ndarray


def draw(plan: Plan) -> Pairs:
    rng = np.random.default_rng(plan.seed + 1)
    first = rng.integers(0, plan.models, plan.pairs)
    second = (first + rng.integers(1, plan.models, plan.pairs)) % plan.models
    per = plan.raters_per_pair
    pair = np.repeat(np.arange(plan.pairs), per)
    # Distinct raters per pair, drawn without a pairs × raters matrix (a million judgments).
    base = rng.integers(0, plan.raters, plan.pairs)
    step = rng.integers(1, plan.raters // per + 1, plan.pairs)
    rater = ((base[:, None] + np.arange(per) * step[:, None]) % plan.raters).ravel()
    logit = plan.strengths[first[pair]] - plan.strengths[second[pair]] + plan.position_logit
    a_wins = rng.random(len(pair)) < 1 / (1 + np.exp(-logit))
    tied = rng.random(len(pair)) < plan.tie_share
    always = np.isin(np.array(plan.rater_names)[rater], plan.always_a)
    verdict = np.where(a_wins, "A", "B").astype(object)
    verdict[tied] = np.where(rng.random(tied.sum()) < 0.5, "tie", "neither")
    verdict[always] = "A"
    decisive = np.isin(verdict, ("A", "B"))
    strength = np.where(decisive, np.array(STRENGTHS, dtype=object)[rng.integers(0, 3, len(pair))], None)
    return Pairs(
        model_a=first,
        model_b=second,
        pair=pair,
        rater=rater,
        verdict=verdict,
        strength=strength,
        seconds=rng.gamma(2.0, 300.0, len(pair)),
    )


def rows(plan: Plan) -> list[tuple]:
    """Rows for ``Judgments.from_rows``: one round per pair (task id = pair + 1)."""
    drawn = draw(plan)
    models, raters = plan.model_names, plan.rater_names
    return [
        (int(p) + 1, 1, raters[r], models[drawn.model_a[p]], models[drawn.model_b[p]], v, s, float(t))
        for p, r, v, s, t in zip(drawn.pair, drawn.rater, drawn.verdict, drawn.strength, drawn.seconds, strict=True)
    ]


START = datetime(2026, 11, 1, tzinfo=UTC)
AXES = ("correctness", "security")
TABLES = ("tasks", "outputs", "pairs", "sides", "rounds", "judgments", "judgment_reviews", "ratings")


def is_pending(n: int) -> bool:
    """Every tenth judgment waits for review: it counts only with include_unapproved."""
    return n % 10 == 9


def has_old_version(n: int) -> bool:
    """Every seventh judgment replaced an earlier vote, which must never count."""
    return n % 7 == 3


def round_of(pair: int) -> int:
    """Every fourth pair was judged again after a follow-up: its votes are in round 2."""
    return 2 if pair % 4 == 3 else 1


def voted_at(pair: int) -> datetime:
    return START + timedelta(minutes=pair)


def database_rows(plan: Plan, *, batch: int = 20_000, ratings_every: int = 1) -> Iterator[dict[str, list[dict]]]:
    """The plan as database rows, a batch of pairs at a time: {table: rows}, tables in TABLES'
    order (foreign keys first). Pair p is task, pair and round-1 id p + 1 on evals/mirror-(p % 2)
    with metadata suite s(p % 3). Every ``ratings_every``-th judgment comes with both sides'
    scores on AXES (the winner 4, the loser 2, a tie 3 each); approved ones with a review by
    reviewer-(rater % 2) an hour after the vote."""
    drawn = draw(plan)
    models, raters = plan.model_names, plan.rater_names
    flip = {"A": "B", "B": "A", "tie": "neither", "neither": "tie"}
    judgment_id, version = 0, 0
    starts = np.searchsorted(drawn.pair, np.arange(0, plan.pairs + batch, batch))
    for first_pair, lo, hi in zip(range(0, plan.pairs, batch), starts, starts[1:], strict=False):
        out: dict[str, list[dict]] = {table: [] for table in TABLES}
        for p in range(first_pair, min(first_pair + batch, plan.pairs)):
            task, a_is_first = p + 1, bool(p % 2)
            names = (models[drawn.model_a[p]], models[drawn.model_b[p]])
            out["tasks"].append(
                {
                    "id": task,
                    "repo_full_name": f"evals/mirror-{p % 2}",
                    "base": "main",
                    "prompt": "Fix it",
                    "raters": [],
                    "metadata": {"suite": f"s{p % 3}"},
                    "status": "open",
                    "team": "default",
                    "created_at": voted_at(p),
                    "updated_at": voted_at(p),
                }
            )
            for position, model in enumerate(names if a_is_first else names[::-1]):
                out["outputs"].append(
                    {"id": 2 * p + 1 + position, "task_id": task, "position": position, "model": model}
                )
            out["pairs"].append(
                {"id": task, "task_id": task, "a_is_first_output": a_is_first, "opened_at": voted_at(p)}
            )
            for letter, _name in zip("AB", names, strict=True):
                position = (0 if letter == "A" else 1) if a_is_first else (1 if letter == "A" else 0)
                out["sides"].append(
                    {
                        "id": 2 * p + 1 + (letter == "B"),
                        "pair_id": task,
                        "letter": letter,
                        "output_id": 2 * p + 1 + position,
                        "repo_full_name": f"evals/mirror-{p % 2}",
                        "branch": f"t{task}-{letter}",
                    }
                )
            for number in range(1, round_of(p) + 1):
                out["rounds"].append(
                    {
                        "id": 2 * p + number,
                        "task_id": task,
                        "number": number,
                        "prompt": "Fix it",
                        "created_at": voted_at(p),
                    }
                )
        for n in range(lo, hi):
            p, rater = int(drawn.pair[n]), int(drawn.rater[n])
            verdict, strength = drawn.verdict[n], drawn.strength[n]
            common = {
                "task_id": p + 1,
                "pair_id": p + 1,
                "round_id": 2 * p + round_of(p),
                "rater_id": 1000 + rater,
                "rater_login": raters[rater],
                "rationale": "",
                "source": "comment",
                "on_side": "A",
                "time_on_task_seconds": float(drawn.seconds[n]),
                "recorded_at": voted_at(p),
            }
            if has_old_version(n):
                judgment_id, version = judgment_id + 1, version + 1
                out["judgments"].append(
                    common
                    | {
                        "id": judgment_id,
                        "verdict": flip[verdict],
                        "strength": strength if verdict in ("A", "B") else None,
                        "comment_id": version,
                        "delivery_id": f"d{version}",
                        "voted_at": voted_at(p) - timedelta(seconds=30),
                        "superseded_at": voted_at(p),
                        "superseded_reason": "revote",
                        "review_state": "returned",
                    }
                )
                out["judgment_reviews"].append(
                    _review(judgment_id, rater, "rejected", voted_at(p) - timedelta(seconds=20))
                )
            judgment_id, version = judgment_id + 1, version + 1
            state = "pending" if is_pending(n) else "approved"
            out["judgments"].append(
                common
                | {
                    "id": judgment_id,
                    "verdict": verdict,
                    "strength": strength,
                    "comment_id": version,
                    "delivery_id": f"d{version}",
                    "voted_at": voted_at(p),
                    "superseded_at": None,
                    "superseded_reason": None,
                    "review_state": state,
                }
            )
            if state == "approved":
                out["judgment_reviews"].append(
                    _review(judgment_id, rater, "approved", voted_at(p) + timedelta(hours=1))
                )
            if n % ratings_every == 0:
                scores = {"A": (4, 2), "B": (2, 4)}.get(verdict, (3, 3))
                for side, score in zip("AB", scores, strict=True):
                    for axis in AXES:
                        out["ratings"].append(
                            {
                                "task_id": p + 1,
                                "round_id": 2 * p + round_of(p),
                                "judgment_id": judgment_id,
                                "rater_id": 1000 + rater,
                                "rater_login": raters[rater],
                                "side": side,
                                "axis": axis,
                                "score": score,
                                "comment_id": version,
                                "delivery_id": f"d{version}",
                                "created_at": voted_at(p),
                            }
                        )
        yield out


def _review(judgment_id: int, rater: int, decision: str, at: datetime) -> dict:
    return {
        "judgment_id": judgment_id,
        "reviewer_id": 7 + rater % 2,
        "reviewer_login": f"reviewer-{rater % 2}",
        "decision": decision,
        "reason": "" if decision == "approved" else "say why",
        "comment_id": 10**9 + judgment_id,
        "delivery_id": f"r{judgment_id}",
        "created_at": at,
    }
