from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "tierdesk.escalation"
    label = "escalation"
    verbose_name = "Escalation"

    def ready(self) -> None:
        from tierdesk.core import config
        from tierdesk.escalation.models import EscalationRule

        config.watch(EscalationRule)

        from tierdesk.escalation import rules
        from tierdesk.sla import clocks
        from tierdesk.tickets import lifecycle

        lifecycle.subscribe(rules.on_ticket_changes)
        clocks.watch(rules.sla_percents, rules.sla_percent_reached)
