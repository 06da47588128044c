"""The statistics' maths on synthetic data drawn from known model strengths (no database)."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from tandem.domain.statistics import agreement, fit, raters, report
from tandem.domain.statistics.bias import position_bias
from tandem.domain.statistics.queries import Records
from tandem.domain.statistics.records import Judgments, Ratings, Reviews
from tests.stats_synthetic import Plan, rows

NO_REVIEWS = Reviews.from_rows([], {})


def judgments(plan: Plan) -> Judgments:
    return Judgments.from_rows(rows(plan))


def ranked(plan: Plan, bootstrap: int = 200, seed: int = 0) -> fit.Ranking:
    return fit.rank(fit.judgment_battles(judgments(plan)), bootstrap=bootstrap, seed=seed)


def true_strengths(plan: Plan, ranking: fit.Ranking) -> np.ndarray:
    true = dict(zip(plan.model_names, plan.strengths, strict=True))
    return np.array([true[name] for name in ranking.models])


def test_the_ranking_recovers_the_true_order():
    plan = Plan(models=10, pairs=4000, raters=12, tie_share=0.15, seed=3)
    ranking = ranked(plan)
    names = ranking.as_dict()["models"]
    assert [m["model"] for m in names] == plan.model_names
    # The strongest is ranked first with certainty only where its interval clears the others'.
    assert names[0]["rank_ub"] == 1 and names[-1]["rank_ub"] > 1
    assert all(m["lower"] <= m["rating"] <= m["upper"] for m in names)


def test_the_95_percent_intervals_cover_the_true_strengths_about_95_percent_of_the_time():
    covered = []
    for seed in range(40):
        plan = Plan(models=6, pairs=300, raters=6, seed=seed)
        ranking = ranked(plan, bootstrap=200, seed=seed)
        true = true_strengths(plan, ranking)
        covered += list((ranking.lower <= true) & (true <= ranking.upper))
    assert 0.85 <= np.mean(covered) <= 1.0
    assert len(covered) == 240


def test_rank_ub_counts_the_models_statistically_ahead():
    # y overlaps x, so both rank 1; z's interval is below both, so it ranks 3.
    assert list(fit.rank_ub(np.array([2.0, 0.5, -1.0]), np.array([3.0, 2.5, 0.0]))) == [1, 1, 3]
    assert list(fit.rank_ub(np.array([0.0, 0.0]), np.array([1.0, 1.0]))) == [1, 1]


def test_ties_and_neither_count_half_a_win_each_way():
    rows_ = [
        (1, 1, "r1", "x", "y", "tie", None, None),
        (2, 1, "r1", "y", "x", "neither", None, None),
        (3, 1, "r1", "x", "y", "A", "much", None),
        (4, 1, "r2", "x", "y", "B", "slightly", None),
    ]
    ranking = fit.rank(fit.judgment_battles(Judgments.from_rows(rows_)), bootstrap=0)
    table = ranking.as_dict()
    assert table["win_rate"]["x"]["y"] == 0.5 and table["battles"]["x"]["y"] == 4
    assert ranking.strength[0] == pytest.approx(ranking.strength[1], abs=1e-6)


def test_the_bootstrap_is_seeded():
    plan = Plan(models=5, pairs=200, seed=1)
    assert ranked(plan, seed=7).as_dict() == ranked(plan, seed=7).as_dict()
    assert ranked(plan, seed=7).as_dict() != ranked(plan, seed=8).as_dict()


def test_a_planted_position_bias_is_detected_and_none_is_not_invented():
    biased = position_bias(judgments(Plan(pairs=2000, position_logit=0.4, seed=2)).verdict)
    assert biased["p_a"] > 0.55 and biased["p_value"] < 1e-6 and biased["ci"][0] > 0.5
    fair = position_bias(judgments(Plan(pairs=2000, seed=2)).verdict)
    assert fair["p_value"] > 0.01 and fair["ci"][0] < 0.5 < fair["ci"][1]


def test_a_planted_always_a_rater_is_flagged_and_no_honest_one_is():
    plan = Plan(models=8, pairs=1500, raters=10, tie_share=0.1, always_a=("rater-04",), seed=5)
    built = report.build(Records(judgments(plan), Ratings.from_rows([]), NO_REVIEWS), bootstrap=0)
    flags = {r["rater"]: r["flags"] for r in built["raters"]}
    assert "always A" in flags.pop("rater-04")
    assert all(not f for f in flags.values()), flags
    rater_04 = next(r for r in built["raters"] if r["rater"] == "rater-04")
    assert rater_04["position_bias"]["p_a"] == 1.0


def test_a_rater_far_below_the_others_agreement_and_one_with_one_strength_are_flagged():
    # Clearly different models, so honest raters mostly agree; rater-01 answers the opposite
    # letter, rater-02 always says "much".
    plan = Plan(models=4, pairs=600, raters=4, spread=3.0, seed=9)
    flipped = {"A": "B", "B": "A", "tie": "tie", "neither": "neither"}
    planted = []
    for task, number, rater, a, b, verdict, strength, seconds in rows(plan):
        if rater == "rater-01":
            verdict = flipped[verdict]
        if rater == "rater-02" and strength:
            strength = "much"
        planted.append((task, number, rater, a, b, verdict, strength, seconds))
    j = Judgments.from_rows(planted)
    defined, agrees = agreement.with_majority_of_others(j, agreement.verdict_counts(j))
    flags = {r["rater"]: r["flags"] for r in raters.per_rater(j, defined, agrees, NO_REVIEWS)}
    assert flags == {"rater-00": [], "rater-01": ["low agreement"], "rater-02": ["same strength"], "rater-03": []}


def test_agreement_with_the_majority_of_the_others():
    rows_ = [(1, 1, r, "x", "y", v, None, None) for r, v in [("r1", "A"), ("r2", "A"), ("r3", "B"), ("r4", "tie")]]
    j = Judgments.from_rows(rows_)
    defined, agrees = agreement.with_majority_of_others(j, agreement.verdict_counts(j))
    # r1's and r2's others split one vote each: no majority. r3's and r4's others: A.
    assert list(defined) == [False, False, True, True]
    assert list(agrees) == [False, False, False, False]


def test_gold_accuracy_is_na_without_gold_and_counted_with_it():
    rows_ = [
        (t, 1, "r1", "x", "y", v, "clearly", 60.0, g)
        for t, v, g in [(1, "A", "A"), (2, "B", "A"), (3, "tie", "tie"), (4, "A", None)]
    ]
    j = Judgments.from_rows(rows_)
    defined, agrees = agreement.with_majority_of_others(j, agreement.verdict_counts(j))
    (entry,) = raters.per_rater(j, defined, agrees, NO_REVIEWS)
    assert entry["gold_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    (entry,) = raters.per_rater(Judgments.from_rows([r[:8] for r in rows_]), defined, agrees, NO_REVIEWS)
    assert entry["gold_accuracy"] is None
    assert entry["median_seconds_on_task"] == 60.0


def test_approval_rates_and_reviewer_turnaround():
    reviews = Reviews.from_rows(
        [
            ("rev1", "r1", "approved", 1),
            ("rev1", "r1", "rejected", 1),
            ("rev1", "r2", "approved", 1),
            ("rev2", "r1", "approved", 1),
        ],
        {"rev1": 60.0, "rev2": 600.0},
    )
    j = Judgments.from_rows(
        [
            (1, 1, "r1", "x", "y", "A", "clearly", None),
            (1, 1, "r2", "x", "y", "A", "clearly", None),
            (2, 1, "r3", "x", "y", "B", "much", None),
        ]
    )
    defined, agrees = agreement.with_majority_of_others(j, agreement.verdict_counts(j))
    shown = {
        r["rater"]: (r["reviewed"], r["approval_rate"], r["rejection_rate"])
        for r in raters.per_rater(j, defined, agrees, reviews)
    }
    assert shown == {"r1": (3, 0.6667, 0.3333), "r2": (1, 1.0, 0.0), "r3": (0, None, None)}
    assert raters.per_reviewer(reviews) == [
        {"reviewer": "rev1", "decisions": 3, "approved": 2, "rejected": 1, "median_turnaround_seconds": 60.0},
        {"reviewer": "rev2", "decisions": 1, "approved": 1, "rejected": 0, "median_turnaround_seconds": 600.0},
    ]


# Krippendorff's α against the reference values in the krippendorff package's docstring
# (krippendorff.alpha, version 0.9): Krippendorff's example of 3 coders and 15 units with
# missing values, nominal 0.691358 and interval 0.810845; and the 4-coder 12-unit example
# (Krippendorff 2011, "Computing Krippendorff's alpha-reliability", p. 8), ordinal 0.815.
NAN = np.nan
THREE_CODERS = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]
FOUR_CODERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def as_records(reliability_data) -> tuple[np.ndarray, np.ndarray]:
    """The coders × units matrix as (unit, value) rows, as Tandem's judgments are."""
    data = np.array(reliability_data)
    _, unit = np.nonzero(~np.isnan(data))
    return unit, data[~np.isnan(data)]


