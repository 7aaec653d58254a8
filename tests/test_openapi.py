"""The OpenAPI 3.1 document of the HTTP port (issue 32 item 8): kept in the repository
(server/embedrank/server/http/openapi.json), served at GET /openapi.json, checked against the route table
and the handlers, and fuzzed with Schemathesis against a live server.

- Every (method, path) of ``app.ROUTES`` is documented, and nothing else is; each documented operation
  answers something other than 404/405 on the live server.
- Known-good bodies (what docs/http.md and the SDK tests send) validate against the request schemas, and the
  handlers' own parsers accept them; known-bad ones fail both.
- Schemathesis (a fixed seed, a bounded number of cases per operation) on every route, with the token and
  without: no 5xx, no answer outside the document (status, content type, headers, body schema), schema-invalid
  bodies refused with a 4xx, nothing past the request timeout.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from embedrank.server.http import app, cohere, hybrid, schemas, tei_bodies
from tests import checkpoints
from tests.conftest import ServerProcess, export

TOKEN = "0penapi"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC_PATH = Path(app.__file__).with_name("openapi.json")
SEED = 20261207
# Fuzzed cases per operation (the coverage phase adds its own, a fixed set): ~800 + ~60 requests, ~20 s here.
MAX_EXAMPLES = 5


def _doc() -> dict[str, Any]:
    return json.loads(DOC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def server(tiny_repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    """tiny-bert and a tiny reranker, with a token and small limits (every route reaches the engine)."""
    repo = workdir / "openapi-repo"
    shutil.copytree(tiny_repo / "tiny-bert", repo / "tiny-bert")
    out = workdir / "openapi-checkpoints"
    out.mkdir()
    result = export(checkpoints.build_cross_encoder(out, real=False), repo / "tiny-rerank")
    assert result.returncode == 0, result.stderr[-4000:]
    token = workdir / "openapi-token"
    token.write_text(TOKEN)
    with ServerProcess(repo, "--http-port", "0", "--auth-token-file", str(token), "--max-message-mb", "1",
                       "--max-inputs-per-request", "16") as proc:
        yield proc



# --- the document against the route table and the handlers ---------------------------------------


def test_every_route_documented_and_nothing_else() -> None:
    doc = _doc()
    served = {(m.lower(), p) for m, p, _ in app.ROUTES}
    documented = {(m, p) for p, item in doc["paths"].items() for m in item if m in ("get", "post", "put", "delete", "patch")}
    assert served - documented == set(), "routes served but not in openapi.json"
    assert documented - served == set(), "routes in openapi.json that the server does not serve"
    jsonschema.Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})
    assert doc["openapi"].startswith("3.1")


def test_served_document_is_the_file_and_open(base: str) -> None:
    answer = httpx.get(f"{base}/openapi.json")  # no token, as /health
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json() == _doc()


def test_every_documented_operation_is_routed(base: str) -> None:
    for path, item in _doc()["paths"].items():
        for method in item:
            url = base + path.replace("{name}", "tiny-bert")
            answer = httpx.request(method.upper(), url, headers=AUTH, json={} if method == "post" else None)
            assert answer.status_code not in (404, 405), (method, path, answer.text)


def request_validator(route: str) -> Any:
    """A validator for the request body the document gives POST ``route`` (its $refs resolved in the document)."""
    doc = _doc()
    template = re.sub(r"^/models/[^/]+", "/models/{name}", route)
    schema = doc["paths"][template]["post"]["requestBody"]["content"]["application/json"]["schema"]
    registry: Registry = Registry().with_resource("urn:doc", DRAFT202012.create_resource(doc))
    return jsonschema.Draft202012Validator({"$ref": "urn:doc" + schema["$ref"]}, registry=registry)


def parse_body(route: str, body: Any) -> None:
    """The handler's own parser for POST ``route`` (what needs no model); InvalidArgument when it refuses."""
    data = schemas.body_object(body)
    if route in ("/v1/embeddings", "/embeddings"):
        schemas.embeddings_request(data)
    elif route in ("/v1/embed", "/v2/embed"):
        cohere.embed_request(data, version=route[2])
    elif route in ("/v1/rerank", "/v2/rerank"):
        schemas.rerank_request(data)
    elif route == "/v1/hybrid":
        hybrid.hybrid_request(data)
    else:  # TEI's routes (server/http/tei.py), also under /models/<name>/
        tei = re.sub(r"^/models/[^/]+", "", route)
        if tei == "/rerank":
            tei_bodies.required_str(data, "query") and tei_bodies.string_list(data, "texts")
        else:
            assert tei in ("/embed", "/embed_sparse", "/embed_all", "/tokenize"), f"add a rule for {route}"
            tei_bodies.texts(data)
            tei_bodies.truncation(data)


