from django.apps import AppConfig


class KbConfig(AppConfig):
    name = "tierdesk.kb"
    label = "kb"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from tierdesk.core import config
        from tierdesk.kb.models import Article

        # The search's vocabulary (typo tolerance) is cached like configuration.
        config.watch(Article)
