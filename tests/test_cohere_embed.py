"""Cohere's embed API on --http-port (issue 33 item 3): POST /v2/embed and /v1/embed.

The real `cohere` SDK (ClientV2 and Client) against a live server on port 0, each answer equal to the
gRPC Encode answer for the same input: float bit for bit, int8/uint8/binary/ubinary byte for byte, all
of one request from one forward pass; input_type -> the model's prompts, output_dimension, truncate.
Raw HTTP (httpx) for the errors, in Cohere's shape {"id", "message"} with statuses from the one table.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from tests.conftest import ServerProcess, edited_copy

TOKEN = "c0here"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TYPES = ["float", "int8", "uint8", "binary", "ubinary", "base64"]
# EmbedRequest precision names for each Cohere type.
PRECISION = {"float": "float32", "int8": "int8", "uint8": "uint8", "binary": "binary", "ubinary": "ubinary"}
PROMPTS = {"query": "query: ", "passage": "passage: ", "classification": "classify: ", "clustering": "cluster: "}


@pytest.fixture(scope="module")
def server(tiny_repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    """tiny-bert (prompts query/passage, no classification prompt) and tiny-prompts (the same
    weights, with classification and clustering prompts); a token; small limits for the 413 and 429."""
    import shutil

    repo = edited_copy(tiny_repo / "tiny-bert", workdir / "cohere-repo",
                       lambda m: m["embedding"].__setitem__("prompts", PROMPTS), name="tiny-prompts")
    shutil.copytree(tiny_repo / "tiny-bert", repo / "tiny-bert")
    token = workdir / "cohere-token"
    token.write_text(TOKEN)
    with ServerProcess(repo, "--http-port", "0", "--auth-token-file", str(token), "--max-message-mb", "1",
                       "--max-inflight-inputs", "8", "--max-inputs-per-request", "8") as proc:
        yield proc



@pytest.fixture(scope="module")
def grpc(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target, token=TOKEN) as client:
        yield client


def _bits(matrix: Any) -> np.ndarray:
    return np.asarray(matrix, dtype=np.float32).view(np.uint32)


def _decoded(rows: list[str]) -> np.ndarray:
    return np.stack([np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows])


# --- the SDK, equal to gRPC ---------------------------------------------------------------------


def test_v2_every_embedding_type_equals_encode(grpc: Client, base: str) -> None:
    import cohere

    texts = corpus.sentences(6)
    sdk = cohere.ClientV2(api_key=TOKEN, base_url=base)
    got = sdk.embed(model="tiny-bert", texts=texts, input_type="search_document", embedding_types=TYPES)
    e = got.embeddings
    for name, rows in (("float", e.float_), ("int8", e.int8), ("uint8", e.uint8), ("binary", e.binary),
                       ("ubinary", e.ubinary)):
        reference = grpc.encode("tiny-bert", texts, input_type="document", precision=PRECISION[name])
        assert rows is not None and len(rows) == 6, name
        if name == "float":
            assert np.array_equal(_bits(rows), _bits(reference))
        else:
            assert np.array_equal(np.asarray(rows, dtype=reference.dtype), reference), name
    assert e.base64 is not None and np.array_equal(_bits(_decoded(e.base64)), _bits(e.float_))
    assert got.texts == texts and got.id
    assert got.meta is not None and got.meta.api_version is not None and got.meta.api_version.version == "2"
    assert got.meta.billed_units is not None and got.meta.billed_units.input_tokens is not None
    assert got.meta.billed_units.input_tokens > 6


def test_v2_default_is_float_and_inputs_equal_texts(grpc: Client, base: str) -> None:
    import cohere

    texts = corpus.sentences(3)
    sdk = cohere.ClientV2(api_key=TOKEN, base_url=base)
    plain = sdk.embed(model="tiny-bert", texts=texts, input_type="search_query")
    inputs = sdk.embed(model="tiny-bert", input_type="search_query",
                       inputs=[{"content": [{"type": "text", "text": t}]} for t in texts])  # type: ignore[misc]
    reference = grpc.encode("tiny-bert", texts, input_type="query")
    assert plain.embeddings.int8 is None
    assert np.array_equal(_bits(plain.embeddings.float_), _bits(reference))
    assert np.array_equal(_bits(inputs.embeddings.float_), _bits(reference))


def test_v1_floats_and_by_type(grpc: Client, base: str) -> None:
    import cohere

    texts = corpus.sentences(4)
    sdk = cohere.Client(api_key=TOKEN, base_url=base)
    floats = sdk.embed(model="tiny-bert", texts=texts, input_type="search_query")
    by_type = sdk.embed(model="tiny-bert", texts=texts, input_type="search_query",
                        embedding_types=["float", "int8", "ubinary"])
    assert floats.response_type == "embeddings_floats" and by_type.response_type == "embeddings_by_type"
    reference = grpc.encode("tiny-bert", texts, input_type="query")
    assert np.array_equal(_bits(floats.embeddings), _bits(reference))
    assert np.array_equal(_bits(by_type.embeddings.float_), _bits(reference))  # type: ignore[union-attr]
    assert np.array_equal(np.asarray(by_type.embeddings.int8, dtype=np.int8),  # type: ignore[union-attr]
                          grpc.encode("tiny-bert", texts, input_type="query", precision="int8"))
    assert np.array_equal(np.asarray(by_type.embeddings.ubinary, dtype=np.uint8),  # type: ignore[union-attr]
                          grpc.encode("tiny-bert", texts, input_type="query", precision="ubinary"))
    assert floats.meta is not None and floats.meta.api_version is not None and floats.meta.api_version.version == "1"


def test_input_type_picks_the_prompt(grpc: Client, base: str) -> None:
    """search_query -> "query"; search_document -> "passage" here; classification / clustering -> the
    prompts of those names when the model has them, else the model's default (none for these models)."""
    texts = ["what is a list", "a list holds items"]

    def v2(model: str, input_type: str) -> np.ndarray:
        answer = httpx.post(f"{base}/v2/embed", headers=AUTH,
                            json={"model": model, "texts": texts, "input_type": input_type})
        assert answer.status_code == 200, answer.text
        return _bits(answer.json()["embeddings"]["float"])

    plain = _bits(grpc.encode("tiny-prompts", texts))
    for input_type, options in (("search_query", {"input_type": "query"}), ("search_document", {"input_type": "document"}),
                                ("classification", {"prompt_name": "classification"}),
                                ("clustering", {"prompt_name": "clustering"})):
        reference = _bits(grpc.encode("tiny-prompts", texts, **options))
        assert not np.array_equal(reference, plain), input_type  # the prompt changes the vectors
        assert np.array_equal(v2("tiny-prompts", input_type), reference), input_type
    # tiny-bert has no classification/clustering prompt: the text as it is, as with no input_type.
    bare = _bits(grpc.encode("tiny-bert", texts))
    assert np.array_equal(v2("tiny-bert", "classification"), bare)
    assert np.array_equal(v2("tiny-bert", "clustering"), bare)


