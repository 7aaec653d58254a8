"""A causal-LM reranker of Qwen3-Reranker-0.6B's shape: embedrank over gRPC against CrossEncoder.predict on torch.

The checkpoint is random (no download): Qwen3ForCausalLM with Qwen3-Reranker-0.6B's dimensions (hidden 1024,
16 heads, 8 KV heads of 128, intermediate 3072; --layers 28 and --vocab 151669 are the real model's), saved by
sentence-transformers 6 as a CrossEncoder (Transformer(text-generation) + LogitScore("yes", "no")) with a chat
template and a system prompt in Qwen3-Reranker's arrangement. The tokenizer is the WordPiece one of the packaged
all-MiniLM-L6-v2 (Qwen's own is not on this machine); both sides read the same tokens. Exported once into
--workdir (not timed). Then, in turns, --rounds rounds: a 20-document rerank's latency (p50 of --reps calls) and
pairs/s over --queries concurrent 20-document requests, against predict() on the same pairs (batch 32).

    nice flock /tmp/embedrank-bench.lock .venv/bin/python bench/causal_rerank.py --workdir /tmp/causal-bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(out: Path, *, layers: int, vocab: int) -> Path:
    path = out / f"qwen3-reranker-shape-{layers}l-{vocab}v"
    if path.exists():
        return path
    import torch
    import transformers as tf
    from sentence_transformers import CrossEncoder

    from tests.checkpoints import CHAT_QUERY_FIRST, _tokenizer

    config = tf.Qwen3Config(vocab_size=vocab, hidden_size=1024, num_hidden_layers=layers, num_attention_heads=16,
                            num_key_value_heads=8, head_dim=128, intermediate_size=3072, max_position_embeddings=40960,
                            tie_word_embeddings=True, pad_token_id=0)
    torch.manual_seed(0)
    hf_dir = out / f"{path.name}-hf"
    tf.AutoModelForCausalLM.from_config(config).save_pretrained(hf_dir)
    tokenizer = _tokenizer(512)
    tokenizer.chat_template = CHAT_QUERY_FIRST
    tokenizer.save_pretrained(hf_dir)
    prompt = "Judge whether the Document meets the requirements based on the Query and the Instruct provided. " \
             "Note that the answer can only be \"yes\" or \"no\"."
    CrossEncoder(str(hf_dir), device="cpu", max_length=512, prompts={"judge": prompt},
                 default_prompt_name="judge").save(str(path))
    return path


def export(src: Path, repo: Path, name: str) -> None:
    if (repo / name).exists():
        return
    cmd = [sys.executable, "-m", "embedrank.cli", "export", str(src), "--output", str(repo / name), "--corpus-size", "40"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    print(result.stderr.strip().splitlines()[-3], file=sys.stderr)


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--vocab", type=int, default=151669)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--queries", type=int, default=4)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    import torch
    from sentence_transformers import CrossEncoder

    from embedrank.client import AsyncClient
    from embedrank.exporter import corpus
    from tests.conftest import ServerProcess

    src = build(args.workdir, layers=args.layers, vocab=args.vocab)
    repo = args.workdir / "repo"
    export(src, repo, "reranker")
    docs = [p[:600] for p in corpus.paragraphs()[:20]]
    queries = corpus.sentences(args.queries, min_chars=30)
    ce = CrossEncoder(str(src), device="cpu")
    features = ce.preprocess([(queries[0], d) for d in docs], prompt=ce._resolve_prompt(None, None))
    tokens = [int(n) for n in features["attention_mask"].sum(1).tolist()]
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "layers": args.layers, "vocab": args.vocab,
        "docs": len(docs), "tokens_per_pair": {"min": min(tokens), "max": max(tokens), "mean": sum(tokens) / len(tokens)},
        "torch_threads": torch.get_num_threads(), "load_before": load(),
    }
    server = ServerProcess(repo)
    lat: dict[str, list[float]] = {"embedrank": [], "torch": []}
    rate: dict[str, list[float]] = {"embedrank": [], "torch": []}

    async def measure(client: AsyncClient) -> None:
        async def ours_one() -> None:
            await client.rerank("reranker", queries[0], docs)

        def torch_one() -> None:
            ce.predict([(queries[0], d) for d in docs], batch_size=32)

        await ours_one()
        torch_one()  # warm up
        for r in range(args.rounds):  # in turns, the order swapped each round
            for side in (("embedrank", "torch") if r % 2 == 0 else ("torch", "embedrank")):
                times = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    if side == "embedrank":
                        await ours_one()
                    else:
                        torch_one()
                    times.append(time.perf_counter() - t0)
                lat[side].append(statistics.median(times))
                t0 = time.perf_counter()
                if side == "embedrank":
                    await asyncio.gather(*(client.rerank("reranker", q, docs) for q in queries))
                else:
                    ce.predict([(q, d) for q in queries for d in docs], batch_size=32)
                rate[side].append(len(queries) * len(docs) / (time.perf_counter() - t0))

    async def run() -> None:
        async with AsyncClient(server.target) as client:
            await measure(client)

    try:
        asyncio.run(run())
    finally:
        server.stop()
    out["load_after"] = load()
    for side in lat:
        out[f"{side}_p50_ms_20_docs"] = round(1000 * statistics.median(lat[side]), 1)
        out[f"{side}_pairs_per_s"] = round(statistics.median(rate[side]), 2)
        out[f"{side}_rounds"] = {"p50_ms": [round(1000 * x, 1) for x in lat[side]], "pairs_per_s": [round(x, 2) for x in rate[side]]}
    out["speedup_p50"] = round(out["torch_p50_ms_20_docs"] / out["embedrank_p50_ms_20_docs"], 2)
    out["speedup_pairs_per_s"] = round(out["embedrank_pairs_per_s"] / out["torch_pairs_per_s"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
