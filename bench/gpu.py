"""The embedrank benchmark on a GPU (issue #9): bash bench/run.sh --device cuda

all-MiniLM-L6-v2 (the packaged checkpoint), sentences and paragraphs, every figure in texts/s:

- embedrank over gRPC on loopback, fp32 (O2) and fp16 (O4), `embedrank serve --device cuda` with
  its CUDA defaults: --batch texts per request, --concurrency requests in flight; again with
  --processes N and 2N client processes; one sentence unary p50/p99 after warm-up;
- sentence-transformers in-process on CUDA, fp32 and fp16 (model.half()), batches of 32 and 256;
- ONNX Runtime alone with the CUDA provider on the same graphs, length-sorted batches of --batch;
- GPU memory (nvidia-smi, sampled every 0.5 s; torch's counters for sentence-transformers), the
  machine and the date; writes docs/benchmarks-gpu.md with the issue's acceptance figures.

--smoke-cpu runs the same steps on the CPU provider with tiny windows and small batches and writes
.cache/bench/work/benchmarks-gpu.md: it checks the code path, its figures are no GPU figures.
Everything it makes lives under .cache/bench/ (repo-gpu/, work/gpu-*).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (minilm_path, write_texts, exporter_stamp, the CPU run's exports)

ROOT, CACHE, WORK = bench.ROOT, bench.CACHE, bench.WORK
REPO = CACHE / "repo-gpu"
PY = sys.executable  # the venv at home, the GPU machine's python3 (+ carried wheels) there

# model name -> export flags (no fidelity pass: the run measures its own cosines to ST fp32).
VARIANTS = {"minilm": [], "minilm-fp16": ["--optimize", "O4"]}


def log(msg: str) -> None:
    print(f"[bench-gpu {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def nvidia_smi(*query: str) -> list[list[str]] | None:
    """Rows of an nvidia-smi CSV query, or None where nvidia-smi is missing or fails."""
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", *query, "--format=csv,noheader,nounits"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return [[f.strip() for f in line.split(",")] for line in out.stdout.strip().splitlines() if line.strip()]


def check_cuda() -> None:
    """Stop at once, in one line, where this run cannot use a GPU."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SystemExit(f"bench --device cuda: onnxruntime-gpu is missing (onnxruntime {ort.__version__} has "
                         f"{', '.join(ort.get_available_providers())}): pip uninstall -y onnxruntime && pip install onnxruntime-gpu")
    gpus = nvidia_smi("--query-gpu=name")
    if gpus is None:
        try:
            import torch

            gpus = [[torch.cuda.get_device_name(i)] for i in range(torch.cuda.device_count())]
        except ImportError:
            gpus = []
    if not gpus:
        raise SystemExit("bench --device cuda: no CUDA device (nvidia-smi lists no GPU); run it on a GPU machine, "
                         "or --smoke-cpu to check the code path on the CPU")


class GpuMemory:
    """Peak GPU memory while a phase runs: the whole GPU (memory.used) and per process, MiB."""

    def __init__(self, label: str, results: dict) -> None:
        self.label, self.results = label, results
        self.stop = threading.Event()
        self.base = self._total()
        self.peak_total: float | None = self.base
        self.per_pid: dict[int, float] = {}

    @staticmethod
    def _total() -> float | None:
        rows = nvidia_smi("--query-gpu=memory.used")
        return float(rows[0][0]) if rows else None

    def _sample(self) -> None:
        while not self.stop.wait(0.5):
            total = self._total()
            if total is not None:
                self.peak_total = max(self.peak_total or 0.0, total)
            for row in nvidia_smi("--query-compute-apps=pid,used_memory") or []:
                try:
                    pid, mib = int(row[0]), float(row[1])
                except ValueError:  # "[N/A]" where the driver does not report per process
                    continue
                self.per_pid[pid] = max(self.per_pid.get(pid, 0.0), mib)

    def __enter__(self) -> GpuMemory:
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.results[self.label] = {
            "baseline_mib": self.base, "peak_total_mib": self.peak_total,
            "peak_over_baseline_mib": None if self.base is None or self.peak_total is None else self.peak_total - self.base,
            "peak_per_process_mib": {str(k): v for k, v in self.per_pid.items()},
        }


