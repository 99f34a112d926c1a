"""Background jobs of the channels: webhook deliveries and email notifications sent each
minute; mailboxes polled every few seconds within the minute."""

from __future__ import annotations

import datetime as dt
import threading
import time

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task

from tierdesk.channels import mailboxes, notify, webhooks
from tierdesk.core import clock
from tierdesk.core.models import JobTick
from tierdesk.core.outbox import claim_tick

# Set when the worker stops (by any of its idle threads, as they leave): a long tick (mail,
# webhooks) then ends after its current round instead of holding the stop up.
STOPPING = threading.Event()


@HUEY.on_shutdown()
def _worker_stopping() -> None:
    STOPPING.set()


# Notifications sent per minute at most; the rest wait for the next minute.
PER_TICK = 2_000


# A webhooks tick sends for at most this long (16 requests in flight, a few of any one
# webhook's; each request bounded by channels.http's deadline), then leaves the rest to
# the next minute's tick.
WEBHOOK_SECONDS = 45


@db_periodic_task(crontab(minute="*"))
def webhooks_tick() -> None:
    if claim_tick("webhooks") and not STOPPING.is_set():
        webhooks.deliver_for(WEBHOOK_SECONDS, STOPPING)


# A mail tick polls until the next minute's mail tick has started (so that no seconds go
# unpolled while that one waits for a free thread at the turn of the minute), and at most
# this long. Two polling at once for a moment is harmless: storing and processing are
# safe to run twice.
MAIL_SECONDS_MAX = 110


@db_periodic_task(crontab(minute="*"), priority=10)  # ahead of the minute's other jobs
def mail_tick() -> None:
    if not claim_tick("mail") or STOPPING.is_set():
        return
    successor = clock.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)

    def relieved() -> bool:
        return JobTick.objects.filter(job="mail", tick__gte=successor).exists()

    mailboxes.poll_all(until=time.monotonic() + MAIL_SECONDS_MAX, stop=STOPPING, relieved=relieved)


@db_periodic_task(crontab(minute="*"))
def notifications_tick() -> None:
    if not claim_tick("notifications"):
        return
    sent = 0
    while sent < PER_TICK:
        tried = notify.send_due()
        sent += tried
        if tried < notify.BATCH:
            break
