from django.urls import URLPattern, URLResolver, include, path

from tierdesk.web.views import (
    account,
    auth,
    console,
    console_automation,
    kb,
    portal,
    portal_kb,
    reports,
    selfservice,
)
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
    path("account/notifications", account.notifications, name="notifications"),
    path("console/", console.home, name="console"),
    path("console/queue/<slug:queue>", console.queue, name="queue"),
    path("console/queue/<slug:queue>/bulk", console.bulk, name="queue-bulk"),
    path("console/views", console.save_view, name="view-save"),
    path("console/views/<int:view_id>/delete", console.delete_view, name="view-delete"),
    path("console/tickets/<str:ref>", console.ticket, name="ticket"),
    # before the actions: "kb" would read as one (ticket knowledge base)
    path("console/tickets/<str:ref>/kb", console.ticket_kb, name="ticket-kb"),
    path(
        "console/tickets/<str:ref>/kb/<int:article_id>",
        console.ticket_kb_article,
        name="ticket-kb-article",
    ),
    path(
        "console/tickets/<str:ref>/automation",
        console_automation.run,
        name="ticket-automation",
    ),
    path(
        "console/tickets/<str:ref>/automation/<int:run_id>/<slug:decision>",
        console_automation.decide,
        name="ticket-automation-decide",
    ),
    path("console/tickets/<str:ref>/<slug:action>", console.act, name="ticket-action"),
    path("console/config/", include(config_urls.urlpatterns)),
    path("console/reports/", reports.dashboard, name="reports"),
    path("console/reports/tickets", reports.report_tickets, name="report-tickets"),
    path("console/reports/monthly", reports.monthly_report, name="report-monthly"),
    # console knowledge base: "new" and "preview" before an article's slug
    path("console/kb/", kb.article_list, name="kb"),
    path("console/kb/new", kb.article_new, name="kb-new"),
    path("console/kb/preview", kb.preview, name="kb-preview"),
    path("console/kb/<slug:slug>", kb.article, name="kb-article"),
    path("console/kb/<slug:slug>/edit", kb.article_edit, name="kb-edit"),
    path("console/kb/<slug:slug>/status", kb.change_status, name="kb-status"),
    path("console/kb/<slug:slug>/vote", kb.vote, name="kb-vote"),
    path("console/kb/<slug:slug>/flag", kb.flag, name="kb-flag"),
    path(
        "console/kb/<slug:slug>/flags/<int:flag_id>/resolve",
        kb.flag_resolve,
        name="kb-flag-resolve",
    ),
    path("console/kb/<slug:slug>/versions", kb.versions, name="kb-versions"),
    path("console/kb/<slug:slug>/diff", kb.diff, name="kb-diff"),
    path("console/kb/<slug:slug>/images", kb.images, name="kb-images"),
    path(
        "console/kb/<slug:slug>/images/<str:name>/remove", kb.image_remove, name="kb-image-remove"
    ),
    path("self-service", selfservice.start, name="self-service"),
    path("self-service/code", selfservice.code, name="self-service-code"),
    path("portal/", portal.home, name="portal"),
    path("portal/new", portal.new_ticket, name="portal-new"),
    path("portal/tickets/<str:ref>", portal.ticket, name="portal-ticket"),
    path("portal/tickets/<str:ref>/reply", portal.reply, name="portal-reply"),
    path("portal/tickets/<str:ref>/reopen", portal.reopen, name="portal-reopen"),
    path("portal/tickets/<str:ref>/rate", portal.rate, name="portal-rate"),
    path("portal/kb/", portal_kb.index, name="portal-kb"),
    path("portal/kb/suggest", portal_kb.suggest, name="portal-kb-suggest"),
    path("portal/kb/<slug:slug>", portal_kb.article, name="portal-kb-article"),
    path("portal/kb/<slug:slug>/vote", portal_kb.vote, name="portal-kb-vote"),
    path("portal/kb/<slug:slug>/solved", portal_kb.solved, name="portal-kb-solved"),
]
