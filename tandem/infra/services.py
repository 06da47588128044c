"""The process-wide parts a job or request needs: settings, storage, Redis, GitHub.

Jobs are plain functions with plain arguments (RQ's way), so they find these here rather
than receiving them; tests install their own with `use()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from rq import Retry

from tandem.infra import queue
from tandem.infra.db import Storage
from tandem.infra.github import GitHubApp
from tandem.infra.settings import Settings, get_settings


@dataclass
class Services:
    settings: Settings
    storage: Storage
    redis: redis.Redis
    github: GitHubApp

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        connection = queue.connect(settings.redis_url)
        return cls(
            settings=settings,
            storage=Storage.from_url(settings.database_url),
            redis=connection,
            github=GitHubApp(settings, connection),
        )

    def queue(self, name: str):
        return queue.queue(name, self.redis)

    def retry(self) -> Retry | None:
        """Tandem's retry policy: a failed try is retried after each of the configured intervals."""
        intervals = self.settings.job_retry_intervals
        return Retry(max=len(intervals), interval=intervals) if intervals else None

    def enqueue(self, queue_name: str, func, *args, **options):
        """Queue func(*args) with Tandem's retry policy."""
        return self.queue(queue_name).enqueue(func, args=args, retry=self.retry(), **options)


_current: Services | None = None


def current() -> Services:
    global _current
    if _current is None:
        _current = Services.from_settings(get_settings())
    return _current


def use(services: Services | None) -> None:
    global _current
    _current = services
