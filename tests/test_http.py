"""The HTTP conventions on --http-port (issue 26), against live servers on port 0.

The real `openai` and `cohere` SDKs against the same process as the gRPC port (vectors and scores
equal the gRPC answers bit for bit); raw HTTP for every error status, each from the one status
table; a bearer token, TLS and mutual TLS, admission (429 + Retry-After) and the SIGTERM drain
on the HTTP port as on gRPC; several processes sharing the HTTP port.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError, tls_credentials
from embedrank.exporter import corpus
from embedrank.model import errors
from embedrank.server import statuses
from embedrank.server.api.status import code_for
from embedrank.server.config import ServerConfig
from embedrank.server.http.errors import error_answer
from tests import checkpoints
from tests.conftest import EMBEDRANK, ServerProcess, export
from tests.test_tls import Pki

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def http_repo(tiny_repo: Path, workdir: Path) -> Path:
    """tiny-bert (from tiny_repo), a tiny reranker and the real all-MiniLM-L6-v2 (slow enough on a
    CPU for admission and drain to have something in flight)."""
    repo = workdir / "http-repo"
    shutil.copytree(tiny_repo / "tiny-bert", repo / "tiny-bert")
    out = workdir / "http-checkpoints"
    out.mkdir()
    for name, source in (("tiny-rerank", checkpoints.build_cross_encoder(out, real=False)),
                         ("minilm", checkpoints.minilm_path())):
        result = export(source, repo / name)
        assert result.returncode == 0, f"export {name} failed:\n{result.stderr[-4000:]}"
    return repo


def _only(http_repo: Path, workdir: Path, *names: str) -> Path:
    repo = workdir / f"http-{'-'.join(names)}-{time.monotonic_ns()}"
    for name in names:
        shutil.copytree(http_repo / name, repo / name)
    return repo


@pytest.fixture(scope="module")
def server(http_repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(
        _only(http_repo, workdir, "tiny-bert", "tiny-rerank", "minilm"),
        "--http-port", "0", "--metrics-port", "0", "--max-message-mb", "1", "--max-inputs-per-request", "64",
    ) as proc:
        yield proc



# --- the SDKs, equal to gRPC bit for bit --------------------------------------------------------


def _bits(matrix: Any) -> np.ndarray:
    return np.asarray(matrix, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("dimensions", [None, 128])
def test_openai_sdk_float_and_base64_equal_grpc_bit_for_bit(server: ServerProcess, base: str, dimensions: int | None) -> None:
    from openai import OpenAI

    texts = corpus.sentences(6)
    extra: dict[str, Any] = {} if dimensions is None else {"dimensions": dimensions}
    with Client(server.target) as client:
        reference = client.encode("minilm", texts, **extra)
        # One text alone is a batch of one (the low-latency path): compared with one text alone.
        reference_lone = client.encode("minilm", texts[:1], **extra)
    with OpenAI(base_url=f"{base}/v1", api_key="unused") as sdk:
        as_float = sdk.embeddings.create(model="minilm", input=texts, encoding_format="float", **extra)
        as_base64 = sdk.embeddings.create(model="minilm", input=texts, encoding_format="base64", **extra)
        default = sdk.embeddings.create(model="minilm", input=texts, **extra)  # the SDK asks for base64, decodes it
        lone = sdk.embeddings.create(model="minilm", input=texts[0], encoding_format="float", **extra)
    assert reference.shape == (6, dimensions or 384)
    assert [d.index for d in as_float.data] == list(range(6))
    assert np.array_equal(_bits([d.embedding for d in as_float.data]), _bits(reference))
    decoded = [np.frombuffer(__import__("base64").b64decode(d.embedding), dtype="<f4") for d in as_base64.data]
    assert np.array_equal(_bits(decoded), _bits(reference))
    assert np.array_equal(_bits([d.embedding for d in default.data]), _bits(reference))
    assert np.array_equal(_bits(lone.data[0].embedding), _bits(reference_lone[0]))
    assert as_float.model == "minilm" and as_float.object == "list"
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens > 6


def test_extensions_reach_the_engine(server: ServerProcess, base: str) -> None:
    """input_type (here through the SDK's extra_body), truncation and normalize mean what they mean on gRPC."""
    from openai import OpenAI

    texts = ["what is a list", "word " * 100]
    with Client(server.target) as client:
        as_query = client.encode("tiny-bert", texts, input_type="query")
        plain = client.encode("tiny-bert", texts)
        from_start = client.encode("tiny-bert", texts, truncation="start", normalize=False)
    with OpenAI(base_url=f"{base}/v1", api_key="unused") as sdk:
        got = sdk.embeddings.create(model="tiny-bert", input=texts, extra_body={"input_type": "query"})
        cut = sdk.embeddings.create(model="tiny-bert", input=texts,
                                    extra_body={"truncation": "start", "normalize": False})
    assert not np.array_equal(_bits(as_query), _bits(plain))  # tiny-bert has a "query: " prompt
    assert np.array_equal(_bits([d.embedding for d in got.data]), _bits(as_query))
    assert np.array_equal(_bits([d.embedding for d in cut.data]), _bits(from_start))


def test_openai_sdk_errors_carry_type_param_and_code(base: str) -> None:
    import openai

    with openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError) as missing:
            sdk.embeddings.create(model="no-such-model", input="x")
        with pytest.raises(openai.BadRequestError) as bad:
            sdk.embeddings.create(model="minilm", input=[[101, 2023, 102]])  # token ids
    assert (missing.value.type, missing.value.param, missing.value.code) == ("not_found_error", "model", "not_found")
    assert (bad.value.type, bad.value.param) == ("invalid_request_error", "input")
    assert "check_embedding_ctx_length=False" in bad.value.message


