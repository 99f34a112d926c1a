"""The one table the bare-insert endpoint writes to."""

from __future__ import annotations

from typing import ClassVar

from django.db import models


class BareRow(models.Model):
    """A row with no rules: the cheapest write Django can make, the baseline for creates."""

    label = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    # Declared because the app is installed only with TIERDESK_BENCH_ENDPOINTS=1, so the
    # django-stubs plugin (which loads the default settings) does not add the manager.
    objects: ClassVar[models.Manager[BareRow]] = models.Manager()

    def __str__(self) -> str:
        return self.label
