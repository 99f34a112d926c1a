"""Demo data that looks like a real MSP, written through the same services as live traffic.

Three client organizations in different time zones, twelve agents over L1-L3 with shifts
and skills, and tickets over the past days with realistic lifecycles: most resolved at L1,
some moved up to L2 and L3 with a handoff note, pending periods, reopenings.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import OperationalError, connection, connections, transaction

from tierdesk.core import clock
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_create, user_create
from tierdesk.escalation import services as escalation
from tierdesk.escalation.models import Trigger
from tierdesk.sla.models import BusinessCalendar
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as ts
from tierdesk.tickets.models import Source, Status, Ticket
from tierdesk.tiers.models import Category, Tier
from tierdesk.tiers.services import (
    Shift,
    agent_create,
    category_update,
    skills_by_slug,
    tier_by_code,
    tier_update,
)

DEMO_PASSWORD = "tierdesk-demo-2026"

# email, role, what to try with it
DEMO_LOGINS: list[tuple[str, str, str]] = [
    ("admin@msp.example", "admin", "everything, every organization"),
    ("manager@msp.example", "manager", "service manager, all three clients"),
    ("lena.l1@msp.example", "agent", "L1 agent (Berlin hours), ACME and GLOBEX"),
    ("omar.l2@msp.example", "agent", "L2 agent, all clients"),
    ("grace.l3@msp.example", "agent", "L3 expert, all clients"),
    ("alice@acme.example", "requester", "ACME employee, sees own tickets"),
    ("it-lead@acme.example", "requester", "ACME IT lead, sees all ACME tickets"),
    ("bernd@globex.example", "requester", "GLOBEX employee"),
]

ORGS = [
    ("ACME", "Acme Manufacturing Inc.", "America/New_York", "acme.example"),
    ("GLOBEX", "Globex GmbH", "Europe/Berlin", "globex.example"),
    ("INITECH", "Initech Pty Ltd", "Australia/Sydney", "initech.example"),
]


# Business calendars: name, title, organization (None: MSP-wide), zone, Mon-Fri hours in
# minutes, holiday country and subdivision. Sydney and Berlin take their state's holidays.
CALENDARS: list[tuple[str, str, str | None, str, tuple[int, int], str, str]] = [
    ("acme-new-york", "ACME business hours (New York)", "ACME", "America/New_York",
     (8 * 60, 18 * 60), "US", ""),
    ("globex-berlin", "Globex business hours (Berlin)", "GLOBEX", "Europe/Berlin",
     (8 * 60, 17 * 60), "DE", "BE"),
    ("initech-sydney", "Initech business hours (Sydney)", "INITECH", "Australia/Sydney",
     (9 * 60, 17 * 60 + 30), "AU", "NSW"),
]  # fmt: skip


@dataclass(frozen=True)
class AgentSpec:
    email: str
    name: str
    role: str
    tier: str
    zone: str
    hours: tuple[int, int]
    skills: tuple[str, ...]
    serves: tuple[str, ...]


ALL = ("ACME", "GLOBEX", "INITECH")
AGENTS = [
    AgentSpec(
        "admin@msp.example",
        "Ada Admin",
        "admin",
        "L3",
        "Europe/Berlin",
        (9, 17),
        ("server", "security"),
        (),
    ),
    AgentSpec(
        "manager@msp.example",
        "Max Manager",
        "manager",
        "L2",
        "Europe/Berlin",
        (8, 16),
        ("accounts",),
        ALL,
    ),
    AgentSpec(
        "lena.l1@msp.example",
        "Lena Fischer",
        "agent",
        "L1",
        "Europe/Berlin",
        (7, 15),
        ("accounts", "email", "software"),
        ("ACME", "GLOBEX"),
    ),
    AgentSpec(
        "jonas.l1@msp.example",
        "Jonas Weber",
        "agent",
        "L1",
        "Europe/Berlin",
        (12, 20),
        ("accounts", "hardware"),
        ("GLOBEX", "ACME"),
    ),
    AgentSpec(
        "maria.l1@msp.example",
        "Maria Lopez",
        "agent",
        "L1",
        "America/New_York",
        (8, 16),
        ("accounts", "email"),
        ("ACME",),
    ),
    AgentSpec(
        "deshawn.l1@msp.example",
        "DeShawn Carter",
        "agent",
        "L1",
        "America/New_York",
        (11, 19),
        ("software", "hardware"),
        ("ACME", "GLOBEX"),
    ),
    AgentSpec(
        "priya.l1@msp.example",
        "Priya Nair",
        "agent",
        "L1",
        "Australia/Sydney",
        (8, 16),
        ("accounts", "email", "software"),
        ("INITECH",),
    ),
    AgentSpec(
        "tom.l1@msp.example",
        "Tom Nguyen",
        "agent",
        "L1",
        "Australia/Sydney",
        (10, 18),
        ("hardware", "accounts"),
        ("INITECH",),
    ),
    AgentSpec(
        "sara.l1@msp.example",
        "Sara Kim",
        "agent",
        "L1",
        "America/New_York",
        (9, 17),
        ("email", "software"),
        ALL,
    ),
    AgentSpec(
        "omar.l2@msp.example",
        "Omar Haddad",
        "agent",
        "L2",
        "Europe/Berlin",
        (8, 16),
        ("network", "email", "backup"),
        ALL,
    ),
    AgentSpec(
        "julia.l2@msp.example",
        "Julia Rossi",
        "agent",
        "L2",
        "America/New_York",
        (9, 17),
        ("server", "network", "security"),
        ALL,
    ),
    AgentSpec(
        "kai.l2@msp.example",
        "Kai Tanaka",
        "agent",
        "L2",
        "Australia/Sydney",
        (8, 16),
        ("backup", "server", "accounts"),
        ALL,
    ),
    AgentSpec(
        "grace.l3@msp.example",
        "Grace Hopper",
        "agent",
        "L3",
        "Europe/Berlin",
        (9, 17),
        ("server", "network", "security"),
        ALL,
    ),
    AgentSpec(
        "linus.l3@msp.example",
        "Linus Berg",
        "agent",
        "L3",
        "America/New_York",
        (10, 18),
        ("server", "backup", "network"),
        ALL,
    ),
]

FIRST = [
    "Alice",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Gina",
    "Hugo",
    "Ivy",
    "Jack",
    "Kara",
    "Liam",
    "Mona",
    "Nils",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
LAST = [
    "Smith",
    "Meyer",
    "Brown",
    "Schulz",
    "Wilson",
    "Taylor",
    "Klein",
    "Martin",
    "Young",
    "King",
    "Wright",
    "Hall",
]

# category slug -> (weight, subjects, share resolved at L1, extra-hard share going to L3)
SCENARIOS: dict[str, tuple[int, list[str], float, float]] = {
    "access": (
        30,
        [
            "Password reset needed",
            "Account locked out after holidays",
            "Cannot log in to VPN portal",
            "MFA device lost, need new enrollment",
            "New starter needs an account",
            "Access to shared drive denied",
        ],
        0.92,
        0.0,
    ),
    "email": (
        18,
        [
            "Outlook keeps asking for password",
            "Shared mailbox not showing",
            "Emails to customer bouncing",
            "Calendar invites not arriving",
            "Distribution list change",
        ],
        0.72,
        0.08,
    ),
    "software": (
        16,
        [
            "Install Visio on my laptop",
            "Excel crashes when opening macro file",
            "Licence expired for Adobe Acrobat",
            "Teams has no audio",
            "ERP client shows error 1603",
        ],
        0.75,
        0.1,
    ),
    "hardware": (
        12,
        [
            "Printer on 2nd floor jams",
            "Laptop battery swelling",
            "Docking station no display",
            "Keyboard missing keys",
            "New monitor request",
        ],
        0.8,
        0.0,
    ),
    "network": (
        10,
        [
            "Wi-Fi drops in meeting room B",
            "Site VPN tunnel down",
            "Slow internet at branch office",
            "Cannot reach file server",
        ],
        0.3,
        0.25,
    ),
    "backup": (
        5,
        ["Nightly backup failed", "Restore deleted project folder", "Backup job exceeds window"],
        0.2,
        0.3,
    ),
    "server": (
        6,
        [
            "ERP server CPU at 100%",
            "Disk almost full on FS01",
            "Domain controller replication errors",
            "Web shop returns 502",
        ],
        0.1,
        0.4,
    ),
    "security": (
        3,
        [
            "Suspicious email with attachment",
            "User clicked phishing link",
            "Antivirus alert on workstation",
        ],
        0.35,
        0.3,
    ),
}

TRIED = [
    "Checked the user's account and group memberships; cleared the credential cache; "
    "reproduced on a second device.",
    "Restarted the service, checked event logs, verified connectivity with ping/traceroute.",
    "Followed KB steps for this symptom; issue persists after reboot and profile reset.",
    "Collected logs and screenshots; confirmed with the requester that it affects the team.",
]


# SLA contracts: business-hours targets per priority (first response, resolution, next
# update) in minutes. GLOBEX's P1s run around the clock; everyone else on office hours.
CONTRACTS = {
    "ACME": ("ACME standard", "acme-new-york", [
        Target("P1", 30, 240, 60), Target("P2", 60, 480, 240), Target("P3", 240, 1440),
        Target("P4", 480, 2880)]),
    "GLOBEX": ("Globex premium", "globex-berlin", [
        Target("P1", 15, 120, 30), Target("P2", 30, 240, 120), Target("P3", 120, 960),
        Target("P4", 480, 2400)]),
}  # fmt: skip
MSP_DEFAULT = [Target("P1", 60, 480), Target("P2", 120, 960), Target("P3", 480, 2400),
               Target("P4", 960, 4800)]  # fmt: skip


def _contracts(orgs: dict[str, Organization], always: BusinessCalendar) -> None:
    calendars = {c.name: c for c in BusinessCalendar.objects.all()}
    for code, (name, calendar, targets) in CONTRACTS.items():
        sla_policy_create(
            actor=None,
            name=name,
            organization=orgs[code],
            calendar=calendars[calendar],
            targets=targets,
        )
    sla_policy_create(
        actor=None,
        name="MSP standard",
        calendar=always,
        warning_percent=75,
        targets=MSP_DEFAULT,
    )


def _catalog_questions(admin: User) -> None:
    """The hardware category asks which device and its asset tag (optional: the generated
    history predates them)."""
    hardware = Category.objects.get(organization__isnull=True, slug="hardware")
    category_update(
        actor=admin,
        category=hardware,
        form_fields=[
            {
                "key": "device",
                "label": "Which device?",
                "type": "choice",
                "choices": ["Laptop", "Desktop", "Printer", "Phone", "Other"],
            },
            {
                "key": "asset_tag",
                "label": "Asset tag",
                "type": "text",
                "help": "On the sticker, e.g. LT-0042.",
            },
        ],
    )


def _escalation_rules(admin: User) -> None:
    l2, l3 = Tier.objects.get(code="L2"), Tier.objects.get(code="L3")
    rules: list[tuple[str, str, dict[str, Any]]] = [
        ("P1 straight to L2", Trigger.PRIORITY, {"priority": "P1", "to_tier": l2}),
        ("Reopened twice: L3 looks at it", Trigger.REOPENED, {"count": 2, "to_tier": l3}),
        (
            "P2 stuck in L1 for 4 hours",
            Trigger.TIME_IN_TIER,
            {"priority": "P2", "minutes": 240, "from_tier": Tier.objects.get(code="L1")},
        ),
        (
            "Resolution SLA 80 % used",
            Trigger.SLA_RESOLUTION_USED,
            {"percent": 80, "notify_managers": True},
        ),
    ]
    for name, trigger, extra in rules:
        escalation.escalation_rule_create(actor=admin, name=name, trigger=trigger, **extra)


def _knowledge_base(admin: User) -> None:
    """The demo's knowledge base: the articles in kb/demo_articles (written for tierdesk),
    imported the way a team would import its own."""
    from tierdesk.kb import portable
    from tierdesk.kb.services import article_import

    documents, errors = portable.read_dir(DEMO_ARTICLES)
    if errors:
        raise RuntimeError(f"demo articles: {errors[0]}")
    article_import(actor=None, documents=documents, owner=admin)
    from tierdesk.kb import semantic

    if semantic.enabled():
        # Their embeddings for semantic re-ranking: made by the worker (``tierdesk run``
        # starts one), not here, so seeding stays quick; search is full text until then.
        from tierdesk.kb.tasks import embeddings_now

        transaction.on_commit(embeddings_now)


def _business_instant(rnd: random.Random, day: dt.date, zone: str) -> dt.datetime:
    tz = zoneinfo.ZoneInfo(zone)
    hour = rnd.choices(
        range(24),
        weights=[1, 1, 1, 1, 1, 2, 4, 8, 12, 12, 11, 10, 8, 10, 11, 10, 8, 6, 4, 3, 2, 2, 1, 1],
    )[0]
    local = dt.datetime.combine(day, dt.time(hour, rnd.randrange(60)), tzinfo=tz)
    return local.astimezone(dt.UTC)


def seed_demo(
    *,
    tickets: int = 2000,
    days: int = 90,
    seed: int = 42,
    progress: Callable[[str], None] = lambda _: None,
    workers: int | None = None,
) -> str:
    """Seed the demo MSP. ``workers``: processes for the tickets (default: one per CPU on
    PostgreSQL, at most one per organization; always one on SQLite)."""
    rnd = random.Random(seed)
    start = clock.now() - dt.timedelta(days=days)
    # Holidays from the first demo day to the end of next year: SLAs due soon find them.
    years = list(range(start.year, clock.now().year + 2))
    with clock.frozen_at(start - dt.timedelta(days=1)), transaction.atomic():
        orgs = [
            organization_create(actor=None, code=c, name=n, time_zone=z, email_domains=[d])
            for c, n, z, d in ORGS
        ]
        by_code = {o.code: o for o in orgs}
        for name, title, code, zone, span, country, subdivision in CALENDARS:
            calendar_create(
                actor=None,
                name=name,
                title=title,
                time_zone=zone,
                hours={day: [span] for day in range(5)},
                country=country,
                subdivision=subdivision,
                holiday_years=years,
                organization=by_code[code] if code else None,
            )
        always = calendar_create(
            actor=None, name="24x7", title="Around the clock", time_zone="UTC", always_open=True
        )
        _contracts(by_code, always)
        staff: list[User] = []
        for spec in AGENTS:
            staff.append(
                agent_create(
                    actor=None,
                    email=spec.email,
                    full_name=spec.name,
                    role=spec.role,
                    tier=tier_by_code(spec.tier),
                    skills=skills_by_slug(spec.skills),
                    shifts=[
                        Shift(d, dt.time(spec.hours[0]), dt.time(spec.hours[1])) for d in range(5)
                    ],
                    served_organizations=[by_code[c] for c in spec.serves],
                    time_zone=spec.zone,
                )
            )
        requesters: dict[str, list[User]] = {}
        for org in orgs:
            domain = org.email_domains[0]
            people = []
            for i in range(16):
                first, last = FIRST[(i + len(org.code)) % len(FIRST)], LAST[i % len(LAST)]
                email = f"{first.lower()}.{last.lower()}@{domain}"
                people.append(
                    user_create(
                        actor=None,
                        email=email,
                        full_name=f"{first} {last}",
                        role="requester",
                        organization=org,
                        time_zone=org.time_zone,
                    )
                )
            requesters[org.code] = people
        for email, name, code, sees in [
            ("alice@acme.example", "Alice Anders", "ACME", False),
            ("it-lead@acme.example", "Ian Lead", "ACME", True),
            ("bernd@globex.example", "Bernd Bauer", "GLOBEX", False),
        ]:
            requesters[code].append(
                user_create(
                    actor=None,
                    email=email,
                    full_name=name,
                    role="requester",
                    organization=by_code[code],
                    time_zone=by_code[code].time_zone,
                    sees_organization_tickets=sees,
                )
            )
        # One hash for every demo login: hashing is slow on purpose, 60 times would be a minute.
        demo_people = staff + [u for people in requesters.values() for u in people]
        User.objects.filter(pk__in=[u.pk for u in demo_people]).update(
            password=make_password(DEMO_PASSWORD)
        )
        # Hierarchical escalations notify the duty managers; P1s skip L1.
        for tier in Tier.objects.filter(code__in=["L2", "L3"]):
            tier.managers.set(
                [u for s, u in zip(AGENTS, staff, strict=True) if s.role == "manager"]
            )
        admin = next(u for s, u in zip(AGENTS, staff, strict=True) if s.role == "admin")
        # What a ticket costs at each tier, for the cost report: an hour, and the minutes.
        for code, hourly, minutes in (("L1", 25, 15), ("L2", 55, 45), ("L3", 95, 120)):
            tier_update(
                actor=admin, tier=tier_by_code(code), hourly_cost=hourly, handling_minutes=minutes
            )
        _escalation_rules(admin)
        _catalog_questions(admin)
        _knowledge_base(admin)
    tiers = {t.code: t for t in Tier.objects.all()}
    categories = {c.slug: c for c in Category.objects.filter(organization__isnull=True)}
    agents_by_tier: dict[tuple[str, str], list[User]] = {}
    for spec, user in zip(AGENTS, staff, strict=True):
        if spec.role == "agent":
            for code in spec.serves:
                agents_by_tier.setdefault((spec.tier, code), []).append(user)
    managers = [u for s, u in zip(AGENTS, staff, strict=True) if s.role == "manager"]

    now = clock.now()
    org_weights = [5, 3, 2]
    created_at = sorted(
        start + dt.timedelta(seconds=rnd.uniform(0, (now - start).total_seconds()))
        for _ in range(tickets)
    )
    work = _Work(now, orgs, categories, requesters, agents_by_tier, tiers, managers)
    processes = _processes(workers, len(orgs))
    if processes > 1:
        # Organizations are independent (their own numbers, people and tickets): one
        # process per organization, each with its own random stream.
        plan: dict[str, list[dt.datetime]] = {o.code: [] for o in orgs}
        for when in created_at:
            plan[rnd.choices(orgs, weights=org_weights)[0].code].append(when)
        global _WORK
        _WORK = work
        connections.close_all()  # each process opens its own
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.starmap(
                _seed_organization, [(code, whens, seed) for code, whens in plan.items()]
            )
        counts = Counter[str]()
        for code, part in zip(plan, parts, strict=True):
            progress(f"  {code}: {part['tickets']} tickets")
            counts.update(part)
    else:
        stream = [(when, rnd.choices(orgs, weights=org_weights)[0]) for when in created_at]
        counts = _seed_tickets(work, rnd, stream, progress)
    from tierdesk.reports import facts

    # The reports' figures at once, not after the worker's first minutes (reports.facts).
    facts.rebuild()
    return ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in OUTCOMES)


DEMO_ARTICLES = Path(__file__).resolve().parent / "kb" / "demo_articles"
OUTCOMES = ("tickets", "escalated_l2", "escalated_l3", "reopened", "open")


@dataclass(frozen=True)
class _Work:
    """What the ticket lifecycles need from the set-up: the cast and the catalog."""

    now: dt.datetime
    orgs: list[Organization]
    categories: dict[str, Category]
    requesters: dict[str, list[User]]
    agents_by_tier: dict[tuple[str, str], list[User]]
    tiers: dict[str, Tier]
    managers: list[User]


_WORK: _Work | None = None  # handed to the seeding processes (fork)


def _processes(wanted: int | None, organizations: int) -> int:
    """Processes to seed with: on PostgreSQL one per CPU (at most one per organization),
    else one. SQLite has one writer; inside a transaction the others could not see the
    set-up (the tests seed inside theirs)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    if wanted is None:
        wanted = os.cpu_count() or 1
    return max(1, min(wanted, organizations))