def test_output_dimension_and_truncate(grpc: Client, base: str) -> None:
    import cohere

    texts = ["short text", "word " * 300 + "end"]
    sdk = cohere.ClientV2(api_key=TOKEN, base_url=base)
    cut = sdk.embed(model="tiny-bert", texts=texts, input_type="search_document", output_dimension=16,
                    embedding_types=["float", "int8", "binary"])
    assert np.array_equal(_bits(cut.embeddings.float_), _bits(grpc.encode("tiny-bert", texts, input_type="document",
                                                                          dimensions=16)))
    assert np.array_equal(np.asarray(cut.embeddings.int8, dtype=np.int8),
                          grpc.encode("tiny-bert", texts, input_type="document", dimensions=16, precision="int8"))
    assert np.asarray(cut.embeddings.binary).shape == (2, 2)
    for truncate, truncation in (("START", "start"), ("END", "end")):
        got = sdk.embed(model="tiny-bert", texts=texts, input_type="search_document", truncate=truncate)
        reference = grpc.encode("tiny-bert", texts, input_type="document", truncation=truncation)
        assert np.array_equal(_bits(got.embeddings.float_), _bits(reference)), truncate
    assert not np.array_equal(_bits(grpc.encode("tiny-bert", texts, truncation="start")),
                              _bits(grpc.encode("tiny-bert", texts, truncation="end")))
    refused = httpx.post(f"{base}/v2/embed", headers=AUTH, json={"model": "tiny-bert", "texts": texts, "truncate": "NONE"})
    assert refused.status_code == 400 and refused.json()["message"].startswith("texts[1]: "), refused.text


