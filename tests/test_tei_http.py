"""TEI's HTTP API on --http-port (issue 33), against one live server with every kind of model.

The real clients a TEI user has (huggingface_hub's InferenceClient, LangChain's
HuggingFaceEndpointEmbeddings, LlamaIndex's TextEmbeddingsInference, Haystack's HF API embedders),
each with the server's bearer token, and each answer compared with the gRPC answer for the same
input; raw HTTP (httpx) for each route's shape and every error in TEI's body.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from tests.conftest import ServerProcess

TOKEN = "tei-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["What is Deep Learning?", "Deep learning is a kind of machine learning.", "Ein Satz auf Deutsch."]
# LangChain's HuggingFaceEndpointEmbeddings: 1.2.1 is its last release that takes a URL (1.2.2 refuses
# one: "`model` must be a HuggingFace repo ID, not a URL"), and it needs huggingface_hub < 2 while
# the shared venv has 2.x: both go to a folder of their own, put first on the client's path.
LANGCHAIN = ("langchain-huggingface==1.2.1", "huggingface_hub==1.33.0")


@pytest.fixture(scope="module")
def tei_repo(repo: Path, kinds_repo: Path, workdir: Path) -> Path:
    """One model of each kind: minilm (the --default-model), tiny-bert, tiny-rerank, tiny-nli
    (classifier), tiny-sparse, tiny-colbert (multi-vector)."""
    out = workdir / "tei-repo"
    for source, names in ((repo, ("minilm", "tiny-bert", "tiny-rerank", "tiny-nli")),
                          (kinds_repo, ("tiny-sparse", "tiny-colbert"))):
        for name in names:
            shutil.copytree(source / name, out / name)
    return out


@pytest.fixture(scope="module")
def server(tei_repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    token = workdir / "tei-token"
    token.write_text(TOKEN)
    with ServerProcess(
        tei_repo, "--http-port", "0", "--default-model", "minilm", "--auth-token-file", str(token),
        "--max-message-mb", "1", "--max-inflight-inputs", "64", "--max-inputs-per-request", "64",
    ) as proc:
        yield proc



@pytest.fixture(scope="module")
def grpc(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target, token=TOKEN) as client:
        yield client


@pytest.fixture
def hub_reaches_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub >= 1 refuses every URL under HF_HUB_OFFLINE=1 (the suite's setting), even a
    server on 127.0.0.1; these tests reach only the loopback server."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def post(base: str, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{base}{path}", json=body, headers=kw.pop("headers", AUTH), timeout=60, **kw)


def close(a: Any, b: Any, tol: float = 1e-5) -> bool:
    return bool(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).max() < tol)


# --- the real clients ---------------------------------------------------------------------------


def test_inference_client_equals_grpc(base: str, grpc: Client, hub_reaches_loopback: None) -> None:
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=base, token=TOKEN)  # POST / : the default model, an embedding one
    assert close(client.feature_extraction(TEXTS[0]), grpc.encode("minilm", TEXTS[:1], normalize=True))
    reference = grpc.encode("minilm", TEXTS, normalize=False)
    assert close(client.feature_extraction(TEXTS, normalize=False), reference)
    cosine = reference[1:] @ reference[0] / np.linalg.norm(reference[1:], axis=1) / np.linalg.norm(reference[0])
    assert close(client.sentence_similarity(TEXTS[0], TEXTS[1:]), cosine)
    # Another model by its own base URL (our /models/{name} prefix): what TEI's one-model URL is.
    tiny = InferenceClient(base_url=f"{base}/models/tiny-bert", token=TOKEN)
    assert close(tiny.feature_extraction(TEXTS), grpc.encode("tiny-bert", TEXTS, normalize=True))
    classifier = InferenceClient(base_url=f"{base}/models/tiny-nli", token=TOKEN)
    # huggingface_hub reads element [0] of the answer (the Inference API nests the labels one level
    # deeper than TEI does): against TEI, as here, text_classification gives the top label only.
    got = classifier.text_classification(TEXTS[1])
    top = grpc.classify("tiny-nli", [TEXTS[1]])[0].labels[0]
    assert got.label == top.label and abs(got.score - top.score) < 1e-5


def test_haystack_embedders_equal_grpc(base: str, grpc: Client, hub_reaches_loopback: None) -> None:
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.embedders.huggingface_api import (
        HuggingFaceAPIDocumentEmbedder, HuggingFaceAPITextEmbedder,
    )

    params = {"url": base}
    text = HuggingFaceAPITextEmbedder(api_type="text_embeddings_inference", api_params=params,
                                      token=Secret.from_token(TOKEN))
    # Haystack sends normalize=false, truncate=true: the pooled vector as the model returns it.
    assert close(text.run(text=TEXTS[0])["embedding"], grpc.encode("minilm", TEXTS[:1], normalize=False)[0])
    docs = HuggingFaceAPIDocumentEmbedder(api_type="text_embeddings_inference", api_params=params,
                                          token=Secret.from_token(TOKEN), batch_size=2, progress_bar=False)
    embedded = docs.run(documents=[Document(content=t) for t in TEXTS])["documents"]
    assert close([d.embedding for d in embedded], grpc.encode("minilm", TEXTS, normalize=False))


def test_llamaindex_equals_grpc(base: str, grpc: Client) -> None:
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    embedder = TextEmbeddingsInference(model_name="minilm", base_url=f"{base}/models/tiny-bert", auth_token=TOKEN,
                                       embed_batch_size=2)
    assert close(embedder.get_text_embedding_batch(TEXTS), grpc.encode("tiny-bert", TEXTS, normalize=True))
    embedder = TextEmbeddingsInference(model_name="minilm", base_url=base, auth_token=TOKEN)
    assert close(asyncio.run(embedder.aget_query_embedding(TEXTS[0])), grpc.encode("minilm", TEXTS[:1], normalize=True)[0])


def _langchain_path() -> Path:
    """A folder with LangChain's TEI client and the huggingface_hub it needs (see LANGCHAIN), made once."""
    target = ROOT / ".cache" / "tei-clients" / "langchain-huggingface-1.2.1"
    if not (target / "langchain_huggingface").is_dir():
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), *LANGCHAIN],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            pytest.skip(f"cannot install {' '.join(LANGCHAIN)} into {target} (no package index?): "
                        f"{result.stderr.strip().splitlines()[-1:]}")
    return target


