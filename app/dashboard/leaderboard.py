"""The leaderboard: Bradley–Terry ratings with intervals, the win-rate heatmap and per-axis
rankings, filtered by repository, time, round and metadata. Research role only: it is all
model names."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from app.dashboard import access, plots
from app.dashboard.access import Viewer
from app.dashboard.render import page
from tandem.domain.dashboard import report, tasks
from tandem.domain.statistics.queries import Filters
from tandem.infra.errors import TandemError

router = APIRouter()


def filters_from(values: dict) -> Filters:
    """The statistics filters from the page's form (HTTP 400 naming what is wrong); whose tasks
    they are over is the viewer's (their team), added by the page."""
    try:
        return Filters.parse(
            repo=values["repo"] or None,
            since=values["since"] or None,
            until=values["until"] or None,
            round=int(values["round"]) if values["round"] else None,
            metadata=[item.strip() for item in values["metadata"].split(",") if item.strip()],
            include_unapproved=bool(values["include_unapproved"]),
        )
    except ValueError:
        raise HTTPException(400, f"round {values['round']!r}: give a round number, like 1") from None
    except TandemError as exc:
        raise HTTPException(400, str(exc)) from None


def form_values(
    repo: str = "", since: str = "", until: str = "", round: str = "", metadata: str = "", include_unapproved: str = ""
) -> dict:
    """The filter form's fields, as the page's query string gives them (empty: not filtered)."""
    return {
        "repo": repo,
        "since": since,
        "until": until,
        "round": round,
        "metadata": metadata,
        "include_unapproved": include_unapproved,
    }


FilterForm = Annotated[dict, Depends(form_values)]


@router.get("/leaderboard")
def leaderboard(request: Request, viewer: Annotated[Viewer, Depends(access.team_viewer)], values: FilterForm):
    if not viewer.sees_models:
        raise HTTPException(
            403, "the leaderboard names the models: it is for the research role (a token with the export scope)"
        )
    services = request.app.state.services
    kept = report.kept(services, report.Figures.report(filters_from(values), viewer.team))
    with services.storage.transaction() as session:
        repositories = tasks.repositories(session, viewer.scope)
    common: dict[str, Any] = {"title": "Leaderboard", "kept": kept, "values": values, "repositories": repositories}
    stats = kept.figures
    if stats is None:
        return page(request, "leaderboard.html", viewer, stats=None, **common)
    ranking = stats["ranking"]
    names = [m["model"] for m in ranking["models"]]
    return page(
        request,
        "leaderboard.html",
        viewer,
        stats=stats,
        strengths_plot=plots.strengths(ranking["models"]),
        heatmap_plot=plots.heatmap(names, ranking["win_rate"], ranking["battles"]),
        axis_plots={
            axis: plots.strengths(figures["ranking"]["models"], f"{axis}: rating with 95% interval")
            for axis, figures in stats["axes"].items()
        },
        **common,
    )
