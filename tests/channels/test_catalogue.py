"""The event catalogue names exactly the events tierdesk emits: read from the source, every
``emit``/``event(`` call's name and every audited change that is also announced
(``record_and_emit``)."""

from __future__ import annotations

import ast
from pathlib import Path

from tierdesk.channels import catalogue
from tierdesk.core.audit import AuditAction

SOURCE = Path(catalogue.__file__).resolve().parents[1]
# Functions whose first argument is an event's name.
EMITTERS = {"emit", "event", "new_event", "_event", "_event_of"}


def _names_assigned(function: ast.AST, variable: str) -> set[str]:
    found = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets)
        ):
            found.add(str(node.value.value))
    return found


def _strings(node: ast.AST, function: ast.AST | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body, function) | _strings(node.orelse, function)
    if isinstance(node, ast.Name) and function is not None:
        return _names_assigned(function, node.id)  # parameters give none: their callers do
    return set()


def emitted() -> set[str]:
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for function in functions:
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                func = call.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called in EMITTERS and call.args:
                    names |= _strings(call.args[0], function)
                if called == "record_and_emit" or called == "_announce":
                    for arg in [*call.args, *(k.value for k in call.keywords)]:
                        if (
                            isinstance(arg, ast.Attribute)
                            and isinstance(arg.value, ast.Name)
                            and arg.value.id == "AuditAction"
                        ):
                            names.add(AuditAction[arg.attr].value)
    return {n for n in names if "." in n and " " not in n}


def test_the_catalogue_is_what_the_code_emits() -> None:
    found = emitted()
    assert len(found) > 30
    assert found - set(catalogue.EVENTS) == set(), "emitted but not in the catalogue"
    assert set(catalogue.EVENTS) - found == set(), "in the catalogue but emitted nowhere"


def test_groups_and_wildcards_match() -> None:
    assert catalogue.matches(["*"], "sla.breached")
    assert catalogue.matches(["ticket.*"], "ticket.created")
    assert not catalogue.matches(["ticket.*"], "tickets.created")
    assert not catalogue.matches(["ticket.*"], "sla.breached")
    assert catalogue.matches(["sla.breached", "ticket.created"], "ticket.created")
    assert not catalogue.matches(["ticket.created"], "ticket.created_twice")


def test_what_an_organizations_webhook_may_ask_for() -> None:
    assert catalogue.problem_with("ticket.*", organization=True) is None
    assert catalogue.problem_with("*", organization=True) is None
    assert "ticket events only" in (catalogue.problem_with("sla.*", organization=True) or "")
    assert catalogue.problem_with("sla.*", organization=False) is None
    assert "no event group" in (catalogue.problem_with("nope.*", organization=False) or "")
    assert "no event" in (catalogue.problem_with("ticket.exploded", organization=False) or "")
    assert all(k.organizations == k.name.startswith("ticket.") for k in catalogue.kinds())
