from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "tierdesk.tiers"
    label = "tiers"
    verbose_name = "Tiers and service catalog"
