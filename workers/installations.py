"""installation and installation_repositories webhooks keep the installations table current."""

from tandem.domain.webhook_payloads import InstallationEvent, InstallationRepositoriesEvent
from tandem.infra import installations
from workers.router import Delivery, Router

router = Router()


@router.register("installation", "created", "new_permissions_accepted", "unsuspend")
def installation_current(delivery: Delivery) -> None:
    payload = delivery.payload_as(InstallationEvent)
    installation = installations.upsert_installation(delivery.session, payload.installation)
    if delivery.action == "created":
        installations.add_repositories(delivery.session, installation, payload.repositories)
    if delivery.action == "unsuspend":
        installation.suspended_at = None


@router.register("installation", "deleted")
def installation_deleted(delivery: Delivery) -> None:
    installations.delete_installation(delivery.session, delivery.payload_as(InstallationEvent).installation.id)


@router.register("installation", "suspend")
def installation_suspended(delivery: Delivery) -> None:
    installation = delivery.payload_as(InstallationEvent).installation
    installations.upsert_installation(delivery.session, installation)
    installations.set_suspended(delivery.session, installation.id, True)


@router.register("installation_repositories", "added", "removed")
def repositories_changed(delivery: Delivery) -> None:
    payload = delivery.payload_as(InstallationRepositoriesEvent)
    installation = installations.upsert_installation(delivery.session, payload.installation)
    installations.add_repositories(delivery.session, installation, payload.repositories_added)
    installations.remove_repositories(delivery.session, [repository.id for repository in payload.repositories_removed])
