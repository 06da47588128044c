"""pull_request webhooks: someone pushed to a side's branch, so its head commit moved. Votes
record the head SHAs they were cast on, so the side must know its current head."""

from tandem import pairs
from workers.router import Delivery, Router

router = Router()


@router.register("pull_request", "synchronize")
def head_moved(delivery: Delivery) -> None:
    pull_request = delivery.payload.get("pull_request") or {}
    repository = delivery.payload.get("repository") or {}
    head_sha = (pull_request.get("head") or {}).get("sha")
    if not head_sha or not repository.get("full_name") or not isinstance(pull_request.get("number"), int):
        return
    side = pairs.side_for_pull_request(delivery.session, repository["full_name"], pull_request["number"])
    # Only a push from the head we know: a late delivery of an older push must not move it back.
    if side is not None and side.head_sha == delivery.payload.get("before"):
        side.head_sha = head_sha
