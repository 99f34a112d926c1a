"""Background jobs of the channels: webhook deliveries and email notifications sent each
minute; mailboxes polled every few seconds within the minute."""

from __future__ import annotations

import time

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

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


@db_periodic_task(crontab(minute="*"))
def mail_tick() -> None:
    if claim_tick("mail"):
        mailboxes.poll_all(until=time.monotonic() + MAIL_SECONDS)


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
