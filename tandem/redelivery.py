"""Recover webhook deliveries that failed while Tandem was down.

GitHub never retries a failed delivery by itself; its documented remedy is to list the app's
recent deliveries and ask for a redelivery of the failed ones. A redelivery keeps the GUID, so
attempts are grouped by GUID: one is redelivered only when none of its attempts succeeded and
Tandem never processed it. GitHub keeps deliveries for 3 days, so the window is at most that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from githubkit import GitHub

from tandem.models import ProcessedDelivery
from tandem.services import Services

MAX_WINDOW = timedelta(days=3)


@dataclass
class Report:
    examined: int = 0  # GUIDs seen in the window
    redelivered: list[str] = field(default_factory=list)
    already_processed: list[str] = field(default_factory=list)
    failed_to_request: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"examined {self.examined} deliveries"]
        lines += [f"redelivered {guid}" for guid in self.redelivered]
        lines += [f"skipped {guid}: failed at GitHub but already processed" for guid in self.already_processed]
        lines += [f"could not redeliver {guid}" for guid in self.failed_to_request]
        return lines


def _deliveries(client: GitHub, since: datetime) -> Iterator[dict[str, Any]]:
    """The app's deliveries, newest first, back to `since` (cursor pagination)."""
    cursor = None
    while True:
        params = {"per_page": 100} | ({"cursor": cursor} if cursor else {})
        response = client.request("GET", "/app/hook/deliveries", params=params)
        for delivery in response.json():
            if _parse_time(delivery["delivered_at"]) < since:
                return
            yield delivery
        cursor = _next_cursor(response.headers.get("link", ""))
        if not cursor:
            return


def _next_cursor(link: str) -> str | None:
    for part in link.split(","):
        if 'rel="next"' in part:
            url = part[part.index("<") + 1 : part.index(">")]
            for pair in url.split("?", 1)[-1].split("&"):
                key, _, value = pair.partition("=")
                if key == "cursor":
                    return value
    return None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def redeliver_failed(services: Services, window: timedelta, *, log: Callable[[str], None] = lambda _: None) -> Report:
    window = min(window, MAX_WINDOW)
    client = services.github.as_app()
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for delivery in _deliveries(client, datetime.now(UTC) - window):
        attempts[delivery["guid"]].append(delivery)

    report = Report(examined=len(attempts))
    failed = {
        guid: tries for guid, tries in attempts.items() if not any(200 <= t.get("status_code", 0) < 300 for t in tries)
    }
    with services.storage.transaction() as session:
        processed = {
            row.delivery_id
            for row in session.query(ProcessedDelivery).filter(ProcessedDelivery.delivery_id.in_(list(failed)))
        }
    for guid, tries in failed.items():
        if guid in processed:
            report.already_processed.append(guid)
            continue
        latest = max(tries, key=lambda t: _parse_time(t["delivered_at"]))
        try:
            client.request("POST", f"/app/hook/deliveries/{int(latest['id'])}/attempts")
        except Exception as exc:  # one refusal must not stop the others
            log(f"redelivery of {guid} refused: {type(exc).__name__}")
            report.failed_to_request.append(guid)
        else:
            report.redelivered.append(guid)
    return report
