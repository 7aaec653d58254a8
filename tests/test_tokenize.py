"""Tokenize / Decode against a live server: the tokens Encode and Rerank run, equal to the library's."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé, emoji 🙂 and CJK 漢字 mixed in one line.",
    "A",
    " ".join(corpus.paragraphs()[:6]),  # longer than tiny-bert's 64 tokens
]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _st(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


@pytest.mark.parametrize(("input_type", "prompt_name"), [(None, None), ("query", None), ("document", None), (None, "passage")])
def test_ids_are_the_librarys_and_encodes(
    target: str, sources: dict[str, Path], input_type: str | None, prompt_name: str | None
) -> None:
    st = _st(sources["tiny-bert"])
    # The prompt sentence-transformers puts first: encode_query's "query", encode_document's first of
    # "document", "passage", "corpus" (ST 6 saves "document": "" beside the model's own), or the named one.
    if prompt_name:
        prompt = st.prompts[prompt_name]
    elif input_type == "query":
        prompt = st.prompts["query"]
    elif input_type == "document":
        prompt = next(st.prompts[p] for p in ("document", "passage", "corpus") if p in st.prompts)
    else:
        prompt = ""
    assert prompt_name is None or prompt == "passage: "
    features = st.tokenize([prompt + t for t in TEXTS])
    options = {"input_type": input_type, "prompt_name": prompt_name}
    with Client(target) as client:
        got = client.tokenize("tiny-bert", TEXTS, **options)
        encoded = client.encode_raw("tiny-bert", TEXTS, **options)
    for i, item in enumerate(got):
        mask = features["attention_mask"][i].bool()
        assert item.ids == features["input_ids"][i][mask].tolist()
        assert item.prompt == prompt and item.max_tokens == 64
    assert [t.token_count for t in got] == list(encoded.token_counts)
    assert [t.truncated for t in got] == list(encoded.truncated) == [False, False, False, True]


def test_spans_slice_the_text_as_the_librarys_offsets(target: str, sources: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(sources["tiny-bert"]))
    prompt = "query: "
    with Client(target) as client:
        got = client.tokenize("tiny-bert", TEXTS[:3], input_type="query", truncation="none")
    for text, item in zip(TEXTS[:3], got):
        ref = hf(prompt + text, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert item.ids == ref["input_ids"]
        assert [t.special for t in item.tokens] == [bool(m) for m in ref["special_tokens_mask"]]
        for tok, (start, end) in zip(item.tokens, ref["offset_mapping"]):
            if tok.special:
                assert (tok.start, tok.end) == (0, 0)
            elif tok.prompt:
                assert prompt[tok.start : tok.end] == prompt[start:end]
            else:
                assert (tok.start, tok.end) == (start - len(prompt), end - len(prompt))
                assert text[tok.start : tok.end] == (prompt + text)[start:end]
        assert [t.text for t in item.tokens if t.prompt] == ["query", ":"]
    emoji = next(t for t in got[1].tokens if TEXTS[1][t.start : t.end] == "🙂")  # one code point
    assert emoji.end - emoji.start == 1
    plain = [t for t in got[0].tokens if not t.special and not t.prompt]
    assert [TEXTS[0][t.start : t.end].lower() for t in plain] == [t.text.removeprefix("##") for t in plain]


def test_truncation_none_counts_every_token(target: str) -> None:
    with Client(target) as client:
        cut = client.tokenize("tiny-bert", [TEXTS[3]])[0]
        start = client.tokenize("tiny-bert", [TEXTS[3]], truncation="start")[0]
        whole = client.tokenize("tiny-bert", [TEXTS[3]], truncation="none")[0]
    assert cut.token_count == start.token_count == 64 and cut.truncated and start.truncated
    assert whole.token_count > 64 and whole.truncated
    assert whole.ids[:63] == cut.ids[:63] and whole.ids[-63:] == start.ids[-63:]


def test_pairs_are_tokenized_as_rerank_runs_them(target: str, sources: dict[str, Path]) -> None:
    from sentence_transformers import CrossEncoder

    from embedrank.v1 import rerank_pb2, rerank_pb2_grpc

    ce = CrossEncoder(str(sources["minilm-rerank"]), device="cpu")
    query, docs = "How do exceptions work?", [TEXTS[0], TEXTS[1], " ".join(corpus.paragraphs()[:12])]
    ref = ce.tokenizer([query] * len(docs), docs, truncation=True, max_length=256)
    with Client(target) as client:
        got = client.tokenize("minilm-rerank", [(query, d) for d in docs])
    with grpc.insecure_channel(target) as channel:
        ranked = rerank_pb2_grpc.RerankStub(channel).Rerank(
            rerank_pb2.RerankRequest(model="minilm-rerank", query=query, documents=docs)
        )
    counts = {r.index: r.token_count for r in ranked.results}
    for i, item in enumerate(got):
        assert item.ids == ref["input_ids"][i]
        assert item.token_count == counts[i] and item.prompt == ""
        second = [t for t in item.tokens if t.sequence == 1]
        assert second and all(docs[i][t.start : t.end] for t in second)
        first = [t for t in item.tokens if t.sequence == 0 and not t.special]
        assert " ".join(query[t.start : t.end] for t in first).lower().startswith("how do exceptions")
    assert got[2].truncated and got[2].token_count == 256


@pytest.mark.parametrize("skip", [False, True])
def test_decode_is_the_tokenizers(target: str, sources: dict[str, Path], skip: bool) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(sources["minilm"]))
    with Client(target) as client:
        ids = client.tokenize("minilm", [TEXTS[0]])[0].ids
        text = client.decode("minilm", ids, skip_special_tokens=skip)
    assert text == hf.decode(ids, skip_special_tokens=skip)
    assert ("[CLS]" in text) is not skip and "quick brown fox" in text


async def test_streams_keep_order(target: str) -> None:
    from embedrank.v1 import tokenize_pb2, tokenize_pb2_grpc

    requests = [tokenize_pb2.TokenizeRequest(model="tiny-bert", texts=corpus.sentences(30)[i : i + 3]) for i in range(20)]
    requests[7] = tokenize_pb2.TokenizeRequest(model="tiny-bert")  # an error item; the stream goes on
    async with grpc.aio.insecure_channel(target) as channel:
        stub = tokenize_pb2_grpc.TokenizeStub(channel)
        stream = [r async for r in stub.TokenizeStream(
            tokenize_pb2.TokenizeStreamRequest(id=str(i), request=r) for i, r in enumerate(requests)
        )]
        direct = [await stub.Tokenize(r) for i, r in enumerate(requests) if i != 7]
        decoded = [r async for r in stub.DecodeStream(
            tokenize_pb2.DecodeStreamRequest(id=str(i), request=tokenize_pb2.DecodeRequest(
                model="tiny-bert", ids=[t.id for t in d.inputs[0].tokens], skip_special_tokens=True))
            for i, d in enumerate(direct)
        )]
    async with AsyncClient(target) as client:  # the async client's methods are the sync ones'
        tokenized = await client.tokenize("tiny-bert", list(requests[0].texts))
        text = await client.decode("tiny-bert", tokenized[0].ids, skip_special_tokens=True)
    assert [t.ids for t in tokenized] == [[x.id for x in i.tokens] for i in direct[0].inputs]
    assert text == decoded[0].response.text
    assert [r.id for r in stream] == [str(i) for i in range(20)]
    assert stream[7].error.code == INVALID.value[0] and stream[7].error.field == "texts"
    answered = [r.response for r in stream if r.HasField("response")]
    assert [[t.id for t in x.inputs[0].tokens] for x in answered] == [[t.id for t in x.inputs[0].tokens] for x in direct]
    assert [r.id for r in decoded] == [str(i) for i in range(len(direct))]
    assert all(r.response.text for r in decoded) and direct[0].metadata.tokens == sum(
        x.token_count for x in direct[0].inputs
    )


@pytest.mark.parametrize(
    ("call", "code", "field", "words"),
    [
        (lambda c: c.tokenize("tiny-bert", []), INVALID, "texts", "empty"),
        (lambda c: c.tokenize("tiny-bert", ["ok", " \u200b"]), INVALID, "texts[1]", "empty"),
        (lambda c: c.tokenize("tiny-bert", ["x"] * 257), INVALID, "texts", "limit of 256"),
        (lambda c: c.tokenize("tiny-bert", ["ok", "a" * 1_000_000]), INVALID, "texts[1]", "1000000 characters"),
        (lambda c: c.tokenize("tiny-bert", [("ok", "a" * 1_000_000)]), INVALID, "pairs[0].second", "characters"),
        (lambda c: c.tokenize("tiny-bert", ["a"], prompt_name="nope"), INVALID, "prompt_name", "not a prompt"),
        (lambda c: c.tokenize("tiny-rerank", ["a"], prompt_name="query"), INVALID, "prompt_name", "it has none"),
        (lambda c: c.tokenize("no-such-model", ["a"]), grpc.StatusCode.NOT_FOUND, "", "not loaded"),
        (lambda c: c.tokenize("", ["a"]), INVALID, "model", "is required"),
        (lambda c: c.decode("tiny-bert", []), INVALID, "ids", "empty"),
        (lambda c: c.decode("tiny-bert", [101, 30522]), INVALID, "ids[1]", "not a token"),
    ],
)
def test_bad_tokenize_and_decode(target: str, call, code: grpc.StatusCode, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            call(client)
        assert info.value.code == code, info.value
        assert words in info.value.message and info.value.field == field
        assert client.tokenize("tiny-bert", ["still here"])[0].token_count == 4


def test_texts_and_pairs_together_are_refused(target: str) -> None:
    from embedrank.v1 import pairs_pb2, tokenize_pb2, tokenize_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            tokenize_pb2_grpc.TokenizeStub(channel).Tokenize(tokenize_pb2.TokenizeRequest(
                model="tiny-rerank", texts=["a"], pairs=[pairs_pb2.TextPair(first="a", second="b")]
            ))
    assert info.value.code() == INVALID and "texts or pairs, not both" in info.value.details()
