"""Background jobs of the channels: webhook deliveries and email notifications sent each
minute; mailboxes polled every few seconds within the minute."""

from __future__ import annotations

import threading
import time

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task

from tierdesk.channels import mailboxes, notify, webhooks
from tierdesk.core.outbox import claim_tick

# Deliveries sent per minute at most; the rest wait for the next minute.
PER_TICK = 2_000


@db_periodic_task(crontab(minute="*"))
def webhooks_tick() -> None:
    if not claim_tick("webhooks"):
        return
    sent = 0
    while sent < PER_TICK:
        tried = webhooks.deliver_due()
        sent += tried
        if tried < webhooks.BATCH:
            break


# A mail tick polls for this long, then leaves the mailboxes to the next minute's tick (a
# tick that overruns is harmless: storing and processing are safe to run twice at once).
MAIL_SECONDS = 57


# Set when the worker stops (by any of its idle threads, as they leave): a mail tick then
# ends after its current round instead of holding the stop up for the rest of its minute.
STOPPING = threading.Event()


@HUEY.on_shutdown()
def _worker_stopping() -> None:
    STOPPING.set()


@db_periodic_task(crontab(minute="*"))
def mail_tick() -> None:
    if claim_tick("mail") and not STOPPING.is_set():
        mailboxes.poll_all(until=time.monotonic() + MAIL_SECONDS, stop=STOPPING)


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