def prepare_models(smoke: bool) -> Path:
    """Export fp32 (O2) and fp16 (O4) into REPO; the smoke run borrows the CPU benchmark's fp32 export."""
    stamp = bench.exporter_stamp()
    stamp_file = REPO / ".stamp"
    if REPO.exists() and (not stamp_file.exists() or stamp_file.read_text().strip() != stamp):
        log("the exporter changed since the last export: exporting again")
        shutil.rmtree(REPO)
    REPO.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp + "\n")
    src = bench.minilm_path()
    borrowed = bench.REPO / "minilm"
    for name, flags in VARIANTS.items():
        if list((REPO / name).glob("*/manifest.json")):
            continue
        if smoke and not flags and (bench.REPO / ".stamp").exists() and (bench.REPO / ".stamp").read_text().strip() == stamp \
                and list(borrowed.glob("*/manifest.json")):
            log(f"{name}: the CPU benchmark's export ({borrowed})")
            shutil.copytree(borrowed, REPO / name, copy_function=os.link)
            continue
        log(f"exporting {name} ({' '.join(flags) or 'default: O2 fp32'})")
        t = time.time()
        with open(WORK / f"gpu-export-{name}.log", "a") as out:
            code = subprocess.run([PY, "-m", "embedrank.cli", "export", str(src), "--output", str(REPO / name),
                                   "--no-fidelity", *flags], stdout=out, stderr=subprocess.STDOUT).returncode
        if code != 0:
            raise SystemExit(f"export of {name} failed; see {WORK / f'gpu-export-{name}.log'}")
        log(f"  done in {time.time() - t:.0f}s")
    return src


def version_dir(name: str) -> Path:
    return bench.version_dir(name, REPO)


def load(target: str, texts: Path, mode: str, model: str, **opts: object) -> dict:
    return json.loads(subprocess.run(load_cmd(target, texts, mode, model, **opts), check=True, capture_output=True,
                                     text=True).stdout)


def load_cmd(target: str, texts: Path, mode: str, model: str, **opts: object) -> list[str]:
    cmd = [PY, str(HERE / "load.py"), mode, "--target", target, "--model", model, "--texts", str(texts)]
    for key, value in opts.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd


def one_process(cfg: argparse.Namespace, texts: Path, flags: list[str]) -> dict:
    log(f"embedrank serve --device {cfg.device} {' '.join(flags)} (loading, warming every bucket)")
    t = time.time()
    server = bench.Server(["--device", cfg.device, *flags], repo=REPO, name="gpu-server", serving=True, timeout=600)
    out: dict = {"flags": flags, "start_s": round(time.time() - t, 1)}
    log(f"  SERVING on {server.target} after {out['start_s']}s")
    try:
        for name in VARIANTS:
            res: dict = {}
            for kind in ("sentences", "paragraphs"):
                log(f"embedrank {name}: {kind}, {cfg.concurrency} x {cfg.batch} in flight")
                res[kind] = load(server.target, texts, "encode", name, kind=kind, batch=cfg.batch,
                                 concurrency=cfg.concurrency, seconds=cfg.seconds, server_pid=server.proc.pid)
            log(f"embedrank {name}: one sentence, unary, {cfg.latency_n} after {cfg.latency_warmup} warm-up")
            res["unary"] = load(server.target, texts, "encode-latency", name, n=cfg.latency_n, warmup=cfg.latency_warmup)
            dump = WORK / f"gpu-embedrank-{name}.npy"
            load(server.target, texts, "dump", name, n=cfg.fidelity_n, out=dump)
            res["dump"] = str(dump)
            out[name] = res
    finally:
        server.stop()
    return out


