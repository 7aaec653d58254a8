"""The exporter's outcomes: manifests, versions, failure on low fidelity, bad options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from embedrank.model.kinds.rerank import RerankSpec
from embedrank.model.manifest import Manifest
from tests.conftest import export


def test_manifest_records_what_and_how_faithful(repo: Path) -> None:
    m = json.loads((repo / "minilm" / "1" / "manifest.json").read_text())
    assert m["kind"] == "embedding" and m["version"] == 1
    assert m["tokenizer"]["max_tokens"] == 256
    assert m["embedding"]["pooling"] == ["mean"] and m["embedding"]["normalize"] is True
    assert m["embedding"]["dimensions"] == 384 and m["embedding"]["similarity_fn"] == "cosine"
    assert m["graph"]["inputs"] == ["input_ids", "token_type_ids", "attention_mask"]
    assert m["graph"]["fused_ops"]["Attention"] == 6
    assert m["fidelity"]["parity"]["min_cosine"] >= 0.99999
    assert len(m["embedding"]["ranges"]["min"]) == 384
    tok = json.loads((repo / "minilm" / "1" / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"] is None  # the Fixed(128) trap
    model = onnx.load(str(repo / "minilm" / "1" / "model.onnx"), load_external_data=False)
    assert model.ir_version <= 10
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]


def test_reranker_manifest(repo: Path) -> None:
    m = Manifest.load(repo / "minilm-rerank" / "1")
    assert m.kind.value == "rerank"
    spec = m.spec_as(RerankSpec)
    assert spec.num_labels == 1 and spec.activation.value == "sigmoid"
    report = m.raw["fidelity"]["parity"]
    assert report["max_abs_diff"] <= 1e-4 and report["same_ranking"] is True


def test_xlmr_graph_has_no_token_type_ids(repo: Path) -> None:
    assert Manifest.load(repo / "tiny-xlmr" / "1").graph.inputs == ("input_ids", "attention_mask")


def test_second_export_is_the_next_version(sources: dict[str, Path], workdir: Path) -> None:
    out = workdir / "versions" / "tiny"
    for _ in range(2):
        result = export(sources["tiny-bert"], out)
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["1", "2"]
    assert Manifest.load(out / "2").version == 2


def test_export_below_threshold_fails_with_figures(sources: dict[str, Path], workdir: Path) -> None:
    out = workdir / "strict" / "tiny"
    result = export(sources["tiny-bert"], out, "--min-cosine", "1.5")
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "min cosine" in result.stderr
    assert not out.exists()  # REPO/NAME appears only with a published version


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--optimize", "O9"], "--optimize 'O9': unknown preset"),
        (["--quantize", "avx9"], "--quantize 'avx9': unknown preset"),
        (["--optimize", "O4", "--quantize", "avx512-vnni"], "exclude each other"),
    ],
)
def test_bad_export_options(sources: dict[str, Path], workdir: Path, args: list[str], words: str) -> None:
    result = export(sources["tiny-bert"], workdir / "bad-opts" / "m", *args)
    assert result.returncode == 2 and words in result.stderr


def test_exporting_an_export_is_refused(repo: Path, workdir: Path) -> None:
    result = export(repo / "tiny-bert" / "1", workdir / "again" / "m", "--quantize", "avx512-vnni")
    assert result.returncode == 2 and "not a checkpoint" in result.stderr


def test_calibration_file_errors(sources: dict[str, Path], workdir: Path) -> None:
    empty = workdir / "empty.txt"
    empty.write_text("\n\n")
    result = export(sources["tiny-bert"], workdir / "cal" / "m", "--calibration", str(empty))
    assert result.returncode == 2 and "no text in it" in result.stderr
    result = export(sources["tiny-bert"], workdir / "cal" / "m", "--calibration", str(workdir / "missing.txt"))
    assert result.returncode == 2 and "cannot read it" in result.stderr


def test_bad_model_name_for_output(sources: dict[str, Path], workdir: Path) -> None:
    result = export(sources["tiny-bert"], workdir / "names" / "bad..name")
    assert result.returncode == 2 and "not a model name" in result.stderr
    shutil.rmtree(workdir / "names", ignore_errors=True)