def test_langchain_equals_grpc(base: str, grpc: Client) -> None:
    script = (
        "import json, sys\n"
        "from langchain_huggingface import HuggingFaceEndpointEmbeddings\n"
        "e = HuggingFaceEndpointEmbeddings(model=sys.argv[1], huggingfacehub_api_token=sys.argv[2])\n"
        "texts = json.loads(sys.argv[3])\n"
        "print(json.dumps({'docs': e.embed_documents(texts), 'query': e.embed_query(texts[0])}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # the server is on loopback
    env["PYTHONPATH"] = os.pathsep.join([str(_langchain_path()), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", script, base, TOKEN, json.dumps(TEXTS)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout)
    reference = grpc.encode("minilm", TEXTS, normalize=True)
    assert close(got["docs"], reference) and close(got["query"], reference[0])


# --- each route's shape, compared with gRPC -----------------------------------------------------


def test_embed_fields(base: str, grpc: Client) -> None:
    got = post(base, "/embed", {"inputs": TEXTS, "normalize": False, "dimensions": 128, "model": "minilm"})
    assert got.status_code == 200, got.text
    assert close(got.json(), grpc.encode("minilm", TEXTS, normalize=False, dimensions=128))
    one = post(base, "/embed", {"inputs": TEXTS[0], "truncate": True, "truncation_direction": "Left"})
    assert close(one.json(), grpc.encode("minilm", TEXTS[:1], normalize=True, truncation="start"))
    long = " ".join(corpus.paragraphs()[:30])  # over minilm's 256 tokens
    refused = post(base, "/embed", {"inputs": [TEXTS[0], long], "truncate": False})
    assert refused.status_code == 422 and refused.json()["error_type"] == "Validation"
    assert refused.json()["error"].startswith("inputs[1]:"), refused.text
    assert close(post(base, "/models/minilm/embed", {"inputs": [long]}).json(), grpc.encode("minilm", [long], normalize=True))


def test_rerank_predict_sparse_all(base: str, grpc: Client) -> None:
    query, texts = TEXTS[0], TEXTS[1:]
    ranks = post(base, "/models/tiny-rerank/rerank", {"query": query, "texts": texts, "return_text": True, "raw_scores": True}).json()
    hits = grpc.rerank("tiny-rerank", query, texts, raw_scores=True)
    assert [(r["index"], r["text"]) for r in ranks] == [(h.index, texts[h.index]) for h in hits]
    assert close([r["score"] for r in ranks], [h.score for h in hits])
    maxsim = post(base, "/models/tiny-colbert/rerank", {"query": query, "texts": texts}).json()
    assert [r["index"] for r in maxsim] == [h.index for h in grpc.rerank("tiny-colbert", query, texts)]
    assert "text" not in maxsim[0]

    pair = post(base, "/predict", {"inputs": [query, texts[0]]}).json()
    want = grpc.classify("tiny-nli", [(query, texts[0])])[0].labels
    assert [p["label"] for p in pair] == [w.label for w in want] and close([p["score"] for p in pair], [w.score for w in want])
    batch = post(base, "/predict", {"inputs": [[texts[1]], [query, texts[0]]], "raw_scores": True}).json()
    assert len(batch) == 2 and [p["label"] for p in batch[1]] == [w.label for w in
                                                               grpc.classify("tiny-nli", [(query, texts[0])], raw_scores=True)[0].labels]
    single = grpc.classify("tiny-nli", [texts[1]], raw_scores=True)[0].labels
    assert close([p["score"] for p in batch[0]], [s.score for s in single])

    sparse = post(base, "/embed_sparse", {"inputs": texts}).json()
    for got, want in zip(sparse, grpc.encode_sparse("tiny-sparse", texts), strict=True):
        order = np.argsort(want.indices)
        assert [g["index"] for g in got] == want.indices[order].tolist()
        assert close([g["value"] for g in got], want.values[order])
    token_vectors = post(base, "/embed_all", {"inputs": texts}).json()
    for got, want in zip(token_vectors, grpc.encode_multi_vector("tiny-colbert", texts), strict=True):
        assert close(got, want)


def test_root_dispatches_by_the_model_kind(base: str, grpc: Client) -> None:
    ranks = post(base, "/models/tiny-rerank/invocations", {"query": TEXTS[0], "texts": TEXTS[1:]}).json()
    assert sorted(r["index"] for r in ranks) == [0, 1]
    sparse = post(base, "/", {"inputs": TEXTS[1], "model": "tiny-sparse"}).json()
    assert isinstance(sparse[0], list) and set(sparse[0][0]) == {"index", "value"}
    assert close(post(base, "/invocations", {"inputs": TEXTS}).json(), grpc.encode("minilm", TEXTS, normalize=True))


def test_tokenize_decode_info(base: str, grpc: Client) -> None:
    text = "Héllo wörld"
    tokens = post(base, "/models/tiny-bert/tokenize", {"inputs": text}).json()[0]
    want = grpc.tokenize("tiny-bert", [text], truncation="none")[0].tokens
    assert [t["id"] for t in tokens] == [t.id for t in want]
    assert tokens[0] == {"id": want[0].id, "text": want[0].text, "special": True, "start": None, "stop": None}
    word = tokens[1]
    assert text.encode()[word["start"]:word["stop"]].decode() == word["text"]
    bare = post(base, "/models/tiny-bert/tokenize", {"inputs": [text], "add_special_tokens": False}).json()[0]
    assert [t["id"] for t in bare] == [t.id for t in want if not t.special]
    ids = [t.id for t in want]
    decoded = post(base, "/models/tiny-bert/decode", {"ids": [ids, ids[1:2]], "skip_special_tokens": False}).json()
    assert decoded == [grpc.decode("tiny-bert", ids), grpc.decode("tiny-bert", ids[1:2])]
    info = httpx.get(f"{base}/info", headers=AUTH).json()
    assert info["model_id"] == "minilm" and info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == 256 and info["max_client_batch_size"] == 64
    nli = httpx.get(f"{base}/models/tiny-nli/info", headers=AUTH).json()
    assert list(nli["model_type"]) == ["classifier"] and nli["model_type"]["classifier"]["label2id"]
    assert httpx.get(f"{base}/ping").status_code == 200 and httpx.get(f"{base}/").status_code == 200


# --- errors in TEI's body -----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "status", "error_type", "starts"), [
    ("/embed", {"inputs": ["ok", 3]}, 422, "Validation", "inputs[1]: must be a string"),
    ("/embed", {"inputs": [[101, 102]]}, 422, "Validation", "inputs: holds token ids"),
    ("/embed", {"inputs": "x", "normalize": "yes"}, 422, "Validation", "normalize: must be true or false"),
    ("/embed", {"inputs": "x", "truncation_direction": "up"}, 422, "Validation", "truncation_direction:"),
    ("/embed", {"inputs": []}, 400, "Empty", "inputs: is empty"),
    ("/embed", {"inputs": ["a", " "]}, 400, "Empty", "inputs[1]: is empty"),
    ("/embed", {"inputs": "x", "model": "nope"}, 422, "Validation", "model 'nope' is not loaded"),
    ("/embed", {"inputs": "x", "model": "tiny-rerank"}, 424, "Backend", "model 'tiny-rerank' is of kind rerank"),
    ("/models/tiny-rerank/rerank", {"query": "q", "texts": []}, 400, "Empty", "texts: is empty"),
    ("/rerank", {"query": "q", "texts": ["a", 1]}, 422, "Validation", "texts[1]: must be a string"),
    ("/rerank", {"texts": ["a"]}, 422, "Validation", "query: is required"),
    ("/predict", {"inputs": [["a", "b", "c"]]}, 422, "Validation", "inputs[0]: has 3 strings"),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}, 400, "Empty", "inputs.sentences: is empty"),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", ""]}}, 400, "Empty", "inputs.sentences[1]"),
    ("/embed_sparse", {"inputs": "x", "model": "minilm"}, 424, "Backend", "model 'minilm' is of kind embedding"),
    ("/embed", {"inputs": ["x"] * 65}, 422, "Validation", "inputs: has 65 items, over the limit of 64"),
    ("/decode", {"ids": [1, -2]}, 422, "Validation", "ids: must be a list of token ids"),
])
def test_errors_in_tei_shape(base: str, path: str, body: Any, status: int, error_type: str, starts: str) -> None:
    got = post(base, path, body)
    assert got.status_code == status, got.text
    assert set(got.json()) == {"error", "error_type"} and got.json()["error_type"] == error_type
    assert got.json()["error"].startswith(starts) or starts in got.json()["error"], got.text


