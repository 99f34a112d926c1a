"""Background jobs of automation. Each is idempotent and runs once per tick."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.automation.services import close_interrupted, expire_approvals
from tierdesk.core.outbox import claim_tick


@db_periodic_task(crontab(minute="*"), priority=5)  # a short sweep: ahead of the long ticks
def automation_sweep_tick() -> None:
    """Every minute: expire approvals nobody gave, close runs their process left behind."""
    if claim_tick("automation_sweep"):
        expire_approvals()
        close_interrupted()
