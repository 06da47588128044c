"""membership, team and organization webhooks: who is in a team changed, so the roles cached for
that organization are dropped (tandem.domain.roles) and the next command is judged by GitHub's answer."""

from tandem.domain import roles
from tandem.domain.webhook_payloads import OrganizationEvent
from workers.router import Delivery, Router

router = Router()


@router.register("membership", "added", "removed")
@router.register("team", "created", "deleted", "edited")
@router.register("organization", "member_added", "member_removed")
def team_changed(delivery: Delivery) -> None:
    payload = delivery.payload_as(OrganizationEvent)
    if payload.organization is not None and payload.organization.login:
        roles.forget_teams(delivery.services, payload.organization.login)
