"""Resolving through the API with ``solved_with``: the articles that solved the ticket are
recorded with the ticket's tier, in the resolve's transaction; an article the caller may
not read is refused like a missing one, and nothing is changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.core.models import User
from tierdesk.kb import services as kb_services
from tierdesk.kb.models import Article, ArticleUse, Audience
from tierdesk.tickets.models import Status, Ticket
from tierdesk.tiers.services import tier_by_code

pytestmark = pytest.mark.django_db


def _article(cast: Cast, slug: str, audience: str, **kw: object) -> Article:
    return kb_services.article_create(
        actor=None,
        owner=cast.admin,
        title=slug.replace("-", " ").capitalize(),
        slug=slug,
        body="Steps.",
        audience=audience,
        status="published",
        **kw,  # type: ignore[arg-type]
    )


def _resolve(api: Api, ticket: Ticket, **extra: object) -> Any:
    version = Ticket.objects.get(pk=ticket.pk).version
    body = {"status": "resolved", "resolution_code": "fixed", "resolution_note": "ok", **extra}
    return api.post(f"/tickets/{ticket.key}/status", body, headers={"If-Match": f'"v{version}"'})


def test_resolving_records_the_articles_that_solved_it(
    cast: Cast, api_as: Callable[[User | None], Api]
) -> None:
    public = _article(cast, "vpn-drops", Audience.PUBLIC)
    runbook = _article(cast, "vpn-runbook", Audience.INTERNAL)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops")
    r = _resolve(api_as(cast.lena), ticket, solved_with=["vpn-drops", str(runbook.pk), "VPN-DROPS"])
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "resolved"
    uses = ArticleUse.objects.filter(ticket=ticket, kind="solved").select_related("tier")
    assert {(u.article_id, u.tier.code) for u in uses} == {  # type: ignore[union-attr]
        (public.pk, "L1"),
        (runbook.pk, "L1"),
    }


def test_an_article_the_caller_may_not_read_refuses_the_whole_change(
    cast: Cast, api_as: Callable[[User | None], Api]
) -> None:
    _article(cast, "vpn-drops", Audience.PUBLIC)
    _article(cast, "vpn-firmware", Audience.TIER, min_tier=tier_by_code("L3"))
    _article(cast, "globex-vpn", Audience.ORGANIZATION, organization=cast.globex)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops")
    lena = api_as(cast.lena)  # L1, serves ACME: neither the L3 article nor GLOBEX's
    for hidden in ("vpn-firmware", "globex-vpn", "no-such-article"):
        r = _resolve(lena, ticket, solved_with=["vpn-drops", hidden])
        assert r.status_code == 422, r.content
        assert problem_fields(r) == ["solved_with"]
        assert r.json()["detail"] == f"solved_with: no article {hidden!r}"
    assert Ticket.objects.get(pk=ticket.pk).status != Status.RESOLVED
    assert not ArticleUse.objects.exists()
    # only when resolving, and at most twenty
    r = lena.post(
        f"/tickets/{ticket.key}/status",
        {"status": "in_progress", "solved_with": ["vpn-drops"]},
        headers={"If-Match": f'"v{Ticket.objects.get(pk=ticket.pk).version}"'},
    )
    assert r.status_code == 422
    assert problem_fields(r) == ["solved_with"]
    assert _resolve(lena, ticket, solved_with=["vpn-drops"] * 21).status_code == 422
    assert not ArticleUse.objects.exists()
