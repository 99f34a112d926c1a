"""Full-text search over articles: one interface, two engines.

- SQLite: an FTS5 table ``kb_search`` (title, tags, body; Porter stemming, diacritics
  folded), ranked by BM25 with the title weighing most, snippets by ``snippet()``.
- PostgreSQL: a ``tsvector`` column ``kb_article.search_document`` (title weight A, tags B,
  body D; English stemming and stop words) with a GIN index, ranked by ``ts_rank_cd``,
  snippets by ``ts_headline``.

Both are kept in step by the services (``index`` in the same transaction as the change) and
created by the kb migrations. A query is the searcher's words, any of which may match
(more matching words rank higher); a word the index does not know is also tried as the
nearest word it does know (one or two letters off), so small typos still find articles.
Every search is limited by the reader's scope (kb.scope) in the same SQL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from tierdesk.core import config
from tierdesk.kb.models import Article
from tierdesk.kb.scope import KbScope

MAX_WORDS = 12
MIN_PREFIX = 3  # letters of an unfinished word before it is searched as a prefix
MAX_WORD = 40
MARK_START, MARK_END = "\x02", "\x03"
WORD = re.compile(r"\w+")
# Words too common to tell articles apart; PostgreSQL's English configuration drops these
# and more by itself, SQLite's tokenizer keeps everything.
STOP_WORDS = frozenset(
    """
    a about after again all am an and any are as at be been but by can cannot could did do
    does doing dont for from had has have having he her here hers him his how i if im in into
    is it its just me my myself no nor not of off on once only or our out over own same she
    should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with
    would you your yours
    """.split()  # noqa: SIM905 - a long list reads better as words
)


@dataclass(frozen=True)
class Hit:
    article_id: int
    slug: str
    title: str
    score: float
    snippet: str  # HTML: escaped text with the matched words in <mark>


@dataclass
class Filters:
    category_ids: Sequence[int] = ()
    tags: Sequence[str] = ()  # every one of them
    audiences: Sequence[str] = ()
    statuses: Sequence[str] = ()


def words(text: str) -> list[str]:
    """The searchable words of ``text``: lower case, no stop words, no repeats, at most
    MAX_WORDS of at most MAX_WORD characters."""
    seen: list[str] = []
    for w in WORD.findall(text.lower()):
        w = w.replace("_", "")[:MAX_WORD]
        if w and w not in STOP_WORDS and w not in seen:
            seen.append(w)
    return seen[:MAX_WORDS]


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- keeping the index in step ----------------------------------------------------------------


def index(article: Article, tags: Sequence[str]) -> None:
    """(Re)index ``article`` as it is now, with ``tags``; in the caller's transaction."""
    tag_text = " ".join(tags)
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute(
                "UPDATE kb_article SET search_document = "
                "setweight(to_tsvector('english', %s), 'A') || "
                "setweight(to_tsvector('english', %s), 'B') || "
                "setweight(to_tsvector('english', %s), 'D') WHERE id = %s",
                [article.title, tag_text, article.body_text, article.pk],
            )
        else:
            cursor.execute("DELETE FROM kb_search WHERE rowid = %s", [article.pk])
            cursor.execute(
                "INSERT INTO kb_search (rowid, title, tags, body) VALUES (%s, %s, %s, %s)",
                [article.pk, article.title, tag_text, article.body_text],
            )


def unindex(article_id: int) -> None:
    if _is_postgres():
        return  # the row itself goes
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM kb_search WHERE rowid = %s", [article_id])


# --- typo tolerance -------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]
    documents: dict[str, int]  # word -> how many articles have it
    total: int  # articles in the index

    def stem_of(self, word: str) -> str | None:
        """The indexed word (stem) ``word`` is, or None. The index holds stems
        ("printing" -> "print"): it is the word itself or a prefix at most four letters
        shorter."""
        for n in range(len(word), max(len(word) - 5, 2), -1):
            if word[:n] in self.documents:
                return word[:n]
        return None


def _load_vocabulary() -> Vocabulary:
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute(
                "SELECT word, ndoc FROM ts_stat('SELECT search_document FROM kb_article "
                "WHERE search_document IS NOT NULL')"
            )
            rows = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM kb_article WHERE search_document IS NOT NULL")
        else:
            cursor.execute("SELECT term, doc FROM kb_search_vocabulary")
            rows = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM kb_search")
        total = int(cursor.fetchone()[0])
    documents = {str(w): int(n) for w, n in rows}
    return Vocabulary(tuple(sorted(documents)), documents, total)


def vocabulary() -> Vocabulary:
    """The index's words (stems) and their document counts, cached per process until the
    next article change."""
    return config.cached("kb.vocabulary", _load_vocabulary)


def alternatives(word: str, vocab: Vocabulary) -> list[str]:
    """``word`` and, when the index does not know it, the nearest words it does know."""
    if len(word) < 4 or not vocab.words or vocab.stem_of(word) is not None:
        return [word]
    limit = 1 if len(word) < 7 else 2
    found = process.extract(
        word, vocab.words, scorer=Levenshtein.distance, score_cutoff=limit, limit=3
    )
    return [word, *[str(f[0]) for f in found]]


# --- the query ------------------------------------------------------------------------------


