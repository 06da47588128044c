"""Periodic jobs, run by the RQ scheduler inside `tandem worker`."""

from tandem.services import Services


def install(services: Services) -> None:
    """Register the periodic jobs (idempotent: one registration per job id)."""
