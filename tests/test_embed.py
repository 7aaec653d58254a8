"""Encode / EncodeStream against a live server: parity with sentence-transformers and options."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import AsyncClient, Client
from embedrank.exporter import corpus

ARCHS = ["tiny-bert", "tiny-mpnet", "tiny-xlmr", "minilm"]


def _st(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def _min_cos(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(1)
    return float((num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


TEXTS = corpus.parity_texts() + corpus.sentences(40)[20:]


@pytest.mark.parametrize("name", ARCHS)
def test_encode_matches_sentence_transformers(target: str, sources: dict[str, Path], name: str) -> None:
    ref = _st(sources[name]).encode(TEXTS, convert_to_numpy=True)
    with Client(target) as client:
        got = client.encode(name, TEXTS)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert _min_cos(got, ref) >= 0.99999
    assert np.abs(got - ref).max() < 1e-4


def test_encode_returns_float32_rows(target: str) -> None:
    out = Client(target).encode("minilm", ["a", "b"])
    assert out.shape == (2, 384) and out.dtype == np.float32


def test_batched_equals_single(target: str) -> None:
    texts = TEXTS[:12]
    with Client(target) as client:
        together = client.encode("tiny-bert", texts)
        alone = np.stack([client.encode("tiny-bert", [t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


async def test_64_concurrent_clients_mixed_lengths(target: str, sources: dict[str, Path]) -> None:
    texts = corpus.sentences(64) + [" ".join(corpus.paragraphs()[i : i + 6]) for i in range(0, 64, 4)]
    ref = _st(sources["minilm"]).encode(texts, convert_to_numpy=True)
    rng = np.random.default_rng(0)

    async def one(i: int) -> tuple[list[int], np.ndarray]:
        idx = sorted(rng.choice(len(texts), size=int(rng.integers(1, 6)), replace=False).tolist())
        async with AsyncClient(target) as client:
            return idx, await client.encode("minilm", [texts[j] for j in idx])

    results = await asyncio.gather(*(one(i) for i in range(64)))
    for idx, got in results:
        assert _min_cos(got, ref[idx]) >= 0.99999


def test_prompts_by_input_type_and_name(target: str, sources: dict[str, Path]) -> None:
    st = _st(sources["tiny-bert"])
    texts = ["what is a list", "lists are sequences"]
    with Client(target) as client:
        q = client.encode("tiny-bert", texts, input_type="query")
        d = client.encode("tiny-bert", texts, input_type="document")
        named = client.encode("tiny-bert", texts, prompt_name="passage")
        plain = client.encode("tiny-bert", texts)
    np.testing.assert_allclose(q, st.encode_query(texts), atol=1e-5)
    np.testing.assert_allclose(d, st.encode_document(texts), atol=1e-5)  # "document" comes first
    np.testing.assert_allclose(named, st.encode(texts, prompt_name="passage"), atol=1e-5)
    np.testing.assert_allclose(plain, st.encode(texts), atol=1e-5)
    assert not np.allclose(q, plain, atol=1e-3)


def test_normalize_off_and_on(target: str, sources: dict[str, Path]) -> None:
    texts = ["one sentence", "and another one that is a bit longer"]
    with Client(target) as client:
        raw = client.encode("minilm", texts, normalize=False)
        xlmr_norm = client.encode("tiny-xlmr", texts, normalize=True)
    from sentence_transformers import SentenceTransformer

    full = _st(sources["minilm"])
    pooled_only = SentenceTransformer(modules=[full[0], full[1]], device="cpu")  # without Normalize
    ref_pooled = pooled_only.encode(texts)
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 0.01
    np.testing.assert_allclose(raw, ref_pooled, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(xlmr_norm, axis=1), 1, atol=1e-5)


def test_matryoshka_dimensions_cut_then_renormalize(target: str, sources: dict[str, Path]) -> None:
    texts = ["cut me", "and me too"]
    full = _st(sources["minilm"]).encode(texts)
    ref = _st(sources["minilm"]).encode(texts, truncate_dim=64, normalize_embeddings=True)
    with Client(target) as client:
        got = client.encode("minilm", texts, dimensions=64)
    assert got.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert not np.allclose(got, full[:, :64], atol=1e-3)


def test_truncation_flags_and_start(target: str) -> None:
    long_text = " ".join(corpus.paragraphs()[:10])
    with Client(target) as client:
        resp = client.encode_raw("tiny-xlmr", ["short", long_text])
        end = client.encode("tiny-xlmr", [long_text])
        start = client.encode("tiny-xlmr", [long_text], truncation="start")
    assert list(resp.truncated) == [False, True]
    assert resp.token_counts[1] == 48 and resp.token_counts[0] < 48
    assert resp.metadata.tokens == sum(resp.token_counts)
    assert resp.metadata.timing.total_ns > 0 and resp.metadata.timing.inference_ns > 0
    assert not np.allclose(end, start, atol=1e-3)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantized_output_equals_quantize_embeddings(target: str, repo: Path, precision: str) -> None:
    import json

    from sentence_transformers.quantization import quantize_embeddings

    texts = corpus.sentences(30)
    manifest = json.loads((repo / "minilm" / "1" / "manifest.json").read_text())
    ranges = np.array([manifest["embedding"]["ranges"]["min"], manifest["embedding"]["ranges"]["max"]], dtype=np.float32)
    with Client(target) as client:
        floats = client.encode("minilm", texts)
        got = client.encode("minilm", texts, precision=precision)
    want = quantize_embeddings(floats, precision=precision, ranges=ranges)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


async def test_encode_stream_keeps_order(target: str) -> None:
    texts = corpus.sentences(300)
    async with AsyncClient(target) as client:
        streamed = await client.encode_stream("tiny-bert", texts, chunk_size=7)
        direct = np.concatenate([await client.encode("tiny-bert", texts[i : i + 100]) for i in range(0, 300, 100)])
    assert streamed.shape == direct.shape
    np.testing.assert_allclose(streamed, direct, atol=1e-5)


def test_sync_encode_stream_with_progress(target: str) -> None:
    texts = corpus.sentences(100)
    with Client(target) as client:
        streamed = client.encode_stream("tiny-bert", texts, chunk_size=16, progress=True)
        direct = client.encode("tiny-bert", texts)
    np.testing.assert_allclose(streamed, direct, atol=1e-5)


def test_models_service(target: str) -> None:
    with Client(target) as client:
        names = {m.name for m in client.list_models()}
        info = client.get_model("minilm")
    assert {"minilm", "tiny-bert", "tiny-rerank", "minilm-rerank"} <= names
    assert info.dimensions == 384 and info.max_tokens == 256 and info.kind == "embedding"
    assert info.similarity_fn == "cosine" and info.graph_precision == "fp32"
