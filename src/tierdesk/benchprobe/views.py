"""``POST /bench/bare-insert``: parse a small JSON body, insert one row, answer 201 JSON.

No auth, no policy, no audit or event: what is left is the cost of the web server, Django,
django-ninja and one INSERT, the practical ceiling a ticket create is measured against.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from django.http import HttpRequest
from ninja import NinjaAPI, Schema
from pydantic import StringConstraints

from tierdesk.benchprobe.models import BareRow

api = NinjaAPI(
    title="tierdesk bench probe",
    version="1",
    urls_namespace="bench",
    docs_url=None,
    openapi_url=None,
)


class BareIn(Schema):
    label: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "bench"


class BareOut(Schema):
    id: int
    label: str
    created_at: dt.datetime


@api.post("/bare-insert", response={201: BareOut}, auth=None)
def bare_insert(request: HttpRequest, payload: BareIn) -> tuple[int, BareRow]:
    row = BareRow.objects.create(label=payload.label, created_at=dt.datetime.now(dt.UTC))
    return 201, row
