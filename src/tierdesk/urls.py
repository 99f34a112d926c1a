from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, include, path

from tierdesk.api.main import api


def healthz(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape (reports.metrics), for the bearer of TIERDESK_METRICS_TOKEN.
    Off (404) without a token configured; any other caller gets 401."""
    import hmac

    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    from tierdesk.reports.metrics import registry

    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponse(status=404)
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    # Bytes: compare_digest refuses text that is not ASCII (a stray header must not be a 500).
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        sent.strip().encode(), expected.encode()
    ):
        answer = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        answer["WWW-Authenticate"] = 'Bearer realm="tierdesk metrics"'
        return answer
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", api.urls),
    path("", include("tierdesk.web.urls")),
]
if "tierdesk.benchprobe" in settings.INSTALLED_APPS:
    urlpatterns.append(path("bench/", include("tierdesk.benchprobe.urls")))
