"""sentence-transformers' SparseEncoder on its ONNX backend (optimum's ORTModelForMaskedLM), texts/s on the
corpus bench/kinds.py uses, for a venv where optimum-onnx installs (it pins transformers < 4.58, so an
older sentence-transformers than the project's: 5.x, which has no MultiVectorEncoder). Warm-up, then
--rounds rounds; prints one JSON line. Run it between runs of bench/kinds.py (in turns by hand):

    flock /tmp/embedrank-bench.lock /tmp/stbench/bin/python bench/st_sparse_onnx.py /tmp/kinds-bench/minilm-splade
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exporter"))


def main() -> None:
    import sentence_transformers
    import transformers
    from sentence_transformers import SparseEncoder

    from embedrank.exporter import corpus

    path, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    texts = corpus.sentences(256)
    model = SparseEncoder(path, device="cpu", backend="onnx")
    model.encode(texts, batch_size=32)  # warm up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.encode(texts, batch_size=32)
        rates.append(len(texts) / (time.perf_counter() - start))
    print(json.dumps({"st_onnx_texts_per_s": round(statistics.median(rates), 1), "rounds": [round(r, 1) for r in rates],
                      "sentence_transformers": sentence_transformers.__version__,
                      "transformers": transformers.__version__, "model_class": type(model[0].auto_model).__name__}))


if __name__ == "__main__":
    main()
