from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "tierdesk.reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from tierdesk.core import outbox
        from tierdesk.reports import facts, rollups
        from tierdesk.tickets.models import Ticket

        # Every event about a ticket may change what is known of it (kb.reports reads the
        # facts, refreshed by the worker: see facts.py).
        outbox.subscribe("*", facts.on_event)
        # A deleted ticket takes its facts with it, not its counts in the rollups: its
        # organization's are counted again by the worker. (Nothing deletes tickets today.)
        pre_delete.connect(rollups.ticket_deleted, sender=Ticket, weak=False)
