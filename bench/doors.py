"""The doors' cost and their refusals (issue 32), over the HTTP port. Prints JSON lines.

  turns      sentences/s (closed loop, --concurrency requests of --batch sentences) and a lone
             sentence's p50 (one request at a time, keep-alive), for each source tree given with
             --tree NAME=SRCROOT (the server's code: e.g. main's checkout and this one), alternated
             over --rounds so that the box's other load hits both alike.
  refusals   --burst requests of --batch texts at once against --max-inflight-inputs 64, again and
             again for --seconds: the latency of the 429 answers (p50/p99) while the admitted ones run,
             as the burst's client saw them (its own work on 64 answers included) and as a prober in a
             process of its own saw them (one sentence at a time, every --probe-gap-ms, on a connection
             it keeps: what a caller arriving while the server is at its cap waits for a 429).

The load client is pinned to one core and the server to the other (``taskset``) when the box has two (--no-pin: not).

    python bench/doors.py turns --repo REPO --tree main=/tmp/main --tree doors=. --rounds 3
    python bench/doors.py refusals --repo REPO --tree doors=.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

SENTENCES = [f"sentence number {i} about a quick brown fox that jumps over the lazy dog" for i in range(4096)]
ROOTS = ("model", "server", "exporter", "cli", "clients/python", "protos/python")


def pcts(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {"n": 0}
    return {"p50_ms": round(ms[len(ms) // 2], 2), "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2),
            "n": len(ms)}


class Server:
    def __init__(self, tree: Path, repo: Path, *args: str, pin: bool = True) -> None:
        env = dict(os.environ, PYTHONPATH=":".join(str(tree / r) for r in ROOTS))
        pin_to = ["taskset", "-c", "1"] if pin and (os.cpu_count() or 1) >= 2 else []
        self.proc = subprocess.Popen(
            [*pin_to, sys.executable, "-m", "embedrank.cli", "serve", "--model-repository", str(repo), "--host",
             "127.0.0.1", "--port", "0", "--http-port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"HTTP listening on http://[\d.]+:(\d+)", line)
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}/v1/embeddings"
                break
        else:
            raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


async def post(session: aiohttp.ClientSession, url: str, texts: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    async with session.post(url, json={"model": "minilm", "input": texts, "encoding_format": "base64"}) as r:
        await r.read()
        return r.status, time.perf_counter() - start


async def throughput(url: str, *, concurrency: int, batch: int, seconds: float) -> float:
    done = 0
    async with aiohttp.ClientSession() as session:
        end = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal done
            i = k * batch
            while time.perf_counter() < end:
                status, _ = await post(session, url, SENTENCES[i % 4000: i % 4000 + batch])
                assert status == 200
                done += batch
                i += concurrency * batch

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done / (time.perf_counter() - start)


async def lone(url: str, n: int, texts: int = 1) -> dict[str, float]:
    """One request of ``texts`` sentences at a time."""
    async with aiohttp.ClientSession() as session:
        for i in range(20):
            await post(session, url, SENTENCES[i:i + texts])
        times = [(await post(session, url, SENTENCES[i:i + texts]))[1] for i in range(n)]
    return pcts(times)


async def refusals(url: str, *, burst: int, batch: int, seconds: float, probe_gap_ms: float) -> dict[str, object]:
    refused: list[float] = []
    ok: list[float] = []
    prober = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "probe", "--url", url, "--seconds", str(seconds), "--probe-gap-ms", str(probe_gap_ms),
        stdout=subprocess.PIPE)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        end = time.perf_counter() + seconds + 1  # the prober starts up meanwhile and stops first
        while time.perf_counter() < end:
            answers = await asyncio.gather(*(post(session, url, SENTENCES[i * batch:(i + 1) * batch]) for i in range(burst)))
            for status, took in answers:
                (ok if status == 200 else refused).append(took)
                assert status in (200, 429), status
    out, _ = await prober.communicate()
    return {"refused": pcts(refused), "ok": pcts(ok), "probe": json.loads(out)}


async def probe(url: str, *, seconds: float, gap_ms: float) -> dict[str, object]:
    """One sentence at a time while the load runs: the 429s and 200s a lone caller gets."""
    took: dict[int, list[float]] = {}
    async with aiohttp.ClientSession() as session:
        await post(session, url, SENTENCES[:1])  # the connection, opened before timing
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            status, t = await post(session, url, SENTENCES[:1])
            took.setdefault(status, []).append(t)
            await asyncio.sleep(gap_ms / 1000)
    return {str(status): pcts(values) for status, values in sorted(took.items())}


def box() -> dict[str, object]:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return {"load": os.getloadavg(), "avx512": "avx512f" in flags, "amx": "amx_tile" in flags,
            "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["turns", "refusals", "probe"])
    ap.add_argument("--repo", type=Path, help="a repository holding minilm")
    ap.add_argument("--tree", action="append", help="NAME=SRCROOT")
    ap.add_argument("--url", help="probe: the server's /v1/embeddings")
    ap.add_argument("--probe-gap-ms", type=float, default=5.0)
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="the client on core 0 and the server on core 1 (--no-pin: both on every core)")
    ap.add_argument("--lone-texts", type=int, action="append", default=[],
                    help="turns: also time lone requests of this many sentences (repeat)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--burst", type=int, default=64)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--server-arg", action="append", default=[], help="a further serve flag (repeat; e.g. "
                    "--server-arg=--small-batch-tokens --server-arg=0)")
    args = ap.parse_args()
    if args.mode == "probe":  # the refusals mode's prober process (on the load client's core)
        print(json.dumps(asyncio.run(probe(args.url, seconds=args.seconds, gap_ms=args.probe_gap_ms))))
        return
    if not args.repo or not args.tree:
        ap.error("--repo and --tree are needed")
    if args.pin and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})  # the load client on core 0, the server on core 1
    trees = [(name, Path(root).resolve()) for name, _, root in (t.partition("=") for t in args.tree)]
    rounds = args.rounds
    for r in range(rounds):
        for name, tree in trees:
            extra = ("--max-inflight-inputs", "64", "--max-inputs-per-request", "64") if args.mode == "refusals" else ()
            server = Server(tree, args.repo, *extra, *args.server_arg, pin=args.pin)
            try:
                if args.mode == "turns":
                    rate = asyncio.run(throughput(server.url, concurrency=args.concurrency, batch=args.batch,
                                                  seconds=args.seconds))
                    result: dict[str, object] = {"sentences_per_s": round(rate, 1),
                                                 "lone": asyncio.run(lone(server.url, args.n))}
                    for texts in args.lone_texts:
                        result[f"lone_{texts}_texts"] = asyncio.run(lone(server.url, args.n, texts))
                else:
                    result = asyncio.run(refusals(server.url, burst=args.burst, batch=args.batch, seconds=args.seconds,
                                                  probe_gap_ms=args.probe_gap_ms))
            finally:
                server.stop()
            print(json.dumps({"mode": args.mode, "round": r, "tree": name, "server_args": args.server_arg, **result,
                              **box()}), flush=True)


if __name__ == "__main__":
    main()
