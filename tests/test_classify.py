"""The classification kind: export (detection, manifest, parity), Classify against the library, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus
from tests.conftest import export

NLI, MULTI = "tiny-nli", "tiny-multilabel"
PAIRS = [(q, d) for q in ("A man plays a guitar.", "Nobody is outside.") for d in corpus.sentences(6)]
PAIRS.append(("short", " ".join(corpus.paragraphs()[:8])))  # cut to 128 tokens
TEXTS = corpus.sentences(12) + ["Ünïcödé, emoji 🙂 and CJK 漢字.", " ".join(corpus.paragraphs()[:8])]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _hf_logits(path: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    with torch.inference_mode():
        batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        return model(**batch).logits.numpy()


def test_detection_and_manifest(repo: Path, sources: dict[str, Path]) -> None:
    from embedrank.exporter.kinds import detect
    from embedrank.model.kinds import ModelKind

    assert detect(sources["tiny-rerank"]) is ModelKind.RERANK  # one label stays a reranker
    assert detect(sources[NLI]) is ModelKind.CLASSIFICATION  # a 3-label CrossEncoder
    assert detect(sources[MULTI]) is ModelKind.CLASSIFICATION  # a plain *ForSequenceClassification
    nli = json.loads((repo / NLI / "1" / "manifest.json").read_text())
    multi = json.loads((repo / MULTI / "1" / "manifest.json").read_text())
    assert nli["classification"] == {
        "num_labels": 3, "labels": ["contradiction", "entailment", "neutral"], "problem_type": "single_label",
        "activation": "softmax",
    }
    assert (multi["classification"]["problem_type"], multi["classification"]["activation"]) == ("multi_label", "sigmoid")
    for m in (nli, multi):
        assert m["fidelity"]["parity"]["max_abs_diff"] < 1e-4 and m["fidelity"]["parity"]["top1_agreement"] == 1.0
        assert any(isinstance(i, str) for i in m["self_check"]["inputs"]) and any(isinstance(i, list) for i in m["self_check"]["inputs"])


def test_models_name_the_kind_and_labels(target: str) -> None:
    with Client(target) as client:
        models = {m.name: m for m in client.list_models()}
        nli = client.get_model(NLI)
    assert models["tiny-rerank"].kind == "rerank" and models["tiny-rerank"].labels == ()
    assert (nli.kind, nli.num_labels, nli.labels, nli.problem_type, nli.activation) == (
        "classification", 3, ("contradiction", "entailment", "neutral"), "single_label", "softmax")
    assert models[MULTI].labels == ("sports", "politics", "science", "art") and models[MULTI].problem_type == "multi_label"
    assert nli.manifest["classification"]["labels"] == list(nli.labels)


def test_nli_pairs_match_cross_encoder(target: str, sources: dict[str, Path]) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(sources[NLI]), device="cpu")
    logits = ce.predict(PAIRS, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    with Client(target) as client:
        raw = client.classify(NLI, PAIRS, raw_scores=True)
        scored = client.classify(NLI, PAIRS)
        top1 = client.classify(NLI, PAIRS, top_k=1)
    names = ["contradiction", "entailment", "neutral"]
    got = np.array([[dict((s.index, s.score) for s in r.labels)[i] for i in range(3)] for r in raw])
    np.testing.assert_allclose(got, logits, atol=1e-4)
    probs = np.array([[dict((s.index, s.score) for s in r.labels)[i] for i in range(3)] for r in scored])
    np.testing.assert_allclose(probs, _softmax(logits), atol=1e-5)
    for r, row in zip(scored, probs):
        assert [s.score for s in r.labels] == sorted((s.score for s in r.labels), reverse=True)
        assert all(s.label == names[s.index] for s in r.labels)
        assert r.top.index == int(np.argmax(row))
    assert [len(r.labels) for r in top1] == [1] * len(PAIRS) and [r.top for r in top1] == [r.top for r in scored]
    assert scored[-1].truncated and scored[-1].token_count == 128 and not scored[0].truncated


def test_multi_label_texts_match_transformers(target: str, sources: dict[str, Path]) -> None:
    logits = _hf_logits(sources[MULTI], TEXTS)
    with Client(target) as client:
        scored = client.classify(MULTI, TEXTS)
        top2 = client.classify(MULTI, TEXTS, top_k=2)
        one_by_one = [client.classify(MULTI, [t])[0] for t in TEXTS]
    probs = np.array([[r.scores()[name] for name in ("sports", "politics", "science", "art")] for r in scored])
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), atol=1e-5)
    assert [len(r.labels) for r in top2] == [2] * len(TEXTS)
    assert [[s.index for s in r.labels] for r in top2] == [[s.index for s in r.labels[:2]] for r in scored]
    np.testing.assert_allclose(  # batched equals single
        [[s.score for s in r.labels] for r in scored], [[s.score for s in r.labels] for r in one_by_one], atol=1e-5
    )


async def test_classify_stream_keeps_order(target: str) -> None:
    from embedrank.client import _codec
    from embedrank.v1 import classify_pb2, classify_pb2_grpc

    batches = [PAIRS[i : i + 3] for i in range(0, 12, 3)]
    requests = [_codec.classify_request(NLI, b, top_k=2) for b in batches]
    async with grpc.aio.insecure_channel(target) as channel:
        stream = [r async for r in classify_pb2_grpc.ClassifyStub(channel).ClassifyStream(
            classify_pb2.ClassifyStreamRequest(id=str(i), request=r) for i, r in enumerate(requests)
        )]
    async with AsyncClient(target) as client:
        direct = [await client.classify(NLI, b, top_k=2) for b in batches]
    assert [r.id for r in stream] == [str(i) for i in range(len(batches))]
    for s, d in zip(stream, direct):
        got = _codec.decode_classify(s.response)
        assert [[x.index for x in r.labels] for r in got] == [[x.index for x in r.labels] for r in d]
        assert s.response.metadata.tokens == sum(r.token_count for r in got)


@pytest.mark.parametrize(
    ("call", "code", "field", "words"),
    [
        (lambda c: c.classify(NLI, PAIRS[:2], top_k=0), INVALID, "top_k", "no labels"),
        (lambda c: c.classify(NLI, PAIRS[:2], top_k=-1), INVALID, "top_k", "no labels"),
        (lambda c: c.classify(NLI, []), INVALID, "texts", "empty"),
        (lambda c: c.classify(NLI, [("premise", "")]), INVALID, "pairs[0].second", "empty"),
        (lambda c: c.classify(NLI, ["x"] * 257), INVALID, "texts", "limit of 256"),
        (lambda c: c.classify(MULTI, ["ok", "a" * 1_000_000]), INVALID, "texts[1]", "1000000 characters"),
        (lambda c: c.classify(MULTI, ["word " * 300], truncation="none"), INVALID, "texts[0]", "tokens, over"),
        (lambda c: c.classify("tiny-bert", ["a"]), grpc.StatusCode.FAILED_PRECONDITION, "", "Embed.Encode"),
        (lambda c: c.classify("tiny-rerank", [("q", "d")]), grpc.StatusCode.FAILED_PRECONDITION, "", "Rerank.Rerank"),
        (lambda c: c.encode(NLI, ["a"]), grpc.StatusCode.FAILED_PRECONDITION, "", "Classify.Classify"),
        (lambda c: c.rerank(MULTI, "q", ["d"]), grpc.StatusCode.FAILED_PRECONDITION, "", "Classify.Classify"),
        (lambda c: c.classify("no-such-model", ["a"]), grpc.StatusCode.NOT_FOUND, "", "not loaded"),
    ],
)
def test_bad_classify(target: str, call, code: grpc.StatusCode, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            call(client)
        assert info.value.code == code, info.value
        assert words in info.value.message and info.value.field == field
        assert len(client.classify(NLI, [("still", "here")])[0].labels) == 3


def test_client_refuses_mixed_inputs() -> None:
    from embedrank.client import _codec

    with pytest.raises(TypeError, match="all strings or all"):
        _codec.classify_request(NLI, ["a", ("b", "c")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not one string"):
        _codec.classify_request(NLI, "a text")


def test_kind_flag_makes_a_reranker_a_classifier(workdir: Path, sources: dict[str, Path]) -> None:
    out = workdir / "kind-flag" / "as-classifier"
    result = export(sources["tiny-rerank"], out, "--kind", "classification")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "1" / "manifest.json").read_text())
    assert manifest["kind"] == "classification"
    assert manifest["classification"] == {"num_labels": 1, "labels": ["LABEL_0"], "problem_type": "multi_label", "activation": "sigmoid"}


def test_manifest_refuses_a_bad_classification_section(repo: Path) -> None:
    import copy

    from embedrank.model.errors import ManifestError
    from embedrank.model.kinds.classification import ClassificationSpec
    from embedrank.model.manifest import Manifest

    good = json.loads((repo / NLI / "1" / "manifest.json").read_text())
    assert Manifest.from_json(good).spec_as(ClassificationSpec).labels == ("contradiction", "entailment", "neutral")
    edits = [
        ({"num_labels": 2}, "num_labels is 2 but 3 labels"),
        ({"labels": []}, "non-empty list"),
        ({"problem_type": "regression"}, "problem_type is 'regression'"),
        ({"activation": "relu"}, "activation is 'relu'"),
    ]
    for edit, words in edits:
        bad = copy.deepcopy(good)
        bad["classification"].update(edit)
        with pytest.raises(ManifestError, match=words):
            Manifest.from_json(bad)


def test_int8_classifier_keeps_its_labels(workdir: Path, sources: dict[str, Path], target: str) -> None:
    """--quantize on a 3-label classifier: the reranker's gate (top-1 label agreement with the library,
    --min-top1) on the parity texts and pairs and on the fidelity corpus, the logit differences recorded;
    served, it picks the fp32 export's label for the test's pairs and texts, with logits close to its."""
    from tests.conftest import ServerProcess

    out = workdir / "nli-int8-repo" / "nli-int8"
    result = export(sources[NLI], out, "--quantize", "avx512-vnni")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "1" / "manifest.json").read_text())
    assert (manifest["graph"]["precision"], manifest["kind"]) == ("int8", "classification")
    fidelity = manifest["fidelity"]
    assert fidelity["thresholds"] == {"min_top1_agreement": 0.9}
    parity, corpus_figures = fidelity["parity"], fidelity["fidelity"]
    assert parity["items"] == len(corpus.parity_texts()) + len(corpus.parity_pairs()) and corpus_figures["items"] == 200
    for figures in (parity, corpus_figures):
        assert figures["top1_agreement"] >= 0.9
        assert 0 < figures["max_abs_diff"] < 0.1 and figures["max_score_diff"] < 0.05  # lossy, recorded (tiny: ~0.009)
    assert manifest["self_check"]["gate"] == {"min_top1_agreement": 0.9}

    server = ServerProcess(out.parent)
    try:
        with Client(server.target) as int8, Client(target) as fp32:
            got = int8.classify("nli-int8", PAIRS, raw_scores=True) + int8.classify("nli-int8", TEXTS, raw_scores=True)
            ref = fp32.classify(NLI, PAIRS, raw_scores=True) + fp32.classify(NLI, TEXTS, raw_scores=True)
    finally:
        server.stop()

    def logits(results: list[Any]) -> np.ndarray:
        return np.array([[dict((s.index, s.score) for s in r.labels)[i] for i in range(3)] for r in results])

    agree = np.mean(logits(got).argmax(axis=1) == logits(ref).argmax(axis=1))
    assert agree >= 0.9, agree
    assert np.abs(logits(got) - logits(ref)).max() < 0.1
