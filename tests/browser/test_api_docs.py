"""The API's interactive docs render in a real browser from tierdesk's own files: no CDN,
no request leaves the machine (issue #4)."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Server


def test_the_api_docs_render_without_leaving_the_server(page: Any, server: Server) -> None:
    response = page.goto("/api/v1/docs")
    assert response is not None
    assert response.status == 200
    # Swagger UI has read the schema and lists the operations.
    page.get_by_text("/api/v1/tickets", exact=True).first.wait_for(timeout=15_000)
    assert page.locator(".opblock").count() > 20
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    assert any(u.endswith("/api/v1/openapi.json") for u in page.requested)
    assert page.problems == []
