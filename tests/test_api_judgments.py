"""GET /api/tasks/{id}/judgments over real HTTP: streamed (chunked, never one body built in
memory), compressed for clients that ask, and the same JSON list as before."""

from __future__ import annotations

import gzip
import json

import httpx

from app.main import create_app
from tandem.domain.export import judgments_for_task
from tandem.infra.tokens import Scope
from tests.servers import LiveServer
from tests.support.judging import team_task
from tests.support.tokens import new_token

RATERS = 600  # votes of a few hundred bytes each: about 600 KB of JSON


def test_a_tasks_judgments_stream_plain_and_compressed(services):
    task_id = team_task(services.storage, "team-a", RATERS, "because " * 40)
    with services.storage.transaction() as session:
        expected = judgments_for_task(session, task_id)
    assert len(expected) == RATERS
    headers = {"Authorization": f"Bearer {new_token(services, 'research-team', team='team-a', scopes=tuple(Scope))}"}
    url = f"/api/tasks/{task_id}/judgments"
    with LiveServer(create_app(services)) as server, httpx.Client(base_url=server.url, headers=headers) as http:
        for encoding in ("identity", "gzip"):
            with http.stream("GET", url, headers={"Accept-Encoding": encoding}) as response:
                assert response.status_code == 200
                # Chunked: the length was not known when the first bytes left.
                assert "content-length" not in response.headers
                assert response.headers["transfer-encoding"] == "chunked"
                assert response.headers.get("content-encoding", "identity") == encoding
                body = b"".join(response.iter_raw())
            raw = gzip.decompress(body) if encoding == "gzip" else body
            assert json.loads(raw) == expected
        assert http.get("/api/tasks/999/judgments").status_code == 404