def test_cohere_sdks_rerank_equal_grpc(server: ServerProcess, base: str) -> None:
    import cohere

    query = "how do I bake bread"
    docs = ["Preheat the oven and knead the dough.", "The stock market fell today.", "Bread needs flour, water and yeast.",
            "Cats sleep most of the day."]
    with Client(server.target) as client:
        reference = client.rerank("tiny-rerank", query, docs)
    v1 = cohere.Client(api_key="unused", base_url=base)
    got_v1 = v1.rerank(model="tiny-rerank", query=query, documents=docs, top_n=3, return_documents=True)
    v2 = cohere.ClientV2(api_key="unused", base_url=base)
    got_v2 = v2.rerank(model="tiny-rerank", query=query, documents=docs)
    assert [(r.index, r.relevance_score) for r in got_v1.results] == [(h.index, h.score) for h in reference[:3]]
    assert [r.document.text for r in got_v1.results] == [docs[h.index] for h in reference[:3]]  # type: ignore[union-attr]
    assert [(r.index, r.relevance_score) for r in got_v2.results] == [(h.index, h.score) for h in reference]
    assert got_v2.meta is not None and got_v2.meta.api_version is not None and got_v2.meta.api_version.version == "2"


def test_rerank_documents_as_objects_and_jina_fields(base: str) -> None:
    body = {"model": "tiny-rerank", "query": "q", "documents": [{"text": "alpha beta"}, "gamma"], "top_n": 1,
            "return_documents": True}
    answer = httpx.post(f"{base}/v1/rerank", json=body).json()
    assert len(answer["results"]) == 1 and set(answer["results"][0]) == {"index", "relevance_score", "document"}
    assert answer["model"] == "tiny-rerank" and answer["usage"]["total_tokens"] > 0


