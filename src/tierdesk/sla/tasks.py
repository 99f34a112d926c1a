"""Background jobs of the SLA app. Each runs once per tick however many workers run."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.core.outbox import claim_tick
from tierdesk.sla.clocks import sweep

BATCH = 1000


@db_periodic_task(crontab(minute="*"), priority=5)  # a short sweep: ahead of the long ticks
def sla_tick() -> None:
    """Every minute: warnings, breaches and SLA-percentage escalations that have come due."""
    if claim_tick("sla"):
        while sweep(limit=BATCH)["selected"] == BATCH:
            pass
