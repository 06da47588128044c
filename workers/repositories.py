"""push webhooks: a change on a default branch may change `.github/tandem.yml`; drop the cache."""

from tandem.domain import repo_config
from tandem.domain.webhook_payloads import PushEvent
from workers.router import Delivery, Router

router = Router()


@router.register("push")
def default_branch_pushed(delivery: Delivery) -> None:
    payload = delivery.payload_as(PushEvent)
    repository = payload.repository
    default = repository and (repository.default_branch or repository.master_branch)
    if default and payload.ref == f"refs/heads/{default}" and payload.repo:
        repo_config.forget(delivery.services, payload.repo)
