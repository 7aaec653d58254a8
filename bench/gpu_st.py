"""sentence-transformers in-process on one device (CUDA for bench/gpu.py), fp32 and fp16.

For each --dtypes (fp16 = ``model.half()``) and each --batch-sizes: throughput on sentences and
paragraphs (calls of up to --chunk texts, which ST sorts by length, --batch-size per forward
pass), one sentence's latency, and the peak memory torch's allocator reserved on the device.
Saves the first --fidelity-n sentences' embeddings for cosines. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from st_baseline import lone_latency, timed_loop, versions, window


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", required=True)
    ap.add_argument("--model", required=True, help="the sentence-transformers checkpoint folder")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="fp32,fp16")
    ap.add_argument("--batch-sizes", default="32,256")
    ap.add_argument("--chunk", type=int, default=4096, help="texts per encode call (at most the pool)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--fidelity-n", type=int, default=1000)
    ap.add_argument("--dump-dir", required=True)
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    with open(args.texts, encoding="utf-8") as fh:
        pools = json.load(fh)
    cuda = args.device.startswith("cuda")
    result: dict = {"versions": {**versions(), "torch_cuda": str(torch.version.cuda)}, "device": args.device,
                    "device_name": torch.cuda.get_device_name() if cuda else "cpu", "torch_threads": torch.get_num_threads(),
                    "dtypes": {}}
    for dtype in args.dtypes.split(","):
        print(f"  st {args.device} {dtype}", file=sys.stderr, flush=True)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = SentenceTransformer(args.model, device=args.device)
        if dtype == "fp16":
            model.half()
        entry: dict = {}
        emb = model.encode(pools["sentences"][: args.fidelity_n], batch_size=64)
        dump = os.path.join(args.dump_dir, f"gpu-st-{dtype}.npy")
        np.save(dump, np.asarray(emb, dtype=np.float32))
        entry["dump"] = dump
        for batch in map(int, args.batch_sizes.split(",")):
            res: dict = {}
            for kind in ("sentences", "paragraphs"):
                pool = pools[kind]
                chunk = min(args.chunk, len(pool))
                model.encode(window(pool, 0, chunk), batch_size=batch)  # warm-up: every batch shape of a call
                step = lambda i, pool=pool, chunk=chunk, batch=batch: len(model.encode(window(pool, i, chunk), batch_size=batch))  # noqa: E731
                res[kind], _ = timed_loop(args.seconds, step)
            entry[f"batch_{batch}"] = res
        entry["latency"] = lone_latency(model, pools["sentences"], args.latency_n, warmup=30)
        if cuda:
            entry["torch_max_reserved_mib"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
            entry["torch_max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result["dtypes"][dtype] = entry
        del model
    print(json.dumps(result))


if __name__ == "__main__":
    main()
