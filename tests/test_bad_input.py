"""Every named bad input: the right status, a message naming the field, and the server keeps serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from embedrank.client import Client, EmbedRankError
from embedrank.exporter import corpus

INVALID = grpc.StatusCode.INVALID_ARGUMENT
LONG = " ".join(corpus.paragraphs()[:10])


@pytest.mark.parametrize(
    ("model", "texts", "options", "code", "field", "words"),
    [
        ("minilm", [], {}, INVALID, "texts", "empty"),
        ("minilm", ["fine", ""], {}, INVALID, "texts[1]", "empty"),
        ("minilm", ["x"] * 257, {}, INVALID, "texts", "limit of 256"),
        ("minilm", ["ok", "a" * 1_000_000], {}, INVALID, "texts[1]", "1000000 characters"),
        ("tiny-xlmr", ["short", LONG], {"truncation": "none"}, INVALID, "texts[1]", "tokens, over"),
        ("no-such-model", ["a"], {}, grpc.StatusCode.NOT_FOUND, "", "not loaded"),
        ("../minilm", ["a"], {}, INVALID, "model", "not a model name"),
        ("a/b", ["a"], {}, INVALID, "model", "not a model name"),
        ("/etc/passwd", ["a"], {}, INVALID, "model", "not a model name"),
        ("minilm", ["a"], {"dimensions": 385}, INVALID, "dimensions", "over the model's 384"),
        ("tiny-bert", ["a"], {"prompt_name": "nope"}, INVALID, "prompt_name", "not a prompt"),
        ("tiny-rerank", ["a"], {}, grpc.StatusCode.FAILED_PRECONDITION, "", "Rerank.Rerank"),
    ],
)
def test_bad_encode(target: str, model: str, texts: list[str], options: dict[str, object], code: grpc.StatusCode, field: str, words: str) -> None:
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.encode(model, texts, **options)
        assert info.value.code == code, info.value
        assert words in info.value.message
        assert info.value.field == field
        if field:
            assert info.value.message.startswith(field)
        # The server still serves everyone else.
        assert client.encode("minilm", ["still here"]).shape == (1, 384)


def test_unknown_enum_value_is_invalid(target: str) -> None:
    from embedrank.v1 import embed_pb2, embed_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = embed_pb2_grpc.EmbedStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Encode(embed_pb2.EncodeRequest(model="minilm", texts=["a"], precision=42))
    assert info.value.code() == INVALID and "precision" in info.value.details()


def test_int8_without_ranges_names_the_fix(target: str, repo_without_ranges: str) -> None:
    with Client(repo_without_ranges) as client:
        with pytest.raises(EmbedRankError) as info:
            client.encode("noranges", ["a"], precision="int8")
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "re-export" in info.value.message
        assert client.encode("noranges", ["a"], precision="ubinary").dtype == np.uint8


def test_oversized_message_then_normal_traffic(target: str) -> None:
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.encode("minilm", ["b" * 40_000] * 1000)  # 40 MB, over the 32 MiB server limit
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert client.encode("minilm", ["after"]).shape == (1, 384)


def test_stream_bad_item_gets_error_and_stream_goes_on(target: str) -> None:
    from embedrank.v1 import embed_pb2, embed_pb2_grpc

    requests = [
        embed_pb2.EncodeStreamRequest(id="a", request=embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"])),
        embed_pb2.EncodeStreamRequest(id="b", request=embed_pb2.EncodeRequest(model="tiny-bert", texts=[])),
        embed_pb2.EncodeStreamRequest(id="c", request=embed_pb2.EncodeRequest(model="nope", texts=["x"])),
        embed_pb2.EncodeStreamRequest(id="d", request=embed_pb2.EncodeRequest(model="tiny-bert", texts=["y"])),
    ]
    with grpc.insecure_channel(target) as channel:
        out = list(embed_pb2_grpc.EmbedStub(channel).EncodeStream(iter(requests)))
    assert [r.id for r in out] == ["a", "b", "c", "d"]
    assert out[0].HasField("response") and out[3].HasField("response")
    assert out[1].error.code == INVALID.value[0] and out[1].error.field == "texts"
    assert out[2].error.code == grpc.StatusCode.NOT_FOUND.value[0]
