"""Real English text that ships with CPython (pydoc's help topics): no download needed.

Used for the export's parity set, calibration of int8 ranges, the fidelity report and
the benchmark.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1)
def _paragraphs() -> tuple[str, ...]:
    from pydoc_data.topics import topics

    out: list[str] = []
    for key in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[key]):
            text = " ".join(block.split())
            # Prose only: skip code samples and grammar rules.
            if len(text) >= 40 and not re.search(r"[{}|]|>>>|::=|\*\*|==|--", text) and text[0].isalpha():
                out.append(text)
    return tuple(out)


def sentences(limit: int | None = None, *, min_chars: int = 20) -> list[str]:
    """Sentences, in a fixed order (the first ``limit``)."""
    out: list[str] = []
    for paragraph in _paragraphs():
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph):
            if len(sentence) >= min_chars:
                out.append(sentence)
                if limit is not None and len(out) >= limit:
                    return out
    return out


def paragraphs(limit: int | None = None) -> list[str]:
    """Paragraphs (one to several sentences), in a fixed order."""
    items = list(_paragraphs())
    return items if limit is None else items[:limit]


def parity_texts() -> list[str]:
    """The fixed parity set: short, medium and long texts, some over any max_seq_length of 512."""
    paras = paragraphs()
    long_text = " ".join(paras[:40])
    return [
        "Hello world",
        "A",
        "What is the capital of France?",
        "The quick brown fox jumps over the lazy dog.",
        *sentences(8)[::2],
        *paras[10:14],
        " ".join(paras[20:24]),
        long_text[:6000],
        long_text[1000:4000],
        "Ünïcödé, emoji 🙂 and CJK 漢字 mixed in one line.",
    ]


def parity_pairs() -> list[tuple[str, str]]:
    """Fixed (query, document) pairs: several queries, documents of mixed length."""
    texts = parity_texts()
    queries = ["How do I define a function?", "What does the import statement do?", "exceptions"]
    docs = texts[4:] + [texts[0]]
    return [(q, d) for q in queries for d in docs]