def check_body(route: str, body: Any) -> None:
    """A body that both the document and the handler accept (the README's curl lines are checked with it too)."""
    request_validator(route).validate(body)
    parse_body(route, body)


GOOD: list[tuple[str, dict[str, Any]]] = [
    # (route, body): bodies the docs and the SDK tests send
    ("/v1/embeddings", {"model": "minilm", "input": ["a first text", "a second one"], "dimensions": 128}),
    ("/v1/embeddings", {"input": "x", "encoding_format": "base64", "user": "u", "input_type": "query",
                                                    "normalize": False, "truncation": "start", "long_input": "chunk",
                                                    "chunk_overlap": 8, "prompt_name": "query"}),
    ("/v1/embeddings", {"input": "x", "truncation": False, "model": None, "dimensions": None}),
    ("/v2/embed", {"model": "minilm", "texts": ["a"], "input_type": "search_document",
                                            "embedding_types": ["float", "int8", "uint8", "binary", "ubinary", "base64"],
                                            "truncate": "END", "output_dimension": 16, "max_tokens": 512, "priority": 0}),
    ("/v2/embed", {"inputs": [{"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                                            "input_type": "clustering", "images": []}),
    ("/v1/embed", {"texts": ["a"], "model": "minilm", "input_type": "search_query", "truncate": "NONE"}),
    ("/embed", {"inputs": ["a", "b"], "normalize": True, "truncate": True, "truncation_direction": "Left", "dimensions": 0}),
    ("/models/minilm/embed", {"inputs": "a", "prompt_name": None}),
    ("/rerank", {"query": "q", "texts": ["a", "b"], "raw_scores": False, "return_text": True}),
    ("/tokenize", {"inputs": "a"}),
    ("/v1/hybrid", {"model": "bge-m3", "input": ["a", "b"], "outputs": ["dense", "sparse"], "sparse_top_k": 8,
                    "return_tokens": True, "input_type": "query", "truncation": "end"}),
    ("/v1/rerank", {"model": "r", "query": "q", "documents": ["doc one", {"text": "doc two"}],
                                            "top_n": 1, "return_documents": True, "raw_scores": False, "rank_fields": ["text"]}),
]
BAD: list[tuple[str, dict[str, Any]]] = [
    ("/v1/embeddings", {"model": "m"}),
    ("/v1/embeddings", {"input": [[101, 102]]}),
    ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}),
    ("/v1/embeddings", {"input": "x", "dimensions": 0}),
    ("/v1/embeddings", {"input": "x", "user": 3}),
    ("/v2/embed", {"model": "m"}),
    ("/v2/embed", {"texts": ["a"], "inputs": [{"content": [{"type": "text", "text": "a"}]}]}),
    ("/v2/embed", {"texts": ["a"], "embedding_types": ["int4"]}),
    ("/v2/embed", {"texts": ["a"], "priority": "high"}),
    ("/v2/embed", {"texts": ["a"], "images": ["data:image/png;base64,AA=="]}),
    ("/v1/embed", {"texts": "a"}),
    ("/v1/rerank", {"query": "q", "documents": [{"title": "t"}]}),
    ("/v1/hybrid", {"input": "a", "outputs": ["lexical"]}),
    ("/v1/hybrid", {"input": "a", "sparse_top_k": -1}),
    ("/v1/hybrid", {"input": "a", "outputs": [{}]}),  # Schemathesis: was a 500 (an unhashable output name)
    ("/embed", {"inputs": [101, 102]}),
    ("/embed", {"inputs": "a", "truncation_direction": "up"}),
    ("/rerank", {"query": "q", "texts": "a"}),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": -1}),
]


@pytest.mark.parametrize(("route", "body"), GOOD, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOOD)])
def test_known_good_bodies_fit_the_schemas_and_the_handlers(route: str, body: dict[str, Any]) -> None:
    check_body(route, body)


