"""sentence-transformers in-process baselines on the same texts as the server runs.

Runs in whichever venv calls it (.venv-bench for the ONNX backend, which needs optimum-onnx;
the main .venv for the newest sentence-transformers on torch). Prints one JSON object.

Backends: torch; onnx (ST's own optimum export, fp32); onnx-o2 (ST's export_optimized_onnx_model
"O2"); onnx-int8 (ST's export_dynamic_quantized_onnx_model "avx512_vnni"); openvino (ST's
backend="openvino", optimum-intel's export, OpenVINO's default precision: bf16 on CPUs with native
bf16; runs in .venv-bench-ov). ONNX and OpenVINO files are exported on first use into the model
folder given (a copy under .cache, never site-packages).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from importlib import metadata

import numpy as np

ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-o2": "onnx/model_O2.onnx", "onnx-int8": "onnx/model_qint8_avx512_vnni.onnx"}
OPENVINO_FILE = "openvino/openvino_model.xml"


def versions() -> dict[str, str]:
    out = {}
    for dist in ("sentence-transformers", "transformers", "torch", "onnxruntime", "optimum", "optimum-onnx",
                 "optimum-intel", "openvino"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def load(cls, path: str, backend: str):  # type: ignore[no-untyped-def]
    """Load ``cls`` (SentenceTransformer or CrossEncoder) on ``backend``, exporting ONNX files once."""
    from sentence_transformers import export_dynamic_quantized_onnx_model, export_optimized_onnx_model

    if backend == "torch":
        return cls(path, device="cpu")
    if backend == "openvino":
        if not os.path.exists(os.path.join(path, OPENVINO_FILE)):
            cls(path, device="cpu", backend="openvino").save_pretrained(path)  # optimum-intel export, then keep it
        return cls(path, device="cpu", backend="openvino")
    if not os.path.exists(os.path.join(path, ONNX_FILES["onnx"])):
        cls(path, device="cpu", backend="onnx").save_pretrained(path)  # optimum export, then keep it
    target = os.path.join(path, ONNX_FILES[backend])
    if not os.path.exists(target):
        base = cls(path, device="cpu", backend="onnx")
        if backend == "onnx-o2":
            export_optimized_onnx_model(base, "O2", path)
        else:
            export_dynamic_quantized_onnx_model(base, "avx512_vnni", path)
    return cls(path, device="cpu", backend="onnx", model_kwargs={"file_name": ONNX_FILES[backend]})


def pct(latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2),
            "mean_ms": round(statistics.fmean(ms), 2)}


def machine_cpu_s() -> float:
    """CPU seconds used by everything on the machine (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed_loop(seconds: float, step) -> tuple[dict, list[float]]:  # type: ignore[no-untyped-def]
    """Call ``step(i)`` (returns items done) until ``seconds`` pass; the summary and per-call times."""
    done, times, i = 0, [], 0
    t0, c0, m0 = time.perf_counter(), time.process_time(), machine_cpu_s()
    while time.perf_counter() - t0 < seconds:
        t = time.perf_counter()
        done += step(i)
        times.append(time.perf_counter() - t)
        i += 1
    wall = time.perf_counter() - t0
    return {"items": done, "seconds": round(wall, 3), "items_per_s": round(done / wall, 1),
            "process_cpu_pct": round(100 * (time.process_time() - c0) / wall, 1),
            "machine_cpu_pct": round(100 * (machine_cpu_s() - m0) / wall, 1)}, times


def window(pool: list[str], i: int, size: int) -> list[str]:
    start = (i * size) % len(pool)
    return (pool + pool)[start : start + size]


def throughput(model, pool: list[str], args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    """Calls of --chunk texts (ST sorts each call by length), --batch-size texts per forward pass."""
    model.encode(pool[: args.batch_size], batch_size=args.batch_size)  # warm-up
    summary, _ = timed_loop(args.seconds, lambda i: len(model.encode(window(pool, i, args.chunk), batch_size=args.batch_size)))
    return summary


def bench_embed(model, pools: dict, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {kind: throughput(model, pools[kind], args) for kind in ("sentences", "paragraphs")}
    out["latency"] = lone_latency(model, pools["sentences"], args.latency_n)
    return out


def lone_latency(model, sentences: list[str], n: int, warmup: int = 20) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One sentence per encode call, one after another: p50/p99 of n calls after a warm-up."""
    for i in range(warmup):
        model.encode([sentences[i]])
    times = []
    for i in range(n):
        t = time.perf_counter()
        model.encode([sentences[i % len(sentences)]])
        times.append(time.perf_counter() - t)
    return pct(times)


def bench_rerank(model, pools: dict, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    queries, docs = pools["queries"], pools["docs"]
    d = args.docs

    def step(i: int) -> int:
        pairs = [(queries[i % len(queries)], doc) for doc in window(docs, i, d)]
        return len(model.predict(pairs, batch_size=d, show_progress_bar=False))

    model.predict([(queries[0], doc) for doc in docs[:8]], batch_size=d, show_progress_bar=False)  # warm-up
    summary, times = timed_loop(args.seconds, step)
    # Requests run one at a time in-process, so each call's time is that request's latency.
    return {**summary, "requests": len(times), "latency": pct(times)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", required=True)
    ap.add_argument("--embed-model", required=True)
    ap.add_argument("--rerank-model", required=True)
    ap.add_argument("--backends", default="torch,onnx")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=128, help="texts per encode call")
    ap.add_argument("--docs", type=int, default=50)
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--fidelity-n", type=int, default=1000)
    ap.add_argument("--dump-dir", required=True, help="embeddings of the first --fidelity-n sentences go here")
    ap.add_argument("--sentences-only", action="store_true",
                    help="only the sentence throughput of each backend (bench.py's rounds in turns with the server)")
    args = ap.parse_args()

    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    with open(args.texts, encoding="utf-8") as fh:
        pools = json.load(fh)
    result: dict = {"versions": versions(), "torch_threads": torch.get_num_threads(), "batch_size": args.batch_size,
                    "chunk": args.chunk, "backends": {}}
    for backend in args.backends.split(","):
        print(f"  st {backend}: embeddings", file=sys.stderr, flush=True)
        model = load(SentenceTransformer, args.embed_model, backend)
        if args.sentences_only:
            result["backends"][backend] = {"embed": {"sentences": throughput(model, pools["sentences"], args)}}
            continue
        emb = model.encode(pools["sentences"][: args.fidelity_n], batch_size=args.batch_size)
        dump = os.path.join(args.dump_dir, f"st-{result['versions']['sentence-transformers']}-{backend}.npy")
        np.save(dump, emb)
        entry = {"embed": bench_embed(model, pools, args), "dump": dump}
        del model
        print(f"  st {backend}: rerank", file=sys.stderr, flush=True)
        entry["rerank"] = bench_rerank(load(CrossEncoder, args.rerank_model, backend), pools, args)
        result["backends"][backend] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
