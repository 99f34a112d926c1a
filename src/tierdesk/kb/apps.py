from django.apps import AppConfig


class KbConfig(AppConfig):
    name = "tierdesk.kb"
    label = "kb"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from tierdesk.core import config
        from tierdesk.kb.models import Article, ArticleEmbedding

        # The search's vocabulary (typo tolerance, cached as "kb.vocabulary") follows the
        # articles; an article change reloads the kb group's caches only, not the rest of
        # the configuration (routing rules, SLA targets…).
        config.watch(Article, group="kb")
        # The vectors each process keeps for semantic re-ranking ("semantic.embeddings",
        # kb.semantic) follow the stored embeddings, which only the worker writes.
        config.watch(ArticleEmbedding, group="semantic")
