from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "tierdesk.sla"
    label = "sla"
    verbose_name = "SLAs and business calendars"

    def ready(self) -> None:
        from tierdesk.core import config
        from tierdesk.sla.models import (
            BusinessCalendar,
            CalendarHoliday,
            CalendarHours,
            SlaPolicy,
            SlaTarget,
        )

        config.watch(BusinessCalendar, CalendarHoliday, CalendarHours, SlaPolicy, SlaTarget)

        from tierdesk.sla import clocks
        from tierdesk.tickets import lifecycle

        lifecycle.subscribe(clocks.on_ticket_changes)
