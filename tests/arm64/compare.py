"""`make arm64-check`'s host side (tests/arm64/check.sh): export the models on the host, then compare
what the server in the arm64 root answers with sentence-transformers here.

    compare.py export --work DIR --repository REPO
    compare.py compare --work DIR --target HOST:PORT
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from embedrank.exporter import corpus  # noqa: E402
from tests import checkpoints  # noqa: E402

# name -> (checkpoint, export flags); the gates: fp32 as the exporter's, int8 as its lossy defaults.
MODELS = {
    "minilm": ("minilm", []),
    "minilm-arm64": ("minilm", ["--quantize", "arm64"]),
    "rerank": ("minilm-rerank", []),
    # The seeded random head ranks many near-ties: its gate is top-1 0.8 (measured 0.86 on 200 pairs).
    "rerank-arm64": ("minilm-rerank", ["--quantize", "arm64", "--min-top1", "0.8"]),
}
TEXTS = corpus.parity_texts() + corpus.sentences(24)
QUERIES = corpus.sentences(40)[24:28]
DOCS = corpus.sentences(60)[40:52]


def export(work: Path, repository: Path) -> None:
    sources = {"minilm": str(checkpoints.minilm_path()),
               "minilm-rerank": str(checkpoints.build_cross_encoder(work, real=True))}
    for name, (source, extra) in MODELS.items():
        result = subprocess.run(
            [sys.executable, "-m", "embedrank.cli", "export", sources[source], "--output", str(repository / name),
             "--corpus-size", "200", *extra], capture_output=True, text=True,
        )
        if result.returncode != 0:
            sys.exit(f"arm64-check: export {name} failed on the host:\n{result.stderr[-3000:]}")
        print(f"   exported {name} {' '.join(extra) or '(fp32)'}", flush=True)
    (work / "sources.json").write_text(json.dumps(sources))


def compare(work: Path, target: str) -> int:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from embedrank.client import Client

    sources = json.loads((work / "sources.json").read_text())
    st = SentenceTransformer(sources["minilm"], device="cpu").encode(TEXTS, convert_to_numpy=True)
    ce = CrossEncoder(sources["minilm-rerank"], device="cpu")
    ref_scores = np.array([ce.predict([(q, d) for d in DOCS]) for q in QUERIES])
    figures: dict[str, dict[str, float]] = {}
    bad: list[str] = []
    with Client(target, timeout=600) as client:
        for name in ("minilm", "minilm-arm64"):
            got = client.encode(name, TEXTS)
            cos = (got * st).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(st, axis=1))
            figures[name] = {"texts": len(TEXTS), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
            if (cos.min() if name == "minilm" else cos.mean()) < (0.99999 if name == "minilm" else 0.99):
                bad.append(name)
        for name in ("rerank", "rerank-arm64"):
            scores = np.zeros_like(ref_scores)
            for i, query in enumerate(QUERIES):
                for hit in client.rerank(name, query, DOCS):
                    scores[i, hit.index] = hit.score
            top1 = float((scores.argmax(1) == ref_scores.argmax(1)).mean())
            figures[name] = {"pairs": scores.size, "max_abs_diff": float(np.abs(scores - ref_scores).max()),
                             "top1_agreement": top1}
            if (figures[name]["max_abs_diff"] > 1e-4) if name == "rerank" else top1 < 0.75:
                bad.append(name)
    for name, fig in figures.items():
        print(f"   {name:13s} " + ", ".join(f"{k} {v:.7g}" for k, v in fig.items()))
    (work / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    if bad:
        print(f"arm64-check: FAILED for {', '.join(bad)} (figures above)", file=sys.stderr)
        return 1
    print("arm64-check: OK (served on aarch64 under emulation; fidelity only, not speed)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["export", "compare"])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--repository", type=Path)
    parser.add_argument("--target")
    args = parser.parse_args()
    if args.step == "export":
        export(args.work, args.repository)
        return 0
    return compare(args.work, args.target)


if __name__ == "__main__":
    sys.exit(main())
