"""Background jobs of the channels: webhook deliveries and email notifications sent each
minute."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tierdesk.channels import notify, webhooks
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
