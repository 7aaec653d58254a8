"""HTTP beside gRPC on one server (issue 26): the same model, the same process, in turns.

  throughput  sentences/s with 4 requests of 32 sentences in flight (closed loop): gRPC Encode
              (AsyncClient) vs POST /v1/embeddings (aiohttp client, keep-alive; float JSON read
              with orjson, and base64); rounds alternate gRPC, HTTP float, HTTP base64; also the
              server process's CPU time per sentence on each path
  lone        one sentence per request, one at a time: gRPC Encode (sync Client) vs
              POST /v1/embeddings (http.client, keep-alive, float JSON); p50 / p99 over --n each,
              one of each in turn (and the median of the paired differences); plus the `openai`
              SDK's p50 for reference (its own cost included)

Every answer is checked (rows, dimensions). Prints one JSON object.
    python bench/http_vs_grpc.py --model-repository REPO --model minilm [--seconds 4] [--rounds 4] [--n 600]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from embedrank.client import AsyncClient, Client
from embedrank.exporter import corpus


def pcts(latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    return {"p50_ms": round(ms[len(ms) // 2], 3), "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 3),
            "n": len(ms)}


class Server:
    def __init__(self, repo: Path, *extra: str) -> None:
        extra = ("--metrics-port", "0", *extra)
        work = Path(tempfile.mkdtemp(prefix="embedrank-httpbench-"))
        port_file = work / "port"
        self.log_path = work / "server.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "embedrank.cli", "serve", "--model-repository", str(repo), "--host",
             "127.0.0.1", "--port", "0", "--http-port", "0", "--port-file", str(port_file), *extra],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log_path.read_text())
            time.sleep(0.1)
        self.grpc = f"127.0.0.1:{int(port_file.read_text())}"
        found = re.search(r"HTTP listening on http://[\d.]+:(\d+)", self.log_path.read_text())
        assert found, self.log_path.read_text()
        self.http_port = int(found.group(1))

    def server_seconds(self) -> dict[str, float]:
        """Mean server-side time per request (ms), by rpc label, from /metrics."""
        import urllib.request

        found = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", self.log_path.read_text())
        assert found
        text = urllib.request.urlopen(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=10).read().decode()
        sums = dict(re.findall(r'embedrank_request_duration_seconds_sum\{rpc="([^"]+)"\} (\S+)', text))
        counts = dict(re.findall(r'embedrank_request_duration_seconds_count\{rpc="([^"]+)"\} (\S+)', text))
        return {rpc: round(float(sums[rpc]) / float(counts[rpc]) * 1000, 3) for rpc in sums if float(counts[rpc])}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used, all threads."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def closed_loop(seconds: float, concurrency: int, call: Any) -> tuple[int, float]:
    """Items done and seconds taken by ``concurrency`` callers, each calling as soon as its last answer came."""
    done = 0
    end = time.monotonic() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        i = k
        while time.monotonic() < end:
            done += await call(i)
            i += concurrency

    start = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done, time.monotonic() - start


async def throughput(server: Server, model: str, pool: list[str], *, seconds: float, rounds: int,
                     batch: int, concurrency: int, dims: int) -> dict[str, Any]:
    import aiohttp

    def texts(i: int) -> list[str]:
        start = (i * batch) % len(pool)
        return (pool + pool)[start: start + batch]

    url = f"http://127.0.0.1:{server.http_port}/v1/embeddings"
    out: dict[str, list[float]] = {"grpc": [], "http_float": [], "http_base64": []}
    cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name in out}  # server CPU seconds, sentences
    async with AsyncClient(server.grpc, timeout=120) as client, aiohttp.ClientSession() as session:
        async def grpc_call(i: int) -> int:
            vectors = await client.encode(model, texts(i))
            assert vectors.shape == (batch, dims)
            return batch

        def http_call(encoding: str) -> Any:
            async def call(i: int) -> int:
                body = orjson.dumps({"model": model, "input": texts(i), "encoding_format": encoding})
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 200, await r.text()
                    data = orjson.loads(await r.read())["data"]
                if encoding == "base64":
                    vectors = np.frombuffer(b"".join(base64.b64decode(d["embedding"]) for d in data), dtype="<f4")
                    vectors = vectors.reshape(len(data), -1)
                else:
                    vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
                assert vectors.shape == (batch, dims)
                return batch
            return call

        calls = {"grpc": grpc_call, "http_float": http_call("float"), "http_base64": http_call("base64")}
        for name, call in calls.items():  # warm up every path (and the model) once
            await closed_loop(1.0, concurrency, call)
        for _ in range(rounds):
            for name, call in calls.items():
                before = proc_cpu_s(server.proc.pid)
                done, elapsed = await closed_loop(seconds, concurrency, call)
                cpu[name][0] += proc_cpu_s(server.proc.pid) - before
                cpu[name][1] += done
                out[name].append(round(done / elapsed, 1))
    result: dict[str, Any] = {
        k: {"sentences_s": v, "mean": round(sum(v) / len(v), 1),
            # The server's CPU per sentence: what a CPU-bound server's throughput is the inverse of, and
            # much less moved than sentences/s by other jobs on a shared machine.
            "server_cpu_ms_per_sentence": round(cpu[k][0] * 1000 / max(1.0, cpu[k][1]), 3)}
        for k, v in out.items()
    }
    for name in ("http_float", "http_base64"):
        result[name]["vs_grpc"] = round(result[name]["mean"] / result["grpc"]["mean"], 3)
        result[name]["cpu_vs_grpc"] = round(
            result[name]["server_cpu_ms_per_sentence"] / result["grpc"]["server_cpu_ms_per_sentence"], 3
        )
    return result


def lone(server: Server, model: str, pool: list[str], *, n: int, dims: int) -> dict[str, Any]:
    grpc_lat: list[float] = []
    http_lat: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port)
    headers = {"Content-Type": "application/json"}

    def http_one(text: str) -> None:
        conn.request("POST", "/v1/embeddings", body=orjson.dumps({"model": model, "input": text}), headers=headers)
        response = conn.getresponse()
        data = orjson.loads(response.read())
        assert response.status == 200, data
        vector = np.array(data["data"][0]["embedding"], dtype=np.float32)
        assert vector.shape == (dims,)

    with Client(server.grpc, timeout=30) as client:
        for i in range(50):  # warm up both
            client.encode(model, [pool[i]])
            http_one(pool[i])
        # One request of each in turn: both see the same moments of a shared machine.
        for i in range(n):
            text = pool[i % len(pool)]
            first, second = ("grpc", "http") if i % 2 else ("http", "grpc")
            for which in (first, second):
                t = time.perf_counter()
                if which == "grpc":
                    vector = client.encode(model, [text])
                    grpc_lat.append(time.perf_counter() - t)
                    assert vector.shape == (1, dims)
                else:
                    http_one(text)
                    http_lat.append(time.perf_counter() - t)
    conn.close()
    result: dict[str, Any] = {"grpc": pcts(grpc_lat), "http": pcts(http_lat)}
    result["http_minus_grpc_p50_ms"] = round(result["http"]["p50_ms"] - result["grpc"]["p50_ms"], 3)
    # The median of the paired differences (request i over HTTP minus request i over gRPC).
    pairs = sorted(h - g for h, g in zip(http_lat, grpc_lat))
    result["paired_median_diff_ms"] = round(pairs[len(pairs) // 2] * 1000, 3)
    # The server's own mean time per request (arrival to answer), warm-up included, SDK calls not.
    result["server_mean_ms"] = server.server_seconds()
    try:
        from openai import OpenAI
    except ImportError:
        return result
    sdk = OpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="unused")
    sdk_lat = []
    for i in range(min(n, 300) + 20):
        t = time.perf_counter()
        got = sdk.embeddings.create(model=model, input=pool[i % len(pool)], encoding_format="float")
        if i >= 20:
            sdk_lat.append(time.perf_counter() - t)
        assert len(got.data[0].embedding) == dims
    sdk.close()
    result["openai_sdk_float"] = pcts(sdk_lat)
    return result


def started(server: Server, model: str) -> tuple[int, dict[str, Any]]:
    """The model's dimensions, and what a result records first: date, CPU, its flags, cores, load."""
    with Client(server.grpc) as client:
        dims = int(client.encode(model, ["x"]).shape[1])
    cpuinfo = open("/proc/cpuinfo", encoding="ascii").read().splitlines()
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    return dims, {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?"),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))),
        "cores": len(os.sched_getaffinity(0)),
        "load_before": os.getloadavg(),
        "model": model,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-repository", type=Path, required=True)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n", type=int, default=600, help="lone requests per transport")
    args = ap.parse_args()
    pool = corpus.sentences()
    server = Server(args.model_repository)
    try:
        dims, result = started(server, args.model)
        result["lone"] = lone(server, args.model, pool, n=args.n, dims=dims)
        result["throughput_4x32"] = asyncio.run(throughput(
            server, args.model, pool, seconds=args.seconds, rounds=args.rounds, batch=32, concurrency=4, dims=dims
        ))
    finally:
        server.stop()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
