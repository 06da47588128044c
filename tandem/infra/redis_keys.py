"""Every Redis key Tandem writes, in one place (as RQ keeps its own): what is under `tandem:`,
and what writes there. Keys outlive a deploy, so a format changed here is a migration: the old
keys are orphaned (they expire: each is written with a TTL, but the inbox stream and the team
generations)."""

from __future__ import annotations

import hashlib

PREFIX = "tandem:"
INBOX = "tandem:inbox"  # tandem.infra.inbox: the stream of deliveries waiting to be relayed
GITHUBKIT_CACHE = "tandem:githubkit"  # tandem.infra.github: githubkit's cache of tokens and answers (a prefix)
SETUP_LOCK = "tandem:setup:lock"  # tandem.infra.app_registration
SWEEP_LOCK = "tandem:sweep-left-behind"  # workers.schedule: one worker's sweep per period


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def delivery_pending(delivery_id: str) -> str:
    """tandem.infra.inbox: the delivery waits in the inbox or its job (keeps a redelivery out)."""
    return f"tandem:delivery:{delivery_id}:pending"


def stranded_sightings(queue_name: str) -> str:
    """workers.dequeue: the ids seen in a queue's intermediate list by the last maintenance pass."""
    return f"tandem:stranded:{queue_name}"


def setup_link(digest: str) -> str:
    return f"tandem:setup:link:{digest}"


def setup_session(digest: str) -> str:
    return f"tandem:setup:session:{digest}"


def setup_state(session_digest: str, state: str) -> str:
    return f"tandem:setup:state:{session_digest}:{state}"


def repo_config(full_name: str) -> str:
    """tandem.domain.repo_config: the cached `.github/tandem.yml` of a repository."""
    return f"tandem:config:{full_name.lower()}"


def told_outsider(repo: str, pr_number: int, author: str) -> str:
    """tandem.domain.acknowledgments: someone without a role was told so (once a day)."""
    return f"tandem:told:{repo}#{pr_number}:{author}"


def answered(repo: str, pr_number: int, source: str, source_id: int, text: str) -> str:
    """tandem.domain.acknowledgments: this answer to this comment was posted."""
    return "tandem:answered:" + _digest(f"{repo}#{pr_number}:{source}:{source_id}:{text}")


def notice(repo: str, pr_number: int, occasion: str, text: str) -> str:
    """tandem.domain.pr_notices: this notice was posted on this PR."""
    return "tandem:notice:" + _digest(f"{repo}#{pr_number}:{occasion}:{text}")


def write_budget(installation_id: int) -> tuple[str, str, str]:
    """tandem.infra.budget: the installation's reserved write slots, its hold on writes and its hold on
    every request."""
    return (
        f"tandem:writes:{installation_id}",
        f"tandem:writes:{installation_id}:held",
        f"tandem:requests:{installation_id}:held",
    )


def pair_sync(pair_id: int) -> str:
    """The pair's sync: the lease its job holds (tandem.domain.pair_sync), and the coalescing key of its
    follow-ups (tandem.infra.outbox), which is not a Redis key but names the job."""
    return f"tandem:pair:{pair_id}:sync"


def acknowledgments(installation_id: int) -> str:
    """The installation's commands waiting for their answer on GitHub: the lease of the job that
    answers them (workers.responses), and their coalescing key (tandem.infra.outbox)."""
    return f"tandem:acknowledgments:{installation_id}"


def coalesced_job(key: str) -> str:
    """tandem.infra.outbox: the id of the job last scheduled for a coalescing ``key``."""
    return "tandem:coalesced:" + _digest(key)


def dashboard_kept(described: str) -> str:
    """tandem.domain.dashboard.report: figures computed on the data as it was (``described``: what
    they are and the data's freshness), kept a while."""
    return "tandem:dashboard:figures:" + _digest(described)


def dashboard_latest(what: str) -> str:
    """tandem.domain.dashboard.report: the figures ``what`` last computed, whatever the data's
    freshness then (shown while they are computed afresh)."""
    return "tandem:dashboard:latest:" + _digest(what)


def dashboard_computing(described: str) -> str:
    """tandem.domain.dashboard.report: a job computing these figures is queued (one per ``described``)."""
    return "tandem:dashboard:computing:" + _digest(described)


def teams_generation(org: str) -> str:
    """tandem.domain.roles: bumped to drop every cached team membership of the organization."""
    return f"tandem:teams:{org.lower()}:generation"


def team_member(org: str, generation: int, team: str, login: str) -> str:
    """tandem.domain.roles: whether login is in the team, as GitHub last said."""
    return f"tandem:team:{org.lower()}:{generation}:{team.lower()}:{login.lower()}"
