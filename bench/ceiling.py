"""The ceiling: embedrank's own graphs run straight in ONNX Runtime, no server, no gRPC.

Sentences sorted by length, batches of --batch, 1 and 2 intra-op threads. Shows what the box
can do at all and how much the server adds; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--models", default="minilm,minilm-int8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3)
    args = ap.parse_args()
    texts = json.loads(Path(args.texts).read_text())["sentences"][:1024]
    out: dict = {}
    for name in args.models.split(","):
        folder = max((args.repo / name).glob("*/model.onnx"), key=lambda p: int(p.parent.name)).parent
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(256)
        seqs = sorted((e.ids for e in tok.encode_batch(texts)), key=len)
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
            sess = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
            names = {i.name for i in sess.get_inputs()}
            sess.run(None, {k: v for k, v in batches[0].items() if k in names})
            done, i, t0 = 0, 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                feed = batches[(i * 7) % len(batches)]  # spread over short and long batches
                sess.run(None, {k: v for k, v in feed.items() if k in names})
                done += len(feed["input_ids"])
                i += 1
            out[f"{name}@{threads}"] = round(done / (time.perf_counter() - t0), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
