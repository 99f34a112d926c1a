"""The REST API under /api/v1: one NinjaAPI, token auth, problem details for errors."""

from typing import Any

from ninja import NinjaAPI
from ninja.renderers import JSONRenderer

from tierdesk.api import automation as automation_api
from tierdesk.api import (
    escalation,
    kb,
    notifications,
    people,
    problems,
    reports,
    routing,
    sla,
    tickets,
    webhooks,
)
from tierdesk.api import mail as mail_api
from tierdesk.api.common import ApiJSONEncoder, TokenAuth


class _Renderer(JSONRenderer):
    encoder_class = ApiJSONEncoder


class TierdeskAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        return problems.document(super().get_openapi_schema(*args, **kwargs))


api = TierdeskAPI(
    title="tierdesk API",
    version="1",
    description=(
        "The tierdesk REST API. Authenticate with 'Authorization: Bearer <token>'. Errors are "
        "RFC 9457 problem details. See docs/api.md."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    renderer=_Renderer(),
)
problems.install(api)
api.add_router("", people.router)
api.add_router("", tickets.router)
api.add_router("", routing.router)
api.add_router("", escalation.router)
api.add_router("", sla.router)
api.add_router("", sla.policy_router)
api.add_router("", kb.router)
api.add_router("", reports.router)
api.add_router("", notifications.router)
api.add_router("", webhooks.router)
api.add_router("", mail_api.router)
api.add_router("", automation_api.router)
