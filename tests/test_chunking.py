"""long_input CHUNK: windows, Encode's token-weighted mean, Rerank's MaxP, limits, admission."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tokenizers import Tokenizer

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus
from embedrank.server.engine.chunking import windows
from tests.conftest import ServerProcess

INVALID = grpc.StatusCode.INVALID_ARGUMENT
LONG = " ".join(corpus.paragraphs()[:30])  # ~1,500 tokens
ALL = " ".join(corpus.paragraphs())


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _content_tokens(repo: Path, model: str, text: str):  # type: ignore[no-untyped-def]
    tok = Tokenizer.from_file(str(repo / model / "1" / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok.encode(text, add_special_tokens=False)


# --- windows(): the pure splitting rule ------------------------------------------------------


@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (10, 3), (10, 9), (7, 2), (64, 16)])
def test_windows_cover_share_overlap_and_keep_words(size: int, overlap: int) -> None:
    rng = np.random.default_rng(size * 100 + overlap)
    # Words of 1..4 tokens, plus one word longer than any window.
    starts: list[bool] = []
    long_word = range(0)
    for k in range(300):
        length = 3 * size if k == 150 else int(rng.integers(1, 5))
        if k == 150:
            long_word = range(len(starts), len(starts) + length)
        starts += [True] + [False] * (length - 1)
    got = windows(starts, size=size, overlap=overlap)
    n = len(starts)
    assert got[0][0] == 0 and got[-1][1] == n
    for (s, e), (s2, e2) in zip(got, got[1:]):
        assert s < s2 <= e <= e2  # progress, no gap
        assert e - s2 >= overlap  # at least the stated overlap
    for s, e in got:
        assert 0 < e - s <= size
    # Window edges fall on word starts, unless moving back to the word's first token would leave
    # the window no new tokens (a word longer than the window, or a tiny window with a big overlap).
    first = [0] * n
    for k in range(1, n):
        first[k] = k if starts[k] else first[k - 1]
    inside = 0
    for (ps, _), (s, e) in zip([(-1, -1), *got], got):
        assert starts[s] or first[s] <= ps
        assert e == n or starts[e] or first[e] <= s + overlap
        inside += (not starts[s] and s not in long_word) + (e < n and not starts[e] and e not in long_word)
    if size >= 32:  # windows much longer than words: words are cut only next to the too-long word
        assert inside <= 1, inside


def test_windows_short_input_is_one_window() -> None:
    assert windows([True] * 5, size=5, overlap=2) == [(0, 5)]
    assert windows([True], size=3, overlap=0) == [(0, 1)]


# --- Encode --------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "options"), [("minilm", {}), ("tiny-bert", {"input_type": "query"}), ("tiny-xlmr", {})])
def test_text_that_fits_gives_the_same_vector(target: str, repo: Path, model: str, options: dict[str, str]) -> None:
    # Sentences within even tiny-xlmr's 48 tokens (44 of text with the prompt and special tokens).
    texts = [t for t in corpus.sentences(80) if len(_content_tokens(repo, model, t).ids) <= 44][:20]
    assert len(texts) == 20
    with Client(target) as client:
        plain = client.encode(model, texts, **options)
        chunked = client.encode(model, texts, long_input="chunk", **options)
        raw = client.encode_raw(model, texts, long_input="chunk", **options)
    assert chunked.shape == plain.shape
    assert _cos(plain, chunked).min() >= 0.99999
    assert list(raw.chunk_counts) == [1] * len(texts)


def _st_weighted_mean(source: Path, pieces: list[str], owners: list[int], n: int, *, prompt: str = "", normalize: bool | None = None):  # type: ignore[no-untyped-def]
    """sentence-transformers on every window's text; token-weighted mean per text."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(source), device="cpu")
    vectors = st.encode([prompt + p for p in pieces], convert_to_numpy=True)
    weights = np.array([len(st.tokenizer(prompt + p)["input_ids"]) for p in pieces], dtype=np.float64)
    assert weights.max() <= st.max_seq_length  # every window fits the model: nothing was cut
    sums = np.zeros((n, vectors.shape[1]))
    np.add.at(sums, owners, vectors * weights[:, None])
    mean = sums / np.bincount(owners, weights=weights, minlength=n)[:, None]
    return vectors, weights, mean


