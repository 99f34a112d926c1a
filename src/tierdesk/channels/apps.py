from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "tierdesk.channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from tierdesk.channels import notify, webhooks
        from tierdesk.core import outbox

        # Every event may be one a webhook asked for: its deliveries are queued here and
        # sent by the worker (channels.tasks).
        outbox.subscribe("*", webhooks.on_event, consumer="channels.webhooks")
        # Ticket and SLA events become email notifications, one per (event, recipient),
        # sent by the worker (channels.tasks).
        outbox.subscribe("*", notify.on_event, consumer="channels.notify")
