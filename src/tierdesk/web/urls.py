from django.urls import URLPattern, URLResolver, include, path

from tierdesk.web.views import account, auth, console, portal
from tierdesk.web.views.config import urls as config_urls

app_name = "web"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", auth.home, name="home"),
    path("login", auth.SignIn.as_view(), name="login"),
    path("logout", auth.SignOut.as_view(), name="logout"),
    path("login/code", auth.sign_in_code, name="login-code"),
    path("password-reset", auth.PasswordReset.as_view(), name="password-reset"),
    path("password-reset/sent", auth.PasswordResetSent.as_view(), name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>",
        auth.PasswordResetConfirm.as_view(),
        name="password-reset-confirm",
    ),
    path("account/two-step", auth.two_step, name="two-step"),
    path("account/", account.profile, name="profile"),
    path("account/password", auth.ChangePassword.as_view(), name="password-change"),
    path("console/", console.home, name="console"),
    path("console/queue/<slug:queue>", console.queue, name="queue"),
    path("console/queue/<slug:queue>/bulk", console.bulk, name="queue-bulk"),
    path("console/views", console.save_view, name="view-save"),
    path("console/views/<int:view_id>/delete", console.delete_view, name="view-delete"),
    path("console/tickets/<str:ref>", console.ticket, name="ticket"),
    path("console/tickets/<str:ref>/<slug:action>", console.act, name="ticket-action"),
    path("console/config/", include(config_urls.urlpatterns)),
    path("portal/", portal.home, name="portal"),
    path("portal/new", portal.new_ticket, name="portal-new"),
    path("portal/tickets/<str:ref>", portal.ticket, name="portal-ticket"),
    path("portal/tickets/<str:ref>/reply", portal.reply, name="portal-reply"),
    path("portal/tickets/<str:ref>/reopen", portal.reopen, name="portal-reopen"),
    path("portal/tickets/<str:ref>/rate", portal.rate, name="portal-rate"),
]
