"""What tracing costs (issue 34): one model, three servers, measured in turns.

  off        no --otlp-endpoint (the SDK is not imported)
  sample0    --otlp-endpoint, OTEL_TRACES_SAMPLER=always_off: every request's span is dropped at once
  all        --otlp-endpoint, every request sampled (the SDK's default), exported to a receiver
  today      (with --baseline-python) the server of another checkout, e.g. main's, as it was before

The receiver is a gRPC server implementing the collector's TraceService/Export, in its own process (its
CPU is not the server's). Measured:

  throughput  sentences/s, closed loop: --concurrency requests of --batch sentences in flight for
              --seconds; rounds rotate the three servers
  lone        one sentence per request, one at a time, the three servers one request each in turn;
              p50 / p90 over --n each

Prints one JSON object.
    python bench/otel_cost.py --model-repository REPO --model minilm [--seconds 4] [--rounds 4] [--n 600]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from embedrank.client import AsyncClient
from embedrank.v1 import embed_pb2, embed_pb2_grpc

WORDS = ("the search index returns a ranked list of documents for every query the user types while a "
         "model embeds each sentence into a vector that captures its meaning across many languages").split()


def cpu_s(pid: int) -> float:
    """The process's CPU time (user + system), all its threads: less sensitive to a busy box than wall time."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24))) for _ in range(n)]


def receiver_main() -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
        spans = 0

        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            Receiver.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(), server)
    print(server.add_insecure_port("127.0.0.1:0"), flush=True)
    server.start()
    sys.stdin.read()  # until the bench closes it
    print(Receiver.spans, flush=True)


def start_server(repo: str, flags: list[str], env: dict[str, str], log: Path,
                 python: str = sys.executable) -> tuple[subprocess.Popen[str], str]:
    port_file = Path(tempfile.mktemp(prefix="otel-bench-port-"))
    proc = subprocess.Popen(
        [python, "-m", "embedrank.cli", "serve", "--model-repository", repo, "--host", "127.0.0.1", "--port",
         "0", "--port-file", str(port_file), "--model-poll-s", "0", *flags],
        stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, env={**os.environ, **env},
    )
    deadline = time.monotonic() + 180
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{int(port_file.read_text())}"


async def throughput(target: str, model: str, texts: list[str], *, batch: int, concurrency: int, seconds: float) -> float:
    done = 0
    async with AsyncClient(target) as client:
        await client.encode(model, texts[:batch])  # warm the connection
        stop = time.monotonic() + seconds

        async def worker(i: int) -> None:
            nonlocal done
            k = i * batch
            while time.monotonic() < stop:
                chunk = [texts[(k + j) % len(texts)] for j in range(batch)]
                k += batch * concurrency
                out = await client.encode(model, chunk)
                assert out.shape[0] == batch
                done += batch

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.monotonic() - start)


def lone(targets: dict[str, str], model: str, texts: list[str], n: int) -> dict[str, dict[str, float]]:
    stubs = {name: embed_pb2_grpc.EmbedStub(grpc.insecure_channel(t)) for name, t in targets.items()}
    for stub in stubs.values():
        for text in texts[:30]:
            stub.Encode(embed_pb2.EncodeRequest(model=model, texts=[text]))
    times: dict[str, list[float]] = {name: [] for name in stubs}
    order = list(stubs)
    for i in range(n):
        text = texts[i % len(texts)]
        order = order[1:] + order[:1]  # who goes first rotates
        for name in order:
            start = time.perf_counter()
            out = stubs[name].Encode(embed_pb2.EncodeRequest(model=model, texts=[text]))
            times[name].append((time.perf_counter() - start) * 1e3)
            assert out.embeddings.rows == 1
    return {name: {"p50_ms": round(statistics.median(t), 3), "p90_ms": round(statistics.quantiles(t, n=10)[8], 3)}
            for name, t in times.items()}


def metric(target_log: Path, name: str) -> float:
    port = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", target_log.read_text())
    if not port:
        return float("nan")
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10).read().decode()
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return sum(float(v) for v in found)


def main() -> None:
    if sys.argv[1:] == ["--receiver"]:
        receiver_main()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-repository", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--server-flag", action="append", default=[], help="extra serve flag (repeatable)")
    ap.add_argument("--baseline-python", help="python of another checkout (e.g. /work/main/.venv/bin/python): 'today'")
    cfg = ap.parse_args()

    receiver = subprocess.Popen([sys.executable, __file__, "--receiver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None and receiver.stdin is not None
    collector = f"http://127.0.0.1:{receiver.stdout.readline().strip()}"
    logs = Path(tempfile.mkdtemp(prefix="otel-bench-"))
    common = ["--metrics-port", "0", *cfg.server_flag]
    servers: dict[str, tuple[subprocess.Popen[str], str]] = {}
    try:
        servers["off"] = start_server(cfg.model_repository, common, {}, logs / "off.log")
        servers["sample0"] = start_server(cfg.model_repository, [*common, "--otlp-endpoint", collector],
                                          {"OTEL_TRACES_SAMPLER": "always_off"}, logs / "sample0.log")
        servers["all"] = start_server(cfg.model_repository, [*common, "--otlp-endpoint", collector],
                                      {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, logs / "all.log")
        if cfg.baseline_python:
            servers["today"] = start_server(cfg.model_repository, common, {}, logs / "today.log", cfg.baseline_python)
        targets = {name: t for name, (_, t) in servers.items()}
        texts = sentences(2000)
        load_before = os.getloadavg()
        rates: dict[str, list[float]] = {name: [] for name in targets}
        cpu_per_sentence: dict[str, list[float]] = {name: [] for name in targets}
        order = list(targets)
        for _ in range(cfg.rounds):
            for name in order:
                pid, before, start = servers[name][0].pid, cpu_s(servers[name][0].pid), time.monotonic()
                rate = asyncio.run(throughput(targets[name], cfg.model, texts, batch=cfg.batch,
                                              concurrency=cfg.concurrency, seconds=cfg.seconds))
                rates[name].append(rate)
                cpu_per_sentence[name].append((cpu_s(pid) - before) / (rate * (time.monotonic() - start)) * 1e3)
            order = order[1:] + order[:1]
        lone_cpu = {name: cpu_s(proc.pid) for name, (proc, _) in servers.items()}
        latency = lone(targets, cfg.model, texts, cfg.n)
        for name, (proc, _) in servers.items():  # warm-up (30) + n requests each
            latency[name]["server_cpu_ms_per_request"] = round((cpu_s(proc.pid) - lone_cpu[name]) / (cfg.n + 30) * 1e3, 3)
        load_after = os.getloadavg()
        dropped = metric(logs / "all.log", "embedrank_trace_spans_dropped_total")
        exported = metric(logs / "all.log", "embedrank_trace_spans_exported_total")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(30)
        receiver.stdin.close()
        received = receiver.stdout.read().strip()
        receiver.wait(10)
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpus": os.cpu_count(),
        "cpu_flags": [f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")],
        "loadavg_before": load_before, "loadavg_after": load_after,
        "model": cfg.model, "batch": cfg.batch, "concurrency": cfg.concurrency, "seconds": cfg.seconds,
        "throughput_sentences_s": {name: {"rounds": [round(r, 1) for r in v], "median": round(statistics.median(v), 1)}
                                   for name, v in rates.items()},
        "server_cpu_ms_per_sentence": {name: round(statistics.median(v), 3) for name, v in cpu_per_sentence.items()},
        "lone": latency, "spans_exported": exported, "spans_dropped": dropped, "spans_received": received,
    }, indent=1))


if __name__ == "__main__":
    main()
