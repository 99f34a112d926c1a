"""Background jobs of escalation. Each runs once per tick however many workers run."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.core.outbox import claim_tick
from tierdesk.escalation.rules import sweep_time_in_tier


@db_periodic_task(crontab(minute="*"), priority=5)  # a short sweep: ahead of the long ticks
def escalation_tick() -> None:
    """Every minute: time-in-tier rules."""
    if claim_tick("escalation"):
        sweep_time_in_tier()
