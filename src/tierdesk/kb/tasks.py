"""Background jobs of the knowledge base: keeping the articles' embeddings current for the
optional semantic re-ranking (kb.semantic). Nothing runs without the extra, or with it off.

Every minute the worker embeds the articles that changed since their embedding (every
change moves an article's version), for at most ``BUDGET_SECONDS``; the next minute goes on
where it stopped. ``embeddings_now`` asks for the same at once (the demo seed does).
"""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from tierdesk.core.outbox import claim_tick
from tierdesk.kb import semantic

# Within the minute, so one run is over before the next tick claims its own.
BUDGET_SECONDS = 45.0


def refresh_embeddings() -> semantic.Refreshed | None:
    """One run: None when the extra is off or another worker has this minute's run."""
    if not semantic.enabled() or not claim_tick("kb_embeddings"):
        return None
    return semantic.refresh(budget_seconds=BUDGET_SECONDS)


@db_periodic_task(crontab(minute="*"))
def embeddings_tick() -> None:
    refresh_embeddings()


@db_task()
def embeddings_now() -> None:
    refresh_embeddings()
