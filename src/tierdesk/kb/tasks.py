"""Background jobs of the knowledge base: keeping the articles' embeddings current for the
optional semantic re-ranking (kb.semantic). Nothing runs without the extra, or with it off.

Every minute the worker embeds the articles that changed since their embedding (every
change moves an article's version), for at most ``BUDGET_SECONDS``; the next minute goes on
where it stopped. ``embeddings_now`` embeds the whole backlog at once (the demo seed asks).
"""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from tierdesk.core.outbox import claim_tick
from tierdesk.kb import semantic

# A third of the minute: the run holds one of the worker's threads (and a core), and the SLA,
# escalation, assignment and outbox jobs must not wait behind a backlog of embeddings.
BUDGET_SECONDS = 20.0


def refresh_embeddings() -> semantic.Refreshed | None:
    """One run: None when the extra is off or another worker has this minute's run. Runs
    that overlap anyway (``embeddings_now``, ``tierdesk kb embed``) take turns batch by
    batch (kb.semantic.refresh)."""
    if not semantic.enabled() or not claim_tick("kb_embeddings"):
        return None
    return semantic.refresh(budget_seconds=BUDGET_SECONDS)


@db_periodic_task(crontab(minute="*"))
def embeddings_tick() -> None:
    refresh_embeddings()


@db_task()
def embeddings_now() -> None:
    """The whole backlog at once, whether or not this minute's run was claimed: the demo
    seed asks for its 156 articles (about 20 s)."""
    if semantic.enabled():
        semantic.refresh()
