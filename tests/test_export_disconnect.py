"""A client that goes away in the middle of a streamed export (one task's judgments, or the
team's), over real HTTP: the export's reading thread (tandem.infra.snapshot) and its connection
end with the stream."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import text

from app.main import create_app
from tandem.infra.tokens import Scope
from tests.servers import LiveServer
from tests.support.judging import team_task
from tests.support.tokens import new_token

RATERS = 20_000  # some 10 MB of JSON: more than the sockets' buffers hold


def readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


def until(condition, seconds: float = 10) -> bool:
    """Whether ``condition`` held within ``seconds`` (the server ends the stream on its own time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# Closed on a thread that cannot end the reader (its own), a generator's error is only printed.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("path", ["/api/tasks/{task_id}/judgments", "/api/export?format=jsonl"])
def test_a_client_that_goes_away_mid_stream_leaves_no_reader_and_no_connection(services, path):
    task_id = team_task(services.storage, "team-a", RATERS, "because " * 60)
    headers = {"Authorization": f"Bearer {new_token(services, 'research-team', team='team-a', scopes=tuple(Scope))}"}
    postgres = services.storage.engine.dialect.name == "postgresql"

    def open_transactions() -> int:
        with services.storage.engine.connect() as connection:
            return connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
                    " AND pid <> pg_backend_pid() AND datname = current_database() AND backend_xmin IS NOT NULL"
                )
            )

    before = open_transactions() if postgres else 0
    with LiveServer(create_app(services)) as server, httpx.Client(base_url=server.url, headers=headers) as http:
        with http.stream("GET", path.format(task_id=task_id), headers={"Accept-Encoding": "identity"}) as response:
            assert response.status_code == 200
            first = next(response.iter_raw())
            assert first.startswith(b"[" if "judgments" in path else b"{")
            if postgres and "export" in path:
                # One task's few batches are read in line; the team's export reads ahead.
                assert readers(), "the export reads ahead in a thread on PostgreSQL"
        # The client has gone: the stream's thread and connections end without a collection of
        # the garbage (a reader left waiting would hold its snapshot, and vacuum, back).
        assert until(lambda: not readers()), readers()
        assert until(lambda: services.storage.engine.pool.checkedout() == 0)
        if postgres:
            assert until(lambda: open_transactions() <= before)
