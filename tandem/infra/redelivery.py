"""Recover webhook deliveries that failed while Tandem was down.

GitHub never retries a failed delivery by itself; its documented remedy is to list the app's
recent deliveries and ask for a redelivery of the failed ones. A redelivery keeps the GUID, so
attempts are grouped by GUID: one is redelivered only when none of its attempts succeeded and
Tandem never processed it. GitHub keeps deliveries for 3 days, so the window is at most that.

A delivery Tandem itself turned down (a 4xx answer: bad signature, malformed body) is not sent
again: another attempt would be turned down the same way, over and over, every run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed

from tandem.infra.errors import RateLimited, ServiceUnavailable, TandemError
from tandem.infra.models import ProcessedDelivery
from tandem.infra.services import Services

MAX_WINDOW = timedelta(days=3)


def _describe(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class Report:
    window: timedelta = MAX_WINDOW
    capped: bool = False  # the window asked for was longer than GitHub keeps deliveries
    examined: int = 0  # GUIDs seen in the window
    redelivered: list[str] = field(default_factory=list)
    already_processed: list[str] = field(default_factory=list)
    rejected: list[tuple[str, int]] = field(default_factory=list)
    failed_to_request: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = []
        if self.capped:
            lines.append(f"looking back {_describe(self.window)} only: GitHub keeps deliveries for 3 days")
        lines.append(f"examined {self.examined} deliveries of the last {_describe(self.window)}")
        lines += [f"redelivered {guid}" for guid in self.redelivered]
        lines += [f"skipped {guid}: failed at GitHub but already processed" for guid in self.already_processed]
        lines += [
            f"skipped {guid}: Tandem turned it down (HTTP {status}); it would again" for guid, status in self.rejected
        ]
        lines += [f"could not redeliver {guid}" for guid in self.failed_to_request]
        if not self.redelivered:
            lines.append("nothing to redeliver")
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
        if 'rel="next"' in part and "<" in part and ">" in part:
            url = part[part.index("<") + 1 : part.index(">")]
            return next(iter(parse_qs(urlsplit(url).query).get("cursor", [])), None)
    return None


def _rejection(tries: list[dict[str, Any]]) -> int | None:
    """The HTTP status with which Tandem turned a delivery down for good, if it did."""
    for attempt in tries:
        status = attempt.get("status_code") or 0
        if 400 <= status < 500 and status not in (408, 429):
            return status
    return None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def redeliver_failed(services: Services, window: timedelta, *, log: Callable[[str], None] = lambda _: None) -> Report:
    """Redeliver the deliveries of the last `window` (at most 3 days) that Tandem missed.

    Raises TandemError (ServiceUnavailable) when GitHub cannot be asked."""
    if window <= timedelta():
        raise TandemError("the window to look back over must be longer than nothing")
    report = Report(window=min(window, MAX_WINDOW), capped=window > MAX_WINDOW)
    client = services.github.as_app()
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        for delivery in _deliveries(client, datetime.now(UTC) - report.window):
            attempts[delivery["guid"]].append(delivery)
    except RequestFailed as exc:
        raise ServiceUnavailable(
            f"GitHub refused to list the app's deliveries (HTTP {exc.response.status_code}); "
            "check the app's credentials with `tandem doctor`"
        ) from None
    except GitHubException:
        raise ServiceUnavailable(f"GitHub at {services.settings.github_api_url} cannot be reached") from None

    report.examined = len(attempts)
    failed = {
        guid: tries
        for guid, tries in attempts.items()
        if not any(200 <= (t.get("status_code") or 0) < 300 for t in tries)
    }
    with services.storage.transaction() as session:
        processed = {
            row.delivery_id
            for row in session.query(ProcessedDelivery).filter(ProcessedDelivery.delivery_id.in_(list(failed)))
        }
    for index, (guid, tries) in enumerate(failed.items()):
        if guid in processed:
            report.already_processed.append(guid)
            continue
        if (status := _rejection(tries)) is not None:
            report.rejected.append((guid, status))
            continue
        latest = max(tries, key=lambda t: _parse_time(t["delivered_at"]))
        try:
            client.request("POST", f"/app/hook/deliveries/{int(latest['id'])}/attempts")
        except RateLimited as exc:  # the rest wait for the next run
            log(f"stopped: {exc}")
            report.failed_to_request += [g for g in list(failed)[index:] if g not in processed]
            break
        except GitHubException as exc:  # one refusal must not stop the others
            answer = exc.response.status_code if isinstance(exc, RequestFailed) else "no answer"
            log(f"redelivery of {guid} refused: {type(exc).__name__} ({answer})")
            report.failed_to_request.append(guid)
        else:
            report.redelivered.append(guid)
    return report