def test_sdk_raises_its_error_classes_with_the_body(base: str) -> None:
    import cohere
    from cohere.core.api_error import ApiError

    sdk = cohere.ClientV2(api_key=TOKEN, base_url=base)
    with pytest.raises(ApiError) as missing:
        sdk.embed(model="no-such-model", texts=["x"], input_type="search_query")
    with pytest.raises(ApiError) as bad:
        sdk.embed(model="tiny-bert", texts=["x"], input_type="search_query", embedding_types=["int4"])
    assert missing.value.status_code == 404 and "no-such-model" in missing.value.body["message"]
    assert bad.value.status_code == 400 and bad.value.body["message"].startswith("embedding_types[0]: ")
    with pytest.raises(ApiError) as unauthorized:
        cohere.ClientV2(api_key="wrong", base_url=base).embed(model="tiny-bert", texts=["x"], input_type="search_query")
    assert unauthorized.value.status_code == 401


# --- errors, raw --------------------------------------------------------------------------------

ERRORS: list[tuple[str, str, Any, int, str]] = [
    # path, id, body, status, what the message starts with
    ("/v2/embed", "no-texts", {"model": "tiny-bert"}, 400, "texts: "),
    ("/v2/embed", "texts-string", {"model": "tiny-bert", "texts": "x"}, 400, "texts: "),
    ("/v2/embed", "texts-number", {"model": "tiny-bert", "texts": ["a", 3]}, 400, "texts[1]: "),
    ("/v2/embed", "texts-empty", {"model": "tiny-bert", "texts": []}, 400, "texts: "),
    ("/v2/embed", "texts-blank", {"model": "tiny-bert", "texts": ["a", " "]}, 400, "texts[1]: "),
    ("/v2/embed", "texts-and-inputs", {"model": "tiny-bert", "texts": ["a"], "inputs": []}, 400, "texts: "),
    ("/v2/embed", "inputs-image", {"model": "tiny-bert", "inputs": [{"content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]}, 400, "inputs[0].content[0]: "),
    ("/v2/embed", "inputs-no-content", {"model": "tiny-bert", "inputs": [{}]}, 400, "inputs[0].content: "),
    ("/v2/embed", "images", {"model": "tiny-bert", "images": ["data:image/png;base64,AA=="]}, 400, "images: "),
    ("/v2/embed", "type", {"model": "tiny-bert", "texts": ["a"], "embedding_types": ["int4"]}, 400, "embedding_types[0]: "),
    ("/v2/embed", "type-list", {"model": "tiny-bert", "texts": ["a"], "embedding_types": [["float"]]}, 400,
     "embedding_types[0]: "),
    ("/v2/embed", "types-empty", {"model": "tiny-bert", "texts": ["a"], "embedding_types": []}, 400, "embedding_types: "),
    ("/v2/embed", "input-type", {"model": "tiny-bert", "texts": ["a"], "input_type": "poem"}, 400, "input_type: "),
    ("/v2/embed", "input-type-image", {"model": "tiny-bert", "texts": ["a"], "input_type": "image"}, 400, "input_type: "),
    ("/v2/embed", "truncate", {"model": "tiny-bert", "texts": ["a"], "truncate": "MIDDLE"}, 400, "truncate: "),
    ("/v2/embed", "dimension-0", {"model": "tiny-bert", "texts": ["a"], "output_dimension": 0}, 400, "output_dimension: "),
    ("/v2/embed", "dimension-big", {"model": "tiny-bert", "texts": ["a"], "output_dimension": 33}, 400, "output_dimension: "),
    ("/v2/embed", "max-tokens", {"model": "tiny-bert", "texts": ["a"], "max_tokens": 8}, 400, "max_tokens: "),
    ("/v2/embed", "model-number", {"model": 3, "texts": ["a"]}, 400, "model: "),
    ("/v2/embed", "two-models-no-name", {"texts": ["a"]}, 400, "model: "),
    ("/v2/embed", "no-such-model", {"model": "nope", "texts": ["a"]}, 404, "model 'nope' is not loaded"),
    ("/v2/embed", "not-json", b"{nope", 400, "body: "),
    ("/v2/embed", "not-object", [1], 400, "body: "),
    ("/v1/embed", "no-texts", {"model": "tiny-bert", "inputs": [{"content": [{"type": "text", "text": "a"}]}]}, 400,
     "texts: "),
    ("/v1/embed", "no-such-model", {"model": "nope", "texts": ["a"]}, 404, "model 'nope' is not loaded"),
]


@pytest.mark.parametrize(("path", "case", "body", "status", "starts"), ERRORS, ids=[f"{e[0]}-{e[1]}" for e in ERRORS])
def test_error_answers(base: str, path: str, case: str, body: Any, status: int, starts: str) -> None:
    content = body if isinstance(body, bytes) else None
    answer = httpx.post(f"{base}{path}", headers={**AUTH, "Content-Type": "application/json"}, content=content,
                        json=None if content is not None else body)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"id", "message"} and error["id"] == answer.headers["x-request-id"]
    assert error["message"].startswith(starts), error
    assert answer.headers["content-type"].startswith("application/json")


def test_body_over_the_limit_is_413(base: str) -> None:
    answer = httpx.post(f"{base}/v2/embed", headers=AUTH, json={"model": "tiny-bert", "texts": ["word " * 50_000] * 5})
    assert answer.status_code == 413 and "--max-message-mb" in answer.json()["message"]


def test_token_missing_or_wrong_is_401(base: str) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        answer = httpx.post(f"{base}/v2/embed", headers=headers, json={"model": "tiny-bert", "texts": ["a"]})
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in answer.json()["message"]


async def test_over_admission_is_429_with_retry_after(base: str) -> None:
    """--max-inflight-inputs 8 and 8 texts a request: requests at once beyond the first are refused."""
    texts = [" ".join(corpus.paragraphs()[i: i + 3]) for i in range(8)]
    async with httpx.AsyncClient(timeout=120, headers=AUTH) as client:
        answers = await asyncio.gather(*(
            client.post(f"{base}/v2/embed", json={"model": "tiny-bert", "texts": texts, "embedding_types": ["int8"]})
            for _ in range(24)
        ))
    refused = [a for a in answers if a.status_code != 200]
    assert refused and len(refused) < len(answers)
    for a in refused:
        assert a.status_code == 429 and a.headers["retry-after"] == "1", a.text
        assert "server busy" in a.json()["message"]


def test_models_of_every_kind_named_on_the_http_routes(kinds_repo: Path) -> None:
    """A sparse or multi-vector model named on a route of another kind is a 400 naming the route to call (it
    was a KeyError, a 500, for every kind but embedding and rerank); a multi-vector model reranks (MaxSim) on
    the rerank routes, as on gRPC Rerank (it was a 500 too)."""
    proc = ServerProcess(kinds_repo, "--http-port", "0")
    try:
        base = proc.http_base()
        for path, body, status, starts in (
            ("/v1/embeddings", {"model": "tiny-sparse", "input": "x"}, 400, "model 'tiny-sparse' is a sparse model; no route"),
            ("/v2/embed", {"model": "tiny-colbert", "texts": ["x"]}, 400, "model 'tiny-colbert' is a multi-vector model; call POST /v2/rerank"),
            ("/v1/rerank", {"model": "tiny-sparse", "query": "q", "documents": ["a"]}, 400, "model 'tiny-sparse' is a sparse"),
            ("/v2/rerank", {"model": "tiny-colbert", "query": "q", "documents": ["a", "b"]}, 200, ""),
        ):
            answer = httpx.post(f"{base}{path}", json=body)
            assert answer.status_code == status, answer.text
            if status != 200:
                error = answer.json()
                message = error["error"]["message"] if "error" in error else error["message"]
                assert message.startswith(starts), message
        with Client(proc.target) as client:
            reference = client.rerank("tiny-colbert", "q", ["a", "b"])
        assert [(r["index"], r["relevance_score"]) for r in answer.json()["results"]] == [(h.index, h.score) for h in reference]
    finally:
        proc.stop()
