"""The doors hold (issue 32): no client, slow or hostile, holds a connection, the drain or a token
check open. Raw sockets against a live server on port 0, on both ports; the timeouts are short
flags here (1-2 s) so that the whole file stays fast.

Findings of the issue, each with its test: 1 slow clients (slowloris, stalled body, idle keep-alive,
too many connections); 2 SIGTERM with stalled clients open; 3 Expect: 100-continue over the limit;
4 bearer scheme, several tokens, SIGHUP; 5 Content-Type; 6 protocol errors in the JSON shape;
7 the drain's /health; 8 refusals before the body is read.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from embedrank.client import Client
from embedrank.v1 import embed_pb2, embed_pb2_grpc
from tests import h2frames
from tests.conftest import ServerProcess

TOKENS = ("first-token", "second-token")
HEAD_S = 1.0
BODY_S = 1.0
IDLE_S = 2.0
MAX_CONNECTIONS = 24


def http_port(proc: ServerProcess) -> int:
    found = re.search(r"HTTP listening on http://[\d.]+:(\d+)", proc.output())
    assert found, proc.output()[-3000:]
    return int(found.group(1))


@pytest.fixture(scope="module")
def token_file(workdir: Path) -> Path:
    path = workdir / "doors-tokens"
    path.write_text("# one a line\n" + "\n".join(TOKENS) + "\n")
    return path


def _serve(tiny_repo: Path, workdir: Path, *args: str) -> ServerProcess:
    repo = workdir / f"doors-{time.monotonic_ns()}"
    shutil.copytree(tiny_repo / "tiny-bert", repo / "tiny-bert")
    return ServerProcess(repo, "--http-port", "0", "--head-timeout-s", str(HEAD_S), "--body-timeout-s", str(BODY_S),
                         "--idle-timeout-s", str(IDLE_S), *args)


@pytest.fixture(scope="module")
def server(tiny_repo: Path, workdir: Path, token_file: Path) -> Iterator[ServerProcess]:
    with _serve(tiny_repo, workdir, "--auth-token-file", str(token_file), "--max-message-mb", "1",
                "--max-connections", str(MAX_CONNECTIONS)) as proc:
        yield proc


@pytest.fixture(scope="module")
def port(server: ServerProcess) -> int:
    return http_port(server)


BODY = b'{"model":"tiny-bert","input":"hello"}'
AUTH = b"Authorization: Bearer first-token\r\n"


def post_head(body_length: int, *, extra: bytes = b"", content_type: bytes = b"application/json") -> bytes:
    return (b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\n" + AUTH + b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: %d\r\n" % body_length + extra + b"\r\n")


def exchange(port: int, data: bytes, *, wait: float = 10.0) -> tuple[bytes, float, bool]:
    """Send ``data``; what came back until the server closed (or ``wait``), how long, and whether it closed."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        out, closed = _read_until_closed(sock, start + wait)
    return out, time.monotonic() - start, closed