def _seed_organization(code: str, whens: list[dt.datetime], seed: int) -> Counter[str]:
    """One organization's tickets, in a process of its own."""
    assert _WORK is not None
    org = next(o for o in _WORK.orgs if o.code == code)
    rnd = random.Random(f"{seed}-{code}")
    return _seed_tickets(_WORK, rnd, [(when, org) for when in whens], lambda _: None)


def _seed_tickets(
    work: _Work,
    rnd: random.Random,
    stream: list[tuple[dt.datetime, Organization]],
    progress: Callable[[str], None],
) -> Counter[str]:
    """Open and live out the tickets of ``stream``, 100 per transaction. A transaction that
    loses a deadlock to a parallel seeding process is replayed from the same random state."""
    slugs = list(SCENARIOS)
    weights = [SCENARIOS[s][0] for s in slugs]
    counts = Counter[str]({k: 0 for k in OUTCOMES})
    batch = 100
    for offset in range(0, len(stream), batch):
        for attempt in range(5):
            state = rnd.getstate()
            part = Counter[str]()
            try:
                with transaction.atomic():
                    for when, org in stream[offset : offset + batch]:
                        instant = _business_instant(rnd, when.date(), org.time_zone)
                        if instant > work.now - dt.timedelta(minutes=30):
                            instant = work.now - dt.timedelta(minutes=rnd.randrange(30, 600))
                        slug = rnd.choices(slugs, weights=weights)[0]
                        outcome = _lifecycle(
                            rnd,
                            org,
                            instant,
                            work.now,
                            work.categories[slug],
                            SCENARIOS[slug],
                            work.requesters[org.code],
                            work.agents_by_tier,
                            work.tiers,
                            work.managers,
                        )
                        part.update(["tickets", *outcome])
                break
            except OperationalError:
                if attempt == 4 or connection.vendor != "postgresql":
                    raise
                rnd.setstate(state)  # replay the same tickets
        counts.update(part)
        progress(f"  {min(offset + batch, len(stream))}/{len(stream)} tickets")
    return counts