def test_models_and_health(base: str) -> None:
    listed = httpx.get(f"{base}/v1/models").json()
    assert listed["object"] == "list"
    assert {(m["id"], m["kind"]) for m in listed["data"]} == {
        ("minilm", "embedding"), ("tiny-bert", "embedding"), ("tiny-rerank", "rerank")
    }
    one = httpx.get(f"{base}/v1/models/minilm").json()
    assert one["id"] == "minilm" and one["dimensions"] == 384 and one["created"] > 1_700_000_000
    health = httpx.get(f"{base}/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


def test_http_requests_are_counted_in_the_metrics(server: ServerProcess, base: str) -> None:
    httpx.post(f"{base}/v1/embeddings", json={"model": "tiny-bert", "input": "counted"})
    httpx.post(f"{base}/v1/embeddings", json={"model": "tiny-bert", "input": ""})
    text = server.metrics()
    assert re.search(r'embedrank_requests_total\{code="OK",rpc="HTTP /v1/embeddings"\} [1-9]', text)
    assert re.search(r'embedrank_requests_total\{code="INVALID_ARGUMENT",rpc="HTTP /v1/embeddings"\} [1-9]', text)


# --- errors: status, type, param, from the one table -------------------------------------------

E, R = "/v1/embeddings", "/v1/rerank"
CASES: list[tuple[str, str, Any, int, str, str | None]] = [
    # path, id, body, status, error.type, error.param
    (E, "no-input", {"model": "tiny-bert"}, 400, "invalid_request_error", "input"),
    (E, "token-ids", {"model": "tiny-bert", "input": [101, 2023, 102]}, 400, "invalid_request_error", "input"),
    (E, "token-id-lists", {"model": "tiny-bert", "input": [[101, 102]]}, 400, "invalid_request_error", "input"),
    (E, "input-number", {"model": "tiny-bert", "input": 3}, 400, "invalid_request_error", "input"),
    (E, "blank-item", {"model": "tiny-bert", "input": ["fine", " \u200b "]}, 400, "invalid_request_error", "input[1]"),
    (E, "blank-string", {"model": "tiny-bert", "input": "  "}, 400, "invalid_request_error", "input"),
    (E, "empty-list", {"model": "tiny-bert", "input": []}, 400, "invalid_request_error", "input"),
    (E, "too-many", {"model": "tiny-bert", "input": ["x"] * 65}, 400, "invalid_request_error", "input"),
    (E, "too-long", {"model": "tiny-bert", "input": ["x" * 50_001]}, 400, "invalid_request_error", "input[0]"),
    (E, "format", {"model": "tiny-bert", "input": "x", "encoding_format": "int8"}, 400, "invalid_request_error",
     "encoding_format"),
    (E, "dimensions-0", {"model": "tiny-bert", "input": "x", "dimensions": 0}, 400, "invalid_request_error", "dimensions"),
    (E, "dimensions-big", {"model": "tiny-bert", "input": "x", "dimensions": 33}, 400, "invalid_request_error",
     "dimensions"),
    (E, "dimensions-str", {"model": "tiny-bert", "input": "x", "dimensions": "8"}, 400, "invalid_request_error",
     "dimensions"),
    (E, "input-type", {"model": "tiny-bert", "input": "x", "input_type": "poem"}, 400, "invalid_request_error",
     "input_type"),
    (E, "truncation-none", {"model": "tiny-bert", "input": "word " * 200, "truncation": "none"}, 400,
     "invalid_request_error", "input"),
    (E, "truncation-none-list", {"model": "tiny-bert", "input": ["ok", "word " * 200], "truncation": "none"}, 400,
     "invalid_request_error", "input[1]"),
    (E, "bad-name", {"model": "../etc", "input": "x"}, 400, "invalid_request_error", "model"),
    (E, "no-such-model", {"model": "nope", "input": "x"}, 404, "not_found_error", "model"),
    (E, "wrong-kind", {"model": "tiny-rerank", "input": "x"}, 400, "invalid_request_error", "model"),
    (E, "two-models-no-name", {"input": "x"}, 400, "invalid_request_error", "model"),
    (E, "not-json", b"{nope", 400, "invalid_request_error", "body"),
    (E, "not-object", [1, 2], 400, "invalid_request_error", "body"),
    (R, "no-query", {"model": "tiny-rerank", "documents": ["a"]}, 400, "invalid_request_error", "query"),
    (R, "blank-query", {"model": "tiny-rerank", "query": " ", "documents": ["a"]}, 400, "invalid_request_error", "query"),
    (R, "no-documents", {"model": "tiny-rerank", "query": "q"}, 400, "invalid_request_error", "documents"),
    (R, "document-number", {"model": "tiny-rerank", "query": "q", "documents": ["a", 7]}, 400, "invalid_request_error",
     "documents[1]"),
    (R, "document-object", {"model": "tiny-rerank", "query": "q", "documents": [{"title": "a"}]}, 400,
     "invalid_request_error", "documents[0].text"),
    (R, "top-n", {"model": "tiny-rerank", "query": "q", "documents": ["a"], "top_n": -1}, 400, "invalid_request_error",
     "top_n"),
    (R, "return-documents", {"model": "tiny-rerank", "query": "q", "documents": ["a"], "return_documents": "yes"}, 400,
     "invalid_request_error", "return_documents"),
    (R, "wrong-kind", {"model": "minilm", "query": "q", "documents": ["a"]}, 400, "invalid_request_error", "model"),
    ("/v2/rerank", "no-such-model", {"model": "nope", "query": "q", "documents": ["a"]}, 404, "not_found_error", "model"),
]


@pytest.mark.parametrize(("path", "case", "body", "status", "kind", "param"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_error_answers(base: str, path: str, case: str, body: Any, status: int, kind: str, param: str | None) -> None:
    content = body if isinstance(body, bytes) else None
    response = httpx.post(f"{base}{path}", content=content, json=None if content is not None else body,
                          headers={"Content-Type": "application/json"})  # else 415 (tests/test_doors.py)
    if path != E:  # Cohere's routes answer Cohere's shape: {"id", "message"} (tests/test_cohere_embed.py)
        assert response.status_code == status and set(response.json()) == {"id", "message"}, response.text
        assert param is None or response.json()["message"].startswith(param), response.text
        return
    error = response.json()["error"]
    assert (response.status_code, error["type"], error["param"]) == (status, kind, param), error
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert response.headers["content-type"].startswith("application/json")
    if param is not None and status == 400 and error["code"] == "invalid_argument":
        assert error["message"].startswith(f"{param}: ")  # the field as the caller named it
    if case == "token-ids":
        assert "token ids" in error["message"] and "check_embedding_ctx_length=False" in error["message"]


def test_same_condition_same_code_on_both_ports(server: ServerProcess, base: str) -> None:
    """The HTTP answer's code is the gRPC status the same request gets on the gRPC port."""
    with Client(server.target) as client:
        for model, texts in (("nope", ["x"]), ("tiny-rerank", ["x"]), ("tiny-bert", [""]), ("tiny-bert", [])):
            with pytest.raises(EmbedRankError) as info:
                client.encode(model, texts)
            error = httpx.post(f"{base}/v1/embeddings", json={"model": model, "input": texts}).json()["error"]
            assert error["code"] == info.value.code.name.lower(), (model, texts)


def test_body_over_the_size_limit_is_413(base: str) -> None:
    body = {"model": "tiny-bert", "input": ["word " * 1000] * 300}  # ~1.5 MB, over --max-message-mb 1
    response = httpx.post(f"{base}/v1/embeddings", json=body)
    error = response.json()["error"]
    assert response.status_code == 413 and error["type"] == "invalid_request_error" and "--max-message-mb" in error["message"]
    assert httpx.post(f"{base}/v1/embeddings", json={"model": "tiny-bert", "input": "after"}).status_code == 200


def test_unknown_route_and_method(base: str) -> None:
    missing = httpx.post(f"{base}/v1/chat/completions", json={})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong = httpx.get(f"{base}/v1/embeddings")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "error" in wrong.json()


def test_one_status_table_gives_both_codes() -> None:
    """Every row: the gRPC side answers the row's code, the HTTP side its status and type."""
    samples = {
        errors.InvalidArgument: errors.InvalidArgument("texts[1]", "bad"),
        errors.EmptyInput: errors.EmptyInput("texts[1]", "is empty"),
        errors.ResourceExhausted: errors.ResourceExhausted("busy", retry_after_s=0.1),
    }
    for cls, row in statuses.ROWS.items():
        exc = samples.get(cls) or cls("message")  # type: ignore[call-arg]
        assert code_for(exc).name == row.grpc
        answer = error_answer(exc, "rid", renames={"texts": "input"})
        assert (answer.status, answer.body["error"]["type"], answer.grpc_code) == (row.http, row.openai_type, row.grpc)  # type: ignore[index]
    assert error_answer(errors.ManifestError("m"), "rid").status == statuses.ROWS[errors.ConfigError].http
    assert error_answer(errors.MessageTooLarge("big"), "rid").status == 413
    assert error_answer(errors.ResourceExhausted("busy", retry_after_s=0.1), "rid").headers["Retry-After"] == "1"
    bug = error_answer(KeyError("x"), "rid42")  # a bug: 500, no detail, the request id
    assert bug.status == 500 and bug.body["error"]["message"] == "internal error (request id rid42)"  # type: ignore[index]


# --- admission, drain ---------------------------------------------------------------------------


def _paragraph_texts(n: int, per: int) -> list[str]:
    paragraphs = corpus.paragraphs()
    return [" ".join(paragraphs[i: i + per]) for i in range(n)]


async def test_over_admission_is_429_with_retry_after(http_repo: Path, workdir: Path) -> None:
    proc = ServerProcess(_only(http_repo, workdir, "minilm"), "--http-port", "0",
                         "--max-inflight-inputs", "64", "--max-inputs-per-request", "64")
    try:
        base = proc.http_base()
        texts = _paragraph_texts(32, 2)
        async with httpx.AsyncClient(timeout=120) as client:
            answers = await asyncio.gather(*(
                client.post(f"{base}/v1/embeddings", json={"model": "minilm", "input": texts, "encoding_format": "base64"})
                for _ in range(8)
            ))
        ok = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert refused and all(a.status_code == 429 for a in refused), [a.text for a in refused]
        assert 2 <= len(ok) <= 6  # 64 inputs in flight = 2 requests at once; later ones fit as earlier finish
        for a in refused:
            assert a.headers["retry-after"] == "1"
            assert a.json()["error"]["type"] == "rate_limit_error" and a.json()["error"]["code"] == "resource_exhausted"
        async with AsyncClient(proc.target) as grpc_client:
            reference = await grpc_client.encode("minilm", texts)
        for a in ok:
            rows = [np.frombuffer(__import__("base64").b64decode(d["embedding"]), dtype="<f4") for d in a.json()["data"]]
            assert np.abs(np.stack(rows) - reference).max() < 1e-5
    finally:
        proc.stop()


def test_sigterm_drains_the_http_port(http_repo: Path, workdir: Path) -> None:
    """As on gRPC (tests/test_drain.py): from SIGTERM /health says draining, but every call sent before
    the listener closes is served, the one in flight and one sent after the signal; then the process
    exits and the port is closed."""
    proc = ServerProcess(_only(http_repo, workdir, "minilm"), "--http-port", "0", "--shutdown-grace-s", "20")
    base = proc.http_base()
    texts = _paragraph_texts(64, 3)
    inflight: dict[str, Any] = {}

    def call() -> None:
        inflight["answer"] = httpx.post(f"{base}/v1/embeddings", json={"model": "minilm", "input": texts}, timeout=60)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.5)  # read, tokenized and running: 64 x 256 tokens take seconds here
    proc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    health = httpx.get(f"{base}/health", timeout=10)
    late = httpx.post(f"{base}/v1/embeddings", json={"model": "minilm", "input": "late"}, timeout=30)
    caller.join(60)
    assert (health.status_code, health.json()) == (503, {"status": "draining"})
    assert late.status_code == 200 and len(late.json()["data"]) == 1, late.text  # sent before the listener closed
    answer = inflight["answer"]
    assert answer.status_code == 200 and len(answer.json()["data"]) == 64  # in flight: answered
    assert proc.proc.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=5)  # the listener is closed


def test_a_caller_that_hangs_up_drops_its_queued_inputs(http_repo: Path, workdir: Path) -> None:
    proc = ServerProcess(_only(http_repo, workdir, "minilm"), "--http-port", "0", "--metrics-port", "0",
                         "--max-inputs-per-request", "400")
    try:
        def run_so_far() -> float:
            found = re.search(r'embedrank_inputs_total\{kind="embedding",model="minilm"\} (\S+)', proc.metrics())
            return float(found.group(1)) if found else 0.0

        port = int(proc.http_base().rpartition(":")[2])
        body = __import__("orjson").dumps({"model": "minilm", "input": _paragraph_texts(400, 3)})
        before = run_so_far()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
            deadline = time.monotonic() + 60
            while run_so_far() == before:  # the first batches have run: the rest is queued
                assert time.monotonic() < deadline
                time.sleep(0.05)
        deadline = time.monotonic() + 120
        while not re.search(r"^embedrank_inflight_inputs 0\.0$", proc.metrics(), re.M):  # released
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2.0)  # batches that were already running finish; nothing queued is started
        ran = run_so_far() - before
        assert ran <= 300, ran  # without the hang-up all 400 would have run by the time nothing is in flight
        # The server goes on answering.
        assert httpx.post(f"{proc.http_base()}/v1/embeddings", json={"model": "minilm", "input": "next"}).status_code == 200
    finally:
        proc.stop()


