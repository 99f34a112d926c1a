"""Live gauges for Prometheus (``GET /metrics``, behind a bearer token): what an operator
watches between reports. Read from the tickets and clocks at each scrape, not from the
report facts, so they do not trail the desk; every metric is one grouped query.

- ``tierdesk_open_tickets{organization, tier, priority}``: open tickets (new, open, in
  progress, pending);
- ``tierdesk_queue_oldest_seconds{organization, tier}``: how long the open ticket that has
  waited longest in its tier has been there;
- ``tierdesk_sla_breaching_next_hour{organization, kind}``: running SLA clocks due within
  the hour that have not breached yet;
- ``tierdesk_sla_in_breach{organization, kind}``: live clocks (running or paused) past due;
- ``tierdesk_sla_breaches{organization, kind}``: clocks that breached, ever (it only grows,
  unless tickets are deleted);
- ``tierdesk_report_facts_stale``: tickets whose report facts wait for the worker.
- ``tierdesk_report_rollups_stale``: organizations whose rollups wait to be counted again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Min, Q
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from tierdesk.core import clock
from tierdesk.reports.models import StaleFact, StaleRollup
from tierdesk.sla.models import ClockStatus, SlaClock
from tierdesk.tickets.models import OPEN_STATUSES, Ticket


class DeskCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = clock.now()
        open_tickets = Ticket.objects.filter(status__in=OPEN_STATUSES)
        family = GaugeMetricFamily(
            "tierdesk_open_tickets",
            "Open tickets (new, open, in progress, pending).",
            labels=["organization", "tier", "priority"],
        )
        for row in (
            open_tickets.values("organization__code", "tier__code", "priority")
            .annotate(n=Count("pk"))
            .order_by("organization__code", "tier__code", "priority")
        ):
            family.add_metric(
                [row["organization__code"], row["tier__code"], row["priority"]], row["n"]
            )
        yield family

        family = GaugeMetricFamily(
            "tierdesk_queue_oldest_seconds",
            "Seconds the open ticket that has waited longest in its tier has been there.",
            labels=["organization", "tier"],
        )
        for queue in (
            open_tickets.values("organization__code", "tier__code")
            .annotate(oldest=Min("tier_entered_at"))
            .order_by("organization__code", "tier__code")
        ):
            waited = max(0.0, (now - queue["oldest"]).total_seconds())
            family.add_metric([queue["organization__code"], queue["tier__code"]], waited)
        yield family

        live = SlaClock.objects.exclude(status=ClockStatus.STOPPED)
        for name, help_text, clocks in (
            (
                "tierdesk_sla_breaching_next_hour",
                "Running SLA clocks due within the next hour, not breached yet.",
                live.filter(
                    status=ClockStatus.RUNNING,
                    breached_at__isnull=True,
                    due_at__gte=now,
                    due_at__lt=now + dt.timedelta(hours=1),
                ),
            ),
            (
                "tierdesk_sla_in_breach",
                "Live SLA clocks (running or paused) past their due instant.",
                live.filter(Q(breached_at__isnull=False) | Q(due_at__lt=now, paused_at=None)),
            ),
            (
                "tierdesk_sla_breaches",
                "SLA clocks that breached, ever.",
                SlaClock.objects.filter(breached_at__isnull=False),
            ),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["organization", "kind"])
            for clock_row in (
                clocks.values("organization__code", "kind")
                .annotate(n=Count("pk"))
                .order_by("organization__code", "kind")
            ):
                family.add_metric(
                    [clock_row["organization__code"], clock_row["kind"]], clock_row["n"]
                )
            yield family

        yield GaugeMetricFamily(
            "tierdesk_report_facts_stale",
            "Tickets whose report facts wait for the worker.",
            value=StaleFact.objects.count(),
        )
        yield GaugeMetricFamily(
            "tierdesk_report_rollups_stale",
            "Organizations whose report rollups wait to be counted again by the worker.",
            value=StaleRollup.objects.count(),
        )


def registry() -> CollectorRegistry:
    """A registry of tierdesk's gauges only (not the process's: the web server runs
    several processes, and a scrape reaches one of them)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(DeskCollector())
    return found