def _lifecycle(
    rnd: random.Random,
    org: Organization,
    t0: dt.datetime,
    now: dt.datetime,
    category: Category,
    scenario: tuple[int, list[str], float, float],
    people: list[User],
    agents: dict[tuple[str, str], list[User]],
    tiers: dict[str, Tier],
    managers: list[User],
) -> list[str]:
    """Play one ticket's life from ``t0``, stopping at ``now``. Returns outcome tags."""
    _, subjects, l1_share, l3_share = scenario
    outcome: list[str] = []
    requester = rnd.choice(people)
    source = rnd.choices(
        [Source.PORTAL, Source.EMAIL, Source.PHONE, Source.API, Source.MONITORING, Source.CHAT],
        weights=[40, 30, 15, 5, 7, 3],
    )[0]
    creator = requester if source in (Source.PORTAL, Source.CHAT) else managers[0]
    t = t0

    def at(minutes: float) -> bool:
        nonlocal t
        t = t + dt.timedelta(minutes=minutes)
        return t < now

    with clock.frozen_at(t):
        ticket: Ticket = ts.ticket_create(
            actor=creator,
            organization=org,
            subject=rnd.choice(subjects),
            description=f"Reported via {source}. {rnd.choice(TRIED)}",
            source=source,
            requester=requester,
            category=category,
            urgency=rnd.choices([1, 2, 3], weights=[1, 4, 3])[0],
        )

    def step(minutes: float, action: Callable[[], object]) -> bool:
        if not at(minutes):
            return False
        with clock.frozen_at(t):
            action()
        return True

    tier = ticket.tier.code
    pool = agents.get((tier, org.code)) or agents[("L1", org.code)]
    agent = rnd.choice(pool)
    if not step(
        rnd.uniform(3, 90), lambda: ts.ticket_update(actor=agent, ticket=ticket, assignee=agent)
    ):
        outcome.append("open")
        return outcome
    if not step(
        rnd.uniform(1, 30),
        lambda: ts.ticket_transition(actor=agent, ticket=ticket, to_status=Status.IN_PROGRESS),
    ):
        outcome.append("open")
        return outcome
    if not step(
        rnd.uniform(1, 20),
        lambda: ts.ticket_comment(
            actor=agent,
            ticket=ticket,
            body=f"Hi {requester.full_name.split()[0]}, I'm looking into this now.",
        ),
    ):
        outcome.append("open")
        return outcome
    if rnd.random() < 0.2:
        if not step(
            rnd.uniform(10, 120),
            lambda: ts.ticket_transition(
                actor=agent, ticket=ticket, to_status=Status.PENDING_CUSTOMER
            ),
        ):
            outcome.append("open")
            return outcome
        if not step(
            rnd.uniform(30, 2 * 1440),
            lambda: ts.ticket_comment(
                actor=requester, ticket=ticket, body="Here are the details you asked for."
            ),
        ):
            outcome.append("open")
            return outcome

    resolved_by_l1 = tier == "L1" and rnd.random() < l1_share
    levels = ["L2", "L3"] if rnd.random() < l3_share else ["L2"]
    if tier != "L1" and "L2" in levels:
        levels = levels[1:] if len(levels) > 1 else []
    if not resolved_by_l1:
        for target in levels:
            nxt = agents.get((target, org.code))
            if not nxt:
                break
            new_agent = rnd.choice(nxt)
            handoff = rnd.choice(TRIED)

            def escalate(
                target: str = target,
                new_agent: User = new_agent,
                handoff: str = handoff,
                by: User = agent,
            ) -> None:
                if ticket.tier.level >= tiers[target].level:
                    return  # a rule moved it there already (P1 straight to L2)
                escalation.escalate(
                    actor=by,
                    ticket=ticket,
                    to_tier=tiers[target],
                    reason=f"needs {target} access and skills",
                    handoff_note=handoff,
                    assignee=new_agent,
                )

            if not step(rnd.uniform(20, 600), escalate):
                outcome.append("open")
                return outcome
            outcome.append(f"escalated_{target.lower()}")
            agent = new_agent
    work = rnd.uniform(15, 240) * (1 + 3 * len([o for o in outcome if "escalated" in o]))
    if not step(
        work,
        lambda: ts.ticket_transition(
            actor=agent,
            ticket=ticket,
            to_status=Status.RESOLVED,
            resolution_code=rnd.choices(["fixed", "workaround", "answered"], [6, 2, 2])[0],
            resolution_note="Fixed and confirmed with the requester.",
        ),
    ):
        outcome.append("open")
        return outcome
    if rnd.random() < 0.05:
        if not step(
            rnd.uniform(60, 2880),
            lambda: ts.ticket_transition(actor=requester, ticket=ticket, to_status=Status.OPEN),
        ):
            return outcome
        outcome.append("reopened")
        if not step(
            rnd.uniform(30, 600),
            lambda: ts.ticket_transition(
                actor=agent,
                ticket=ticket,
                to_status=Status.RESOLVED,
                resolution_code="fixed",
                resolution_note="Root cause fixed this time; monitored for a day.",
            ),
        ):
            outcome.append("open")
            return outcome
    step(
        3 * 1440, lambda: ts.ticket_transition(actor=agent, ticket=ticket, to_status=Status.CLOSED)
    )
    return outcome
