"""Rerankers built on a causal LM (issue 35): sentence-transformers 6 CrossEncoders whose chain is
Transformer(text-generation) + LogitScore, exported and served like any reranker.

Tiny random Qwen3, Llama and Gemma 3 causal LMs (tests/checkpoints.py): Qwen3 with a chat template
and a system prompt, Llama with a default prompt before the query (text pairs), Gemma 3 with a chat
template that puts the document first. One export each (plus int8 and OpenVINO of Qwen3), one server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus
from tests import checkpoints
from tests.conftest import EMBEDRANK, ServerProcess, edited_copy, export

QWEN, LLAMA, GEMMA = "causal-qwen3", "causal-llama", "causal-gemma3"
FP32 = (QWEN, LLAMA, GEMMA)
QUERY = "How do I handle an exception raised inside a function?"
# Short documents, one past the 64-token max length (cut, the template's end restored), one very long.
DOCS = [*corpus.sentences(40)[20:34], " ".join(corpus.paragraphs()[:2]), " ".join(corpus.paragraphs()[10:22])]


@pytest.fixture(scope="module")
def causal_sources(workdir: Path) -> dict[str, Path]:
    out = workdir / "causal-checkpoints"
    out.mkdir()
    return {
        QWEN: checkpoints.build_causal_reranker(out, "qwen3", chat=checkpoints.CHAT_QUERY_FIRST, prompt=True),
        LLAMA: checkpoints.build_causal_reranker(out, "llama", prompt=True),
        GEMMA: checkpoints.build_causal_reranker(out, "gemma3_text", chat=checkpoints.CHAT_DOCUMENT_FIRST),
    }


@pytest.fixture(scope="module")
def causal_repo(workdir: Path, causal_sources: dict[str, Path]) -> Path:
    repo = workdir / "causal-repo"
    runs: dict[str, tuple[Path, tuple[str, ...]]] = {name: (src, ()) for name, src in causal_sources.items()}
    # Random weights score pairs close together: int8 noise reorders more of them than a trained
    # reranker's, so its gate is lowered (as test_variants does for the BERT reranker).
    runs[f"{QWEN}-int8"] = (causal_sources[QWEN], ("--quantize", "avx512-vnni", "--min-top1", "0.5"))
    runs[f"{QWEN}-ov"] = (causal_sources[QWEN], ("--runtime", "openvino"))
    for name, (src, extra) in runs.items():
        result = export(src, repo / name, *extra)
        assert result.returncode == 0, f"export {name} failed:\n{result.stderr[-4000:]}"
    return repo


@pytest.fixture(scope="module")
def causal_server(causal_repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(causal_repo, "--http-port", "0", "--openvino-cache-dir", str(workdir / "causal-ov-cache")) as proc:
        yield proc


def _ce(path: Path) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(path), device="cpu")


def _manifest(repo: Path, name: str) -> dict[str, Any]:
    return json.loads((repo / name / "1" / "manifest.json").read_text())


def test_export_is_two_head_rows_not_the_vocabulary(causal_repo: Path) -> None:
    """The graph's one output is a score per pair; the manifest says how pairs become tokens."""
    import onnx

    for name, fmt in ((QWEN, "chat"), (LLAMA, "pair"), (GEMMA, "chat")):
        m = _manifest(causal_repo, name)
        causal = m["rerank"]["causal"]
        assert (m["kind"], causal["format"], m["rerank"]["num_labels"]) == ("rerank", fmt, 1), name
        assert m["graph"]["inputs"] == ["input_ids", "attention_mask"] and m["graph"]["outputs"] == ["logits"]
        (output,) = onnx.load(str(causal_repo / name / "1" / "model.onnx"), load_external_data=False).graph.output
        dims = output.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and dims[1].dim_value == 1, name
        parity = m["fidelity"]["parity"]
        assert parity["max_abs_diff"] <= 1e-4 and parity["same_ranking"] and parity["same_tokens"] == 1.0, name
    assert _manifest(causal_repo, QWEN)["rerank"]["causal"]["prompt"] == checkpoints.CAUSAL_PROMPT
    segments = _manifest(causal_repo, GEMMA)["rerank"]["causal"]["segments"]
    assert [s for s in segments if isinstance(s, dict)] == [{"slot": "document"}, {"slot": "query"}]


@pytest.mark.parametrize("name", FP32)
def test_rerank_matches_cross_encoder(causal_server: ServerProcess, causal_sources: dict[str, Path], name: str) -> None:
    """Scores within 1e-4 of CrossEncoder.rank and the same order; raw scores are predict's logits."""
    import torch

    ce = _ce(causal_sources[name])
    ref = ce.rank(QUERY, DOCS)
    logits = ce.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())
    with Client(causal_server.target) as client:
        got = client.rerank(name, QUERY, DOCS)
        raw = client.rerank(name, QUERY, DOCS, raw_scores=True, top_k=3, return_documents=True)
    np.testing.assert_allclose([g.score for g in got], [r["score"] for r in ref], atol=1e-4)
    assert [g.index for g in got] == [r["corpus_id"] for r in ref]
    assert [h.index for h in raw] == [g.index for g in got[:3]]
    for hit in raw:
        assert abs(hit.score - float(logits[hit.index])) < 1e-4 and hit.document == DOCS[hit.index]
    cut = {g.index: g for g in got}[len(DOCS) - 1]
    assert cut.truncated


