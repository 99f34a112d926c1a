"""Background jobs of the tickets app. Each is idempotent and runs once per tick."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.core import files
from tierdesk.core.outbox import claim_tick
from tierdesk.tickets.services import assign_waiting


@db_periodic_task(crontab(minute="41"))
def attachment_orphans_tick() -> None:
    """Hourly: remove stored files (ticket attachments, article images) that no row refers
    to (see core.files.sweep_orphans)."""
    if claim_tick("attachment_orphans"):
        files.sweep_orphans()


@db_periodic_task(crontab(minute="*"), priority=5)  # a short sweep: ahead of the long ticks
def assignment_tick() -> None:
    """Every minute: give waiting tickets to agents whose shift has started."""
    if claim_tick("assignment"):
        assign_waiting()