@pytest.mark.parametrize(
    ("model", "options", "prompt"),
    [("minilm", {}, ""), ("tiny-bert", {"input_type": "query"}, "query: "), ("tiny-xlmr", {}, "")],
)
def test_long_text_is_the_token_weighted_mean_of_its_windows(
    target: str, repo: Path, sources: dict[str, Path], model: str, options: dict[str, str], prompt: str
) -> None:
    texts = ["A short one.", LONG, " ".join(corpus.paragraphs()[20:24])]
    overlap = 8
    with Client(target) as client:
        got = client.encode(model, texts, long_input="chunk", chunk_overlap=overlap, return_chunks=True, **options)
        truncated = client.encode(model, texts, **options)
    pieces = [c.text for c in got.chunks]
    owners = [c.text_index for c in got.chunks]
    vectors, weights, mean = _st_weighted_mean(sources[model], pieces, owners, len(texts), prompt=prompt)
    # Every window is what sentence-transformers embeds for that slice of the text.
    assert _cos(got.chunk_embeddings, vectors).min() >= 0.9999
    assert [c.token_count for c in got.chunks] == weights.astype(int).tolist()
    assert got.token_counts == np.bincount(owners, weights=weights).astype(int).tolist()
    # The text's vector is their token-weighted mean (re-normalized when the model normalizes).
    assert _cos(got.embeddings, mean).min() >= 0.9999
    if model != "tiny-xlmr":
        np.testing.assert_allclose(np.linalg.norm(got.embeddings, axis=1), 1, atol=1e-5)
        mean = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(got.embeddings, mean, atol=2e-4)
    assert got.chunk_counts[0] == 1 and got.chunk_counts[1] > 3
    assert _cos(got.embeddings[1], truncated[1]) < 0.999  # the ending counts now
    # The spans cover each text, in order, consecutive ones sharing >= `overlap` tokens.
    for i, text in enumerate(texts):
        spans = [(c.start, c.end) for c in got.chunks_of(i)]
        enc = _content_tokens(repo, model, text)
        assert spans[0][0] <= enc.offsets[0][0] and spans[-1][1] >= enc.offsets[-1][1]
        for (s, e), (s2, e2) in zip(spans, spans[1:]):
            assert s < s2 < e <= e2
            shared = sum(1 for a, b in enc.offsets if a >= s2 and b <= e)
            assert shared >= overlap
        assert not text[spans[-1][1]:].strip()