async def test_stream_and_http_routes_equal_unary(causal_server: ServerProcess) -> None:
    requests = [(QUERY, DOCS[:5]), ("what is a list", DOCS[5:9])]
    async with AsyncClient(causal_server.target) as client:
        direct = [await client.rerank(QWEN, q, d) for q, d in requests]
        streamed = await client.rerank_stream(QWEN, requests)
    for s, d in zip(streamed, direct):
        assert [h.index for h in s] == [h.index for h in d]
        np.testing.assert_allclose([h.score for h in s], [h.score for h in d], atol=1e-5)
    base = causal_server.http_base()
    body = {"model": QWEN, "query": QUERY, "documents": DOCS[:5], "top_n": 2}
    for route in ("/v1/rerank", "/v2/rerank"):
        async with httpx.AsyncClient(timeout=30) as http:
            answer = (await http.post(f"{base}{route}", json=body)).json()
        assert [r["index"] for r in answer["results"]] == [h.index for h in direct[0][:2]], route
        np.testing.assert_allclose([r["relevance_score"] for r in answer["results"]],
                                   [h.score for h in direct[0][:2]], atol=1e-5)


@pytest.mark.parametrize("name", [QWEN, LLAMA])
def test_chunked_long_document_scores_its_best_window(
    causal_server: ServerProcess, causal_sources: dict[str, Path], name: str
) -> None:
    """long_input CHUNK: every window fits the 64 tokens with the prompt or template around it, and the
    document's score is CrossEncoder.predict on its best window (MaxP)."""
    long_doc = DOCS[-1]
    with Client(causal_server.target) as client:
        hits = client.rerank(name, QUERY, [DOCS[0], long_doc], long_input="chunk", chunk_overlap=4)
    hit = {h.index: h for h in hits}[1]
    assert hit.chunk_count > 2 and not hit.truncated
    a, b = hit.span
    score = float(_ce(causal_sources[name]).predict([(QUERY, long_doc[a:b])])[0])
    assert abs(hit.score - score) < 1e-4


def test_variants_int8_and_openvino(causal_server: ServerProcess, causal_repo: Path, causal_sources: dict[str, Path]) -> None:
    """int8 is gated on top-1 agreement (its fidelity recorded), OpenVINO fp32 on 1e-4, as rerankers are."""
    int8 = _manifest(causal_repo, f"{QWEN}-int8")
    assert int8["graph"]["quantize"] == "avx512-vnni" and int8["fidelity"]["thresholds"] == {"min_top1_agreement": 0.5}
    assert int8["fidelity"]["fidelity"]["top1_agreement"] >= 0.5
    ov = _manifest(causal_repo, f"{QWEN}-ov")
    assert ov["graph"]["runtime"] == "openvino" and ov["fidelity"]["parity"]["max_abs_diff"] <= 1e-4
    ref = _ce(causal_sources[QWEN]).predict([(QUERY, d) for d in DOCS[:6]])
    with Client(causal_server.target) as client:
        on_ov = {h.index: h.score for h in client.rerank(f"{QWEN}-ov", QUERY, DOCS[:6])}
        on_int8 = client.rerank(f"{QWEN}-int8", QUERY, DOCS[:6])
    np.testing.assert_allclose([on_ov[i] for i in range(6)], ref, atol=1e-4)
    assert len(on_int8) == 6 and max(abs(h.score - ref[h.index]) for h in on_int8) < 0.2


