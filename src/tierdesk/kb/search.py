"""Full-text search over articles: one interface, two engines.

- SQLite: an FTS5 table ``kb_search`` (title, tags, body; Porter stemming, diacritics
  folded), ranked by BM25 with the title weighing most, snippets by ``snippet()``.
- PostgreSQL: a table ``kb_search_document`` of one ``tsvector`` per article (title weight
  A, tags B, body D; English stemming and stop words) with a GIN index, ranked by
  ``ts_rank`` (word frequency and weight; ``ts_rank_cd``'s cover density ranked no better
  on the labelled queries and cost twice as much in a large index), snippets by
  ``ts_headline``. The documents have a narrow table of their own
  because a search reads every matching article's document: in the wide article rows that
  cost more than the ranking.

Both are kept in step by the services (``index`` in the same transaction as the change) and
created by the kb migrations. A query is the searcher's words, any of which may match
(more matching words rank higher); a word the index does not know is also tried as the
nearest word it does know (one or two letters off), so small typos still find articles.
Every search is limited by the reader's scope (kb.scope) in the same SQL.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import snowballstemmer
from django.db import connection
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from tierdesk.core import config
from tierdesk.kb import semantic
from tierdesk.kb.models import Article
from tierdesk.kb.scope import KbScope

MAX_WORDS = 12
COMMON_SHARE = 0.2
SMALL_INDEX = 50  # articles; in fewer, no word counts as common
# Articles the telling words may match together before commoner words are left out: the
# engine scores every matching article, so this bounds a search's cost in a large index.
MATCH_BUDGET = 5_000
MIN_PREFIX = 3  # letters of an unfinished word before it is searched as a prefix
MAX_WORD = 40
MARK_START, MARK_END = "\x02", "\x03"
WORD = re.compile(r"\w+")
APOSTROPHES = re.compile(r"(?<=\w)['\u2019](?=\w)")
# Words too common to tell articles apart; PostgreSQL's English configuration drops these
# and more by itself, SQLite's tokenizer keeps everything.
STOP_WORDS = frozenset(
    """
    a about after again all am an and any are as at be been but by can cannot could did do
    does doing dont for from had has have having he her here hers him his how i if im in into
    is it its just me my myself no nor not of off on once only or our out over own same she
    should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with
    would you your yours us cant isnt doesnt didnt wont wasnt arent couldnt shouldnt
    wouldnt ive youre theyre
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
    for w in WORD.findall(APOSTROPHES.sub("", text.lower())):  # "can't" is "cant"
        w = w.replace("_", "")[:MAX_WORD]
        if w and w not in STOP_WORDS and w not in seen:
            seen.append(w)
    return seen[:MAX_WORDS]


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


@functools.cache
def _stemmers() -> dict[str, Any]:
    # The stemmers the engines index with: SQLite's FTS5 ``porter`` tokenizer is Porter's
    # original algorithm, PostgreSQL's ``english`` configuration is Snowball's English.
    return {
        "sqlite": snowballstemmer.stemmer("porter"),
        "postgresql": snowballstemmer.stemmer("english"),
    }


def _stemmer() -> Any:
    return _stemmers()["postgresql" if _is_postgres() else "sqlite"]


# --- keeping the index in step ----------------------------------------------------------------


def index(article: Article, tags: Sequence[str]) -> None:
    """(Re)index ``article`` as it is now, with ``tags``; in the caller's transaction."""
    tag_text = " ".join(tags)
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute(
                "INSERT INTO kb_search_document (article_id, document) VALUES (%s, "
                "setweight(to_tsvector('english', %s), 'A') || "
                "setweight(to_tsvector('english', %s), 'B') || "
                "setweight(to_tsvector('english', %s), 'D')) "
                "ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document",
                [article.pk, article.title, tag_text, article.body_text],
            )
        else:
            cursor.execute("DELETE FROM kb_search WHERE rowid = %s", [article.pk])
            cursor.execute(
                "INSERT INTO kb_search (rowid, title, tags, body) VALUES (%s, %s, %s, %s)",
                [article.pk, article.title, tag_text, article.body_text],
            )


def unindex(article_id: int) -> None:
    if _is_postgres():
        return  # its document goes with its row (SearchDocument's cascade)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM kb_search WHERE rowid = %s", [article_id])


# --- typo tolerance -------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]
    documents: dict[str, int]  # word -> how many articles have it
    total: int  # articles in the index

    def stem_of(self, word: str) -> str | None:
        """The indexed word (stem) ``word`` is ("printing" -> "print", "one" -> "on"), or
        None when the index does not know it."""
        stem = _stemmer().stemWord(word)
        return stem if stem in self.documents else None


