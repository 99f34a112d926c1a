from django.urls import URLPattern, path

from tierdesk.web.views import auth, console

app_name = "web"

urlpatterns: list[URLPattern] = [
    path("", auth.home, name="home"),
    path("login", auth.SignIn.as_view(), name="login"),
    path("logout", auth.SignOut.as_view(), name="logout"),
    path("console/", console.home, name="console"),
    path("console/queue/<slug:queue>", console.queue, name="queue"),
    path("console/tickets/<str:ref>", console.ticket, name="ticket"),
    path("console/tickets/<str:ref>/<slug:action>", console.act, name="ticket-action"),
]
