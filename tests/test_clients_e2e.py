"""The generated Go and Java clients against this session's live server.

Each compares its results with the Python client's on the same inputs (expected.json).
Go and Maven must be installed (they are on the project's machines); outside CI a
missing toolchain skips, in CI (CI=true) it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from embedrank.client import Client, EmbedRankError
from embedrank.exporter import corpus
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
EMBED, RERANK = "tiny-bert", "minilm-rerank"


@pytest.fixture(scope="module")
def expected(target: str, workdir: Path, kinds_server: ServerProcess) -> Path:
    texts = corpus.sentences(12) + [" ".join(corpus.paragraphs()[:5])]
    query = "How are exceptions handled?"
    documents = corpus.sentences(80)[40:70]
    batches = [corpus.sentences(40)[i : i + 5] for i in range(0, 40, 5)]
    with Client(target) as client:
        data = {
            "embed_model": EMBED,
            "rerank_model": RERANK,
            "texts": texts,
            "embeddings": client.encode(EMBED, texts).tolist(),
            "query": query,
            "documents": documents,
            "rerank": [{"index": h.index, "score": h.score} for h in client.rerank(RERANK, query, documents)],
            "stream_batches": batches,
            "stream_embeddings": [client.encode(EMBED, b).tolist() for b in batches],
            "bad": {},
        }
        # long_input CHUNK: spans are code points; the emoji is 1 in Python, 2 UTF-16 units in Java, 4 bytes in Go.
        chunk_texts = ["naïve café 😀 " + " ".join(corpus.paragraphs()[:8]), "short one"]
        chunked = client.encode(EMBED, chunk_texts, long_input="chunk", chunk_overlap=8, return_chunks=True)
        chunk_docs = [chunk_texts[0], documents[0]]
        chunk_hits = client.rerank(RERANK, query, chunk_docs, long_input="chunk", chunk_overlap=16)
        data["chunked"] = {
            "texts": chunk_texts,
            "overlap": 8,
            "embeddings": chunked.embeddings.tolist(),
            "chunk_embeddings": chunked.chunk_embeddings.tolist(),
            "chunks": [
                {"text_index": c.text_index, "start": c.start, "end": c.end, "token_count": c.token_count, "text": c.text}
                for c in chunked.chunks
            ],
            "documents": chunk_docs,
            "rerank": [
                {"index": h.index, "score": h.score, "span": list(h.span or ()), "chunk_count": h.chunk_count}
                for h in chunk_hits
            ],
        }
        # Classify (NLI pairs) and Tokenize (a prompt, an emoji: spans are code points) for the new kinds' RPCs.
        pairs = [("A man plays a guitar.", d) for d in documents[:4]]
        tok_texts = ["naïve café 😀 tokens", documents[0]]
        tokenized = client.tokenize(EMBED, tok_texts, input_type="query")
        data["kinds"] = {
            "classify_model": "tiny-nli",
            "pairs": pairs,
            "classify": [[{"index": s.index, "label": s.label, "score": s.score} for s in r.labels]
                         for r in client.classify("tiny-nli", pairs)],
            "tokenize_model": EMBED,
            "tokenize_texts": tok_texts,
            "tokenize": [
                {"ids": t.ids, "spans": [[x.start, x.end] for x in t.tokens], "specials": [x.special for x in t.tokens],
                 "pieces": [text[x.start : x.end] for x in t.tokens], "prompt": t.prompt,
                 "decoded": client.decode(EMBED, t.ids, skip_special_tokens=True)}
                for text, t in zip(tok_texts, tokenized)
            ],
        }
        for key, call in (("empty_texts_code", lambda: client.encode(EMBED, [])), ("unknown_model_code", lambda: client.encode("no-such-model", ["a"]))):
            with pytest.raises(EmbedRankError) as info:
                call()
            data["bad"][key] = info.value.code.value[0]
    # The sparse and multi-vector kinds, served by a second server (tests/conftest.py kinds_server).
    with Client(kinds_server.target) as client:
        kinds_texts = texts[:3]
        sparse = client.encode_sparse("tiny-sparse", kinds_texts, top_k=10, return_tokens=True)
        data["kinds"] |= {  # beside Classify's and Tokenize's (no key in common)
            "target": kinds_server.target,
            "sparse_model": "tiny-sparse",
            "multi_vector_model": "tiny-colbert",
            "texts": kinds_texts,
            "sparse": [{"indices": v.indices.tolist(), "values": v.values.tolist(), "tokens": v.tokens} for v in sparse],
            "multi_vector": [m.tolist() for m in client.encode_multi_vector("tiny-colbert", kinds_texts, input_type="query")],
            "multi_vector_int8": [m.tolist() for m in client.encode_multi_vector(
                "tiny-colbert", kinds_texts, input_type="query", precision="int8")],
            "documents": documents[:8],
            "maxsim": [{"index": h.index, "score": h.score} for h in client.rerank("tiny-colbert", query, documents[:8])],
        }
    path = workdir / "expected.json"
    path.write_text(json.dumps(data))
    return path


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; CI needs it for the client end-to-end tests")
        pytest.skip(f"{name} is not installed")
    return found


def _env(target: str, expected: Path) -> dict[str, str]:
    return {**os.environ, "EMBEDRANK_TARGET": target, "EMBEDRANK_EXPECTED": str(expected)}


def test_go_client_end_to_end(target: str, expected: Path) -> None:
    go = _tool("go")
    result = subprocess.run(
        [go, "test", "-count=1", "-v", "./..."], cwd=ROOT / "clients" / "go",
        env=_env(target, expected), capture_output=True, text=True, timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    passed = re.findall(r"--- PASS: (TestE2E\w*)", out)
    assert len(passed) >= 6 and "--- SKIP: TestE2E" not in out, out[-6000:]
    assert {"TestE2EClassifyAndTokenizeStreams", "TestE2ESparseAndMultiVectorStreams"} <= set(passed), out[-6000:]
    assert "--- FAIL" not in out


def test_java_client_end_to_end(target: str, expected: Path) -> None:
    mvn = _tool("mvn")
    result = subprocess.run(
        [mvn, "-B", "-q", "test", "-Dsurefire.printSummary=true"], cwd=ROOT / "clients" / "java",
        env=_env(target, expected), capture_output=True, text=True, timeout=1800,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    reports = ROOT / "clients" / "java" / "target" / "surefire-reports"
    for name, least in (("EndToEndTest", 6), ("StreamsEndToEndTest", 2)):
        xml = (reports / f"TEST-dev.embedrank.client.{name}.xml").read_text()
        tests = int(re.search(r'tests="(\d+)"', xml).group(1))  # type: ignore[union-attr]
        skipped = int(re.search(r'skipped="(\d+)"', xml).group(1))  # type: ignore[union-attr]
        failures = int(re.search(r'failures="(\d+)"', xml).group(1))  # type: ignore[union-attr]
        errors = int(re.search(r'errors="(\d+)"', xml).group(1))  # type: ignore[union-attr]
        assert tests >= least and skipped == 0 and failures == 0 and errors == 0, xml[:2000]
