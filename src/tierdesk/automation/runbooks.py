"""Runbooks: small declarative descriptions of an action (its parameters, its steps, who
may run it, whether it waits for an approval), read from YAML files.

The built-in ones live beside this module (``runbooks/*.yaml``); an installation adds
its own in ``TIERDESK_RUNBOOKS_DIR``. Each file is checked whole when it is loaded: a
runbook with an unknown step, a parameter it does not declare or a role that does not
exist is refused with the file and the reason, and none of that file is used.

The steps a runbook may use are the engine's (``automation.engine.STEPS``); the checks
that keep an action safe (the account is found exactly once, lies in an allowed OU, is
not in a protected group, belongs to the organization's own directory) are not steps:
the engine makes them before every run, whatever the runbook says.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from tierdesk.core.models import Role

BUILT_IN = Path(__file__).with_name("runbooks")
NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
PARAMETER_TYPES = ("text", "email", "password", "boolean", "group")
MAX_FILE_BYTES = 64 * 1024


class RunbookError(Exception):
    """A runbook file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool
    default: Any
    help: str


@dataclass(frozen=True)
class Step:
    name: str
    arguments: dict[str, Any]  # a value "$name" is the run's parameter of that name


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    description: str
    roles: frozenset[str]
    self_service: bool
    needs_approval: bool
    creates_account: bool
    parameters: tuple[Parameter, ...]
    steps: tuple[Step, ...]
    source: str

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


def _fail(source: str, message: str) -> RunbookError:
    return RunbookError(f"{source}: {message}")


def _parameter(source: str, raw: Any) -> Parameter:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise _fail(source, "each parameter is a mapping with a name")
    name = raw["name"]
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        raise _fail(source, f"parameter {name!r}: lower-case letters, digits and _")
    unknown = set(raw) - {"name", "type", "required", "default", "help"}
    if unknown:
        raise _fail(source, f"parameter {name}: unknown key(s) {', '.join(sorted(unknown))}")
    kind = raw.get("type", "text")
    if kind not in PARAMETER_TYPES:
        raise _fail(source, f"parameter {name}: type is one of {', '.join(PARAMETER_TYPES)}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise _fail(source, f"parameter {name}: required is true or false")
    default = raw.get("default")
    if kind == "boolean" and default is not None and not isinstance(default, bool):
        raise _fail(source, f"parameter {name}: a boolean's default is true or false")
    if kind == "password" and default is not None:
        raise _fail(source, f"parameter {name}: a password has no default")
    return Parameter(name, kind, required, default, str(raw.get("help", "")))


def parse(text: str, source: str) -> Runbook:
    """The runbook in ``text`` (YAML), checked; ``RunbookError`` naming ``source``."""
    from tierdesk.automation.engine import STEPS

    if len(text.encode()) > MAX_FILE_BYTES:
        raise _fail(source, f"larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(source, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise _fail(source, "a runbook is a YAML mapping")
    known = {
        "name", "title", "description", "roles", "self_service", "needs_approval",
        "creates_account", "parameters", "steps",
    }  # fmt: skip
    unknown = set(raw) - known
    if unknown:
        raise _fail(source, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _fail(source, "name: lower-case letters, digits and -, 2 to 63 of them")
    title = raw.get("title")
    if not isinstance(title, str) or not 0 < len(title) <= 200:
        raise _fail(source, "title: 1 to 200 characters")
    roles = raw.get("roles", [])
    staff = {Role.AGENT.value, Role.MANAGER.value, Role.ADMIN.value}
    if not isinstance(roles, list) or not all(r in staff for r in roles):
        raise _fail(source, f"roles: a list of {', '.join(sorted(staff))}")
    flags = {}
    for flag in ("self_service", "needs_approval", "creates_account"):
        value = raw.get(flag, False)
        if not isinstance(value, bool):
            raise _fail(source, f"{flag}: true or false")
        flags[flag] = value
    raw_parameters = raw.get("parameters") or []
    if not isinstance(raw_parameters, list):
        raise _fail(source, "parameters: a list")
    parameters = tuple(_parameter(source, p) for p in raw_parameters)
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise _fail(source, "a parameter is declared twice")
    if flags["self_service"] and (flags["creates_account"] or flags["needs_approval"]):
        raise _fail(source, "a self-service runbook acts on the person's own account, at once")
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _fail(source, "steps: a list of at least one step")
    steps = []
    for position, item in enumerate(raw_steps, 1):
        arguments: Any
        if isinstance(item, str):
            step_name, arguments = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            step_name, arguments = next(iter(item.items()))
            arguments = arguments or {}
        else:
            raise _fail(source, f"step {position}: a step's name, or name: {{arguments}}")
        definition = STEPS.get(step_name)
        if definition is None:
            raise _fail(
                source, f"step {position}: unknown step {step_name!r} (one of {', '.join(STEPS)})"
            )
        if not isinstance(arguments, dict):
            raise _fail(source, f"step {position} ({step_name}): arguments are a mapping")
        extra = set(arguments) - set(definition.arguments)
        if extra:
            raise _fail(
                source,
                f"step {position} ({step_name}): unknown argument(s) {', '.join(sorted(extra))}",
            )
        for argument, value in arguments.items():
            if isinstance(value, str) and value.startswith("$") and value[1:] not in names:
                raise _fail(
                    source,
                    f"step {position} ({step_name}): {argument} refers to {value}, "
                    "which is not a parameter",
                )
        if step_name == "create_account" and (position != 1 or not flags["creates_account"]):
            raise _fail(
                source, "create_account is the first step, of a runbook with creates_account"
            )
        steps.append(Step(step_name, dict(arguments)))
    if flags["creates_account"] and steps[0].name != "create_account":
        raise _fail(source, "a runbook with creates_account starts with create_account")
    return Runbook(
        name=name,
        title=title,
        description=str(raw.get("description", "")),
        roles=frozenset(roles),
        self_service=flags["self_service"],
        needs_approval=flags["needs_approval"],
        creates_account=flags["creates_account"],
        parameters=parameters,
        steps=tuple(steps),
        source=source,
    )


def _files() -> list[Path]:
    found = sorted(BUILT_IN.glob("*.yaml"))
    extra = getattr(settings, "RUNBOOKS_DIR", "")
    if extra:
        directory = Path(extra)
        if not directory.is_dir():
            raise RunbookError(f"{directory}: TIERDESK_RUNBOOKS_DIR is not a directory")
        found += sorted(directory.glob("*.yaml"))
    return found


@functools.cache
def catalogue() -> dict[str, Runbook]:
    """Every runbook by name: the built-in ones and the installation's. Loaded once per
    process; a broken file stops the loading with its reason (``tierdesk runbook check``
    says it before a restart)."""
    books: dict[str, Runbook] = {}
    for path in _files():
        book = parse(path.read_text(encoding="utf-8"), str(path))
        if book.name in books:
            raise RunbookError(f"{path}: a runbook named {book.name} exists already")
        books[book.name] = book
    return books


def get(name: str) -> Runbook | None:
    return catalogue().get(name)
