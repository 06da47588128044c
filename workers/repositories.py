"""push webhooks: a change on a default branch may change `.github/tandem.yml`; drop the cache."""

from tandem import repo_config
from workers.router import Delivery, Router

router = Router()


@router.register("push")
def default_branch_pushed(delivery: Delivery) -> None:
    repository = delivery.payload.get("repository") or {}
    default = repository.get("default_branch") or repository.get("master_branch")
    if default and delivery.payload.get("ref") == f"refs/heads/{default}" and repository.get("full_name"):
        repo_config.forget(delivery.services, repository["full_name"])