def test_no_model_chosen_names_the_choices(base: str) -> None:
    got = post(base, "/rerank", {"query": "q", "texts": ["a"]})  # one reranker + one multi-vector: ambiguous
    assert got.status_code == 422 and got.json()["error_type"] == "Validation"
    assert "tiny-colbert, tiny-rerank" in got.json()["error"] and "/models/<name>/rerank" in got.json()["error"]


def test_refusals_before_the_body_in_tei_shape(base: str) -> None:
    """The doors (server/http/limits.py) refuse before reading a body; on TEI's routes in TEI's shape."""
    form = httpx.post(f"{base}/embed", content=b"inputs=x", headers={**AUTH, "Content-Type": "text/plain"})
    assert form.status_code == 415 and form.json()["error_type"] == "Validation", form.text
    declared = httpx.post(f"{base}/models/minilm/rerank", content=b"{}" + b" " * (1024 * 1024),
                          headers={**AUTH, "Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error_type"] == "Validation", declared.text


def test_token_missing_and_body_over_the_limit(base: str) -> None:
    missing = post(base, "/embed", {"inputs": "x"}, headers={})
    assert missing.status_code == 401 and missing.json()["error_type"] == "Unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    big = post(base, "/embed", {"inputs": ["x" * 1000] * 1100})
    assert big.status_code == 413 and big.json()["error_type"] == "Validation" and "--max-message-mb" in big.json()["error"]


async def test_over_admission_is_429_with_tei_body(base: str) -> None:
    paragraphs = corpus.paragraphs()
    texts = [" ".join(paragraphs[i: i + 2]) for i in range(32)]
    async with httpx.AsyncClient(timeout=120, headers=AUTH) as client:
        answers = await asyncio.gather(*(client.post(f"{base}/embed", json={"inputs": texts}) for _ in range(8)))
    refused = [a for a in answers if a.status_code != 200]
    assert refused and all(a.status_code == 429 for a in refused), [a.text for a in refused]
    for a in refused:
        assert a.json()["error_type"] == "Overloaded" and a.headers["retry-after"] == "1"


def test_default_model_must_be_loaded(tiny_repo: Path) -> None:
    with pytest.raises(RuntimeError, match=r"--default-model 'nope' is not a loaded model \(loaded: tiny-bert\)"):
        ServerProcess(tiny_repo, "--default-model", "nope")


def test_tei_column_of_the_status_table() -> None:
    """Every row's TEI status and error_type, as TEI's router maps its own errors (server.rs)."""
    from embedrank.model import errors
    from embedrank.server import statuses
    from embedrank.server.http.serving import RequestState
    from embedrank.server.http.tei_bodies import tei_error

    expected = {
        errors.InvalidArgument: (422, "Validation"), errors.EmptyInput: (400, "Empty"),
        errors.NotFound: (422, "Validation"), errors.FailedPrecondition: (424, "Backend"),
        errors.MessageTooLarge: (413, "Validation"), errors.ResourceExhausted: (429, "Overloaded"),
        errors.Unavailable: (503, "Unhealthy"), errors.DeadlineExceeded: (504, "Overloaded"),
        errors.Unauthenticated: (401, "Unauthorized"), errors.ConfigError: (424, "Backend"),
        errors.UnsupportedMediaType: (415, "Validation"), errors.RequestTimeout: (408, "Validation"),
    }
    assert set(expected) == set(statuses.ROWS)
    for cls, (status, error_type) in expected.items():
        exc = cls("m") if cls is errors.UnsupportedMediaType else cls("f", "m") if issubclass(cls, errors.InvalidArgument) else (
            cls("m", retry_after_s=0.2) if cls is errors.ResourceExhausted else cls("m"))  # type: ignore[call-arg]
        answer = tei_error(exc, "rid", RequestState({}))
        assert (answer.status, answer.body["error_type"]) == (status, error_type), cls
    bug = tei_error(KeyError("x"), "rid7", RequestState({}))
    assert (bug.status, bug.body) == (424, {"error": "internal error (request id rid7)", "error_type": "Backend"})
