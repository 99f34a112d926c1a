from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "tierdesk.tiers"
    label = "tiers"
    verbose_name = "Tiers and service catalog"

    def ready(self) -> None:
        from tierdesk.core import config
        from tierdesk.tiers.models import Category, RoutingRule, Tier

        config.watch(Category, RoutingRule, Tier)
