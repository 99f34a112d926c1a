from django.urls import URLPattern, URLResolver, path

from tierdesk.benchprobe.views import api

urlpatterns: list[URLPattern | URLResolver] = [path("", api.urls)]
