"""Optimized and quantized variants: each carries its measured fidelity; fp16 is refused on CPU."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from tests.conftest import ServerProcess, export


EXPORT_STDERR: dict[str, str] = {}


@pytest.fixture(scope="module")
def variants(sources: dict[str, Path], workdir: Path) -> Path:
    repo = workdir / "variants"
    for name, args in {
        "bert-o3": ["--optimize", "O3"],
        "bert-o1": ["--optimize", "O1"],
        "bert-none": ["--optimize", "none"],
        "bert-int8": ["--quantize", "avx512-vnni", "--min-cosine", "0.9"],
        "bert-fp16": ["--optimize", "O4"],
        # The seeded head is untrained: its scores are close together, so int8 noise
        # reorders more of them than a trained reranker's; the gate is lowered to match.
        "rerank-int8": ["--quantize", "avx512-vnni", "--min-top1", "0.6"],
    }.items():
        src = sources["minilm-rerank" if name.startswith("rerank") else "tiny-bert"]
        result = export(src, repo / name, *args)
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
        EXPORT_STDERR[name] = result.stderr
    return repo


def test_exports_print_only_our_lines(variants: Path) -> None:
    """At the default level a quantized export shows none of the libraries' chatter (ONNX Runtime's
    quantizer asks for its pre-processing; transformers reports initialised weights)."""
    assert set(EXPORT_STDERR) >= {"bert-int8", "rerank-int8"}
    for name, stderr in EXPORT_STDERR.items():
        assert "pre-processing before quantization" not in stderr, name
        for line in stderr.splitlines():
            logged = re.match(r"^\d{4}-\d\d-\d\d [\d:,]+ (\w+) (\S+):", line)
            assert logged is None or logged.group(2).startswith("embedrank"), f"{name}: {line}"


def _manifest(repo: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((repo / name / "1" / "manifest.json").read_text())


def test_fp32_variants_keep_min_cosine(variants: Path) -> None:
    for name, floor in (("bert-none", 0.99999), ("bert-o1", 0.99999), ("bert-o3", 0.9999)):
        m = _manifest(variants, name)
        assert m["graph"]["precision"] == "fp32"
        assert m["fidelity"]["parity"]["min_cosine"] >= floor, name
    assert _manifest(variants, "bert-o3")["fidelity"]["fidelity"]["items"] == 200  # --corpus-size 200


def test_int8_variant_reports_fidelity(variants: Path) -> None:
    m = _manifest(variants, "bert-int8")
    assert m["graph"]["precision"] == "int8" and m["graph"]["quantize"] == "avx512-vnni"
    report = m["fidelity"]["fidelity"]
    assert {"min_cosine", "mean_cosine", "top10_overlap"} <= set(report)
    assert report["mean_cosine"] >= 0.9
    r = _manifest(variants, "rerank-int8")["fidelity"]["fidelity"]
    assert {"top1_agreement", "kendall_tau"} <= set(r) and r["top1_agreement"] >= 0.6


def test_quantized_variant_served_close_to_fp32(variants: Path, repo: Path, workdir: Path) -> None:
    serve = workdir / "variants-serve"
    shutil.copytree(variants / "bert-int8", serve / "bert-int8")
    shutil.copytree(repo / "tiny-bert", serve / "tiny-bert")
    proc = ServerProcess(serve)
    try:
        texts = corpus.sentences(50)
        with Client(proc.target) as client:
            fp32 = client.encode("tiny-bert", texts)
            int8 = client.encode("bert-int8", texts)
        cos = (fp32 * int8).sum(1)
        assert cos.mean() >= 0.9
        assert not np.allclose(fp32, int8, atol=1e-6)
    finally:
        proc.stop()


def test_fp16_graph_refused_on_cpu(variants: Path, workdir: Path) -> None:
    only = workdir / "fp16-only"
    shutil.copytree(variants / "bert-fp16", only / "bert-fp16")
    result = subprocess.run(
        [sys.executable, "-m", "embedrank.cli", "serve", "--model-repository", str(only), "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "fp16 graph on the CPU provider" in result.stderr and "--device cuda" in result.stderr
    assert _manifest(variants, "bert-fp16")["graph"]["precision"] == "fp16"


def test_fp16_served_when_allowed(variants: Path, workdir: Path) -> None:
    proc = ServerProcess(workdir / "fp16-only", "--allow-fp16-on-cpu")
    try:
        with Client(proc.target) as client:
            assert client.encode("bert-fp16", ["half precision"]).dtype == np.float32
    finally:
        proc.stop()


@pytest.mark.gpu
def test_cuda_provider_serves_the_same_vectors(repo: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDAExecutionProvider in this onnxruntime (install onnxruntime-gpu on a GPU machine)")
    proc = ServerProcess(repo, "--device", "cuda")
    cpu = ServerProcess(repo)
    try:
        texts = corpus.sentences(40)
        with Client(proc.target) as gpu_client, Client(cpu.target) as cpu_client:
            np.testing.assert_allclose(gpu_client.encode("minilm", texts), cpu_client.encode("minilm", texts), atol=1e-4)
    finally:
        proc.stop()
        cpu.stop()


def test_cuda_requested_without_provider_says_how_to_fix(repo: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    result = subprocess.run(
        [sys.executable, "-m", "embedrank.cli", "serve", "--model-repository", str(repo), "--port", "0", "--device", "cuda"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "pip install onnxruntime-gpu" in result.stderr
