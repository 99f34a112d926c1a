from typing import Any

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_migrate


def _served_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from tierdesk.core.models import User
    from tierdesk.core.policy import forget_served_organizations

    if isinstance(instance, User):
        forget_served_organizations(instance)


class CoreConfig(AppConfig):
    name = "tierdesk.core"
    label = "core"
    verbose_name = "tierdesk core"

    def ready(self) -> None:
        from tierdesk.core.models import User

        m2m_changed.connect(
            _served_changed,
            sender=User.served_organizations.through,
            dispatch_uid="tierdesk.policy.served_changed",
        )
        from tierdesk.core import config

        # Each cache group's token row, once the tables are there (and again after a flush).
        post_migrate.connect(config.ensure_groups, sender=self, dispatch_uid="tierdesk.config")
