"""Load generator: drives a running embedrank server over gRPC with the Python AsyncClient.

Runs in its own process (the main venv), prints one JSON object on stdout. Modes:

  encode          closed loop: --concurrency requests in flight, --batch texts each, for --seconds
                  (--kind documents --long-input chunk: whole long documents, chunked by the server)
  encode-latency  one text a request, one request at a time, --n requests after --warmup
  rerank          closed loop: --concurrency requests of --docs documents each, for --seconds
  rerank-latency  one request of --docs documents at a time, --n requests after --warmup
  dump            embeddings of the first --n sentences, saved to --out (.npy), for fidelity

Server CPU is read from /proc/<--server-pid>/stat around the measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import numpy as np

from embedrank.client import AsyncClient

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int | None) -> float:
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_cpu_s() -> float:
    """CPU seconds used by everything on the machine (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


class Window:
    """Wall time and CPU time (this process and the server) of the measured part."""

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid

    def __enter__(self) -> Window:
        self.t0, self.c0, self.s0 = time.perf_counter(), time.process_time(), proc_cpu_s(self.pid)
        self.m0 = machine_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client_cpu = 100 * (time.process_time() - self.c0) / self.wall
        self.server_cpu = 100 * (proc_cpu_s(self.pid) - self.s0) / self.wall if self.pid else None
        self.machine_cpu = 100 * (machine_cpu_s() - self.m0) / self.wall

    def result(self, **extra: object) -> dict[str, object]:
        return {"seconds": round(self.wall, 3), "client_cpu_pct": round(self.client_cpu, 1),
                "server_cpu_pct": None if self.server_cpu is None else round(self.server_cpu, 1),
                "machine_cpu_pct": round(self.machine_cpu, 1), **extra}


def percentiles(latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(pick(0.99), 2), "mean_ms": round(statistics.fmean(ms), 2)}


async def closed_loop(seconds: float, concurrency: int, call) -> tuple[int, list[float]]:  # type: ignore[no-untyped-def]
    """``concurrency`` workers call ``call(i)`` (returns items done) back to back until ``seconds`` pass."""
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    done, latencies = 0, []

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            n = await call(next(counter))
            latencies.append(time.perf_counter() - t)
            done += n

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, latencies


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["encode", "encode-latency", "rerank", "rerank-latency", "dump"])
    ap.add_argument("--target", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True, help="texts.json written by bench.py")
    ap.add_argument("--kind", default="sentences", choices=["sentences", "paragraphs", "documents"])
    ap.add_argument("--long-input", default="", choices=["", "truncate", "chunk"], help="Encode's long_input")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--docs", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--out")
    ap.add_argument("--start-at", type=float, default=0.0,
                    help="encode/rerank: begin the measured window at this Unix time (several clients at once)")
    args = ap.parse_args()
    with open(args.texts, encoding="utf-8") as fh:
        pools = json.load(fh)

    async with AsyncClient(args.target, timeout=120) as client:
        if args.mode == "dump":
            texts = pools["sentences"][: args.n]
            parts = [await client.encode(args.model, texts[i : i + 64]) for i in range(0, len(texts), 64)]
            np.save(args.out, np.concatenate(parts))
            print(json.dumps({"rows": len(texts)}))
            return

        if args.mode.startswith("encode"):
            pool = pools[args.kind]
            size = args.batch if args.mode == "encode" else 1
            timing = {"tokenize_ns": [], "queue_ns": [], "inference_ns": [], "total_ns": []}
            tokens: list[int] = []
            extra = {"long_input": args.long_input} if args.long_input else {}

            async def call(i: int) -> int:
                start = (i * size) % len(pool)
                texts = (pool + pool)[start : start + size]
                resp = await client.encode_raw(args.model, texts, **extra)
                for key, values in timing.items():
                    values.append(getattr(resp.metadata.timing, key))
                tokens.append(resp.metadata.tokens)
                assert resp.embeddings.rows == len(texts)
                return len(texts)
        else:
            queries, docs = pools["queries"], pools["docs"]

            async def call(i: int) -> int:
                start = (i * args.docs) % len(docs)
                batch = (docs + docs)[start : start + args.docs]
                hits = await client.rerank(args.model, queries[i % len(queries)], batch)
                assert len(hits) == len(batch)
                return len(batch)

        latency_mode = args.mode.endswith("latency")
        if latency_mode:
            for i in range(args.warmup):
                await call(i)
        else:
            await asyncio.gather(*(call(i) for i in range(args.concurrency)))
        if args.mode.startswith("encode"):
            for values in timing.values():
                values.clear()
            tokens.clear()
        if args.start_at:
            await asyncio.sleep(max(0.0, args.start_at - time.time()))
        with Window(args.server_pid) as win:
            if latency_mode:
                latencies = []
                for i in range(args.n):
                    t = time.perf_counter()
                    await call(i)
                    latencies.append(time.perf_counter() - t)
                done = args.n * (1 if args.mode == "encode-latency" else args.docs)
            else:
                done, latencies = await closed_loop(args.seconds, args.concurrency, call)
        out = win.result(items=done, items_per_s=round(done / win.wall, 1), requests=len(latencies), **percentiles(latencies))
        if args.mode.startswith("encode"):
            # Where a request's time goes, as the server reports it (mean ms per request).
            out["server_ms"] = {k.removesuffix("_ns"): round(statistics.fmean(v) / 1e6, 2) for k, v in timing.items()}
            out["tokens_per_s"] = round(sum(tokens) / win.wall, 1)  # fed to the model (all chunks)
        print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