@pytest.mark.parametrize(("route", "body"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_known_bad_bodies_fail_the_schemas_and_the_handlers(route: str, body: dict[str, Any]) -> None:
    from embedrank.model.errors import InvalidArgument

    assert not request_validator(route).is_valid(body)
    with pytest.raises(InvalidArgument):
        parse_body(route, body)


# --- what writing the document found: fields the server took without checking them -----------------

INCONSISTENT: list[tuple[str, dict[str, Any], str]] = [
    # Each was answered 200 (the field ignored whatever it held) where the document says what it must be.
    ("/v1/embeddings", {"model": "tiny-bert", "input": "x", "user": 3}, "user"),
    ("/v2/embed", {"model": "tiny-bert", "texts": ["x"], "priority": "high"}, "priority"),
    ("/v2/embed", {"model": "tiny-bert", "texts": ["x"], "images": ""}, "images"),
    ("/v2/embed", {"model": "tiny-bert", "texts": None, "inputs": [{"content": [{"type": "text", "text": "x"}]}]}, "texts"),
    # Found by Schemathesis: under /models/{name}/ the body's model was not read at all.
    ("/models/tiny-bert/embed", {"inputs": "x", "model": {}}, "model"),
]


@pytest.mark.parametrize(("path", "body", "field"), INCONSISTENT, ids=[f"{p}-{f}" for p, _, f in INCONSISTENT])
def test_fields_are_checked_as_documented(base: str, path: str, body: dict[str, Any], field: str) -> None:
    answer = httpx.post(f"{base}{path}", headers=AUTH, json=body)
    assert answer.status_code == (422 if path.startswith("/models/") else 400), answer.text  # TEI: 422
    error = answer.json()
    message = error["message"] if "message" in error else error["error"]
    message = message["message"] if isinstance(message, dict) else message
    assert message.startswith(f"{field}: "), message


# --- Schemathesis against the live server ----------------------------------------------------------


def _narrowed(doc: dict[str, Any], *, embedding: str, reranker: str) -> dict[str, Any]:
    """The document with `model` (and the models path's name) drawn from the served models of the kind each
    route serves, so that generated requests reach the engine instead of stopping at 404 or 400."""
    doc = copy.deepcopy(doc)
    for name, schema in doc["components"]["schemas"].items():
        model = schema.get("properties", {}).get("model")
        # TEI's body `model` gives way to the path's {name} under /models/{name}/: left as any string.
        if model is not None and "Request" in name and not name.startswith("TEI."):
            model["enum"] = [reranker if "Rerank" in name else embedding, "", None]  # "": the only one of the kind
    for path, item in doc["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "name":
                    served = [embedding, reranker] if path.startswith("/v1/") else [
                        reranker if path.endswith("/rerank") else embedding]
                    parameter["schema"] = {"type": "string", "enum": served}
    return doc


def _schemathesis(doc: Path, base: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`st run` in ``cwd`` (it keeps a .schemathesis folder there)."""
    config = cwd / "schemathesis.toml"
    config.write_text(_CONFIG)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", str(doc), "--url", base,
        "--seed", str(SEED),
        "--generation-database", "none", "--workers", "1", "--request-timeout", "20", "--no-shrink",
        "--suppress-health-check", "all", "--warnings", "off", "--output-truncate", "false", *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=cwd,
                          env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


# A schema-violating body may also be refused as too large (413), or as naming a model of another kind than
# the route serves before its other fields are read (TEI's 424, "Backend", as TEI answers it).
_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 424, 428, 429]
"""
# Every check that holds for any server (positive_data_acceptance does not: a schema-valid body can still name
# options that exclude each other, or an `image` input type, and be refused with a 400 that says so).
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,"
          "allow_header_conformance")
_GENERATED = re.compile(r"(\d+) generated")


@pytest.mark.slow
def test_schemathesis_with_and_without_the_token(base: str, workdir: Path) -> None:
    """With the token: the coverage phase (boundary and type-violating values of every field, deterministic) and
    MAX_EXAMPLES fuzzed cases per operation, on a copy of the document whose `model` fields name the served
    models; without it: fuzzed cases on the document as served, every protected route answering its 401."""
    narrowed = workdir / "openapi-narrowed.json"
    narrowed.write_text(json.dumps(_narrowed(_doc(), embedding="tiny-bert", reranker="tiny-rerank")))
    start = time.monotonic()
    with_token = _schemathesis(narrowed, base, workdir, "-H", f"Authorization: Bearer {TOKEN}", "--checks", CHECKS + ",ignored_auth",
                               "--phases", "examples,coverage,fuzzing", "--max-examples", str(MAX_EXAMPLES))
    without = _schemathesis(DOC_PATH, base, workdir, "--checks", CHECKS, "--phases", "fuzzing", "--max-examples", str(MAX_EXAMPLES))
    took = time.monotonic() - start
    counts = [int(m.group(1)) for r in (with_token, without) for m in _GENERATED.finditer(r.stdout)]
    print(f"schemathesis: {counts} cases (with the token, without) in {took:.0f} s")
    assert with_token.returncode == 0, with_token.stdout[-12000:] + with_token.stderr[-3000:]
    assert without.returncode == 0, without.stdout[-12000:] + without.stderr[-3000:]
    assert len(counts) == 2 and counts[0] >= 300 and counts[1] >= 30, counts
