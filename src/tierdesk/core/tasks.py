"""Background jobs of the kernel. Each is idempotent and runs once per tick however many
workers run (see claim_tick)."""

from __future__ import annotations

import datetime as dt
import time

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.core import clock
from tierdesk.core.models import IdempotencyRecord, JobTick
from tierdesk.core.outbox import RELAY_SECONDS, claim_tick, relay


@db_periodic_task(crontab(minute="*"))
def outbox_relay_tick() -> None:
    if claim_tick("outbox_relay"):
        # Batch after batch, but not into the next minute's tick (two relays at once would
        # hand the same events to the same consumers).
        stop = time.monotonic() + RELAY_SECONDS
        while relay() == 500 and time.monotonic() < stop:
            pass


@db_periodic_task(crontab(minute="17"))
def housekeeping_tick() -> None:
    """Hourly: forget idempotency records past their lifetime and old job ticks."""
    if not claim_tick("housekeeping"):
        return
    from django.conf import settings

    now = clock.now()
    IdempotencyRecord.objects.filter(
        created_at__lt=now - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    ).delete()
    JobTick.objects.filter(tick__lt=now - dt.timedelta(days=2)).delete()
