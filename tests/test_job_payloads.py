"""Job payloads: keyword arguments of a version. A job this release cannot read (queued by another
release) is parked with the reason, never misread; jobs queued by the release before, with
positional arguments, still run."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from tandem.infra import dead_letters, delivery_queue, job_names, queue
from tandem.infra.models import DeadLetter, DeadLetterKind, Repository
from tests.conftest import run_jobs
from tests.support.deliveries import INSTALLATION, repositories_added


def _repositories(services) -> list[str]:
    with services.storage.transaction() as session:
        return list(session.scalars(select(Repository.full_name).order_by(Repository.full_name)))


def _letters(services) -> list[DeadLetter]:
    return [letter for letter in dead_letters.listing(services) if letter.event == dead_letters.JOB]


def test_a_delivery_job_queued_positionally_by_the_release_before_still_runs(services):
    delivery_id = str(uuid.uuid4())
    services.enqueue(
        queue.WEBHOOKS,
        job_names.PROCESS_DELIVERY,
        delivery_id,
        "installation_repositories",
        "added",
        repositories_added(1).decode(),
        job_id=f"delivery-{delivery_id}",
    )
    run_jobs(services)
    assert _repositories(services) == ["evals-org/r1"]
    assert dead_letters.listing(services) == []


def test_a_job_of_an_unknown_payload_version_is_parked_not_run_and_replays_as_it_was(services):
    kwargs = {
        **job_names.payload(
            job_names.PROCESS_DELIVERY,
            delivery_id=str(uuid.uuid4()),
            event="installation_repositories",
            action="added",
            body=repositories_added(1).decode(),
        ),
        job_names.VERSION: 99,
    }
    job = services.enqueue(queue.WEBHOOKS, job_names.PROCESS_DELIVERY, kwargs=kwargs)
    run_jobs(services)
    assert _repositories(services) == [], "not run"
    [letter] = _letters(services)
    assert (letter.delivery_id, letter.kind) == (job.id, DeadLetterKind.UNPROCESSABLE)
    assert letter.reason == ("payload version 99 of workers.deliveries.process_delivery: this release reads version 1")
    assert json.loads(letter.body) == {
        "queue": queue.WEBHOOKS,
        "func": job_names.PROCESS_DELIVERY,
        "args": [],
        "kwargs": kwargs,
    }

    # Replayed (say, after a rollback to the release that queued it), it is queued as it was.
    assert delivery_queue.replay(services, [job.id]) == [job.id]
    replayed = services.queue(queue.WEBHOOKS).fetch_job(job.id)
    assert (replayed.func_name, replayed.args, replayed.kwargs) == (job_names.PROCESS_DELIVERY, [], kwargs)


def test_a_job_with_arguments_it_does_not_take_is_parked_saying_which(services):
    kwargs = job_names.payload(job_names.OPEN_PAIR, task_id=1, mirror="evals-org/mlflow")
    job = services.enqueue(queue.PAIRS, job_names.OPEN_PAIR, kwargs=kwargs)
    run_jobs(services)
    [letter] = _letters(services)
    assert letter.delivery_id == job.id
    assert letter.reason == (
        "arguments of workers.pairs.open_pair (version 1): got an unexpected keyword argument 'mirror'"
    )


def test_a_versioned_job_given_positional_arguments_is_parked(services):
    job = services.enqueue(
        queue.PAIRS,
        job_names.OPEN_PAIR,
        INSTALLATION,
        kwargs={job_names.VERSION: job_names.VERSIONS[job_names.OPEN_PAIR]},
    )
    run_jobs(services)
    [letter] = _letters(services)
    assert (letter.delivery_id, letter.reason) == (job.id, "workers.pairs.open_pair takes keyword arguments only")
