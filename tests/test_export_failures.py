"""A failed export says in one line which step failed, on which architecture, why, and what to try.

Checkpoints built to fail on purpose: an architecture transformers does not know, a remote-code
checkpoint without --trust-remote-code, a model that cannot be traced (its tokenizer's ids run past
its embedding table), and an opset the tracer does not have.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests import checkpoints
from tests.conftest import export

pytestmark = pytest.mark.slow


def _failure_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("embedrank export: FAILED")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def _folder(root: Path, name: str, config: dict[str, object]) -> Path:
    path = root / name
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    checkpoints._tokenizer(64).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("failing")


def test_unknown_architecture_fails_at_load(root: Path) -> None:
    source = _folder(root, "unknown", {"model_type": "embedrank-unknown-arch", "architectures": ["UnknownModel"]})
    line = _failure_line(export(source, root / "repo" / "unknown"))
    assert line.startswith("embedrank export: FAILED at load (embedrank-unknown-arch): transformers ")
    assert "does not know the architecture 'embedrank-unknown-arch'" in line
    assert "try: a newer transformers" in line and "--trust-remote-code" in line
    assert not (root / "repo" / "unknown").exists()


def test_remote_code_without_the_flag_says_so(root: Path) -> None:
    source = _folder(root, "remote", {
        "model_type": "embedrank-remote-arch", "architectures": ["RemoteModel"],
        "auto_map": {"AutoConfig": "configuration_remote.RemoteConfig", "AutoModel": "modeling_remote.RemoteModel"},
    })
    line = _failure_line(export(source, root / "repo" / "remote"))
    assert line.startswith("embedrank export: FAILED at load (embedrank-remote-arch): ")
    assert "its own modeling code (auto_map in config.json)" in line
    assert line.endswith("try: --trust-remote-code, if you trust that code")


@pytest.fixture(scope="module")
def untraceable(root: Path) -> Path:
    """A BERT bi-encoder whose vocabulary (50 ids) is smaller than its tokenizer's: it loads, and dies
    at the first forward pass, in the trace step."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoModel, BertConfig

    hf_dir = root / "small-vocab-hf"
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    AutoModel.from_config(config).save_pretrained(hf_dir)
    checkpoints._tokenizer(32).save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=32)
    path = root / "small-vocab"
    SentenceTransformer(modules=[transformer, models.Pooling(32, "mean")], device="cpu").save(str(path))
    return path


def test_a_model_that_cannot_trace_fails_at_trace_in_one_line(root: Path, untraceable: Path) -> None:
    result = export(untraceable, root / "repo" / "small-vocab")
    line = _failure_line(result)
    assert line.startswith("embedrank export: FAILED at trace (bert): IndexError: index out of range in self; try: ")
    assert "vocab_size" in line
    assert "Traceback" not in result.stderr
    assert "[2/6] exporting to ONNX" in result.stderr and "[3/6]" not in result.stderr
    assert not (root / "repo" / "small-vocab").exists()


def test_debug_log_level_adds_the_traceback(root: Path, untraceable: Path) -> None:
    result = export(untraceable, root / "repo" / "small-vocab", "--log-level", "DEBUG")
    line = _failure_line(result)
    assert "FAILED at trace (bert)" in line
    assert "Traceback (most recent call last)" in result.stderr and "export failed at trace" in result.stderr


def test_an_opset_the_tracer_lacks_fails_at_trace(root: Path) -> None:
    source = checkpoints.build_bi_encoder(root, "bert")
    line = _failure_line(export(source, root / "repo" / "opset", "--opset", "99", "--optimize", "none"))
    assert line.startswith("embedrank export: FAILED at trace (bert): ")
    assert "99" in line and "try: another --opset" in line


def test_an_opset_too_old_is_refused_before_loading(root: Path) -> None:
    result = export(root / "nothing-here", root / "repo" / "old", "--opset", "11")
    assert result.returncode == 2 and "--opset 11: too old" in result.stderr
