"""Redis memory left behind by processed webhook deliveries.

Accepts N real `issue_comment` deliveries into the inbox (as intake does), relays them into jobs
and runs them all with one worker (SQLite in a temporary directory), then prints how many keys
and bytes (MEMORY USAGE) each processed delivery left in Redis.

    .venv/bin/python bench/delivery_memory.py [--deliveries 2000] --redis-url redis://127.0.0.1:PORT/N
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

sys.path.insert(0, str(Path(__file__).parents[1]))

from tandem.infra import queue, services  # noqa: E402
from tandem.infra.db import Base  # noqa: E402
from tandem.infra.inbox import IncomingDelivery  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.support.redis_tools import footprint  # noqa: E402
from workers.deliveries import accept_deliveries, relay_inbox  # noqa: E402

PAYLOAD = Path(__file__).parents[1] / "tests" / "fixtures" / "webhook-payloads" / "issue_comment" / "created.payload.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    args = parser.parse_args()
    body = PAYLOAD.read_text()
    connection = redis.Redis.from_url(args.redis_url)
    connection.flushdb()
    with tempfile.TemporaryDirectory() as directory:
        settings = make_settings(database_url=f"sqlite:///{directory}/tandem.db", redis_url=args.redis_url)
        current = services.Services.from_settings(settings)
        Base.metadata.create_all(current.storage.engine)
        services.use(current)
        before = footprint(connection)
        for start in range(0, args.deliveries, 256):
            batch = range(start, min(start + 256, args.deliveries))
            accept_deliveries(current, [IncomingDelivery(str(uuid.uuid4()), "issue_comment", "created", body) for _ in batch])
        while relay_inbox(current, "bench"):
            pass
        SimpleWorker(list(queue.ALL), connection=current.redis, serializer=JSONSerializer).work(
            burst=True, with_scheduler=False, logging_level="WARNING"
        )
        after = footprint(connection)
        current.storage.engine.dispose()
    keys, size = len(after) - len(before), sum(after.values()) - sum(before.values())
    print(f"{args.deliveries} deliveries of {len(body)} bytes processed: {keys} keys and {size} bytes left in Redis "
          f"= {size / args.deliveries:.0f} bytes per processed delivery")
    connection.flushdb()


if __name__ == "__main__":
    main()
