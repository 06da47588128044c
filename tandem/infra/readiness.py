"""What stops Tandem from working, in plain words: shared by /readyz and `tandem doctor`."""

from __future__ import annotations

import re

import redis
from githubkit.exception import GitHubException

from tandem.infra import gitops, liveness, logs, migrate, queue
from tandem.infra.db import check_database
from tandem.infra.errors import TandemError
from tandem.infra.services import Services

# `tandem doctor` asks git whether a mirror answers: it answers at once, or the address is wrong.
GIT_TIMEOUT = 15
_USERINFO = re.compile(r"(\w+://)[^/@\s']+@")


def credential_problems(services: Services) -> list[str]:
    settings = services.settings
    problems = []
    if not settings.app_id:
        problems.append(
            "TANDEM_APP_ID: not set; run `tandem setup` (it prints a one-time setup link) "
            "or set it from the app's settings page"
        )
    if settings.webhook_secret is None:
        problems.append("TANDEM_WEBHOOK_SECRET: not set; webhooks cannot be verified")
    try:
        settings.private_key_pem()
    except TandemError as exc:
        problems.append(str(exc))
    return problems


def redis_problems(services: Services) -> list[str]:
    try:
        queue.check_redis(services.redis)
    except TandemError as exc:
        return [f"{exc}; start redis-server or set TANDEM_REDIS_URL"]
    return []


def worker_problems(services: Services) -> list[str]:
    """Is a `tandem worker` alive: has one sent a heartbeat lately (tandem/infra/liveness.py)?"""
    try:
        beats = liveness.worker_beats(services.redis)
    except redis.RedisError as exc:
        return [f"cannot read the workers' heartbeats from Redis: {type(exc).__name__}"]
    if any(beat.alive for beat in beats):
        return []
    last = f"the last one {beats[0].seconds_ago:.0f} s ago" if beats else "none ever"
    return [
        f"no `tandem worker` has sent a heartbeat in the last {liveness.HEARTBEAT_TTL} s ({last}): "
        "webhooks are accepted but wait in the inbox; start `tandem worker`"
    ]


def worker_summary(services: Services) -> dict | None:
    """The workers' heartbeat as /readyz shows it; None when Redis cannot say."""
    try:
        return liveness.summary(services.redis)
    except redis.RedisError:
        return None


def database_problems(services: Services) -> list[str]:
    try:
        check_database(services.storage.engine)
        current, head = migrate.current_revision(services.storage.engine), migrate.head_revision()
    except TandemError as exc:
        return [f"{exc}; check TANDEM_DATABASE_URL"]
    if current != head:
        return [f"database schema is at {current or 'nothing'}, code expects {head}: run `tandem db upgrade`"]
    return []


def github_problems(services: Services) -> list[str]:
    """Can we authenticate as the app? (Only meaningful once the credentials are there.)"""
    try:
        client = services.github.as_app()  # githubkit's namespaces hold their client weakly
        app = client.rest.apps.get_authenticated().parsed_data
    except TandemError as exc:
        return [str(exc)]
    except GitHubException as exc:
        return [f"GitHub at {services.settings.github_api_url} refused the app's credentials: {_describe(exc)}"]
    if app is None or app.id != services.settings.app_id:
        return [f"GitHub answered for a different app than TANDEM_APP_ID={services.settings.app_id}"]
    return []


def _mirrors(services: Services, *, or_any: bool = False) -> list[tuple[str, int]]:
    """(full name, installation id) of each repository with tasks; with or_any, when there are
    none, of one repository an active installation holds (git reaches it as it will the first mirror)."""
    from sqlalchemy import select

    from tandem.infra.models import Installation, Repository, Task

    repositories = select(Repository.full_name, Repository.installation_id).where(Repository.removed_at.is_(None))
    with services.storage.transaction() as session:
        rows = session.execute(
            repositories.where(Repository.full_name.in_(select(Task.repo_full_name))).order_by(Repository.full_name)
        ).all()
        if not rows and or_any:
            active = Installation.deleted_at.is_(None), Installation.suspended_at.is_(None)
            rows = session.execute(
                repositories.join(Installation).where(*active).order_by(Repository.id).limit(1)
            ).all()
    return [(full_name, installation_id) for full_name, installation_id in rows]