@pytest.mark.parametrize(
    "data, level, expected",
    [(THREE_CODERS, "nominal", 0.691358), (THREE_CODERS, "interval", 0.810845), (FOUR_CODERS, "ordinal", 0.815)],
)
def test_krippendorffs_alpha_matches_the_packages_reference_values(data, level, expected):
    assert agreement.alpha(*as_records(data), level) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("coders, values", [(4, 5), (60, 40)])
def test_alpha_from_each_units_value_counts_is_the_packages_from_the_raters_by_units_matrix(level, coders, values):
    # Tandem counts each unit's values from its rows; the package's own path builds them from the matrix.
    rng = np.random.default_rng(3)
    data = rng.integers(1, values + 1, size=(coders, 300)).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert agreement.alpha(*as_records(data), level) == round(expected, 4)


def test_alpha_is_none_when_undefined():
    assert agreement.alpha(np.array([0, 1]), np.array([1.0, 2.0]), "nominal") is None  # no unit with two
    assert agreement.alpha(np.array([0, 0, 1, 1]), np.array([3.0, 3.0, 3.0, 3.0]), "interval") is None


def test_percent_and_per_pair_agreement():
    rows_ = [
        (t, 1, r, "x", "y", v, None, None)
        for t, r, v in [
            (1, "r1", "A"),
            (1, "r2", "A"),
            (1, "r3", "B"),
            (2, "r1", "tie"),
            (2, "r2", "tie"),
            (3, "r1", "A"),
        ]
    ]
    summary = agreement.summary(Judgments.from_rows(rows_), per_pair=True)
    # Task 1: 1 of 3 rater pairs agree; task 2: 1 of 1; task 3 has one rater and is left out.
    assert summary["percent_agreement"] == 0.5
    assert summary["pairs_with_several_raters"] == 2 and summary["pairs_unanimous"] == 1
    assert summary["pairs"] == [
        {"task_id": 1, "round": 1, "raters": 3, "votes": {"A": 2, "B": 1}, "agreement": 0.3333},
        {"task_id": 2, "round": 1, "raters": 2, "votes": {"tie": 2}, "agreement": 1.0},
    ]