def test_chunk_then_dimensions_and_precision(target: str, sources: dict[str, Path]) -> None:
    texts = [LONG]
    with Client(target) as client:
        full = client.encode("minilm", texts, long_input="chunk", return_chunks=True)
        cut = client.encode("minilm", texts, long_input="chunk", dimensions=64, return_chunks=True)
        ubinary = client.encode("minilm", texts, long_input="chunk", precision="ubinary")
        raw = client.encode("minilm", texts, long_input="chunk", normalize=False)
    want = full.embeddings[:, :64] / np.linalg.norm(full.embeddings[:, :64], axis=1, keepdims=True)
    np.testing.assert_allclose(cut.embeddings, want, atol=1e-5)
    assert cut.chunk_embeddings.shape == (len(full.chunks), 64)
    np.testing.assert_allclose(np.linalg.norm(cut.chunk_embeddings, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(ubinary, np.packbits(full.embeddings > 0, axis=-1))
    # normalize=False on a normalizing model: the mean of the window vectors before Normalize.
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(sources["minilm"]), device="cpu")
    pooled_only = SentenceTransformer(modules=[st[0], st[1]], device="cpu")
    pieces = [c.text for c in full.chunks]
    weights = np.array([c.token_count for c in full.chunks], dtype=np.float64)
    want_raw = (pooled_only.encode(pieces) * weights[:, None]).sum(0) / weights.sum()
    np.testing.assert_allclose(raw[0], want_raw, atol=1e-4)
    assert abs(np.linalg.norm(raw) - 1) > 0.01


def test_batched_equals_single_with_chunks(target: str) -> None:
    texts = [LONG, "short", " ".join(corpus.paragraphs()[30:36])]
    with Client(target) as client:
        together = client.encode("tiny-bert", texts, long_input="chunk")
        alone = np.concatenate([client.encode("tiny-bert", [t], long_input="chunk") for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_default_overlap_is_a_quarter_of_small_windows(target: str, repo: Path) -> None:
    # tiny-xlmr: 48 tokens, 2 special -> a 46-token window, default overlap min(32, 46 // 4) = 11.
    with Client(target) as client:
        got = client.encode("tiny-xlmr", [LONG], long_input="chunk", return_chunks=True)
    enc = _content_tokens(repo, "tiny-xlmr", LONG)
    for a, b in zip(got.chunks, got.chunks[1:]):
        shared = sum(1 for s, e in enc.offsets if s >= b.start and e <= a.end)
        assert 11 <= shared < 11 + 6
        assert a.token_count <= 48


async def test_async_client_and_stream_accept_chunking(target: str) -> None:
    async with AsyncClient(target) as client:
        got = await client.encode("tiny-bert", [LONG, "b"], long_input="chunk", return_chunks=True)
        streamed = await client.encode_stream("tiny-bert", [LONG, "b"] * 3, chunk_size=2, long_input="chunk")
    assert got.embeddings.shape == (2, 32) and len(got.chunks) == sum(got.chunk_counts)
    async with AsyncClient(target) as client:
        with pytest.raises(TypeError):
            await client.encode_stream("tiny-bert", ["a"], long_input="chunk", return_chunks=True)
    with Client(target) as sync_client, pytest.raises(TypeError):
        sync_client.encode_stream("tiny-bert", ["a"], long_input="chunk", return_chunks=True)
    np.testing.assert_allclose(streamed, np.concatenate([got.embeddings] * 3), atol=1e-5)


# --- Rerank --------------------------------------------------------------------------------


def test_rerank_maxp_equals_best_cross_encoder_window(target: str, repo: Path, sources: dict[str, Path]) -> None:
    from sentence_transformers import CrossEncoder

    query = "How are exceptions handled inside a try statement?"
    docs = [LONG, corpus.sentences(5)[0], " ".join(corpus.paragraphs()[40:50])]
    overlap = 16
    with Client(target) as client:
        hits = client.rerank("minilm-rerank", query, docs, long_input="chunk", chunk_overlap=overlap)
        hits_raw = client.rerank("minilm-rerank", query, docs, long_input="chunk", chunk_overlap=overlap, raw_scores=True)
    ce = CrossEncoder(str(sources["minilm-rerank"]), device="cpu")
    # The same windows: the document's tokens split with the query's share of the 256 taken.
    tok = ce.tokenizer
    budget = 256 - tok.num_special_tokens_to_add(pair=True) - len(tok(query, add_special_tokens=False)["input_ids"])
    by_index = {h.index: h for h in hits}
    for i, doc in enumerate(docs):
        enc = _content_tokens(repo, "minilm-rerank", doc)
        words = enc.word_ids
        starts = [k == 0 or words[k] != words[k - 1] for k in range(len(enc.ids))]
        ranges = windows(starts, size=budget, overlap=overlap)
        spans = [(enc.offsets[s][0], enc.offsets[e - 1][1]) for s, e in ranges] if len(ranges) > 1 else [(0, len(doc))]
        pairs = [(query, doc[a:b]) for a, b in spans]
        assert max(len(tok(q, d)["input_ids"]) for q, d in pairs) <= 256  # no window is cut
        scores = ce.predict(pairs, convert_to_numpy=True)
        hit = by_index[i]
        assert hit.chunk_count == len(spans)
        assert abs(hit.score - float(scores.max())) < 1e-4
        assert hit.span == spans[int(scores.argmax())]
    assert max(h.chunk_count for h in hits) > 3
    assert [h.index for h in hits] == [h.index for h in hits_raw]  # sigmoid is monotonic: same MaxP window


def test_rerank_document_that_fits_scores_as_before(target: str) -> None:
    docs = corpus.sentences(30)
    with Client(target) as client:
        plain = client.rerank("minilm-rerank", "what is a list", docs)
        chunked = client.rerank("minilm-rerank", "what is a list", docs, long_input="chunk")
    assert [h.index for h in plain] == [h.index for h in chunked]
    np.testing.assert_allclose([h.score for h in plain], [h.score for h in chunked], atol=1e-5)
    assert all(h.span == (0, len(docs[h.index])) and h.chunk_count == 1 for h in chunked)


# --- bad input and limits ------------------------------------------------------------------

TOO_MANY_PER_TEXT = ALL[:49_000]  # ~300 windows of 46 tokens


@pytest.mark.parametrize(
    ("model", "texts", "options", "field", "words"),
    [
        ("tiny-xlmr", [LONG], {"long_input": "chunk", "chunk_overlap": 46}, "chunk_overlap", "not below the window of 46"),
        ("tiny-bert", [LONG], {"long_input": "chunk", "chunk_overlap": 60, "input_type": "query"}, "chunk_overlap",
         "window of 60"),
        ("tiny-xlmr", [LONG], {"long_input": "chunk", "truncation": "none"}, "long_input", "truncation NONE"),
        ("tiny-xlmr", ["a"], {"chunk_overlap": 4}, "chunk_overlap", "only with long_input CHUNK"),
        ("tiny-xlmr", ["a"], {"return_chunks": True}, "return_chunks", "only with long_input CHUNK"),
        ("tiny-xlmr", ["ok", TOO_MANY_PER_TEXT], {"long_input": "chunk"}, "texts[1]", "over the limit of 64 per text"),
        ("tiny-xlmr", [ALL[i * 5000 : (i + 1) * 5000] for i in range(40)], {"long_input": "chunk"},
         "texts", "over the limit of 1024 per request"),
    ],
)
def test_bad_chunk_options(target: str, model: str, texts: list[str], options: dict[str, object], field: str, words: str) -> None:
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.encode(model, texts, **options)  # type: ignore[call-overload]
        assert info.value.code == INVALID, info.value
        assert info.value.field == field
        assert words in info.value.message, info.value.message
        assert client.encode(model, ["still here"], long_input="chunk").shape[0] == 1


def test_bad_rerank_chunk_options(target: str) -> None:
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.rerank("tiny-rerank", "q", [LONG], long_input="chunk", chunk_overlap=500)
        assert info.value.code == INVALID and info.value.field == "chunk_overlap"
        with pytest.raises(EmbedRankError) as info:
            client.rerank("tiny-rerank", "word " * 200, [LONG], long_input="chunk")
        assert info.value.code == INVALID and info.value.field == "query" and "no room" in info.value.message
        with pytest.raises(EmbedRankError) as info:
            client.rerank("tiny-rerank", "q", [LONG], long_input="chunk", truncation="none")
        assert info.value.code == INVALID and info.value.field == "long_input"


def test_chunk_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from embedrank.server import config
    from embedrank.model.errors import ConfigError

    monkeypatch.setenv("EMBEDRANK_MAX_CHUNKS_PER_TEXT", "7")
    cfg = config.parse(["--model-repository", "/m", "--max-chunks-per-request", "99"])
    assert cfg.max_chunks_per_text == 7 and cfg.max_chunks_per_request == 99
    for flag in ("--max-chunks-per-text", "--max-chunks-per-request"):
        with pytest.raises(ConfigError) as info:
            config.parse(["--model-repository", "/m", flag, "0"])
        assert f"{flag} must be > 0" in info.value.message


@pytest.fixture(scope="module")
def small_server(workdir: Path, repo: Path) -> Iterator[ServerProcess]:
    """minilm alone, with an in-flight cap of 40 inputs and at most 40 chunks a request."""
    other = workdir / "repo-chunk-admission"
    if not other.exists():
        shutil.copytree(repo / "minilm", other / "minilm")
    with ServerProcess(
        other, "--max-inflight-inputs", "40", "--max-inputs-per-request", "8", "--max-chunks-per-request", "40",
        "--workers", "1",
    ) as proc:
        yield proc


async def test_admission_counts_chunks_not_texts(small_server: ServerProcess) -> None:
    # One text of ~30 windows: admitted alone; two at once are ~60 inputs in flight, over 40.
    # Counting texts instead would admit both (2 inputs).
    text = ALL[:28_000]
    async with AsyncClient(small_server.target) as client:
        alone = await client.encode_raw("minilm", [text], long_input="chunk", chunk_overlap=0)
        assert 21 <= alone.chunk_counts[0] <= 40

        async def one() -> EmbedRankError | np.ndarray:
            try:
                return await client.encode("minilm", [text], long_input="chunk", chunk_overlap=0)
            except EmbedRankError as exc:
                return exc

        results = await asyncio.gather(one(), one())
    refused = [r for r in results if isinstance(r, EmbedRankError)]
    served = [r for r in results if isinstance(r, np.ndarray)]
    assert len(refused) == 1 and len(served) == 1, results
    assert refused[0].code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit 40" in refused[0].message
    assert _cos(served[0][0], np.frombuffer(alone.embeddings.data, dtype="<f4")) >= 0.99999