def _load_vocabulary() -> Vocabulary:
    with connection.cursor() as cursor:
        if _is_postgres():
            # Counts kept by a trigger (kb.models.SearchWord): ts_stat over every document
            # cost ~150 ms at 10,000 articles.
            cursor.execute("SELECT word, documents FROM kb_search_word WHERE documents > 0")
            rows = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM kb_search_document")
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
    # A mistyped word meant something telling: a near word most articles have ("cant" ->
    # "can") would only make the engine score most of the index.
    common = COMMON_SHARE * vocab.total if vocab.total >= SMALL_INDEX else vocab.total
    return [word, *[str(f[0]) for f in found if vocab.documents[f[0]] <= common]]


# --- the query ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """What full text found, best first, before any snippet is made: ``scored`` holds
    (article id, score); ``match`` is the engine's query that found them (an FTS5 MATCH
    expression or a tsquery), kept to mark its words in the snippets."""

    scored: list[tuple[int, float]]
    match: str


# Semantic re-ranking hook: with the optional `semantic` extra installed and on, the
# candidates that ``rank`` finds are ranked again by meaning (kb/semantic.py) before the
# snippets are made; otherwise unchanged.
@semantic.reranked
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
    query = _query(scope, text, filters, prefix)
    if query is None:
        return []
    match, where, params = query
    if _is_postgres():  # one statement: the snippets of the ranked few only
        return [_hit(*row) for row in _search_postgres(match, where, params, limit)]
    return hits(Ranking(_rank_sqlite(match, where, params, limit), match))


def rank(
    *,
    scope: KbScope,
    text: str,
    filters: Filters | None = None,
    limit: int = 10,
    prefix: bool = False,
) -> Ranking:
    """``search``'s ranking without its snippets: the best ``limit`` (id, score), for a
    caller that ranks them again and makes snippets (``hits``) only for those it keeps."""
    query = _query(scope, text, filters, prefix)
    if query is None:
        return Ranking([], "")
    match, where, params = query
    if _is_postgres():
        return Ranking(_rank_postgres(match, where, params, limit), match)
    return Ranking(_rank_sqlite(match, where, params, limit), match)


def hits(ranking: Ranking, scored: Sequence[tuple[int, float]] | None = None) -> list[Hit]:
    """Hits for ``scored`` (default: the ranking's own), in that order and with those
    scores: slug, title and a snippet with the words of the ranking's query marked. An
    article the query does not match (semantic re-ranking adds such) gets the start of its
    text instead; an id that is no article is left out."""
    scored = ranking.scored if scored is None else scored
    if not scored:
        return []
    ids = [i for i, _ in scored]
    found = _snippets(ranking.match, ids) if ranking.match else {}
    missing = [i for i in ids if i not in found]
    if missing:
        found |= _plain_snippets(missing)
    return [_hit(i, *found[i][:2], score, found[i][2]) for i, score in scored if i in found]


def _query(
    scope: KbScope, text: str, filters: Filters | None, prefix: bool
) -> tuple[str, str, list[Any]] | None:
    """The engine's query for ``text`` (None when there is nothing to search) and the SQL
    condition, with its parameters, of the articles ``scope`` may read that pass ``filters``."""
    typed = words(text)
    if prefix and typed and len(typed[-1]) < MIN_PREFIX:
        typed = typed[:-1]  # "ou…" would match half the index: wait for more letters
    if not typed or not scope.statuses:
        return None
    vocab = vocabulary()
    typed = _telling(typed, vocab, keep_last=prefix)
    terms: list[tuple[str, bool]] = []  # (word, as a prefix)
    for i, word in enumerate(typed):
        last = prefix and i == len(typed) - 1
        for alt in alternatives(word, vocab) if not last else [word]:
            terms.append((alt, last))
    if _is_postgres():
        match = " | ".join(w + (":*" if last else "") for w, last in terms)
    else:
        match = " OR ".join(f'"{w}"' + ("*" if last else "") for w, last in terms)
    where, params = scope.as_sql("a")
    extra, extra_params = _filters_sql(filters or Filters())
    return match, where + extra, params + extra_params


def _telling(typed: list[str], vocab: Vocabulary, *, keep_last: bool) -> list[str]:
    """``typed`` without the words that tell least: those most articles contain
    ("computer", "help" in an IT knowledge base), which hardly change the ranking but make
    the engine score most of the index; and, in a large index, the commoner words once the
    rarer ones already match ``MATCH_BUDGET`` articles, which bounds a search's work. The
    rarest word always stays, and so does a word still being typed. Order is kept."""
    if len(typed) < 2 or vocab.total < SMALL_INDEX:
        return typed

    def documents(word: str) -> int:
        stem = vocab.stem_of(word)
        return vocab.documents.get(stem, 0) if stem else 0

    counts = {w: documents(w) for w in typed}
    kept: set[str] = set()
    matched = 0
    for w in sorted(typed, key=lambda w: counts[w]):
        if kept and (counts[w] > COMMON_SHARE * vocab.total or matched + counts[w] > MATCH_BUDGET):
            break
        kept.add(w)
        matched += counts[w]
    if keep_last:
        kept.add(typed[-1])
    return [w for w in typed if w in kept]


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
SNIPPET_CHARS = 160  # of an article's text, when no word of the query is in it
# ts_headline's fragments: about as long as FTS5's 24-token snippet, in up to two places.
HEADLINE_OPTIONS = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)


def _rank_sqlite(match: str, where: str, params: list[Any], limit: int) -> list[tuple[int, float]]:
    # The ranking alone: in one statement with the snippets, SQLite evaluated the full-text
    # query a second time for them (a third of a search's time in a large index).
    rank = "bm25(kb_search, 10.0, 4.0, 1.0)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.id, -{rank} FROM kb_search JOIN kb_article a ON a.id = kb_search.rowid "
            f"WHERE kb_search MATCH %s AND {where} ORDER BY {rank}, a.id LIMIT %s",
            [match, *params, limit],
        )
        return [(int(r[0]), float(r[1])) for r in cursor.fetchall()]


def _rank_postgres(
    match: str, where: str, params: list[Any], limit: int
) -> list[tuple[int, float]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, ts_rank(d.document, q) AS score "
            "FROM kb_search_document d JOIN kb_article a ON a.id = d.article_id, "
            "to_tsquery('english', %s) q "
            f"WHERE d.document @@ q AND {where} ORDER BY score DESC, a.id LIMIT %s",
            [match, *params, limit],
        )
        return [(int(r[0]), float(r[1])) for r in cursor.fetchall()]


def _search_postgres(match: str, where: str, params: list[Any], limit: int) -> list[Row]:
    # The ranking in a subquery: ts_headline, which reads an article's whole text, runs for
    # the ``limit`` rows it keeps only.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT hit.id, hit.slug, hit.title, hit.score, "
            "ts_headline('english', hit.body_text, hit.q, %s) FROM ("
            "SELECT a.id, a.slug, a.title, a.body_text, q, ts_rank(d.document, q) AS score "
            "FROM kb_search_document d JOIN kb_article a ON a.id = d.article_id, "
            "to_tsquery('english', %s) q "
            f"WHERE d.document @@ q AND {where} "
            "ORDER BY score DESC, a.id LIMIT %s) hit ORDER BY hit.score DESC, hit.id",
            [HEADLINE_OPTIONS, match, *params, limit],
        )
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4])) for r in cursor]


def _snippets(match: str, ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """(slug, title, marked snippet) of those of ``ids`` that ``match`` finds."""
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute(
                "SELECT a.id, a.slug, a.title, ts_headline('english', a.body_text, q, %s) "
                "FROM kb_search_document d JOIN kb_article a ON a.id = d.article_id, "
                "to_tsquery('english', %s) q "
                f"WHERE d.document @@ q AND a.id IN ({marks})",
                [HEADLINE_OPTIONS, match, *ids],
            )
        else:
            cursor.execute(
                f"SELECT a.id, a.slug, a.title, "
                f"snippet(kb_search, 2, '{MARK_START}', '{MARK_END}', '…', 24) "
                "FROM kb_search JOIN kb_article a ON a.id = kb_search.rowid "
                f"WHERE kb_search MATCH %s AND kb_search.rowid IN ({marks})",
                [match, *ids],
            )
        return {int(r[0]): (str(r[1]), str(r[2]), str(r[3] or "")) for r in cursor.fetchall()}


def _plain_snippets(ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """(slug, title, the start of the text) of ``ids``, with no word marked: ``MARK_START``
    and ``MARK_END`` are control characters, which an article's plain text never holds."""
    found: dict[int, tuple[str, str, str]] = {}
    for a in Article.objects.filter(pk__in=ids).only("id", "slug", "title", "body_text"):
        excerpt = " ".join(a.body_text.split())
        if len(excerpt) > SNIPPET_CHARS:
            excerpt = excerpt[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        found[a.pk] = (a.slug, a.title, excerpt)
    return found


def _hit(article_id: int, slug: str, title: str, score: float, snippet: str) -> Hit:
    return Hit(
        article_id=article_id, slug=slug, title=title, score=score, snippet=_highlight(snippet)
    )


def _highlight(snippet: str) -> str:
    return (
        html.escape(snippet.replace(MARK_START, "\x00").replace(MARK_END, "\x01"))
        .replace("\x00", "<mark>")
        .replace("\x01", "</mark>")
    )
