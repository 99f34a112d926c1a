"""A category's own questions: what a requester must (or may) say when opening a ticket of
that category, beyond subject and description — "Which printer?", "Since when?", "Cost
centre". Defined on the category (``Category.form_fields``), answered on the ticket
(``Ticket.details``), checked here for the portal, the console and the API alike.

A definition is a list of questions, each ``{"key", "label", "type", "required",
"choices", "help"}``; an answer set maps a question's key to text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from tierdesk.core.errors import FieldIssue, ValidationFailed

TYPES = ("text", "textarea", "choice", "date", "number")
MAX_QUESTIONS = 20
MAX_CHOICES = 50
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$", re.ASCII)
# The longest answer per type (text kinds); a number or a date is short by nature.
ANSWER_MAX = {"text": 200, "textarea": 4000, "choice": 100, "date": 10, "number": 20}


def _label(value: Any, what: str, max_length: int) -> str:
    text = " ".join(str(value or "").split())
    if not 1 <= len(text) <= max_length or not text.isprintable():
        raise ValueError(f"{what}: 1 to {max_length} printable characters")
    return text


def check_definitions(raw: Any) -> list[dict[str, Any]]:
    """The questions in their stored shape, or ValidationFailed on ``form_fields`` saying
    which question is wrong and why."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationFailed.for_field("form_fields", "a list of questions")
    if len(raw) > MAX_QUESTIONS:
        raise ValidationFailed.for_field("form_fields", f"at most {MAX_QUESTIONS} questions")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, item in enumerate(raw, start=1):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("a question with a key, a label and a type")
            unknown = set(item) - {"key", "label", "type", "required", "choices", "help"}
            if unknown:
                raise ValueError(f"unknown attributes {', '.join(sorted(map(str, unknown)))}")
            key = str(item.get("key") or "")
            if not KEY.match(key):
                raise ValueError(
                    "key: a lower-case letter, then up to 39 letters, digits or underscores"
                )
            if key in seen:
                raise ValueError(f"key {key} is used twice")
            seen.add(key)
            kind = item.get("type") or "text"
            if kind not in TYPES:
                raise ValueError(f"type: one of {', '.join(TYPES)}")
            required = item.get("required", False)
            if not isinstance(required, bool):
                raise ValueError("required: true or false")
            choices: list[str] = []
            if kind == "choice":
                given = item.get("choices")
                if not isinstance(given, list) or not given:
                    raise ValueError("a choice question needs its choices")
                if len(given) > MAX_CHOICES:
                    raise ValueError(f"at most {MAX_CHOICES} choices")
                choices = [_label(c, "each choice", ANSWER_MAX["choice"]) for c in given]
                if len(set(choices)) != len(choices):
                    raise ValueError("a choice is listed twice")
            elif item.get("choices"):
                raise ValueError("only a choice question has choices")
            help_text = " ".join(str(item.get("help") or "").split())
            if len(help_text) > 300:
                raise ValueError("help: at most 300 characters")
            out.append(
                {
                    "key": key,
                    "label": _label(item.get("label"), "label", 100),
                    "type": kind,
                    "required": required,
                    "choices": choices,
                    "help": help_text,
                }
            )
        except ValueError as exc:
            raise ValidationFailed.for_field("form_fields", f"question {n}: {exc}") from None
    return out


def check_answers(definitions: list[dict[str, Any]], answers: Mapping[str, Any]) -> dict[str, str]:
    """The answers in their stored shape (every question answered is text; empty optional
    ones are left out), or ValidationFailed naming each wrong answer as ``details.<key>``."""
    by_key = {q["key"]: q for q in definitions}
    issues = [
        FieldIssue(f"details.{k}", "this category has no such question")
        for k in answers
        if k not in by_key
    ]
    out: dict[str, str] = {}
    for key, question in by_key.items():
        value = answers.get(key)
        text = "" if value is None else str(value).strip()
        if question["type"] != "textarea":
            text = " ".join(text.split())
        message = _answer_issue(question, text)
        if message:
            issues.append(FieldIssue(f"details.{key}", message))
        elif text:
            out[key] = text
    if issues:
        raise ValidationFailed("; ".join(f"{i.field}: {i.message}" for i in issues), errors=issues)
    return out


def _answer_issue(question: dict[str, Any], text: str) -> str | None:
    kind = question["type"]
    if not text:
        return "this answer is required" if question["required"] else None
    if len(text) > ANSWER_MAX[kind]:
        return f"at most {ANSWER_MAX[kind]} characters"
    if not text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable():
        return "printable characters only"
    if kind == "choice" and text not in question["choices"]:
        return f"one of: {', '.join(question['choices'])}"
    if kind == "date":
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return "a date as YYYY-MM-DD"
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return "a date as YYYY-MM-DD"
    if kind == "number" and not re.fullmatch(r"-?\d{1,15}", text):
        return "a whole number"
    return None


def labelled(
    definitions: list[dict[str, Any]], answers: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The answers with their questions' labels, in the questions' order; an answer to a
    question the category no longer asks keeps its key as label."""
    order = {q["key"]: (n, q["label"]) for n, q in enumerate(definitions)}
    keys = sorted(answers, key=lambda k: (order.get(k, (len(order), k))[0], k))
    return [(order[k][1] if k in order else k, answers[k]) for k in keys]
