"""The dotted paths of Tandem's job functions, in one place: whoever queues a job names it from
here, so the web process and the domain never import the workers to queue one, and a job
function that moves is renamed once. (Queued jobs carry these names: moving a function breaks
the jobs queued under its old name.) tests/test_architecture.py checks each resolves.

Jobs take keyword-only arguments and carry the version of their payload (`payload`): a job queued
by one release and run by another whose arguments differ is parked, not misread (workers.jobs).
"""

from __future__ import annotations

from typing import Any

PROCESS_DELIVERY = "workers.deliveries.process_delivery"
OPEN_PAIR = "workers.pairs.open_pair"
APPLY_ROUND = "workers.rounds.apply_round"
ANNOUNCE_ROUND = "workers.rounds.announce_round"
ACKNOWLEDGE = "workers.responses.acknowledge"
ACKNOWLEDGE_WAITING = "workers.responses.acknowledge_waiting"
ASK_REVIEWERS_AGAIN = "workers.responses.ask_reviewers_again"
TELL_CI_FINISHED = "workers.responses.tell_ci_finished"
SYNC_PAIR = "workers.responses.sync_pair"
DELIVER_RUNNER_EVENT = "workers.runner_events.deliver_runner_event"
REDELIVER_MISSED_WEBHOOKS = "workers.schedule.redeliver_missed_webhooks"
COMPUTE_DASHBOARD_FIGURES = "workers.dashboard.compute_figures"

# In every job's keyword arguments: the version of the rest. Bump a job's version with any change
# to its arguments' names or meaning (and, for a release, accept the one before in workers.jobs).
VERSION = "payload_version"
VERSIONS: dict[str, int] = {
    name: 1
    for name in (
        PROCESS_DELIVERY,
        OPEN_PAIR,
        APPLY_ROUND,
        ANNOUNCE_ROUND,
        ACKNOWLEDGE,
        ACKNOWLEDGE_WAITING,
        ASK_REVIEWERS_AGAIN,
        TELL_CI_FINISHED,
        SYNC_PAIR,
        DELIVER_RUNNER_EVENT,
        REDELIVER_MISSED_WEBHOOKS,
        COMPUTE_DASHBOARD_FIGURES,
    )
}


def payload(job: str, **arguments: Any) -> dict[str, Any]:
    """The keyword arguments to queue `job` with: these, and the version they are of."""
    return {**arguments, VERSION: VERSIONS[job]}
