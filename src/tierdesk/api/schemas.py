"""Request and response schemas shared by the API's routers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field, StringConstraints, field_validator


def _reject_nul(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes in JSON
            raise ValueError("must be valid Unicode text") from None
    if isinstance(value, list):
        for item in value:
            _reject_nul(item)
    return value


class CleanInput(Schema):
    """Base of every query and body schema: text with NUL characters or lone surrogates is
    refused per field (no database stores them faithfully), and unknown fields are an error,
    not silently ignored (a mistyped filter must not quietly return everything)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _reject_nul(value)


class NoQuery(CleanInput):
    """The query of a collection that takes no parameters: any is refused."""


class StrictInput(CleanInput):
    """Base of every request body."""


ShortText = Annotated[str, StringConstraints(max_length=200)]


class PersonRef(Schema):
    id: int
    email: str
    full_name: str


class ProblemField(Schema):
    field: str
    message: str


class Problem(Schema):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[ProblemField] = Field(default_factory=list)


class PageMeta(Schema):
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last page."
    )


def person(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "full_name": user.full_name}


Timestamp = dt.datetime

# Error answers every authenticated operation can give.
ERRORS: dict[int, type[Problem]] = {
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    422: Problem,
}