def _read_until_closed(sock: socket.socket, until: float) -> tuple[bytes, bool]:
    out = b""
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, socket.timeout):
            return out, False
        except ConnectionResetError:
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def status_and_error(raw: bytes) -> tuple[int, dict[str, object], str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"], head.decode("latin-1").lower()


# --- 1. slow clients --------------------------------------------------------------------------------


def test_slowloris_head_is_answered_408_and_closed(port: int) -> None:
    head = post_head(len(BODY))
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for i in range(len(head)):  # a byte every 0.1 s: the head would take seconds
            try:
                sock.sendall(head[i:i + 1])
            except OSError:
                break
            time.sleep(0.1)
            if time.monotonic() - start > HEAD_S + 2:
                break
        out, closed = _read_until_closed(sock, time.monotonic() + 5)
    status, error, _ = status_and_error(out)
    assert closed and status == 408 and error["type"] == "timeout_error" and "--head-timeout-s" in str(error["message"])
    assert time.monotonic() - start < HEAD_S + 3


def test_stalled_body_is_answered_408_and_closed(port: int) -> None:
    out, took, closed = exchange(port, post_head(1_000_000) + b'{"model": "tiny-bert", "inp')
    status, error, head = status_and_error(out)
    assert closed and status == 408 and "--body-timeout-s" in str(error["message"]) and "connection: close" in head
    assert BODY_S <= took < BODY_S + 3


def test_a_slow_body_that_keeps_coming_is_served(port: int) -> None:
    """The body timeout is between reads, not for the whole body."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post_head(len(BODY)))
        for i in range(0, len(BODY), 12):  # 4 pieces, 0.6 s apart: 1.8 s in all, > --body-timeout-s
            time.sleep(0.6)
            sock.sendall(BODY[i:i + 12])
        sock.settimeout(10)
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_idle_keepalive_connections_are_closed(port: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    try:
        for sock in socks:  # one request each, then nothing: keep-alive connections
            sock.sendall(post_head(len(BODY)) + BODY)
            sock.settimeout(10)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        until = time.monotonic() + IDLE_S + 3
        assert all(_read_until_closed(sock, until)[1] for sock in socks)
    finally:
        for sock in socks:
            sock.close()


def test_connections_past_the_cap_are_refused_at_once(port: int) -> None:
    held = []
    try:
        for _ in range(MAX_CONNECTIONS + 4):
            sock = socket.create_connection(("127.0.0.1", port))
            held.append(sock)
        time.sleep(0.3)
        refused = []
        for sock in held:
            out, closed = _read_until_closed(sock, time.monotonic() + 0.05)
            if closed:
                refused.append(out)
        assert len(refused) >= 4
        status, error, _ = status_and_error(refused[-1])
        assert status == 503 and "--max-connections" in str(error["message"])
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    out, _, _ = exchange(port, post_head(len(BODY), extra=b"Connection: close\r\n") + BODY)
    assert out.startswith(b"HTTP/1.1 200")  # closed ones free their places


def test_a_refused_request_keeps_its_connection_and_its_body_is_no_head(port: int) -> None:
    """415 from the head alone: the body that follows is dropped, the connection serves the next
    request, and stays open (no 408 for the body's bytes) until the idle timeout."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post_head(len(BODY), content_type=b"text/plain"))
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 415")
        sock.sendall(BODY)  # the refused request's body, late
        time.sleep(HEAD_S + 0.5)  # longer than a head may take: these bytes were not one
        sock.sendall(post_head(len(BODY)) + BODY)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


# --- 3. Expect: 100-continue ------------------------------------------------------------------------


def test_expect_continue_over_the_limit_is_413_without_100(port: int) -> None:
    out, took, _ = exchange(port, post_head(9 * 1024 * 1024, extra=b"Expect: 100-continue\r\n"), wait=3)
    assert not out.startswith(b"HTTP/1.1 100"), out[:200]
    status, error, head = status_and_error(out)
    assert status == 413 and "--max-message-mb" in str(error["message"]) and "connection: close" in head


def test_expect_continue_within_the_limit_gets_100_then_the_answer(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post_head(len(BODY), extra=b"Expect: 100-continue\r\n"))
        sock.settimeout(5)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


# --- 4. bearer tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive_on_both_ports(server: ServerProcess, port: int, scheme: str) -> None:
    for token in TOKENS:  # either token of the file
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", content=BODY,
                            headers={"Authorization": f"{scheme} {token}", "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        with grpc.insecure_channel(server.target) as channel:
            stub = embed_pb2_grpc.EmbedStub(channel)
            reply = stub.Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"]),
                                metadata=[("authorization", f"{scheme} {token}")], timeout=30)
            assert reply.embeddings.dimensions > 0


@pytest.mark.parametrize("value", ["Bearer wrong", "Basic Zmlyc3QtdG9rZW4=", "first-token", "Bearer", ""])
def test_wrong_credentials_are_refused_on_both_ports(server: ServerProcess, port: int, value: str) -> None:
    headers = {"Content-Type": "application/json", **({"Authorization": value} if value else {})}
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", content=BODY, headers=headers)
    assert answer.status_code == 401 and answer.json()["error"]["type"] == "authentication_error"
    with grpc.insecure_channel(server.target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            embed_pb2_grpc.EmbedStub(channel).Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"]),
                                                      metadata=[("authorization", value)] if value else None, timeout=30)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_tokens_rotate_on_sighup(tiny_repo: Path, workdir: Path) -> None:
    path = workdir / "doors-rotating-tokens"
    path.write_text("old\n")
    proc = _serve(tiny_repo, workdir, "--auth-token-file", str(path), "--model-poll-s", "0.5")
    try:
        base = f"http://127.0.0.1:{http_port(proc)}/v1/embeddings"

        def status(token: str) -> int:
            return httpx.post(base, content=BODY, headers={"Authorization": f"Bearer {token}",
                                                           "Content-Type": "application/json"}).status_code

        assert (status("old"), status("new")) == (200, 401)
        for text, expected, hup in (("old\nnew\n", (200, 200), True), ("new\n", (401, 200), True),
                                    ("\n", (401, 200), True), ("old\n", (200, 401), False)):
            path.write_text(text)  # the third: an empty file is refused, the tokens stay
            if hup:  # the last: no SIGHUP, the --model-poll-s poll sees the file change
                proc.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while (status("old"), status("new")) != expected:
                assert time.monotonic() < deadline, (text, proc.output()[-2000:])
                time.sleep(0.1)
        assert "token reload refused" in proc.output()
    finally:
        proc.stop()


# --- 5. Content-Type --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x",
                                  b"application/json; charset=latin-1", None])