def test_tokenize_pairs_through_a_template_is_refused(causal_server: ServerProcess) -> None:
    with Client(causal_server.target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.tokenize(QWEN, [("q", "d")])
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and info.value.field == "pairs"
        assert client.tokenize(QWEN, ["a text"])[0].token_count > 0


def test_pairs_tokenize_as_the_library_cuts_them(causal_repo: Path, causal_sources: dict[str, Path]) -> None:
    """Past max_tokens the library cuts the rendered pair and writes the template's end back over the
    last tokens; NONE refuses, naming the input."""
    from embedrank.model.errors import InvalidArgument
    from embedrank.model.kinds import kind_of
    from embedrank.model.manifest import Manifest
    from embedrank.model.tokenize import TextTokenizer, Truncate

    for name in (QWEN, GEMMA, LLAMA):
        folder = causal_repo / name / "1"
        m = Manifest.load(folder)
        base = TextTokenizer(str(folder / "tokenizer.json"), max_tokens=64, with_type_ids=False)
        tok = kind_of(m.kind).tokenizer(m.spec, base)
        ce = _ce(causal_sources[name])
        pairs = [(QUERY, DOCS[-1]), (DOCS[-1], "short"), ("q", "d")]
        seqs, cut = tok.encode(pairs, truncate=Truncate.END, field="documents")
        assert cut == [True, True, False], name
        for pair, seq in zip(pairs, seqs):
            features = ce.preprocess([pair], prompt=ce._resolve_prompt(None, None))
            assert seq.ids.tolist() == features["input_ids"][0].tolist(), (name, pair[0][:20])
        with pytest.raises(InvalidArgument) as info:
            tok.encode(pairs, truncate=Truncate.NONE, field="documents")
        assert info.value.field == "documents[0]"


def test_a_bad_causal_section_is_refused_naming_it(causal_repo: Path) -> None:
    from embedrank.model.errors import ManifestError
    from embedrank.model.manifest import Manifest

    m = _manifest(causal_repo, QWEN)
    m["rerank"]["causal"]["segments"] = [s for s in m["rerank"]["causal"]["segments"] if s != {"slot": "query"}]
    with pytest.raises(ManifestError, match=r"rerank\.causal\.segments must hold the query and the document"):
        Manifest.from_json(m)


def test_self_check_refuses_a_model_whose_prompt_changed(causal_repo: Path, workdir: Path) -> None:
    """An edited manifest (the prompt gone) changes the scores: the load-time self check sees them move
    past the recorded CrossEncoder.predict scores and refuses the model."""
    repo = edited_copy(causal_repo / LLAMA, workdir / "causal-edited",
                       lambda m: m["rerank"]["causal"].__setitem__("prompt", ""))
    with pytest.raises(RuntimeError) as err:
        ServerProcess(repo).stop()
    assert "SELF CHECK FAILED" in str(err.value) and "max abs logit diff" in str(err.value)


def test_an_unknown_head_fails_in_one_line_naming_it(causal_sources: dict[str, Path], workdir: Path) -> None:
    """A CrossEncoder chain the exporter does not know (CausalScoreHead: not in sentence-transformers 6.3)
    is refused before anything loads, in one line naming the module, not as a shape mismatch at verify."""
    src = workdir / "causal-unknown-head"
    shutil.copytree(causal_sources[LLAMA], src)
    (src / "1_LogitScore").rename(src / "1_CausalScoreHead")
    modules = json.loads((src / "modules.json").read_text())
    modules[1] = {"idx": 1, "name": "1", "path": "1_CausalScoreHead",
                  "type": "sentence_transformers.cross_encoder.modules.CausalScoreHead"}
    (src / "modules.json").write_text(json.dumps(modules))
    result = subprocess.run([*EMBEDRANK, "export", str(src), "--output", str(workdir / "causal-unknown-out")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("embedrank export:")]
    assert "module 1 (1_CausalScoreHead)" in line and "does not know after Transformer(text-generation)" in line
    assert "LogitScore" in line and "shape mismatch" not in result.stderr
    assert not (workdir / "causal-unknown-out").exists()


def test_a_chain_without_its_head_is_named(causal_sources: dict[str, Path], workdir: Path) -> None:
    from embedrank.exporter.kinds import chain
    from embedrank.exporter.kinds.causal import CHAINS
    from embedrank.model.errors import ConfigError

    src = workdir / "causal-no-head"
    shutil.copytree(causal_sources[LLAMA], src)
    modules = json.loads((src / "modules.json").read_text())
    (src / "modules.json").write_text(json.dumps(modules[:1]))
    with pytest.raises(ConfigError, match=r"ends after Transformer\(text-generation\) \(module 0\) without LogitScore"):
        chain.check(src, CHAINS, what="causal-LM CrossEncoder")


def test_a_template_that_changes_the_texts_is_refused(workdir: Path) -> None:
    """The server renders a chat template as fixed text around the query and the document; a template that
    filters them (here ``| upper``) cannot be rendered that way and is refused at export, saying why."""
    from sentence_transformers import CrossEncoder

    from embedrank.exporter.kinds.causal import pair_format
    from embedrank.model.errors import ConfigError

    upper = checkpoints.CHAT_QUERY_FIRST.replace("query: {{ m.content }}", "query: {{ m.content | upper }}")
    out = workdir / "causal-upper"
    out.mkdir()
    path = checkpoints.build_causal_reranker(out, "llama", chat=upper)
    with pytest.raises(ConfigError, match=r"the chat template .* \(a filter, a repeat or a branch on their content\)"):
        pair_format(CrossEncoder(str(path), device="cpu"), true_id=1, false_id=2, prompt="", where=str(path))


def test_import_refuses_a_causal_cross_encoder_saying_to_export_it(causal_sources: dict[str, Path]) -> None:
    from embedrank.exporter.checkpoint import read
    from embedrank.model.errors import ConfigError

    with pytest.raises(ConfigError, match=r"a CrossEncoder on a causal LM; .* export it instead"):
        read(causal_sources[LLAMA], kind=None, variant=None)
