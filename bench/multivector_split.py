"""Where a multi-vector request's time goes: the bare graph (ONNX Runtime on the exported model.onnx, 2
threads, each request's 32 texts tokenized and run in batches of one length: no padding, no server), embedrank over gRPC (texts/s and the server's own
split from each response's Metadata.timing: tokenize / queue / inference / total), and the library's torch
backend (encode_document). Measured in turns (bare, embedrank, library; --rounds times), medians printed
as one JSON object. Needs the exports bench/kinds.py makes (--workdir the same).

    flock /tmp/embedrank-bench.lock .venv/bin/python bench/multivector_split.py --workdir /tmp/kinds-bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--input-type", default="document")
    args = ap.parse_args()
    import numpy as np
    import onnxruntime as ort
    from sentence_transformers import MultiVectorEncoder
    from tokenizers import Tokenizer

    from embedrank.client import Client
    from embedrank.exporter import corpus
    from embedrank.client._codec import decode_multi_vector
    from embedrank.v1 import embed_pb2, multivector_pb2
    from tests.conftest import ServerProcess

    model_dir = args.workdir / "repo" / "colbert" / "1"
    texts = corpus.sentences(args.texts)
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    manifest = json.loads((model_dir / "manifest.json").read_text())
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(manifest["tokenizer"]["max_tokens"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def bare() -> None:  # each request's texts in batches of one length (no padding), as the server's at best
        for b in batches:
            by_length: dict[int, list[list[int]]] = {}
            for e in tok.encode_batch(b):
                by_length.setdefault(len(e.ids), []).append(e.ids)
            for rows in by_length.values():
                ids = np.array(rows, dtype=np.int64)
                session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})

    server = ServerProcess(args.workdir / "repo")
    st = MultiVectorEncoder(str(args.workdir / "minilm-colbert"), device="cpu")
    split: dict[str, list[float]] = {"tokenize_ms": [], "queue_ms": [], "inference_ms": [], "total_ms": []}
    rates: dict[str, list[float]] = {"bare_graph": [], "embedrank": [], "st_torch": []}
    try:
        with Client(server.target) as client:
            def ours() -> None:
                sums = dict.fromkeys(split, 0.0)
                for b in batches:
                    req = multivector_pb2.EncodeMultiVectorRequest(model="colbert", texts=b)
                    req.input_type = embed_pb2.INPUT_TYPE_DOCUMENT if args.input_type == "document" else embed_pb2.INPUT_TYPE_QUERY
                    resp = client._call(client._multi_vector.EncodeMultiVector, req)
                    decode_multi_vector(resp)
                    t = resp.metadata.timing
                    for key, ns in (("tokenize_ms", t.tokenize_ns), ("queue_ms", t.queue_ns),
                                    ("inference_ms", t.inference_ns), ("total_ms", t.total_ns)):
                        sums[key] += ns / 1e6
                for key, value in sums.items():
                    split[key].append(value)

            def theirs() -> None:
                fn = st.encode_document if args.input_type == "document" else st.encode_query
                fn(texts, batch_size=32)

            bare(), ours(), theirs()  # warm up
            for v in split.values():
                v.clear()
            for _ in range(args.rounds):
                for name, fn in (("bare_graph", bare), ("embedrank", ours), ("st_torch", theirs)):
                    start = time.perf_counter()
                    fn()
                    rates[name].append(len(texts) / (time.perf_counter() - start))
    finally:
        server.stop()
    out: dict[str, object] = {"texts": len(texts), "rounds": args.rounds, "input_type": args.input_type}
    out.update({f"{k}_texts_per_s": round(statistics.median(v), 1) for k, v in rates.items()})
    out["all_rates"] = {k: [round(x, 1) for x in v] for k, v in rates.items()}
    out["server_split_ms_per_pass"] = {k: round(statistics.median(v), 1) for k, v in split.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