def search(
    *,
    scope: KbScope,
    text: str,
    filters: Filters | None = None,
    limit: int = 10,
    prefix: bool = False,
) -> list[Hit]:
    """The best ``limit`` articles for ``text`` that ``scope`` may read, best first.
    ``prefix``: the last word may be unfinished (someone is still typing)."""
    typed = words(text)
    if prefix and typed and len(typed[-1]) < MIN_PREFIX:
        typed = typed[:-1]  # "ou…" would match half the index: wait for more letters
    if not typed or not scope.statuses:
        return []
    vocab = vocabulary()
    typed = _telling(typed, vocab, keep_last=prefix)
    terms: list[tuple[str, bool]] = []  # (word, as a prefix)
    for i, word in enumerate(typed):
        last = prefix and i == len(typed) - 1
        for alt in alternatives(word, vocab) if not last else [word]:
            terms.append((alt, last))
    where, params = scope.as_sql("a")
    extra, extra_params = _filters_sql(filters or Filters())
    if _is_postgres():
        rows = _search_postgres(terms, where + extra, params + extra_params, limit)
    else:
        rows = _search_sqlite(terms, where + extra, params + extra_params, limit)
    return [
        Hit(article_id=r[0], slug=r[1], title=r[2], score=r[3], snippet=_highlight(r[4] or ""))
        for r in rows
    ]


COMMON_SHARE = 0.2


def _telling(typed: list[str], vocab: Vocabulary, *, keep_last: bool) -> list[str]:
    """``typed`` without the words that most articles contain ("computer", "help" in an IT
    knowledge base): they hardly change the ranking but make the engine score most of the
    index. The rarest word always stays, and so does a word still being typed."""
    if len(typed) < 2 or vocab.total < 50:
        return typed

    def share(word: str) -> float:
        stem = vocab.stem_of(word)
        return vocab.documents.get(stem, 0) / vocab.total if stem else 0.0

    shares = {w: share(w) for w in typed}
    rarest = min(typed, key=lambda w: shares[w])
    return [
        w
        for i, w in enumerate(typed)
        if w == rarest or shares[w] <= COMMON_SHARE or (keep_last and i == len(typed) - 1)
    ]


def _filters_sql(filters: Filters) -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if filters.category_ids:
        sql += f" AND a.category_id IN ({', '.join(['%s'] * len(filters.category_ids))})"
        params += list(filters.category_ids)
    if filters.audiences:
        sql += f" AND a.audience IN ({', '.join(['%s'] * len(filters.audiences))})"
        params += list(filters.audiences)
    if filters.statuses:
        sql += f" AND a.status IN ({', '.join(['%s'] * len(filters.statuses))})"
        params += list(filters.statuses)
    for tag in filters.tags:
        sql += (
            " AND a.id IN (SELECT at.article_id FROM kb_article_tags at "
            "JOIN tickets_tag t ON t.id = at.tag_id WHERE t.name = %s)"
        )
        params.append(tag.strip().lower())
    return sql, params


Row = tuple[int, str, str, float, str]


def _search_sqlite(
    terms: list[tuple[str, bool]], where: str, params: list[Any], limit: int
) -> list[Row]:
    match = " OR ".join(f'"{w}"' + ("*" if last else "") for w, last in terms)
    # Rank inside, snippets outside: SQLite would build a snippet for every matching row
    # before sorting them.
    rank = "bm25(kb_search, 10.0, 4.0, 1.0)"
    sql = (
        f"SELECT a.id, a.slug, a.title, -{rank} AS score, "
        f"snippet(kb_search, 2, '{MARK_START}', '{MARK_END}', '…', 24) "
        "FROM kb_search JOIN kb_article a ON a.id = kb_search.rowid "
        "WHERE kb_search MATCH %s AND kb_search.rowid IN ("
        "SELECT a.id FROM kb_search JOIN kb_article a ON a.id = kb_search.rowid "
        f"WHERE kb_search MATCH %s AND {where} ORDER BY {rank}, a.id LIMIT %s) "
        f"ORDER BY {rank}, a.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [match, match, *params, limit])
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4])) for r in cursor]


def _search_postgres(
    terms: list[tuple[str, bool]], where: str, params: list[Any], limit: int
) -> list[Row]:
    query = " | ".join(w + (":*" if last else "") for w, last in terms)
    options = (
        f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, "
        'MaxFragments=2, FragmentDelimiter=" … "'
    )
    sql = (
        "SELECT hit.id, hit.slug, hit.title, hit.score, "
        "ts_headline('english', hit.body_text, hit.q, %s) FROM ("
        "SELECT a.id, a.slug, a.title, a.body_text, q, "
        "ts_rank_cd(a.search_document, q, 1) AS score "
        "FROM kb_article a, to_tsquery('english', %s) q "
        f"WHERE a.search_document @@ q AND {where} "
        "ORDER BY score DESC, a.id LIMIT %s) hit ORDER BY hit.score DESC, hit.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [options, query, *params, limit])
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4])) for r in cursor]


def _highlight(snippet: str) -> str:
    return (
        html.escape(snippet.replace(MARK_START, "\x00").replace(MARK_END, "\x01"))
        .replace("\x00", "<mark>")
        .replace("\x01", "</mark>")
    )
