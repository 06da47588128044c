"""The payload models of the handled events read GitHub's own examples, and are tolerant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.domain import webhook_events
from tandem.domain.webhook_payloads import EVENTS, InstallationEvent, IssueCommentEvent, PushEvent, narrow, parse
from tandem.infra.errors import Unprocessable

FIXTURES = Path(__file__).parent / "fixtures" / "webhook-payloads"
HANDLED_EXAMPLES = sorted(
    path
    for path in FIXTURES.glob("*/*.json")
    if webhook_events.handles(path.parent.name, json.loads(path.read_text()).get("action"))
)


def test_every_handled_event_has_a_model():
    assert set(EVENTS) == set(webhook_events.HANDLED)


@pytest.mark.parametrize("path", HANDLED_EXAMPLES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_example_of_a_handled_event_parses(path):
    assert isinstance(parse(path.parent.name, path.read_text()), EVENTS[path.parent.name])


def test_the_examples_cover_most_handled_events():
    assert {path.parent.name for path in HANDLED_EXAMPLES} >= set(webhook_events.HANDLED) - {"push", "status"}


def test_unknown_fields_are_ignored_and_fields_github_leaves_out_are_optional():
    comment = {"id": 7, "user": {"id": 1, "login": "o"}, "created_at": "2026-11-29T10:00:00Z", "reactions": {"+1": 1}}
    payload = parse("issue_comment", json.dumps({"comment": comment, "issue": {"number": 3}, "zen": "yes"}))
    assert isinstance(payload, IssueCommentEvent)
    assert (payload.comment.id, payload.comment.body, payload.issue.pull_request, payload.repo) == (7, None, None, None)
    added = parse("installation_repositories", json.dumps({"installation": {"id": 1}, "repositories_added": None}))
    assert isinstance(added, InstallationEvent) is False and added.repositories_added == []


def test_a_payload_read_as_another_events_model_is_unprocessable():
    payload = parse("push", json.dumps({"ref": "refs/heads/main"}))
    assert narrow(payload, PushEvent) is payload
    with pytest.raises(Unprocessable, match="a PushEvent, not the IssueCommentEvent its handler reads"):
        narrow(payload, IssueCommentEvent)
