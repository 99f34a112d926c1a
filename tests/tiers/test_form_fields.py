"""A category's own questions: definitions checked when a category is saved, answers
checked when a ticket of it is opened (portal, console and API alike)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import ValidationFailed
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.form_fields import check_answers, check_definitions, labelled
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import category_create, category_update, tier_by_code

PRINTER: list[dict[str, Any]] = [
    {"key": "printer", "label": "Which printer?", "type": "choice", "required": True,
     "choices": ["2nd floor", "Reception"]},
    {"key": "since", "label": "Since when?", "type": "date"},
    {"key": "pages", "label": "Pages lost", "type": "number"},
    {"key": "notes", "label": "Anything else", "type": "textarea", "help": "optional"},
]  # fmt: skip


def test_definitions_take_a_stored_shape() -> None:
    got = check_definitions(PRINTER)
    assert [q["key"] for q in got] == ["printer", "since", "pages", "notes"]
    assert got[1] == {
        "key": "since",
        "label": "Since when?",
        "type": "date",
        "required": False,
        "choices": [],
        "help": "",
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("nope", "a list of questions"),
        ([{"key": "Bad Key", "label": "x"}], "question 1: key: a lower-case letter"),
        ([{"key": "a", "label": "x"}, {"key": "a", "label": "y"}], "question 2: key a is used"),
        ([{"key": "a", "label": ""}], "question 1: label: 1 to 100"),
        ([{"key": "a", "label": "x", "type": "html"}], "question 1: type: one of"),
        ([{"key": "a", "label": "x", "type": "choice"}], "needs its choices"),
        ([{"key": "a", "label": "x", "choices": ["y"]}], "only a choice question"),
        ([{"key": "a", "label": "x", "required": "yes"}], "required: true or false"),
        ([{"key": "a", "label": "x", "onclick": "1"}], "unknown attributes onclick"),
        ([{"key": f"k{n}", "label": "x"} for n in range(21)], "at most 20 questions"),
    ],
)
def test_bad_definitions_are_refused_with_the_question_named(bad: Any, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_definitions(bad)
    assert caught.value.errors[0].field == "form_fields"
    assert message in caught.value.errors[0].message


def test_answers_are_checked_per_question() -> None:
    questions = check_definitions(PRINTER)
    assert check_answers(questions, {"printer": "Reception", "pages": " 12 ", "notes": ""}) == {
        "printer": "Reception",
        "pages": "12",
    }
    with pytest.raises(ValidationFailed) as caught:
        check_answers(
            questions, {"printer": "Basement", "since": "31/12/2026", "pages": "many", "x": "1"}
        )
    issues = {i.field: i.message for i in caught.value.errors}
    assert issues == {
        "details.x": "this category has no such question",
        "details.printer": "one of: 2nd floor, Reception",
        "details.since": "a date as YYYY-MM-DD",
        "details.pages": "a whole number",
    }
    with pytest.raises(ValidationFailed) as caught:
        check_answers(questions, {})
    assert [i.field for i in caught.value.errors] == ["details.printer"]


def test_labels_follow_the_questions_and_survive_a_removed_one() -> None:
    questions = check_definitions(PRINTER)
    assert labelled(questions, {"old": "x", "since": "2026-11-02", "printer": "Reception"}) == [
        ("Which printer?", "Reception"),
        ("Since when?", "2026-11-02"),
        ("old", "x"),
    ]


@pytest.mark.django_db
def test_a_ticket_keeps_its_answers_and_a_refusal_writes_nothing(cast: Cast) -> None:
    category = category_create(
        actor=cast.admin,
        slug="printing",
        name="Printing",
        default_tier=tier_by_code("L1"),
        form_fields=PRINTER,
    )
    ticket = make_ticket(cast.alice, cast.acme, category=category, details={"printer": "2nd floor"})
    assert Ticket.objects.get(pk=ticket.pk).details == {"printer": "2nd floor"}
    before = Ticket.objects.count()
    with pytest.raises(ValidationFailed):
        make_ticket(cast.alice, cast.acme, category=category, details={})
    with pytest.raises(ValidationFailed):  # no category: no questions to answer
        make_ticket(cast.alice, cast.acme, details={"printer": "2nd floor"})
    assert Ticket.objects.count() == before
    with pytest.raises(ValidationFailed):
        category_update(actor=cast.admin, category=category, form_fields=[{"key": "?"}])
    category.refresh_from_db()
    assert len(category.form_fields) == 4  # the refused change left it as it was


@pytest.mark.django_db
def test_the_api_takes_and_shows_answers(cast: Cast, api_as: Any) -> None:
    admin = api_as(cast.admin)
    r = admin.post(
        "/categories",
        {"slug": "printing", "name": "Printing", "form_fields": PRINTER[:1]},
    )
    assert r.status_code == 201, r.json()
    assert r.json()["form_fields"][0]["choices"] == ["2nd floor", "Reception"]
    alice = api_as(cast.alice)
    r = alice.post("/tickets", {"subject": "Jam", "category": "printing"})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "details.printer", "message": "this answer is required"}
    ]
    r = alice.post(
        "/tickets",
        {"subject": "Jam", "category": "printing", "details": {"printer": "Reception"}},
    )
    assert r.status_code == 201, r.json()
    assert r.json()["details"] == {"printer": "Reception"}
    assert category_for_organization(cast.acme, "printing") is not None


@pytest.mark.django_db
def test_the_cli_takes_answers_as_key_equals_answer(cast: Cast) -> None:
    from click.testing import CliRunner

    from tierdesk.cli import main

    category_create(
        actor=cast.admin,
        slug="printing",
        name="Printing",
        default_tier=tier_by_code("L1"),
        form_fields=PRINTER[:2],
    )
    base = ["ticket", "create", "--as", "alice@acme.example", "--subject", "Jam"]
    base += ["--category", "printing"]
    runner = CliRunner()
    r = runner.invoke(main, [*base, "--detail", "since=2026-11-02"])
    assert r.exit_code == 1
    assert "details.printer: this answer is required" in r.output
    r = runner.invoke(main, [*base, "--detail", "printer"])
    assert r.exit_code == 1
    assert "--detail 'printer': write it as KEY=ANSWER" in r.output
    r = runner.invoke(main, [*base, "--detail", "printer=Reception", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["details"] == {"printer": "Reception"}
