"""The one real check of external data (not in CI): a random XLM-R large checkpoint (BGE-M3's shape: vocab
250002, hidden 1024, 24 layers, ~568 M parameters, 2.27 GB fp32) saved as a sentence-transformers model
(mean pooling + Normalize), exported with the defaults (auto must pick model.onnx.data), served once and
compared with sentence-transformers. Figures: README.md, "Models past 2 GB: external data".

    nice .venv/bin/python bench/external_data.py /tmp/big [--int8]

Needs ~12 GB of RAM and ~10 GB of disk in the output folder; takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(out: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoModel, XLMRobertaConfig

    from tests.checkpoints import _xlmr_tokenizer

    path = out / "xlmr-large-random"
    if (path / "modules.json").is_file():
        return path
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                              intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                              bos_token_id=0, eos_token_id=2)
    hf_dir = out / "xlmr-large-hf"
    AutoModel.from_config(config).save_pretrained(hf_dir)
    _xlmr_tokenizer(512, vocab=4000).save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=512)
    dim = transformer.get_word_embedding_dimension()
    SentenceTransformer(modules=[transformer, models.Pooling(dim, "mean"), models.Normalize()], device="cpu").save(str(path))
    return path


def _rss_gib(pid: int, field: str = "VmRSS") -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(found.group(1)) / 2**20 if found else 0.0


def timed(argv: list[str], log: Path) -> dict[str, object]:
    """Run ``argv`` under /usr/bin/time -v; wall seconds, peak RSS (GiB) and the peak RSS of each export step
    (sampled every second)."""
    per_step: dict[str, float] = {}
    with open(log, "w") as fh:
        proc = subprocess.Popen(["/usr/bin/time", "-v", *argv], stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            steps = re.findall(r"^\[(\d)/6\]", log.read_text(), re.M)
            step = steps[-1] if steps else "0"
            if pids:
                per_step[step] = round(max(per_step.get(step, 0.0), _rss_gib(int(pids[0]))), 2)
            time.sleep(1)
        code = proc.returncode
    text = log.read_text()
    if code != 0:
        raise SystemExit(f"{argv[:4]} failed ({code}); see {log}:\n{text[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)  # type: ignore[union-attr]
    seconds = sum(float(p) * 60**i for i, p in enumerate(reversed(wall.split(":"))))
    return {"wall_s": round(seconds, 1), "peak_rss_gib": round(rss / 2**20, 2), "peak_rss_gib_by_step": per_step}


def files(version: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(version.iterdir())}


def serve_and_compare(repo: Path, ckpt: Path, names: list[str], out: Path) -> dict[str, object]:
    from sentence_transformers import SentenceTransformer

    from embedrank.client import Client
    from embedrank.exporter import corpus

    texts = corpus.parity_texts() + corpus.sentences(40) + corpus.paragraphs(8)
    ref = SentenceTransformer(str(ckpt), device="cpu").encode(texts, batch_size=8)
    port_file = out / "port"
    port_file.unlink(missing_ok=True)
    log = out / "serve.log"
    fh = open(log, "w")  # noqa: SIM115
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "embedrank.cli", "serve", "--model-repository",
                             str(repo), "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)],
                            stdout=fh, stderr=subprocess.STDOUT)
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None:
            raise SystemExit(f"server failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    ready_s = time.monotonic() - start
    result: dict[str, object] = {"serve_ready_s": round(ready_s, 1)}
    with Client(f"127.0.0.1:{port_file.read_text().strip()}") as client:
        for name in names:
            t = time.monotonic()
            got = client.encode(name, texts)
            cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
            result[name] = {"texts": len(texts), "min_cos": float(cos.min()), "mean_cos": float(cos.mean()),
                            "encode_s": round(time.monotonic() - t, 1)}
    result["serve_rss_gib"] = round(_rss_gib(proc.pid), 2)
    result["serve_peak_rss_gib"] = round(_rss_gib(proc.pid, "VmHWM"), 2)
    result["load_log"] = [line[24:] for line in log.read_text().splitlines() if " ready in " in line]
    proc.terminate()
    proc.wait(60)
    fh.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--int8", action="store_true", help="also export --quantize avx2 (--corpus-size 200)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                 "load_before": os.getloadavg()}
    t = time.monotonic()
    ckpt = build(args.out)
    report["build_s"] = round(time.monotonic() - t, 1)
    report["checkpoint_bytes"] = sum(p.stat().st_size for p in ckpt.rglob("*.safetensors"))
    repo = args.out / "repo"
    cli = [sys.executable, "-m", "embedrank.cli"]
    names = ["big"]
    if not (repo / "big" / "1").is_dir():
        report["export"] = timed([*cli, "export", str(ckpt), "--output", str(repo / "big")], args.out / "export.log")
    report["files"] = files(repo / "big" / "1")
    report["manifest_graph"] = json.loads((repo / "big" / "1" / "manifest.json").read_text())["graph"]
    if args.int8:
        names.append("big-int8")
        if not (repo / "big-int8" / "1").is_dir():
            report["export_int8"] = timed([*cli, "export", str(ckpt), "--output", str(repo / "big-int8"), "--quantize",
                                           "avx2", "--corpus-size", "200"], args.out / "export-int8.log")
        report["files_int8"] = files(repo / "big-int8" / "1")
    report["serve"] = serve_and_compare(repo, ckpt, names, args.out)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=1, default=str))
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
