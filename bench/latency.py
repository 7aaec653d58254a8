"""Latency benchmark of one embedding variant (issues #15, #16). Prints one JSON object.

  lone        one sentence per unary Encode, one at a time, from the Python sync client and (with
              --go-client) the Go client, in rotating blocks (one setting each) with the runtime
              alone in this process on the same graph, threads and tokens: ONNX Runtime with
              spinning on and off (ORT graphs) or the server's own runtime object (OpenVINO graphs).
  loaded      while a second process keeps load on the server: a lone sentence's unary latency
              at --rate sentences/s (half of peak, open loop), and at full load (4 x 32 closed
              loop) unary latency and a stream's first answer (16 requests of 4 texts sent at once).
  refusals    closed loop far over --max-inflight-inputs: latency of the RESOURCE_EXHAUSTED answers.
  idle        CPU of the server process over --seconds while nobody calls it.
  memory      the server's RSS idle and after each of --streams 2,000-sentence encode_stream calls.
  background  (internal) the load for `loaded`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.v1 import embed_pb2, embed_pb2_grpc

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def pcts(latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    return {"p50_ms": round(ms[len(ms) // 2], 2), "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2), "n": len(ms)}


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _runtime_alone(graph: Path, threads: int) -> dict[str, object]:
    """Callables that run one token sequence on the graph alone, by setting."""
    from embedrank.model.manifest import Manifest
    from embedrank.model.runtime.base import TokenSeq

    manifest = Manifest.load(graph)
    out: dict[str, object] = {}
    if manifest.graph.runtime.value == "onnxruntime":
        import onnxruntime as ort

        for label, spin in (("ort_spin", "1"), ("ort_nospin", "0")):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
            if spin == "1":  # as the server does: no spinning left over after a run
                opts.add_session_config_entry("session.force_spinning_stop", "1")
            session = ort.InferenceSession(str(graph / manifest.graph.file), opts, providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]

            def run(ids: np.ndarray, session=session, names=names) -> None:  # type: ignore[no-untyped-def]
                feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
                if "token_type_ids" in names:
                    feed["token_type_ids"] = np.zeros_like(ids)
                session.run(None, feed)

            out[label] = run
    else:
        from embedrank.model.runtime.settings import Device
        from embedrank.model.runtime.select import open_runtime
        from embedrank.model.runtime.settings import RuntimeSettings

        runtime = open_runtime(
            graph / manifest.graph.file, manifest.graph, pad_token_id=manifest.tokenizer.pad_token_id,
            settings=RuntimeSettings(device=Device.CPU, threads=threads, workers=1),
        )
        out["runtime_alone"] = lambda ids: runtime.run([TokenSeq(ids[0], None)])
    return out


BLOCK, SETTLE = 27, 2


def lone(args: argparse.Namespace, sentences: list[str]) -> dict[str, object]:
    """The runtime alone, the Python client and, with --go-client, the Go client on the same texts, in
    blocks whose order rotates, so that a busy moment on the box hits each about alike."""
    from tokenizers import Tokenizer

    graph = Path(args.graph)
    tok = Tokenizer.from_file(str(graph / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    runners: dict[str, Callable[[str], tuple[int, ...] | None]] = {}
    for label, run in _runtime_alone(graph, args.threads).items():
        def alone(text: str, run: Callable[[np.ndarray], None] = run) -> None:
            run(np.asarray([tok.encode(text).ids], dtype=np.int64))
        runners[label] = alone
    client = Client(args.target)

    def python_client(text: str) -> tuple[int, ...]:
        t = client.encode_raw(args.model, [text]).metadata.timing
        return t.tokenize_ns, t.queue_ns, t.inference_ns, t.total_ns

    runners["embedrank"] = python_client
    go = None
    if args.go_client:
        go = subprocess.Popen([args.go_client, args.target, args.model], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)

        def go_client(text: str) -> tuple[int, ...]:
            assert go is not None and go.stdin is not None and go.stdout is not None
            go.stdin.write(json.dumps(text) + "\n")
            call, *timing = (int(x) for x in go.stdout.readline().split())
            return (*timing, call)  # the Go side's own wall time comes last

        runners["embedrank_go"] = go_client
    labels = list(runners)
    # n counted calls: BLOCK - SETTLE of each block after the warm-up
    texts = sentences[: args.warmup + -(-args.n // (BLOCK - SETTLE)) * BLOCK]
    lat: dict[str, list[float]] = {k: [] for k in labels}
    stages: dict[str, list[tuple[int, ...]]] = {k: [] for k in labels}

    def timed(label: str, text: str, keep: bool) -> None:
        t = time.perf_counter()
        got = runners[label](text)
        elapsed = time.perf_counter() - t
        if got is not None and len(got) == 5:  # Go: its own clock, not the pipe's round trip
            elapsed, got = got[4] / 1e9, got[:4]
        if keep:
            lat[label].append(elapsed)
            if got is not None:
                stages[label].append(got)

    # Blocks of BLOCK texts, each setting on its own, their order rotating block by block; the first
    # SETTLE calls of a block are not counted. Taking turns request by request measured each setting
    # slower after another's call: after a Go call the Go runtime's threads keep spinning a while, and
    # ONNX Runtime alone right after a gRPC call ran up to 1 ms slower, on these same 2 cores.
    for b, start in enumerate(range(0, len(texts), BLOCK)):
        block = texts[start : start + BLOCK]
        for label in labels[b % len(labels):] + labels[: b % len(labels)]:
            for i, text in enumerate(block):
                timed(label, text, start + i >= args.warmup and i >= SETTLE)
    client.close()
    if go is not None:
        go.stdin.close()  # type: ignore[union-attr]
        go.wait()
    out: dict[str, object] = {}
    for label in labels:
        res: dict[str, object] = dict(pcts(lat[label]))
        if stages[label]:
            # Where a lone request's time goes (medians of per-request values, ms): the server's
            # own split, and the rest of each request's client-observed time (gRPC both ways,
            # serialization, the client). Per request, since medians of sums do not add up.
            split = np.array([(s[0], s[1], s[2], s[3] - s[0] - s[1] - s[2], x * 1e9 - s[3])
                              for s, x in zip(stages[label], lat[label], strict=True)]) / 1e6
            res["stages_ms"] = {
                name: round(float(v), 3)
                for name, v in zip(("tokenize", "queue", "inference", "server_other", "transport_and_client"),
                                   np.median(split, axis=0), strict=True)
            }
        out[label] = res
    out["grpc_floor"] = _grpc_floor(args.target, gap_s=out["embedrank"]["stages_ms"]["inference"] / 1e3)  # type: ignore[index]
    return out


def _grpc_floor(target: str, *, gap_s: float, n: int = 300) -> dict[str, object]:
    """What any unary gRPC call costs on this box, with no model: grpc.health.v1 Check round trips
    (the same Python sync client and grpc.aio server), back to back and after both processes sat
    idle for ``gap_s`` (a lone Encode's inference): waking sleeping threads and vCPUs after a pause
    is part of every lone request's transport time."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        request = health_pb2.HealthCheckRequest()
        out: dict[str, object] = {"gap_ms": round(gap_s * 1e3, 2)}
        for label, pause in (("back_to_back", 0.0), ("after_gap", gap_s)):
            for _ in range(30):
                check(request)
            lat = []
            for _ in range(n):
                if pause:
                    time.sleep(pause)
                t = time.perf_counter()
                check(request)
                lat.append(time.perf_counter() - t)
            out[label] = pcts(lat)
    return out


def _background(args: argparse.Namespace, mode: str, seconds: float) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "background", "--target", args.target, "--model", args.model,
           "--texts", args.texts, "--seconds", str(seconds), "--bg", mode, "--rate", str(args.rate)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


async def background(args: argparse.Namespace, sentences: list[str]) -> dict[str, object]:
    """Full: 4 requests of 32 in flight. Half: 32-text requests at --rate sentences/s, open loop."""
    deadline = time.perf_counter() + args.seconds
    done = 0
    async with AsyncClient(args.target, timeout=120) as client:
        async def one(i: int) -> None:
            nonlocal done
            start = (i * 32) % (len(sentences) - 32)
            await client.encode(args.model, sentences[start : start + 32])
            done += 32

        if args.bg == "full":
            async def worker(w: int) -> None:
                i = w
                while time.perf_counter() < deadline:
                    await one(i)
                    i += 4
            await asyncio.gather(*(worker(w) for w in range(4)))
        else:
            interval, tasks, i = 32 / args.rate, [], 0
            next_at = time.perf_counter()
            while next_at < deadline:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                tasks.append(asyncio.ensure_future(one(i)))
                i, next_at = i + 1, next_at + interval
            await asyncio.gather(*tasks)
    return {"sentences": done, "sentences_per_s": round(done / args.seconds, 1)}


async def loaded(args: argparse.Namespace, sentences: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    client = Client(args.target)

    def lone_lat(n: int) -> dict[str, float]:
        lat = []
        for text in sentences[100 : 100 + n]:
            t = time.perf_counter()
            client.encode(args.model, [text])
            lat.append(time.perf_counter() - t)
        return pcts(lat)

    # Half of peak: open-loop load at --rate sentences/s.
    bg = _background(args, "half", seconds=args.seconds + 3)
    time.sleep(1.5)
    out["unary_at_half_load"] = lone_lat(args.n_loaded)
    out["half_load_background"] = json.loads(bg.communicate()[0])
    # Full load: unary latency, and a stream's first answer with 16 requests in flight on it.
    bg = _background(args, "full", seconds=args.seconds + 3)
    time.sleep(1.5)
    out["unary_at_full_load"] = lone_lat(args.n_loaded // 2)
    firsts, wholes = [], []
    async with grpc.aio.insecure_channel(args.target) as channel:
        stub = embed_pb2_grpc.EmbedStub(channel)
        for k in range(8):
            requests = [
                embed_pb2.EncodeStreamRequest(id=str(j), request=embed_pb2.EncodeRequest(
                    model=args.model, texts=sentences[200 + 64 * k + 4 * j : 204 + 64 * k + 4 * j]))
                for j in range(16)
            ]
            t = time.perf_counter()
            first = None
            async for resp in stub.EncodeStream(iter(requests), timeout=120):
                assert resp.HasField("response"), resp
                first = first or time.perf_counter() - t
            firsts.append(first or 0.0)
            wholes.append(time.perf_counter() - t)
    out["stream_first_answer_at_full_load"] = pcts(firsts)
    out["stream_whole_at_full_load"] = pcts(wholes)
    out["full_load_background"] = json.loads(bg.communicate()[0])
    client.close()
    return out


async def refusals(args: argparse.Namespace, sentences: list[str]) -> dict[str, object]:
    refused: list[float] = []
    ok = 0
    deadline = time.perf_counter() + args.seconds
    async with AsyncClient(args.target, timeout=120) as client:
        async def worker(w: int) -> None:
            nonlocal ok
            i = w
            while time.perf_counter() < deadline:
                start = (i * 32) % (len(sentences) - 32)
                t = time.perf_counter()
                try:
                    await client.encode(args.model, sentences[start : start + 32])
                    ok += 1
                except EmbedRankError as exc:
                    assert exc.code.name == "RESOURCE_EXHAUSTED", exc
                    refused.append(time.perf_counter() - t)
                    await asyncio.sleep(0.005)
                i += args.concurrency
        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
    return {"accepted": ok, "refused": pcts(refused) if refused else {"n": 0}}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def memory(args: argparse.Namespace, sentences: list[str]) -> dict[str, object]:
    """RSS of the server idle, then after each of --streams encode_stream calls of 2,000 sentences."""
    texts = (sentences * 2)[:2000]
    idle_mb = rss_mb(args.server_pid)
    after, rates = [], []
    async with AsyncClient(args.target, timeout=600) as client:
        for _ in range(args.streams):
            t = time.perf_counter()
            await client.encode_stream(args.model, texts)
            rates.append(2000 / (time.perf_counter() - t))
            await asyncio.sleep(1.5)  # the server goes idle and hands freed memory back
            after.append(round(rss_mb(args.server_pid), 1))
    return {"idle_mb": round(idle_mb, 1), "after_mb": after, "max_growth_mb": round(max(after) - idle_mb, 1),
            "texts_per_s": round(float(np.median(rates)), 1)}


def idle(args: argparse.Namespace) -> dict[str, object]:
    time.sleep(2)
    start = proc_cpu_s(args.server_pid)
    time.sleep(args.seconds)
    return {"seconds": args.seconds, "cpu_pct_of_one_core": round(100 * (proc_cpu_s(args.server_pid) - start) / args.seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["lone", "loaded", "refusals", "idle", "memory", "background"])
    ap.add_argument("--streams", type=int, default=10, help="memory: 2,000-text streams")
    ap.add_argument("--target", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--texts", default="")
    ap.add_argument("--graph", help="lone: the variant's version folder (REPO/NAME/N)")
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4), help="lone: as the server's runtime")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--n-loaded", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--go-client", default="", help="lone: the bench/golone binary, to time the Go client too")
    ap.add_argument("--rate", type=float, default=100.0, help="loaded: sentences/s of the half-load background")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--bg", default="full", choices=["full", "half"])
    ap.add_argument("--server-pid", type=int, default=0)
    args = ap.parse_args()
    sentences: list[str] = []
    if args.texts:
        with open(args.texts, encoding="utf-8") as fh:
            sentences = json.load(fh)["sentences"]
    if args.mode == "lone":
        result = lone(args, sentences)
    elif args.mode == "idle":
        result = idle(args)
    else:
        modes = {"loaded": loaded, "refusals": refusals, "memory": memory, "background": background}
        result = asyncio.run(modes[args.mode](args, sentences))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
