"""The ticket page's account actions: an L1 agent runs a runbook for the ticket's
requester against the real directory, sees a generated password once, and an approval
waits for L2 on the ticket."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from tests import ldapserver
from tests.conftest import Cast, make_ticket
from tierdesk.automation.models import ActionRun, Directory
from tierdesk.tickets.models import Comment

OLD = ldapserver.USER_PASSWORD


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_of(page: Any) -> str:
    found = re.search(r'name="token" value="([0-9a-f]{32})"', page.content.decode())
    assert found, "no account actions on the page"
    return found.group(1)


def test_an_agent_resets_the_requesters_password_from_the_ticket(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    lena = signed_in(cast.lena)
    page = lena.get(f"/console/tickets/{ticket.key}")
    text = page.content.decode()
    assert "Account actions" in text
    assert "Reset a password" in text
    assert "Create a user" not in text  # managers' and admins' only
    token = token_of(page)
    done = lena.post(
        f"/console/tickets/{ticket.key}/automation",
        {"runbook": "reset-password", "token": token, "must_change": "on"},
    )
    assert done.status_code == 200, done.content.decode()
    assert "no-store" in done["Cache-Control"]
    shown = re.search(r'id="automation-password"[^>]*>([^<]+)<', done.content.decode())
    assert shown
    password = shown.group(1).replace("&amp;", "&")
    assert slapd.bind_works(slapd.dn("alice"), password)
    note = Comment.objects.get(ticket=ticket, is_internal=True)
    assert note.body.startswith("Automation: Reset a password for alice@acme.example: done.")
    assert password not in note.body
    # the same form sent again acts once, and shows no password
    again = lena.post(
        f"/console/tickets/{ticket.key}/automation",
        {"runbook": "reset-password", "token": token, "must_change": "on"},
    )
    assert again.status_code == 200
    assert 'id="automation-password"' not in again.content.decode()
    assert slapd.bind_works(slapd.dn("alice"), password)
    assert ActionRun.objects.count() == 1
    # a page that is reloaded does not show it again
    assert password not in lena.get(f"/console/tickets/{ticket.key}").content.decode()
    # a form without its page's token is refused
    stale = lena.post(f"/console/tickets/{ticket.key}/automation", {"runbook": "unlock-account"})
    assert stale.status_code == 422
    assert "old page" in stale.content.decode()


def test_an_action_that_needs_approval_waits_on_the_ticket_for_l2(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    lena = signed_in(cast.lena)
    asked = lena.post(
        f"/console/tickets/{ticket.key}/automation",
        {
            "runbook": "disable-account",
            "token": token_of(lena.get(f"/console/tickets/{ticket.key}")),
        },
    )
    assert asked.status_code == 200
    assert "awaiting approval" in asked.content.decode()
    assert "Approve" not in asked.content.decode()  # not for L1, not for who asked
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    run = ActionRun.objects.get()
    omar = signed_in(cast.omar)
    page = omar.get(f"/console/tickets/{ticket.key}")
    assert f"/automation/{run.pk}/approve" in page.content.decode()
    approved = omar.post(f"/console/tickets/{ticket.key}/automation/{run.pk}/approve")
    assert approved.status_code == 200, approved.content.decode()
    assert "succeeded" in approved.content.decode()
    assert not slapd.bind_works(slapd.dn("alice"), OLD)
    notes = [c.body for c in Comment.objects.filter(ticket=ticket, is_internal=True)]
    assert any("waits for an approval" in n for n in notes)
    assert any("Disable an account for alice@acme.example: done." in n for n in notes)
    # deciding twice is refused with a message
    twice = omar.post(f"/console/tickets/{ticket.key}/automation/{run.pk}/reject")
    assert twice.status_code == 409


def test_other_tenants_and_organizations_without_a_directory_see_no_actions(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    acme_ticket = make_ticket(cast.alice, cast.acme)
    gus = signed_in(cast.gus)
    posted = gus.post(
        f"/console/tickets/{acme_ticket.key}/automation",
        {"runbook": "reset-password", "token": "0" * 32},
    )
    assert posted.status_code == 404
    globex_ticket = make_ticket(cast.gerd, cast.globex)
    page = gus.get(f"/console/tickets/{globex_ticket.key}")
    assert "Account actions" not in page.content.decode()
    refused = gus.post(
        f"/console/tickets/{globex_ticket.key}/automation",
        {"runbook": "reset-password", "token": "0" * 32},
    )
    assert refused.status_code == 404
    assert not ActionRun.objects.exists()
    assert slapd.bind_works(slapd.dn("alice"), OLD)
