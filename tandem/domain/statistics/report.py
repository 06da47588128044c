"""The whole statistics report, as one JSON-ready dict, and as text tables for the terminal.

Per rubric axis, models are ranked by Bradley–Terry on the axis's score comparisons: each rater
who scored both sides of a pair on the axis makes one battle, won by the side scored higher
(equal scores tie). It uses the same fit and bootstrap as the verdicts, so the two rankings read
the same way, and it uses the scores as the comparisons raters made within a pair, which mean
scores across pairs of different difficulty would blur.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from tandem.domain.statistics import agreement, ci, fit, raters
from tandem.domain.statistics.bias import position_bias
from tandem.domain.statistics.queries import Filters, Records, load


def build(records: Records, *, bootstrap: int = 1000, seed: int | None = 0, per_pair: bool = False) -> dict:
    judgments, ratings = records.judgments, records.ratings
    counts = agreement.verdict_counts(judgments)
    defined, agrees = agreement.with_majority_of_others(judgments, counts)
    on_axes = [ratings.axis == code for code in range(len(ratings.axes))]
    # Krippendorff's α works on whole arrays, which numpy does without the interpreter lock: in a
    # thread, it takes the second core while the rankings' bootstraps take the first.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="agreement") as pool:
        agreeing = pool.submit(agreement.summary, judgments, per_pair=per_pair)
        alphas = [
            pool.submit(agreement.alpha, ratings.unit[on] * 2 + ratings.side[on], ratings.score[on], "interval")
            for on in on_axes
        ]
        ranking = fit.rank(fit.judgment_battles(judgments), bootstrap=bootstrap, seed=seed).as_dict()
        rankings = [
            fit.rank(fit.axis_battles(ratings, code), bootstrap=bootstrap, seed=seed).as_dict()
            for code in range(len(ratings.axes))
        ]
        per_rater = raters.per_rater(judgments, defined, agrees, records.reviews)
        covariate = ci.covariate(judgments, bootstrap=bootstrap, seed=seed)
    return {
        "judgments": len(judgments),
        "bootstrap": bootstrap,
        "ranking": ranking,
        "position_bias": position_bias(judgments.verdict),
        "agreement": agreeing.result(),
        "axes": {
            axis: {
                "ranking": rankings[code],
                "alpha_interval": alphas[code].result(),
                "scores": int(on_axes[code].sum()),
            }
            for code, axis in enumerate(ratings.axes)
        },
        "raters": per_rater,
        "reviewers": raters.per_reviewer(records.reviews),
        "ci": covariate,
    }


def statistics(session: Session, filters: Filters, **options) -> dict:
    """The report on the judgments the filters select (options as ``build``)."""
    return build(load(session, filters), **options)


def _na(value) -> str:
    return "n/a" if value is None else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    cells = [header] + [[_na(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False)).rstrip() for row in cells]


def _ranking_lines(ranking: dict) -> list[str]:
    return _table(
        ["rank(UB)", "model", "rating", "95% CI", "battles"],
        [
            [m["rank_ub"], m["model"], m["rating"], f"{m['lower']} .. {m['upper']}", m["battles"]]
            for m in ranking["models"]
        ],
    )


def as_text(report: dict) -> str:
    """The report as plain-text tables."""
    lines = [f"{report['judgments']} judgments; {report['bootstrap']} bootstrap resamples", "", "Models"]
    lines += _ranking_lines(report["ranking"])
    names = [m["model"] for m in report["ranking"]["models"]]
    if names:
        lines += ["", "Win rate of row over column (battles)"]
        lines += _table(
            ["", *names],
            [[row, *("-" if row == col else _win_cell(report["ranking"], row, col) for col in names)] for row in names],
        )
    bias = report["position_bias"]
    lines += [
        "",
        f"Position bias: P(A) = {_na(bias['p_a'])} of {bias['decisive']} decisive verdicts, p = {_na(bias['p_value'])}",
    ]
    agreed = report["agreement"]
    lines += [
        "",
        f"Agreement: α verdict (nominal) {_na(agreed['alpha_verdict_nominal'])}, "
        f"α strength (ordinal) {_na(agreed['alpha_strength_ordinal'])}, "
        f"percent agreement {_na(agreed['percent_agreement'])}, "
        f"{agreed['pairs_unanimous']} of {agreed['pairs_with_several_raters']} pairs with several raters unanimous",
    ]
    for axis, figures in report["axes"].items():
        lines += ["", f"Axis {axis}: {figures['scores']} scores, α (interval) {_na(figures['alpha_interval'])}"]
        lines += _ranking_lines(figures["ranking"])
    figures = report["ci"]
    lines += [
        "",
        f"CI: the side whose CI passed won {_na(figures['passing_side_win_rate'])} of "
        f"{figures['votes_one_side_passing']} votes against a side whose CI failed; "
        f"without the {figures['votes_with_ci_failed']} votes where a side's CI failed:",
    ]
    lines += _ranking_lines(figures["ranking_without_ci_failed"])
    lines += ["", "Raters"]
    lines += _table(
        [
            "rater",
            "judgments",
            "median s",
            "with majority",
            "gold",
            "P(A)",
            "approved",
            "rejected",
            "returned",
            "flags",
        ],
        [
            [
                r["rater"],
                r["judgments"],
                r["median_seconds_on_task"],
                r["agreement_with_majority"],
                r["gold_accuracy"],
                r["position_bias"]["p_a"],
                r["approval_rate"],
                r["rejection_rate"],
                r["returned"],
                ", ".join(r["flags"]) or "-",
            ]
            for r in report["raters"]
        ],
    )
    lines += ["", "Reviewers"]
    lines += _table(
        ["reviewer", "decisions", "approved", "rejected", "median turnaround s"],
        [
            [r["reviewer"], r["decisions"], r["approved"], r["rejected"], r["median_turnaround_seconds"]]
            for r in report["reviewers"]
        ],
    )
    return "\n".join(lines) + "\n"


def _win_cell(ranking: dict, row: str, col: str) -> str:
    rate, battles = ranking["win_rate"][row][col], ranking["battles"][row][col]
    return "" if rate is None else f"{rate:.2f} ({battles})"
