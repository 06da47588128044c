"""membership, team and organization webhooks: who is in a team changed, so the roles cached for
that organization are dropped (tandem.roles) and the next command is judged by GitHub's answer."""

from tandem import roles
from workers.router import Delivery, Router

router = Router()


@router.register("membership", "added", "removed")
@router.register("team", "created", "deleted", "edited")
@router.register("organization", "member_added", "member_removed")
def team_changed(delivery: Delivery) -> None:
    org = (delivery.payload.get("organization") or {}).get("login")
    if isinstance(org, str) and org:
        roles.forget_teams(delivery.services, org)
