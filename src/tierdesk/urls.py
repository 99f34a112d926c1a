from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, include, path

from tierdesk.api.main import api


def healthz(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("", include("tierdesk.web.urls")),
]
if "tierdesk.benchprobe" in settings.INSTALLED_APPS:
    urlpatterns.append(path("bench/", include("tierdesk.benchprobe.urls")))
