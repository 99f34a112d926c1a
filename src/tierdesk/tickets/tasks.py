"""Background jobs of the tickets app. Each is idempotent and runs once per tick."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.core.outbox import claim_tick
from tierdesk.tickets.services import assign_waiting, attachment_sweep_orphans


@db_periodic_task(crontab(minute="41"))
def attachment_orphans_tick() -> None:
    """Hourly: remove attachment files that no row refers to (see attachment_sweep_orphans)."""
    if claim_tick("attachment_orphans"):
        attachment_sweep_orphans()


@db_periodic_task(crontab(minute="*"))
def assignment_tick() -> None:
    """Every minute: give waiting tickets to agents whose shift has started."""
    if claim_tick("assignment"):
        assign_waiting()
