"""Reading a delivery's top-level "action" without parsing the whole payload (app.webhooks.action_of):
the fast path must never take a nested "action", or one it cannot read exactly, for the payload's."""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.webhooks import NotAnObject, action_of
from tests.support.deliveries import FIXTURES, post


@pytest.mark.parametrize(
    "body",
    [
        b'{"action":"created","comment":{"body":"hi"}}',
        b' \r\n\t{ \n "action" \t:\r\n "created" \n, "x": 1}\n ',  # JSON's whitespace anywhere
        b'{"action":"created"}',
        # A nested "action" (or the text "action" in a string) before the top-level key.
        b'{"changes":{"action":"deleted"},"action":"created"}',
        b'{"comment":{"body":"{\\"action\\":\\"deleted\\"}"},"action":"created"}',
        # Values the fast path cannot read exactly: escapes, a non-string.
        b'{"action":"cre\\"ated","x":1}',
        b'{"action":"cr\\u00e9\\u00e9","x":1}',
        b'{"action":null,"x":1}',
        b'{"action":["created"]}',
        b'{"zen":"Keep it logically awesome."}',
        '{"action":"créé","x":1}'.encode(),
    ],
)
def test_the_action_is_the_top_level_one(body):
    expected = orjson.loads(body).get("action")
    assert action_of(body) == (expected if isinstance(expected, str) else None)


def test_a_key_merely_named_like_action_is_not_it():
    assert action_of(b'{"actions":"created","action":"x"}') == "x"
    assert action_of(b'{"\\u0061ction":"escaped","other":1}') == "escaped"  # a key spelled with an escape
    assert action_of(b'{"nested":{"action":"deleted"}}') is None


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[1, 2]", b'"action"', b'{"action":"created"', b'{"action":"created",', b'{"action":"a"} x'],
)
def test_what_is_plainly_not_a_json_object_is_refused(body):
    with pytest.raises(NotAnObject):
        action_of(body)


def test_every_example_payload_reads_as_parsed():
    for path in FIXTURES.glob("*/*.json"):
        body = orjson.dumps(json.loads(path.read_text()))  # compact, as GitHub sends them
        for text in (body, path.read_bytes()):
            expected = orjson.loads(text).get("action")
            assert action_of(text) == (expected if isinstance(expected, str) else None), path


@pytest.fixture
def client(services):
    with TestClient(create_app(services)) as test_client:
        yield test_client


def test_a_nested_action_before_the_top_level_one_routes_by_the_top_level_one(client):
    # issue_comment.created is handled, the other action is not: only an ignored delivery's answer names it.
    ignored = post(client, "issue_comment", b'{"changes":{"action":"created"},"action":"edited-not-handled"}')
    assert ignored.status_code == 202
    assert ignored.json()["action"] == "edited-not-handled"


def test_a_body_not_utf8_is_400_on_the_fast_path_too(client):
    assert post(client, "issue_comment", b'{"action":"created","x":"\xff"}').status_code == 400
    assert post(client, "issue_comment", b'{"action":"cr\xffated","x":1}').status_code == 400
