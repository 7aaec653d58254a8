"""Which async HTTP stack for --http-port (issue 26): each candidate serves the same tiny route on
an event loop that also runs a grpc.aio server (as embedrank's does), in its own process; one
client process measures it. No model: what is measured is the stack's own cost per request.

  route   POST /e  {"input": "..."} -> an OpenAI-shaped answer holding one 384-float vector
          (orjson with numpy rows: the encoder picked for the server; see json_encoders below)
  lone    one request at a time, keep-alive: p50 / p99 latency
  load    4 callers, closed loop: requests/s (median over the rounds)

All three run at once; the client takes them in turn, --rounds times, so that each sees the same
moments of a shared machine.

Also times the JSON encoders on a 1 x 384 and a 32 x 384 float32 answer (best of 5). Prints one JSON object.
    python bench/http_stacks.py [--seconds 2] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np
import orjson

STACKS = ("aiohttp", "starlette-uvicorn-httptools", "starlette-uvicorn-h11")
VECTOR = (np.random.default_rng(0).standard_normal(384) * 0.05).astype(np.float32)


def _answer(vector: np.ndarray) -> bytes:
    return orjson.dumps(
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}], "model": "m",
         "usage": {"prompt_tokens": 3, "total_tokens": 3}},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


async def _serve(stack: str, port: int) -> None:
    import grpc

    grpc_server = grpc.aio.server()
    grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    if stack == "aiohttp":
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = orjson.loads(await request.read())
            assert isinstance(body["input"], str)
            return web.Response(body=_answer(VECTOR), content_type="application/json")

        app = web.Application()
        app.router.add_post("/e", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()
    else:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        async def endpoint(request: Request) -> Response:
            body = orjson.loads(await request.body())
            assert isinstance(body["input"], str)
            return Response(_answer(VECTOR), media_type="application/json")

        app = Starlette(routes=[Route("/e", endpoint, methods=["POST"])])
        http = "httptools" if stack.endswith("httptools") else "h11"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", http=http, access_log=False,
                                log_level="warning", lifespan="off")
        await uvicorn.Server(config).serve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _measure(ports: dict[str, int], seconds: float, rounds: int) -> dict[str, Any]:
    """Every stack in turn, ``rounds`` times (the order rotating), so that all see the same moments
    of a shared machine; medians over the rounds."""
    import aiohttp

    body = orjson.dumps({"input": "a lone sentence to embed", "model": "m"})
    lone: dict[str, list[float]] = {s: [] for s in ports}
    load: dict[str, list[float]] = {s: [] for s in ports}
    async with aiohttp.ClientSession() as session:
        async def post(stack: str) -> None:
            async with session.post(f"http://127.0.0.1:{ports[stack]}/e", data=body) as r:
                orjson.loads(await r.read())

        for stack in ports:  # warm up, and wait for the servers
            for _ in range(200):
                try:
                    await post(stack)
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        order = list(ports)
        for r in range(rounds):
            for stack in order[r % len(order):] + order[: r % len(order)]:
                end = time.monotonic() + seconds / 2
                while time.monotonic() < end:
                    t = time.perf_counter()
                    await post(stack)
                    lone[stack].append(time.perf_counter() - t)
                done = 0
                end = time.monotonic() + seconds / 2

                async def caller() -> None:
                    nonlocal done
                    while time.monotonic() < end:
                        await post(stack)
                        done += 1

                start = time.monotonic()
                await asyncio.gather(*(caller() for _ in range(4)))
                load[stack].append(done / (time.monotonic() - start))
    out: dict[str, Any] = {}
    for stack in ports:
        ms = sorted(x * 1000 for x in lone[stack])
        rates = sorted(load[stack])
        out[stack] = {"lone_p50_ms": round(ms[len(ms) // 2], 3), "lone_p99_ms": round(ms[int(0.99 * len(ms))], 3),
                      "load_req_s_median": round(rates[len(rates) // 2], 1), "load_req_s": [round(x) for x in load[stack]]}
    return out


def json_encoders() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    matrix = (np.random.default_rng(1).standard_normal((32, 384)) * 0.05).astype(np.float32)
    cases = {
        "json.dumps(tolist)": lambda m: json.dumps([r.tolist() for r in m]).encode(),
        "orjson(tolist)": lambda m: orjson.dumps([r.tolist() for r in m]),
        "orjson(numpy rows)": lambda m: orjson.dumps(list(m), option=orjson.OPT_SERIALIZE_NUMPY),
        "base64 rows + orjson": lambda m: orjson.dumps([base64.b64encode(r.tobytes()).decode() for r in m]),
    }
    for rows in (1, 32):
        m = matrix[:rows]
        for name, fn in cases.items():
            n = max(10, 500 // rows)
            fn(m)
            best = float("inf")
            for _ in range(5):  # the best of 5: the machine is shared
                t = time.perf_counter()
                for _ in range(n):
                    fn(m)
                best = min(best, (time.perf_counter() - t) / n)
            out.setdefault(f"{rows}x384", {})[name] = round(best * 1e6, 1)
    return out  # microseconds per answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per stack and round: half lone, half load")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--serve", choices=STACKS)
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.port))
        return
    results: dict[str, Any] = {"json_encode_us": json_encoders()}
    ports = {stack: _free_port() for stack in STACKS}
    procs = [subprocess.Popen([sys.executable, __file__, "--serve", stack, "--port", str(port)])
             for stack, port in ports.items()]
    try:
        results.update(asyncio.run(_measure(ports, args.seconds, args.rounds)))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
