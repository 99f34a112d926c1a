"""The OpenAPI document as browsers and tools read it: valid JSON without a key twice in
any object (Swagger UI reads it with a YAML parser, which refuses a duplicated key and
then shows nothing: a response keyed "200" beside ninja's int 200 did that twice)."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client


def test_no_object_of_the_document_has_a_key_twice(db: None) -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    repeated: list[tuple[str, list[str]]] = []

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            repeated.append((", ".join(twice), keys[:10]))
        return dict(pairs)

    json.loads(response.content, object_pairs_hook=check)
    assert repeated == []