def test_bodies_not_json_are_415(port: int, kind: bytes | None) -> None:
    head = post_head(len(BODY), content_type=kind or b"", extra=b"Connection: close\r\n")
    if kind is None:
        head = head.replace(b"Content-Type: \r\n", b"")
    status, error, _ = status_and_error(exchange(port, head + BODY)[0])
    assert status == 415 and error["param"] == "Content-Type" and error["code"] == "invalid_argument"


@pytest.mark.parametrize("kind", [b"application/json", b"application/json; charset=utf-8", b"Application/JSON;charset=UTF-8"])
def test_json_bodies_are_served(port: int, kind: bytes) -> None:
    out, _, _ = exchange(port, post_head(len(BODY), content_type=kind, extra=b"Connection: close\r\n") + BODY)
    assert out.startswith(b"HTTP/1.1 200"), out[:300]


# --- 6. protocol errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("case, data", [
    ("header over 8 KB", b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
    ("300 headers", b"GET /health HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(300)) + b"\r\n"),
    ("garbage request line", b"GARBAGE\r\n\r\n"),
    ("negative Content-Length", b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n"),
    ("Content-Length with chunked", b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
])
def test_protocol_errors_are_json(port: int, case: str, data: bytes) -> None:
    out, _, closed = exchange(port, data)
    status, error, head = status_and_error(out)
    assert status == 400 and error["type"] == "invalid_request_error" and error["param"] == "request", case
    assert "content-type: application/json" in head and closed


# --- 8. refusals before the body ------------------------------------------------------------------


def test_over_admission_is_refused_before_the_body_is_read(tiny_repo: Path, workdir: Path) -> None:
    """While the admission bound is full, a request is answered 429 from its head alone: its body
    (never sent here) is not waited for."""
    proc = _serve(tiny_repo, workdir, "--max-inflight-inputs", "64", "--max-inputs-per-request", "64",
                  "--body-timeout-s", "30")
    port = http_port(proc)
    busy = json.dumps({"model": "tiny-bert", "input": [" ".join(["word"] * 120)] * 64}).encode()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                client.post(f"http://127.0.0.1:{port}/v1/embeddings", content=busy,
                            headers={"Content-Type": "application/json"})

    loaders = [threading.Thread(target=load) for _ in range(3)]
    for t in loaders:
        t.start()
    try:
        statuses = []
        for _ in range(200):
            head = post_head(len(BODY)).replace(AUTH, b"")
            start = time.monotonic()
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(head)  # the head only
                sock.settimeout(0.5)
                try:
                    out = sock.recv(65536)
                except (TimeoutError, socket.timeout):
                    continue  # admitted: the server waits for the body
                took = time.monotonic() - start
            if out:
                statuses.append(int(out.split(b" ", 2)[1]))
            if 429 in statuses:
                break
        assert 429 in statuses, statuses
        status, error, head = status_and_error(out)
        assert error["type"] == "rate_limit_error" and "retry-after: 1" in head and took < 1.0
    finally:
        stop.set()
        for t in loaders:
            t.join(60)
        proc.stop()


# --- 2 and 7. the drain -----------------------------------------------------------------------------


def test_sigterm_is_not_held_by_stalled_clients(tiny_repo: Path, workdir: Path) -> None:
    """Stalled body, slowloris head, idle keep-alives on HTTP, a silent and a half-sent gRPC call:
    SIGTERM exits within the drain window + 1 s, not the 20 s grace; the stalled body is answered 503
    (JSON); /health says draining with Connection: close."""
    proc = _serve(tiny_repo, workdir, "--shutdown-grace-s", "20", "--body-timeout-s", "60", "--head-timeout-s", "60",
                  "--idle-timeout-s", "120")
    port = http_port(proc)
    socks: list[socket.socket] = []
    try:
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(post_head(100_000).replace(AUTH, b"") + b'{"model":')
        slow_head = socket.create_connection(("127.0.0.1", port))
        slow_head.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\n")
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        socks += [stalled, slow_head, *idle]
        for sock in idle:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            sock.settimeout(10)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        socks.append(socket.create_connection(("127.0.0.1", proc.port)))  # gRPC: silent
        half_grpc = socket.create_connection(("127.0.0.1", proc.port))  # gRPC: a call whose message never comes
        socks.append(half_grpc)
        half_grpc.sendall(h2frames.hello() + h2frames.headers_frame(1, "/embedrank.v1.Embed/Encode"))
        time.sleep(0.3)
        start = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.status_code == 503 and health.json() == {"status": "draining"}
        assert health.headers["connection"] == "close"
        out, closed = _read_until_closed(stalled, time.monotonic() + 10)
        status, error, head = status_and_error(out)
        assert closed and status == 503 and error["type"] == "service_unavailable_error" and "connection: close" in head
        assert all(_read_until_closed(s, time.monotonic() + 5)[1] for s in (slow_head, *idle))
        assert proc.proc.wait(15) == 0
        took = time.monotonic() - start
        done = re.search(r"shutdown: done after ([\d.]+)s", proc.output())
        # The window (0.5 s, until no call came for 0.1 s), then at most 1 s for gRPC calls whose message
        # never came (grpc cancels them); 0.3 s of slack for a loaded box.
        assert done and float(done.group(1)) <= 0.6 + 1.0 + 0.3, proc.output()[-2000:]
        assert took < 6, took  # the process too (interpreter exit included), not the 20 s grace
    finally:
        for sock in socks:
            sock.close()
        proc.stop()


# --- the gRPC port ----------------------------------------------------------------------------------


def _grpc_connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(h2frames.hello())
    return sock


def test_grpc_silent_connection_is_closed_after_the_head_timeout(server: ServerProcess) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:  # no preface, no SETTINGS
        h2frames.read_frames(sock, until=start + HEAD_S + 4)
    assert time.monotonic() - start < HEAD_S + 3


def test_grpc_idle_connection_gets_goaway(server: ServerProcess) -> None:
    start = time.monotonic()
    with _grpc_connect(server.port) as sock:
        sock.sendall(h2frames.frame(h2frames.SETTINGS, flags=1))
        frames = h2frames.read_frames(sock, until=start + IDLE_S + 4)
    assert h2frames.goaway_code(frames) is not None and time.monotonic() - start < IDLE_S + 3


def test_grpc_ping_flood_is_closed_and_streams_are_capped(server: ServerProcess) -> None:
    with _grpc_connect(server.port) as sock:
        for i in range(50):
            try:
                sock.sendall(h2frames.ping(i))
            except OSError:  # closed already
                break
        frames = h2frames.read_frames(sock, until=time.monotonic() + 5)
    assert h2frames.goaway_code(frames) == h2frames.ENHANCE_YOUR_CALM
    assert h2frames.settings_of(frames)[h2frames.MAX_CONCURRENT_STREAMS] == 1024


def test_grpc_connections_past_the_cap_are_closed(server: ServerProcess) -> None:
    held = [_grpc_connect(server.port) for _ in range(MAX_CONNECTIONS + 4)]
    try:
        closed = sum(1 for sock in held
                     if h2frames.goaway_code(h2frames.read_frames(sock, until=time.monotonic() + 0.3)) is not None
                     or _read_until_closed(sock, time.monotonic() + 0.05)[1])
        assert closed >= 4
    finally:
        for sock in held:
            sock.close()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_grpc_stream_whose_reader_stopped_reading_stays_bounded(tiny_repo: Path, workdir: Path) -> None:
    """A bidi stream that sends requests and never reads an answer: once the client's flow-control
    window is full of answers and --stream-max-inflight requests wait behind it, the server runs
    nothing more for the stream, and its memory stays put."""
    proc = _serve(tiny_repo, workdir, "--metrics-port", "0")
    try:
        texts = ["word"] * 1024  # answers of 1024 x 32 floats (128 KiB): the window fills in a few dozen
        with Client(proc.target) as client:
            for _ in range(5):  # the runtime's buffers for this shape, before measuring
                client.encode("tiny-bert", texts)

        def inputs_run() -> float:
            found = re.search(r'embedrank_inputs_total\{kind="embedding",model="tiny-bert"\} (\S+)', proc.metrics())
            return float(found.group(1)) if found else 0.0

        def requests() -> Iterator[embed_pb2.EncodeStreamRequest]:
            for i in range(3000):
                yield embed_pb2.EncodeStreamRequest(id=str(i), request=embed_pb2.EncodeRequest(model="tiny-bert", texts=texts))

        with grpc.insecure_channel(proc.target) as channel:
            call = embed_pb2_grpc.EmbedStub(channel).EncodeStream(requests(), timeout=60)
            deadline = time.monotonic() + 30
            run = inputs_run()
            while True:  # until two looks 2 s apart see no more work done (or the deadline fails it)
                time.sleep(2)
                now_run, now_rss = inputs_run(), _rss_kb(proc.proc.pid)
                if now_run == run:
                    break
                assert time.monotonic() < deadline, f"the server kept answering a stream nobody reads: {now_run}"
                run = now_run
            time.sleep(2)
            answered = (inputs_run() - 5 * 1024) / 1024
            grown = _rss_kb(proc.proc.pid) - now_rss
            call.cancel()
        print(f"stream not read: the server answered {answered:.0f} of 3000 requests, then stopped; RSS then +{grown} KiB")
        assert answered < 200 and inputs_run() == run
        assert grown < 4_000, grown  # KiB
    finally:
        proc.stop()