def test_per_axis_battles_compare_the_two_sides_scores_of_each_rater():
    rows_ = [
        (1, 1, "r1", "A", "correctness", 5, "x", "y"),
        (1, 1, "r1", "B", "correctness", 3, "x", "y"),
        (1, 1, "r2", "A", "correctness", 4, "x", "y"),
        (1, 1, "r2", "B", "correctness", 4, "x", "y"),
        (2, 1, "r1", "A", "correctness", 2, "y", "x"),
        (2, 1, "r1", "B", "correctness", 1, "y", "x"),
        (2, 1, "r2", "A", "correctness", 5, "y", "x"),
    ]  # r2 scored one side only: no battle
    ratings = Ratings.from_rows(rows_)
    battles = fit.axis_battles(ratings, ratings.axes.index("correctness"))
    ranking = fit.rank(battles, bootstrap=0).as_dict()
    assert ranking["battles"]["x"]["y"] == 3
    assert ranking["win_rate"]["x"]["y"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)


def test_the_batched_fit_of_the_resamples_is_choixs_fit_of_each():
    rng = np.random.default_rng(4)
    wins = rng.poisson(30, size=(25, 7, 7)).astype(float) / 2
    wins[:, np.arange(7), np.arange(7)] = 0
    wins[:, 2, :] = 0  # a model that never won
    batched = fit.strengths_of_each(wins)
    assert np.allclose(batched, [fit.strengths(each) for each in wins], atol=1e-6)
