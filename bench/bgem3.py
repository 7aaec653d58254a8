"""BGE-M3's three outputs from one call: embedrank's EncodeHybrid over gRPC against FlagEmbedding's
BGEM3FlagModel.encode(return_dense, return_sparse, return_colbert_vecs) in-process, on a checkpoint of
BGE-M3's shape with random weights.

The checkpoint: XLM-R large's dimensions (24 layers unless --layers, hidden 1024, 16 heads, FFN 4096, BGE-M3's heads
sparse_linear 1024->1 and colbert_linear 1024->1024) with the vocabulary cut to 30,000 rows (BGE-M3 has
250,002: the embedding matrix is 1 GB of memory and no compute per token) and an XLM-R-shaped Unigram
tokenizer trained here (tests/checkpoints.py; ~8k pieces: texts tokenize a little longer than with
BGE-M3's 250k pieces, the same for both sides). max_seq_length 512. Exported once into --workdir with the
defaults (ONNX Runtime, O2, verified against FlagEmbedding); then in turns, --rounds rounds: texts/s of
embedrank (one client, 32 texts a request) and of FlagEmbedding (batch 32, fp32 on the CPU, as it runs
there). Prints one JSON object.

    nice flock /tmp/embedrank-bench.lock .venv/bin/python bench/bgem3.py --workdir /tmp/bgem3-bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(out: Path, layers: int) -> Path:
    path = out / f"bge-m3-shape-{layers}l"
    if path.exists():
        return path
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from tests.checkpoints import _xlmr_tokenizer

    tokenizer = _xlmr_tokenizer(512, vocab=8000)
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=30000, hidden_size=1024, num_hidden_layers=layers, num_attention_heads=16, intermediate_size=4096,
        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    hf = out / f"bge-m3-shape-{layers}l-hf"
    XLMRobertaModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    transformer = models.Transformer(str(hf), max_seq_length=512)
    model = SentenceTransformer(modules=[transformer, models.Pooling(1024, "cls"), models.Normalize()], device="cpu")
    model.save(str(path))
    torch.save(torch.nn.Linear(1024, 1).state_dict(), path / "sparse_linear.pt")
    torch.save(torch.nn.Linear(1024, 1024).state_dict(), path / "colbert_linear.pt")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--texts", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--layers", type=int, default=24,
                    help="encoder layers (BGE-M3: 24); fewer to fit a shared box, every layer the same work")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from FlagEmbedding import BGEM3FlagModel

    from embedrank.client import Client
    from embedrank.exporter import corpus
    from tests.conftest import ServerProcess

    src = build(args.workdir, args.layers)
    repo = args.workdir / f"repo-{args.layers}l"
    if not (repo / "bge-m3").exists():
        t0 = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "embedrank.cli", "export", str(src), "--output",
                                 str(repo / "bge-m3")], capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(result.stderr[-3000:])
        print(f"exported in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    texts = corpus.sentences(args.texts)
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    flag = BGEM3FlagModel(str(src), use_fp16=False, devices="cpu")
    out: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                              "texts": len(texts), "layers": args.layers, "request_size": 32, "load_before": os.getloadavg()}
    with open("/proc/cpuinfo") as f:
        out["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    server = ServerProcess(repo)
    try:
        with Client(server.target, timeout=600) as client:
            calls = {
                "embedrank_encode_hybrid": lambda: [client.encode_hybrid("bge-m3", b) for b in batches],
                "flagembedding_encode": lambda: flag.encode(texts, batch_size=32, max_length=512, return_dense=True,
                                                            return_sparse=True, return_colbert_vecs=True),
            }
            tokens = sum(client.encode_hybrid("bge-m3", b, outputs=["dense"]).token_counts[i]
                         for b in batches for i in range(len(b)))
            out["mean_tokens_per_text"] = round(tokens / len(texts), 1)
            for fn in calls.values():
                fn()  # warm up
            rates: dict[str, list[float]] = {label: [] for label in calls}
            for _ in range(args.rounds):  # in turns
                for label, fn in calls.items():
                    start = time.perf_counter()
                    fn()
                    rates[label].append(len(texts) / (time.perf_counter() - start))
            medians = {label: statistics.median(r) for label, r in rates.items()}
            out.update({f"{label}_texts_per_s": round(v, 2) for label, v in medians.items()})
            out["ratio"] = round(medians["embedrank_encode_hybrid"] / medians["flagembedding_encode"], 2)
            out["rounds"] = {label: [round(x, 2) for x in r] for label, r in rates.items()}
    finally:
        server.stop()
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