def many_processes(cfg: argparse.Namespace, texts: Path, flags: list[str]) -> dict:
    """--processes N: connections spread over the processes by the kernel, so 2N clients, one channel each."""
    flags = ["--processes", str(cfg.processes), *flags]
    clients, per_client = 2 * cfg.processes, max(1, cfg.concurrency // 2)
    log(f"embedrank serve --device {cfg.device} {' '.join(flags)}")
    t = time.time()
    server = bench.Server(["--device", cfg.device, *flags], repo=REPO, name="gpu-server", serving=True, timeout=600)
    out: dict = {"flags": flags, "clients": clients, "per_client_in_flight": per_client, "start_s": round(time.time() - t, 1)}
    try:
        for name in VARIANTS:
            res: dict = {}
            for kind in ("sentences", "paragraphs"):
                log(f"embedrank {name} x{cfg.processes} processes: {kind}, {clients} clients x {per_client} x {cfg.batch}")
                start_at = time.time() + 8 + 0.5 * clients  # after every client's start and warm-up
                procs = [subprocess.Popen(load_cmd(server.target, texts, "encode", name, kind=kind, batch=cfg.batch,
                                                   concurrency=per_client, seconds=cfg.seconds, start_at=start_at),
                                          stdout=subprocess.PIPE, text=True) for _ in range(clients)]
                each = []
                for p in procs:
                    stdout, _ = p.communicate()
                    if p.returncode != 0:
                        raise SystemExit(f"a load client failed ({p.returncode}); see {WORK / 'gpu-server.log'}")
                    each.append(json.loads(stdout))
                res[kind] = {"items_per_s": round(sum(e["items_per_s"] for e in each), 1),
                             "p50_ms_max": max(e["p50_ms"] for e in each), "p99_ms_max": max(e["p99_ms"] for e in each),
                             "clients": each}
            out[name] = res
    finally:
        server.stop()
    return out


def ceiling(cfg: argparse.Namespace, texts: Path) -> dict:
    log(f"ONNX Runtime alone ({cfg.device}), length-sorted batches of {cfg.batch}")
    run = subprocess.run([PY, str(HERE / "ceiling.py"), "--repo", str(REPO), "--texts", str(texts), "--models",
                          ",".join(VARIANTS), "--threads", "1", "--batch", str(cfg.batch), "--seconds", str(cfg.seconds),
                          "--device", cfg.device, "--kinds", "sentences,paragraphs"],
                         check=True, capture_output=True, text=True)
    raw = json.loads(run.stdout)
    return {name: {"sentences": raw[f"{name}@1"], "paragraphs": raw[f"{name}@1/paragraphs"]} for name in VARIANTS}


def st(cfg: argparse.Namespace, texts: Path, src: Path) -> dict:
    log(f"sentence-transformers in-process ({cfg.device}): fp32, fp16 x batches {cfg.st_batches}")
    with open(WORK / "gpu-st.log", "w") as err:
        run = subprocess.run([PY, str(HERE / "gpu_st.py"), "--texts", str(texts), "--model", str(src), "--device", cfg.device,
                              "--batch-sizes", cfg.st_batches, "--chunk", str(cfg.batch * cfg.concurrency),
                              "--seconds", str(cfg.seconds), "--latency-n", str(cfg.latency_n),
                              "--fidelity-n", str(cfg.fidelity_n), "--dump-dir", str(WORK)],
                             check=True, stdout=subprocess.PIPE, stderr=err, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def cosines(ref_path: str, path: str) -> dict[str, float]:
    return bench.cosines(np.load(ref_path), path)


def environment(cfg: argparse.Namespace) -> dict:
    import onnxruntime as ort

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    sha = os.environ.get("EMBEDRANK_GIT_SHA", "")  # the GPU machine gets a copy of the tree without .git
    if not sha and shutil.which("git"):
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    versions = {}
    for dist in ("onnxruntime-gpu", "onnxruntime", "tokenizers", "grpcio", "protobuf", "numpy", "torch", "transformers",
                 "sentence-transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    gpu = nvidia_smi("--query-gpu=name,driver_version,memory.total")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "smoke_cpu": cfg.smoke_cpu, "device": cfg.device,
        "gpu": [{"name": g[0], "driver": g[1], "memory_mib": g[2]} for g in gpu] if gpu else None,
        "ort_module": f"{ort.__version__} ({ort.__file__})", "ort_providers": ort.get_available_providers(),
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "embedrank_sha": sha or "unknown",
        "versions": versions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cuda"], help="the GPU run (bench/run.sh --device cuda)")
    ap.add_argument("--smoke-cpu", action="store_true", help="the same steps on the CPU provider, tiny windows (~3 min)")
    ap.add_argument("--seconds", type=float, help="measured window of each throughput run (default 8; smoke 1.5)")
    ap.add_argument("--batch", type=int, help="texts per Encode request and ORT batch (default 256; smoke 16)")
    ap.add_argument("--concurrency", type=int, help="Encode requests in flight, one process (default 16; smoke 2)")
    ap.add_argument("--processes", type=int, help="server processes of the second run (default 4; smoke 2)")
    ap.add_argument("--st-batches", help="sentence-transformers batch sizes (default 32,256; smoke 8,16)")
    ap.add_argument("--latency-n", type=int, help="unary one-sentence requests timed (default 1000; smoke 30)")
    ap.add_argument("--gpu-mem-limit-mb", type=int, default=0,
                    help="passed to serve when set; 0 = its default, sized from each model (4 x file + 1 GiB)")
    ap.add_argument("--out", type=Path, help="report (default docs/benchmarks-gpu.md; smoke .cache/bench/work/benchmarks-gpu.md)")
    cfg = ap.parse_args()
    smoke = cfg.smoke_cpu
    defaults = dict(seconds=1.5, batch=16, concurrency=2, processes=2, st_batches="8,16", latency_n=30) if smoke else \
        dict(seconds=8.0, batch=256, concurrency=16, processes=4, st_batches="32,256", latency_n=1000)
    for key, value in defaults.items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    cfg.latency_warmup = 20 if smoke else 200
    cfg.fidelity_n = 64 if smoke else 1000
    cfg.device = "cpu" if smoke else "cuda"
    if cfg.out is None:
        cfg.out = WORK / "benchmarks-gpu.md" if smoke else ROOT / "docs" / "benchmarks-gpu.md"
    if not smoke:
        check_cuda()

    started = time.time()
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "gpu-server.log").unlink(missing_ok=True)
    results: dict = {"env": environment(cfg), "memory": {}}
    results["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}
    src = prepare_models(smoke)
    texts = bench.write_texts()
    results["models"] = {name: {"dir": str(version_dir(name)), "onnx_mib": round((version_dir(name) / "model.onnx").stat().st_size / 2**20, 1),
                                "precision": json.loads((version_dir(name) / "manifest.json").read_text())["graph"].get("precision")}
                         for name in VARIANTS}
    # The arena bound each server process holds per model: the flag, or serve's default sized from the file.
    results["gpu_mem_limit_mib"] = {name: cfg.gpu_mem_limit_mb or int(4 * m["onnx_mib"] + 1024) for name, m in results["models"].items()}
    flags = ["--allow-fp16-on-cpu"] if smoke else []
    if cfg.gpu_mem_limit_mb:
        flags += ["--gpu-mem-limit-mb", str(cfg.gpu_mem_limit_mb)]
    with GpuMemory("embedrank_1_process", results["memory"]):
        results["embedrank"] = one_process(cfg, texts, flags)
    with GpuMemory(f"embedrank_{cfg.processes}_processes", results["memory"]):
        results["embedrank_processes"] = many_processes(cfg, texts, flags)
    with GpuMemory("ort_alone", results["memory"]):
        results["ort_alone"] = ceiling(cfg, texts)
    with GpuMemory("sentence_transformers", results["memory"]):
        results["st"] = st(cfg, texts, src)
    ref = results["st"]["dtypes"]["fp32"]["dump"]
    results["cosine_to_st_fp32"] = {f"embedrank {name}": cosines(ref, results["embedrank"][name]["dump"]) for name in VARIANTS}
    results["cosine_to_st_fp32"]["sentence-transformers fp16"] = cosines(ref, results["st"]["dtypes"]["fp16"]["dump"])
    results["elapsed_s"] = round(time.time() - started)
    raw = WORK / "gpu-results.json"
    raw.write_text(json.dumps(results, indent=1))
    log(f"measurements done in {results['elapsed_s']}s; raw results in {raw}")

    import report_gpu

    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    report_gpu.write(results, cfg.out)
    log(f"wrote {cfg.out}")


if __name__ == "__main__":
    main()
