"""The NumPy encoder of the semantic extra gives the vectors the real sentence-transformers
library gives (tests/kb/data/semantic_reference.json, made with torch by
tests/kb/data/make_semantic_reference.py), texts alone and padded in one batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tierdesk.kb import semantic

pytestmark = pytest.mark.skipif(
    not semantic.available(),
    reason="the semantic extra is not installed (pip install --no-deps -r "
    "requirements/semantic.lock)",
)

REFERENCE = Path(__file__).parent / "data" / "semantic_reference.json"


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


def test_the_encoder_matches_sentence_transformers(reference: dict[str, Any]) -> None:
    import numpy as np

    expected = np.array(reference["vectors"], dtype=np.float32)
    sentences = reference["sentences"]
    batched = semantic.embed(sentences)  # one batch: the short ones padded to the longest
    alone = np.stack([semantic.embed([s])[0] for s in sentences])
    for got in (batched, alone):
        assert got.shape == (len(sentences), semantic.DIMENSIONS)
        assert got.dtype == np.float32
        cosine = (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
        assert cosine.min() > 0.9999, cosine
        assert np.abs(got - expected).max() < 1e-4
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # Unrelated sentences are not the same vector (a broken encoder might agree with itself).
    assert float(batched[0] @ batched[1]) < 0.5


def test_the_encoder_cuts_texts_where_the_model_does(reference: dict[str, Any]) -> None:
    tokenizer = semantic.encoder().tokenizer
    counts = [len(e.ids) for e in tokenizer.encode_batch(reference["sentences"])]
    lengths = [len(tokenizer.encode(s).ids) for s in reference["sentences"]]
    assert lengths == reference["tokens"]  # the long text is cut at 256 word pieces
    assert max(reference["tokens"]) == semantic.MAX_TOKENS
    assert set(counts) == {semantic.MAX_TOKENS}  # a batch is padded to its longest