# --- token, TLS, mutual TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(workdir: Path) -> Pki:
    return Pki(workdir / "http-tls", "http-good")


@pytest.fixture(scope="module")
def tls_server(http_repo: Path, workdir: Path, pki: Pki) -> Iterator[ServerProcess]:
    token = workdir / "http-tls" / "token"
    token.write_text(f"{TOKEN}\n")
    with ServerProcess(_only(http_repo, workdir, "tiny-bert"), "--http-port", "0", "--tls-cert", str(pki.cert),
                       "--tls-key", str(pki.key), "--auth-token-file", str(token)) as proc:
        yield proc


def _trusting(pki: Pki, *, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    if client_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def test_token_required_on_the_http_port(tls_server: ServerProcess, pki: Pki) -> None:
    base = tls_server.http_base()
    assert base.startswith("https://")
    body = {"model": "tiny-bert", "input": "secret"}
    with httpx.Client(verify=_trusting(pki)) as client:
        for headers, words in (({}, "needs a bearer token"), ({"Authorization": "Bearer wrong"}, "missing or wrong")):
            refused = client.post(f"{base}/v1/embeddings", json=body, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            error = refused.json()["error"]
            assert error["type"] == "authentication_error" and words in error["message"]
        assert client.post(f"{base}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get(f"{base}/v1/models").status_code == 401  # as gRPC's Models service
        assert client.get(f"{base}/health").status_code == 200  # open for probes, as gRPC health


def test_openai_sdk_over_tls_with_token_equals_grpc(tls_server: ServerProcess, pki: Pki) -> None:
    import openai

    with Client(tls_server.target, tls=tls_credentials(pki.ca_pem), token=TOKEN) as client:
        reference = client.encode("tiny-bert", ["over TLS", "with a token"])
    http_client = openai.DefaultHttpxClient(verify=_trusting(pki))
    with openai.OpenAI(base_url=f"{tls_server.http_base()}/v1", api_key=TOKEN, http_client=http_client) as sdk:
        got = sdk.embeddings.create(model="tiny-bert", input=["over TLS", "with a token"])
    assert np.array_equal(_bits([d.embedding for d in got.data]), _bits(reference))
    with openai.OpenAI(base_url=f"{tls_server.http_base()}/v1", api_key="wrong", max_retries=0,
                       http_client=openai.DefaultHttpxClient(verify=_trusting(pki))) as sdk:
        with pytest.raises(openai.AuthenticationError):
            sdk.embeddings.create(model="tiny-bert", input="x")


def test_plaintext_and_wrong_ca_refused(tls_server: ServerProcess, workdir: Path) -> None:
    base = tls_server.http_base()
    with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port: no answer
        httpx.get(base.replace("https://", "http://") + "/health", timeout=5)
    other = Pki(workdir / "http-tls", "http-other")
    with pytest.raises(httpx.ConnectError):  # certificate verify failed
        httpx.get(f"{base}/health", verify=_trusting(other), timeout=5)


def test_mutual_tls_on_the_http_port(http_repo: Path, workdir: Path, pki: Pki) -> None:
    proc = ServerProcess(_only(http_repo, workdir, "tiny-bert"), "--http-port", "0", "--tls-cert", str(pki.cert),
                         "--tls-key", str(pki.key), "--tls-client-ca", str(pki.ca_pem))
    try:
        base = proc.http_base()
        with httpx.Client(verify=_trusting(pki, client_cert=True)) as client:
            assert client.post(f"{base}/v1/embeddings", json={"model": "tiny-bert", "input": "mutual"}).status_code == 200
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.post(f"{base}/v1/embeddings", json={"model": "tiny-bert", "input": "x"}, verify=_trusting(pki), timeout=5)
    finally:
        assert proc.stop() == 0


def test_sighup_serves_the_new_certificate_on_the_http_port(http_repo: Path, workdir: Path, pki: Pki) -> None:
    live = workdir / "http-tls" / f"live-{time.monotonic_ns()}"
    live.mkdir()
    cert, key = live / "server.pem", live / "server.key"
    shutil.copy(pki.cert, cert)
    shutil.copy(pki.key, key)
    proc = ServerProcess(_only(http_repo, workdir, "tiny-bert"), "--http-port", "0", "--tls-cert", str(cert),
                         "--tls-key", str(key))
    try:
        base = proc.http_base()
        assert httpx.get(f"{base}/health", verify=_trusting(pki)).status_code == 200
        other = Pki(workdir / "http-tls", f"http-rotated-{time.monotonic_ns()}")
        shutil.copy(other.cert, cert)
        shutil.copy(other.key, key)
        proc.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "certificate files re-read" not in proc.output():
            assert time.monotonic() < deadline, proc.output()[-3000:]
            time.sleep(0.05)
        assert httpx.get(f"{base}/health", verify=_trusting(other)).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", verify=_trusting(pki), timeout=5)
    finally:
        assert proc.stop() == 0


# --- configuration, processes -------------------------------------------------------------------


def test_http_port_setting_is_checked(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="--http-port"):
        ServerConfig(model_repository=tmp_path, http_port=-2)
    assert ServerConfig(model_repository=tmp_path).http_port == -1  # off unless asked for


def test_http_port_in_use_is_one_line_naming_the_flag(http_repo: Path, workdir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = subprocess.run(
            [*EMBEDRANK, "serve", "--model-repository", str(_only(http_repo, workdir, "tiny-bert")), "--host", "127.0.0.1",
             "--port", "0", "--http-port", str(busy.getsockname()[1])],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    assert "--http-port" in result.stderr and "Traceback" not in result.stderr


def test_processes_share_the_http_port(http_repo: Path, workdir: Path) -> None:
    proc = ServerProcess(_only(http_repo, workdir, "tiny-bert"), "--processes", "2", "--http-port", "0")
    try:
        ports = set(re.findall(r"HTTP listening on http://[\d.]+:(\d+)", proc.output()))
        assert len(ports) == 1, proc.output()[-3000:]  # both children, one port
        base = proc.http_base()
        for i in range(8):  # new connections each: the kernel spreads them over the children
            assert httpx.post(f"{base}/v1/embeddings", json={"model": "tiny-bert", "input": f"text {i}"}).status_code == 200
    finally:
        assert proc.stop() == 0


def test_grpc_port_unchanged_without_http(http_repo: Path, workdir: Path) -> None:
    proc = ServerProcess(_only(http_repo, workdir, "tiny-bert"))
    try:
        assert "HTTP listening" not in proc.output()
        with Client(proc.target) as client:
            assert client.encode("tiny-bert", ["grpc only"]).shape == (1, 32)
    finally:
        proc.stop()


def test_grpc_status_codes_unchanged() -> None:
    """The gRPC column is what the gRPC port answered before the table moved."""
    expected = {
        errors.InvalidArgument: "INVALID_ARGUMENT", errors.NotFound: "NOT_FOUND",
        errors.FailedPrecondition: "FAILED_PRECONDITION", errors.ResourceExhausted: "RESOURCE_EXHAUSTED",
        errors.Unavailable: "UNAVAILABLE", errors.DeadlineExceeded: "DEADLINE_EXCEEDED",
        errors.Unauthenticated: "UNAUTHENTICATED", errors.ConfigError: "FAILED_PRECONDITION",
    }
    for cls, name in expected.items():
        assert statuses.ROWS[cls].grpc == name and grpc.StatusCode[name]
