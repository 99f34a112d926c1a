"""Background jobs of the reports: the tickets' facts kept current (reports.facts)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.core.outbox import claim_tick
from tierdesk.reports import facts

# Tickets refreshed per minute at most: a backlog (after `tierdesk reports rebuild` was
# skipped, or a burst of changes) is worked off over the next minutes.
PER_TICK = 20_000


@db_periodic_task(crontab(minute="*"))
def facts_tick() -> None:
    if claim_tick("report_facts"):
        facts.refresh_stale(limit=PER_TICK)
