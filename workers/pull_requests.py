"""pull_request webhooks: someone pushed to a side's branch, so its head commit moved. Votes
record the head SHAs they were cast on, so the side must know its current head."""

from tandem.domain import pairs
from tandem.domain.webhook_payloads import PullRequestEvent
from workers.router import Delivery, Router

router = Router()


@router.register("pull_request", "synchronize")
def head_moved(delivery: Delivery) -> None:
    payload = delivery.payload_as(PullRequestEvent)
    pull_request = payload.pull_request
    if not payload.repo or not pull_request.head.sha:
        return
    side = pairs.side_for_pull_request(delivery.session, payload.repo, pull_request.number)
    # Only a push from the head we know: a late delivery of an older push must not move it back.
    if side is not None and side.head_sha == payload.before:
        side.head_sha = pull_request.head.sha
