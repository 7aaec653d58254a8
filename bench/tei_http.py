"""TEI's POST /embed beside OpenAI's POST /v1/embeddings and gRPC Encode on one server (issue 33), in turns.

  throughput  sentences/s with 4 requests of 32 sentences in flight (closed loop): gRPC Encode (AsyncClient),
              /v1/embeddings (float JSON) and /embed (TEI: a bare [[f32]] array), both through one aiohttp
              session with keep-alive and read with orjson; rounds rotate the three; also the server
              process's CPU time per sentence on each path
  lone        one sentence per request, one at a time: gRPC (sync Client), /v1/embeddings and /embed
              (http.client, keep-alive); p50 / p99 over --n each, in blocks of 10 per path, the three
              in rotating order (the same sentences on each path)

Every answer is checked (rows, dimensions). Prints one JSON object; records the date, CPU flags and load.
    python bench/tei_http.py --model-repository REPO --model minilm [--seconds 4] [--rounds 4] [--n 400]
Target (issue 33): the TEI route within 5% of the OpenAI route.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_vs_grpc import Server, closed_loop, pcts, proc_cpu_s, started  # noqa: E402

from embedrank.client import AsyncClient, Client  # noqa: E402
from embedrank.exporter import corpus  # noqa: E402

ROUTES = {"openai": "/v1/embeddings", "tei": "/embed"}
BLOCK = 10  # lone requests in a row on one path


def body(route: str, model: str, texts: list[str] | str) -> bytes:
    if route == "openai":
        return orjson.dumps({"model": model, "input": texts, "encoding_format": "float"})
    return orjson.dumps({"model": model, "inputs": texts})


def rows(route: str, raw: bytes) -> np.ndarray:
    data = orjson.loads(raw)
    if route == "openai":
        return np.array([d["embedding"] for d in data["data"]], dtype=np.float32)
    return np.array(data, dtype=np.float32)


async def throughput(server: Server, model: str, pool: list[str], *, seconds: float, rounds: int,
                     batch: int, concurrency: int, dims: int) -> dict[str, Any]:
    import aiohttp

    def texts(i: int) -> list[str]:
        start = (i * batch) % len(pool)
        return (pool + pool)[start: start + batch]

    base = f"http://127.0.0.1:{server.http_port}"
    names = ("grpc", "openai", "tei")
    out: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name in names}  # server CPU seconds, sentences
    async with AsyncClient(server.grpc, timeout=120) as client, aiohttp.ClientSession() as session:
        async def grpc_call(i: int) -> int:
            assert (await client.encode(model, texts(i))).shape == (batch, dims)
            return batch

        def http_call(route: str) -> Any:
            async def call(i: int) -> int:
                async with session.post(base + ROUTES[route], data=body(route, model, texts(i)),
                                        headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 200, await r.text()
                    assert rows(route, await r.read()).shape == (batch, dims)
                return batch
            return call

        calls = {"grpc": grpc_call, "openai": http_call("openai"), "tei": http_call("tei")}
        for call in calls.values():  # warm up every path (and the model) once
            await closed_loop(1.0, concurrency, call)
        for r in range(rounds):
            order = names[r % 3:] + names[: r % 3]  # each path first in turn
            for name in order:
                before = proc_cpu_s(server.proc.pid)
                done, elapsed = await closed_loop(seconds, concurrency, calls[name])
                cpu[name][0] += proc_cpu_s(server.proc.pid) - before
                cpu[name][1] += done
                out[name].append(round(done / elapsed, 1))
    result: dict[str, Any] = {
        k: {"sentences_s": v, "mean": round(sum(v) / len(v), 1),
            "server_cpu_ms_per_sentence": round(cpu[k][0] * 1000 / max(1.0, cpu[k][1]), 3)}
        for k, v in out.items()
    }
    result["tei_vs_openai"] = round(result["tei"]["mean"] / result["openai"]["mean"], 3)
    result["tei_cpu_vs_openai"] = round(
        result["tei"]["server_cpu_ms_per_sentence"] / result["openai"]["server_cpu_ms_per_sentence"], 3)
    return result


def lone(server: Server, model: str, pool: list[str], *, n: int, dims: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {"grpc": [], "openai": [], "tei": []}
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port)
    headers = {"Content-Type": "application/json"}

    def http_one(route: str, text: str) -> None:
        conn.request("POST", ROUTES[route], body=body(route, model, text), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        assert response.status == 200, raw
        assert rows(route, raw).shape == (1, dims)

    with Client(server.grpc, timeout=30) as client:
        def one(which: str, text: str) -> None:
            if which == "grpc":
                assert client.encode(model, [text]).shape == (1, dims)
            else:
                http_one(which, text)

        for i in range(50):  # warm up all three
            for which in lat:
                one(which, pool[i])
        names = list(lat)
        # Blocks of BLOCK requests, one path each, the three in rotating order: each path sees the same
        # moments of a shared machine, and none always follows another (request-by-request turns slowed
        # whichever path ran after a gRPC call: docs/benchmarks-latency.md).
        for b in range(0, n, BLOCK):
            k = b // BLOCK
            for which in names[k % 3:] + names[: k % 3]:
                for i in range(b, min(n, b + BLOCK)):
                    t = time.perf_counter()
                    one(which, pool[i % len(pool)])
                    lat[which].append(time.perf_counter() - t)
    conn.close()
    result: dict[str, Any] = {k: pcts(v) for k, v in lat.items()}
    result["tei_minus_openai_p50_ms"] = round(result["tei"]["p50_ms"] - result["openai"]["p50_ms"], 3)
    pairs = sorted(t - o for t, o in zip(lat["tei"], lat["openai"]))  # the same sentence on each
    result["tei_minus_openai_paired_median_ms"] = round(pairs[len(pairs) // 2] * 1000, 3)
    # The server's own mean time per request (arrival to answer), warm-up included.
    result["server_mean_ms"] = server.server_seconds()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-repository", type=Path, required=True)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=400, help="lone requests per path")
    args = ap.parse_args()
    pool = corpus.sentences()
    server = Server(args.model_repository)
    try:
        dims, result = started(server, args.model)
        result["lone"] = lone(server, args.model, pool, n=args.n, dims=dims)
        result["throughput_4x32"] = asyncio.run(throughput(
            server, args.model, pool, seconds=args.seconds, rounds=args.rounds, batch=32, concurrency=4, dims=dims
        ))
        result["load_after"] = os.getloadavg()
    finally:
        server.stop()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