def mirror_problems(services: Services) -> list[str]:
    """Each repository with tasks: is its .github/tandem.yml valid, and is it marked as a mirror?"""
    from tandem.domain import repo_config

    problems = []
    for full_name, installation_id in _mirrors(services):
        repo_config.forget(services, full_name)
        try:
            config = repo_config.load(services, services.github.as_installation(installation_id), full_name)
        except TandemError as exc:
            problems.append(str(exc))
            continue
        except GitHubException as exc:
            problems.append(f"{full_name}: cannot read {repo_config.PATH}: {_describe(exc)}")
            continue
        if not config.mirror:
            problems.append(
                f"{full_name}: has tasks but is not marked as a mirror (`mirror: true` in {repo_config.PATH})"
            )
    return problems


def git_problems(services: Services) -> list[str]:
    """Does git reach each repository with tasks (or, before the first task, one installed
    repository) at the address the workers derive from TANDEM_GITHUB_URL, with their token?"""
    from tandem.domain import mirrors

    problems = []
    for full_name, _installation_id in _mirrors(services, or_any=True):
        try:
            clone = mirrors.clone_of(services, full_name)  # the workers' own address, token and refresh
            clone.check_reachable(GIT_TIMEOUT)
        except GitHubException as exc:
            problems.append(f"{full_name}: cannot get an installation token for git: {_describe(exc)}")
        except gitops.GitError as exc:
            problems.append(
                f"{full_name}: git cannot reach {_redacted(mirrors.clone_url(services, full_name))} "
                f"({_redacted(str(exc))}); check TANDEM_GITHUB_URL, GitHub's web address (derived from "
                f"TANDEM_GITHUB_API_URL when unset): the workers find git at URL/OWNER/REPO.git"
            )
        except TandemError as exc:  # not installed, or suspended
            problems.append(str(exc))
    return problems


def _redacted(text: str) -> str:
    """Without tokens, Authorization values or credentials in URLs (user:password@)."""
    return logs.redact(_USERINFO.sub(r"\1", text))


def _describe(exc: GitHubException) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(exc).__name__


def problems(services: Services, *, github: bool) -> list[str]:
    found = credential_problems(services) + redis_problems(services) + database_problems(services)
    if github and not credential_problems(services):
        found += github_problems(services)
    return found


def persistence_warnings(services: Services) -> list[str]:
    """Does the inbox's Redis keep what it accepted through a restart? A delivery answered 202
    lives only there until a worker has processed it. The rule: only an append-only file keeps
    every delivery (appendonly yes); RDB snapshots alone lose those accepted since the last one;
    with neither, a restart loses them all."""
    where = queue.describe(services.redis)
    fix = "run `redis-cli CONFIG SET appendonly yes` and put `appendonly yes` in redis.conf"
    try:
        if services.redis.info("persistence").get("aof_enabled"):
            return []
        save = services.redis.config_get("save").get("save")
    except redis.ResponseError:  # CONFIG refused (a managed Redis): the snapshot schedule is unknown
        return [f"Redis at {where} has append-only persistence off: a restart may lose accepted deliveries; {fix}"]
    except redis.RedisError:
        return []  # unreachable: redis_problems says so
    if save:
        return [
            f"Redis at {where} persists in snapshots only (save {save}): a crash loses the deliveries "
            f"accepted since the last one; {fix}"
        ]
    return [
        f"Redis at {where} does not persist (appendonly no, no snapshots): a restart loses every accepted "
        f"delivery not yet processed; {fix}"
    ]


def delivery_warnings(services: Services) -> list[str]:
    """Deliveries parked as dead letters, and jobs in RQ's failed registries."""
    from tandem.infra import dead_letters

    warnings = []
    parked = dead_letters.count(services)
    if parked:
        kinds = ", ".join(f"{number} {kind.value}" for kind, number in sorted(parked.items()))
        warnings.append(
            f"{sum(parked.values())} deliveries parked ({kinds}): see `tandem deliveries failed`, "
            f"replay with `tandem deliveries retry`"
        )
    failed = {name: services.queue(name).failed_job_registry.count for name in queue.ALL}
    if any(failed.values()):
        counts = ", ".join(f"{name}: {number}" for name, number in failed.items() if number)
        warnings.append(
            f"{sum(failed.values())} failed jobs in RQ's failed registries ({counts}); "
            f"failed deliveries are queued again by the worker's periodic sweep"
        )
    return warnings
