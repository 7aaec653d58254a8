"""Quickstart: export the packaged all-MiniLM-L6-v2, serve it, encode a few sentences, print similarities.

    python clients/python/examples/quickstart.py [--model-repository models] [--port 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _local import export_once, local_server, minilm_path

from embedrank.client import Client

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-repository", default="models", type=Path)
    parser.add_argument("--port", default=0, type=int, help="the server's port; 0 (default) picks a free one")
    args = parser.parse_args()
    export_once(minilm_path(), args.model_repository / "minilm")
    with local_server(args.model_repository, port=args.port) as target, Client(target) as client:
        vectors = client.encode("minilm", SENTENCES)
        print(f"\nencoded {len(SENTENCES)} sentences -> {vectors.shape} {vectors.dtype}")
        sims = vectors @ vectors.T  # the model normalizes, so this is cosine similarity
        for i, j in sorted(((i, j) for i in range(5) for j in range(i + 1, 5)), key=lambda p: -sims[p])[:5]:
            print(f"{sims[i, j]:.4f}  {SENTENCES[i]!r} ~ {SENTENCES[j]!r}")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:  # the server-only install: nothing to compare with
            return 0
        ref = SentenceTransformer(str(minilm_path()), device="cpu").encode(SENTENCES)
        cos = (ref * vectors).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(vectors, axis=1)
        print(f"min cosine to sentence-transformers: {cos.min():.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
