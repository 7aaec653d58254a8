"""The latency section of docs/benchmarks.md (issues #15, #16), from bench/latency.py's results."""

from __future__ import annotations

from collections.abc import Callable


def _pp(x: dict | None) -> str:
    return f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f}" if x and x.get("n") else "–"


def render(r: dict, w: Callable[[str], None], embed_names: list[str]) -> None:
    er = r["embedrank"]
    rows = [n for n in embed_names if n in er and "lone" in er[n]]
    if not rows:
        return
    w("## Latency\n")
    w("One pydoc sentence per unary `Encode`, one request at a time over loopback, from the Python sync client and "
      "from the Go client, in blocks of 25 sentences (each setting on its own) whose order rotates, beside "
      "the runtime alone on the very same graph, thread count and tokens in the benchmark process (ONNX Runtime with its threads spinning, "
      "stopped when a run returns — its fastest setting here — and without spinning; for OpenVINO graphs the "
      "server's own runtime object); 300 sentences each. The target (#27): the service's p50 over the runtime "
      "alone's fastest p50 ≤ 1.0 ms from the Go client and ≤ 1.2 ms from the Python client, p99 ≤ 2.5 × p50.\n")
    w("| variant | runtime alone, fastest p50 / p99 | ORT spinning off p50 / p99 | Python client p50 / p99 | over "
      "runtime ms | Go client p50 / p99 | over runtime ms | target |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")
    for name in rows:
        lone = er[name]["lone"]
        alone = [v for k, v in lone.items() if not k.startswith("embedrank") and k != "grpc_floor"]
        fastest = min(alone, key=lambda v: v["p50_ms"])
        cells, misses = [], []
        for key, label, limit in (("embedrank", "Python", 1.2), ("embedrank_go", "Go", 1.0)):
            mine = lone.get(key)
            if not mine:
                cells += ["–", "–"]
                continue
            over, ratio = mine["p50_ms"] - fastest["p50_ms"], mine["p99_ms"] / mine["p50_ms"]
            cells += [_pp(mine), f"{over:+.2f}"]
            if over > limit:
                misses.append(f"{label} +{over:.2f} ms")
            if ratio > 2.5:
                misses.append(f"{label} p99 {ratio:.1f}× p50")
        verdict = "met" if not misses else "**missed**: " + ", ".join(misses)
        w(f"| `{name}` | {_pp(fastest)} | {_pp(lone.get('ort_nospin'))} | {' | '.join(cells)} | {verdict} |")
    w("\nWhat was tried to shorten it (uvloop, a sync server, gRPC settings, the client's channel options, the "
      "tokenizer call), each measured in turns, and why none was kept: [runtime-notes.md](runtime-notes.md), "
      "\"A lone query: what was tried\".\n")
    w("Where a lone request's time goes (medians of per-request values, ms): the server's own split from "
      "`Metadata.timing`, and the rest of the time the client saw (gRPC both ways, protobuf, the client):\n")
    w("| variant | client | tokenize | queue | inference | other server work | transport + client | total |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in rows:
        for key, label in (("embedrank", "Python"), ("embedrank_go", "Go")):
            st = er[name]["lone"].get(key, {}).get("stages_ms")
            if st:
                w(f"| `{name}` | {label} | {st['tokenize']:.3f} | {st['queue']:.3f} | {st['inference']:.3f} | "
                  f"{st['server_other']:.3f} | {st['transport_and_client']:.3f} | {sum(st.values()):.2f} |")
    floors = [(n, er[n]["lone"]["grpc_floor"]) for n in rows if "grpc_floor" in er[n]["lone"]]
    if floors:
        w("\nThe floor under \"transport + client\": a `grpc.health.v1` Check (no model, same client and server) "
          "back to back, and after both sides sat idle for as long as that variant's inference (a lone request's "
          "threads and vCPUs fall asleep while the model runs, and waking them is paid on the way back):\n")
        w("| variant | Check back to back p50 / p99 ms | Check after an idle gap p50 / p99 ms | gap ms |")
        w("|---|---:|---:|---:|")
        for name, fl in floors:
            w(f"| `{name}` | {_pp(fl['back_to_back'])} | {_pp(fl['after_gap'])} | {fl['gap_ms']:.2f} |")
    loaded = [n for n in rows if "loaded" in er[n]]
    if loaded:
        w("\nUnder load (a second process drives the server): a lone sentence at half of the peak rate (open loop, "
          "32-text requests), and at full load (4 × 32 texts closed loop) a lone sentence and a stream's **first "
          "answer** with 16 requests of 4 texts in flight on it (#15: a stream's head is not starved by its tail):\n")
        w("| variant | half load: sentences/s | unary p50 / p99 ms | full load: unary p50 / p99 ms | "
          "stream first answer p50 / p99 ms | whole 16-request stream p50 ms |")
        w("|---|---:|---:|---:|---:|---:|")
        for name in loaded:
            ld = er[name]["loaded"]
            w(f"| `{name}` | {ld['half_load_background']['sentences_per_s']:.0f} | {_pp(ld['unary_at_half_load'])} | "
              f"{_pp(ld['unary_at_full_load'])} | {_pp(ld['stream_first_answer_at_full_load'])} | "
              f"{ld['stream_whole_at_full_load']['p50_ms']:.0f} |")
    ref = r.get("refusals")
    if ref:
        w(f"\nOver-cap refusals (#15, #27): a server with `--max-inflight-inputs 256`, 16 requests of 32 texts in flight "
          f"for {r['config']['seconds']:.0f} s; admission runs before tokenizing. Target: p99 ≤ 5 ms.\n")
        w("| arrangement | accepted | refused | refused p50 / p99 ms | target |")
        w("|---|---:|---:|---:|---|")
        for label, what in (("shared", "server and load client on every core"),
                            ("own_cores", "load client on cores of its own")):
            got = ref.get(label)
            if got:
                where = f" (server CPUs {got['server_cpus']}, client {got['client_cpus']})" if "server_cpus" in got else ""
                p99 = got["refused"].get("p99_ms")
                verdict = "–" if p99 is None else ("met" if p99 <= 5 else f"**missed** by {p99 - 5:.1f} ms")
                w(f"| {what}{where} | {got['accepted']} | {got['refused']['n']} | {_pp(got['refused'])} | {verdict} |")
    idle = r.get("idle")
    if idle:
        w(f"\nIdle: the server process used **{idle['cpu_pct_of_one_core']:.2f}% of one core** over "
          f"{idle['seconds']:.0f} s with no calls (target < 1%): the spinning session stops spinning when a run returns.")
    mem = r.get("memory")
    if mem:
        w(f"\nMemory (#12): the server process (every variant loaded) held {mem['idle_mb']:.0f} MB idle; after each of "
          f"{len(mem['after_mb'])} 2,000-sentence `encode_stream` calls on `minilm` (at {mem['texts_per_s']:.0f} texts/s): "
          f"{', '.join(f'{x:.0f}' for x in mem['after_mb'])} MB — at most **{mem['max_growth_mb']:+.0f} MB** over idle "
          "(target ≤ 100 MB; ONNX Runtime's CPU arena is off and freed memory is handed back when idle).")
    w("")
