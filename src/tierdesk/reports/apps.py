from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "tierdesk.reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from tierdesk.core import outbox
        from tierdesk.reports import facts

        # Every event about a ticket may change what is known of it (kb.reports reads the
        # facts, refreshed by the worker: see facts.py).
        outbox.subscribe("*", facts.on_event)
