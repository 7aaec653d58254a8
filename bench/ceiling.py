"""The ceiling: embedrank's own graphs run straight in ONNX Runtime, no server, no gRPC.

Texts sorted by length, batches of --batch, 1 and 2 intra-op threads (CPU) or the CUDA provider
(--device cuda; every batch shape is run once before timing, since a new shape's first run is
slow there). Shows what the box can do at all and how much the server adds; prints one JSON
object: "NAME@THREADS" for sentences, "NAME@THREADS/KIND" for other --kinds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def providers(device: str) -> list[Any]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SystemExit(f"ceiling: no CUDAExecutionProvider in onnxruntime {ort.__version__} (install onnxruntime-gpu)")
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* pip packages
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--models", default="minilm,minilm-int8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--kinds", default="sentences", help="texts.json pools, comma-separated (first 1024 of each)")
    args = ap.parse_args()
    pools = json.loads(Path(args.texts).read_text())
    out: dict = {}
    for name in args.models.split(","):
        folder = max((args.repo / name).glob("*/model.onnx"), key=lambda p: int(p.parent.name)).parent
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(256)
        for kind in args.kinds.split(","):
            seqs = sorted((e.ids for e in tok.encode_batch(pools[kind][:1024])), key=len)
            batches = []
            for i in range(0, len(seqs), args.batch):
                part = seqs[i : i + args.batch]
                ids = np.zeros((len(part), len(part[-1])), np.int64)
                for row, s in enumerate(part):
                    ids[row, : len(s)] = s
                batches.append({"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)})
            for threads in map(int, args.threads.split(",")):
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                sess = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=providers(args.device))
                if args.device == "cuda" and sess.get_providers()[0] != "CUDAExecutionProvider":
                    raise SystemExit(f"ceiling: the session fell back to {sess.get_providers()}")
                names = {i.name for i in sess.get_inputs()}
                for feed in batches if args.device == "cuda" else batches[:1]:
                    sess.run(None, {k: v for k, v in feed.items() if k in names})
                done, i, t0 = 0, 0, time.perf_counter()
                while time.perf_counter() - t0 < args.seconds:
                    feed = batches[(i * 7) % len(batches)]  # spread over short and long batches
                    sess.run(None, {k: v for k, v in feed.items() if k in names})
                    done += len(feed["input_ids"])
                    i += 1
                key = f"{name}@{threads}" + ("" if kind == "sentences" else f"/{kind}")
                out[key] = round(done / (time.perf_counter() - t0), 1)
                del sess
    print(json.dumps(out))


if __name__ == "__main__":
    main()
