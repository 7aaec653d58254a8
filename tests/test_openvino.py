"""OpenVINO exports and serving: parity on every test architecture, the bf16 gate, NNCF int8,
the compiled-model cache, the load-time self check (OpenVINO and ONNX Runtime models), and the
install line when openvino is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from embedrank.model.errors import ConfigError
from embedrank.model.manifest import Manifest, RuntimeKind
from embedrank.model.runtime.openvino import check_bf16, cpu_capabilities
from tests.conftest import EMBEDRANK, ServerProcess, export

TINY = ("tiny-bert", "tiny-mpnet", "tiny-xlmr", "tiny-rerank")
# The host under the test machine changes: on a CPU without native bf16 (AVX512-BF16 or AMX)
# OpenVINO runs a bf16 hint as f32, so nothing about bf16 can be tested there; what can is that
# export and serve refuse it (test_bf16_refused_on_this_cpu).
CAPABILITIES = cpu_capabilities()
NATIVE_BF16 = "BF16" in CAPABILITIES
needs_bf16 = pytest.mark.skipif(
    not NATIVE_BF16, reason=f"this CPU has no native bf16 (OpenVINO CPU capabilities: {', '.join(CAPABILITIES)})"
)


def _manifest(repo: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((repo / name / "1" / "manifest.json").read_text())


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cancelling_checkpoint(sources: dict[str, Path], out: Path) -> Path:
    """tiny-bert + two Dense layers whose large weights cancel: (100 I + N) h - 100 I h = N h.

    Exact in fp32; in bf16 (8-bit mantissa) the rounding of 100 + n and of h swamps N h, so
    a bf16 variant of this model is a bad one and its gate must refuse it.
    """
    import torch
    from sentence_transformers import SentenceTransformer, models

    base = SentenceTransformer(str(sources["tiny-bert"]), device="cpu")
    transformer, pooling = base[0], base[1]
    dim = pooling.get_sentence_embedding_dimension()
    torch.manual_seed(5)
    up = models.Dense(dim, 2 * dim, bias=False, activation_function=torch.nn.Identity())
    down = models.Dense(2 * dim, dim, bias=False, activation_function=torch.nn.Identity())
    eye = torch.eye(dim)
    with torch.no_grad():
        up.linear.weight.copy_(torch.cat([100 * eye + torch.randn(dim, dim), 100 * eye]))
        down.linear.weight.copy_(torch.cat([eye, -eye], dim=1))
    model = SentenceTransformer(modules=[transformer, pooling, up, down, models.Normalize()], device="cpu")
    path = out / "tiny-cancelling"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def ov_repo(sources: dict[str, Path], workdir: Path) -> Path:
    repo = workdir / "openvino"
    exports = {name: (sources[name], ["--runtime", "openvino"]) for name in TINY}
    if NATIVE_BF16:
        exports["minilm-bf16"] = (sources["minilm"], ["--runtime", "openvino", "--precision", "bf16"])
        exports["rerank-bf16"] = (sources["minilm-rerank"], ["--runtime", "openvino", "--precision", "bf16"])
    exports["minilm-int8"] = (sources["minilm"], ["--runtime", "openvino", "--precision", "int8"])
    exports["tiny-bert-ort"] = (sources["tiny-bert"], [])  # an ONNX Runtime model beside them
    for name, (src, args) in exports.items():
        result = export(src, repo / name, *args)
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    return repo


@pytest.fixture(scope="module")
def ov_server(ov_repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(ov_repo, "--openvino-cache-dir", str(workdir / "ov-cache"), "--max-inputs-per-request", "256") as proc:
        yield proc


def test_manifests_record_runtime_precision_and_gates(ov_repo: Path) -> None:
    for name in TINY:
        m = _manifest(ov_repo, name)
        assert (m["graph"]["runtime"], m["graph"]["precision"], m["graph"]["optimize"]) == ("openvino", "fp32", "none")
        parity = m["fidelity"]["parity"]
        if name == "tiny-rerank":
            assert parity["max_abs_diff"] <= 1e-4 and parity["same_ranking"]
        else:
            assert parity["min_cosine"] >= 0.99999, name
        assert m["self_check"]["inputs"] and len(m["self_check"]["inputs"]) == len(m["self_check"]["reference"])
    int8 = _manifest(ov_repo, "minilm-int8")
    assert (int8["graph"]["file"], int8["graph"]["precision"], int8["graph"]["int8"]["tool"]) == ("model.xml", "int8", "nncf")
    assert (ov_repo / "minilm-int8" / "1" / "model.bin").is_file()
    assert int8["fidelity"]["fidelity"]["mean_cosine"] >= 0.99
    ort = _manifest(ov_repo, "tiny-bert-ort")
    assert ort["graph"]["runtime"] == "onnxruntime" and ort["self_check"]["gate"] == {"min_cosine": 0.99999}


@needs_bf16
def test_bf16_manifests_record_precision_and_gates(ov_repo: Path) -> None:
    bf16 = _manifest(ov_repo, "minilm-bf16")
    assert bf16["graph"]["precision"] == "bf16"
    assert bf16["fidelity"]["thresholds"] == {"min_cosine": 0.9999, "min_fidelity_cosine": 0.9999}
    assert bf16["fidelity"]["fidelity"]["items"] == 200 and bf16["fidelity"]["fidelity"]["min_cosine"] >= 0.9999
    assert bf16["self_check"]["gate"] == {"min_cosine": 0.9999}
    rerank = _manifest(ov_repo, "rerank-bf16")["fidelity"]
    assert rerank["thresholds"] == {"max_score_diff": 0.01, "min_top1_agreement": 1.0}
    assert rerank["fidelity"]["top1_agreement"] == 1.0 and rerank["fidelity"]["max_score_diff"] <= 1e-2


def test_served_on_openvino_matches_sentence_transformers(ov_server: ServerProcess, sources: dict[str, Path]) -> None:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    texts = corpus.sentences(60) + corpus.paragraphs(8)
    embedders = [("tiny-bert", 0.99999), ("tiny-mpnet", 0.99999), ("tiny-xlmr", 0.99999), ("minilm-int8", 0.95)]
    rerankers = [("tiny-rerank", "tiny-rerank", 1e-4)]
    if NATIVE_BF16:
        embedders.append(("minilm-bf16", 0.9999))
        rerankers.append(("rerank-bf16", "minilm-rerank", 1e-2))
    with Client(ov_server.target) as client:
        for name, floor in embedders:
            src = sources["minilm" if name.startswith("minilm") else name]
            ref = SentenceTransformer(str(src), device="cpu").encode(texts, batch_size=16)
            got = client.encode(name, texts)
            assert _cos(ref, got).min() >= floor, name
        docs = corpus.paragraphs(12)
        for name, src, tol in rerankers:
            ce = CrossEncoder(str(sources[src]), device="cpu")
            ref_scores = ce.predict([("What is a module?", d) for d in docs])
            hits = client.rerank(name, "What is a module?", docs)
            got_scores = np.array([h.score for h in sorted(hits, key=lambda h: h.index)])
            assert np.abs(ref_scores - got_scores).max() <= tol, name
            assert int(np.argmax(ref_scores)) == hits[0].index, name
    log = ov_server.output()
    assert "self check passed on OpenVINO CPU" in log
    assert ("inference precision bf16" in log) == NATIVE_BF16


def test_compiled_model_cache_is_reused_on_restart(ov_server: ServerProcess, ov_repo: Path, workdir: Path) -> None:
    cache = workdir / "ov-cache"
    first = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    openvino_models = [d for d in ov_repo.iterdir() if _manifest(ov_repo, d.name)["graph"]["runtime"] == "openvino"]
    assert len(first) >= len(openvino_models) >= 5  # one compiled blob per OpenVINO model
    again = ServerProcess(ov_repo, "--openvino-cache-dir", str(cache))
    try:
        with Client(again.target) as client:
            assert client.encode("tiny-bert", ["cached"]).shape == (1, 32)
    finally:
        again.stop()
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == first  # read, not compiled again


def test_batched_equals_single_across_concurrent_requests(ov_repo: Path) -> None:
    """One compiled model, two streams, batches from four threads at once: every row as if run alone."""
    import concurrent.futures

    from embedrank.model.tokenize import TextTokenizer, Truncate
    from embedrank.model.runtime.select import open_runtime
    from embedrank.model.runtime.settings import RuntimeSettings

    folder = ov_repo / "tiny-bert" / "1"
    m = Manifest.load(folder)
    runtime = open_runtime(folder / m.graph.file, m.graph, pad_token_id=m.tokenizer.pad_token_id,
                           settings=RuntimeSettings(threads=1, workers=2))
    tokenizer = TextTokenizer(str(folder / m.tokenizer.file), max_tokens=m.tokenizer.max_tokens, with_type_ids=True)
    seqs, _ = tokenizer.encode(corpus.sentences(64), truncate=Truncate.END, field="texts")
    single = np.concatenate([runtime.run([s])["sentence_embedding"] for s in seqs])
    batches = [seqs[i : i + 16] for i in range(0, 64, 16)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        batched = np.concatenate([out["sentence_embedding"] for out in pool.map(runtime.run, batches)])
    np.testing.assert_allclose(batched, single, atol=1e-5)


@needs_bf16
def test_bf16_gate_refuses_a_bad_variant(sources: dict[str, Path], workdir: Path) -> None:
    src = cancelling_checkpoint(sources, workdir / "checkpoints")
    repo = workdir / "bf16-bad"
    bad = export(src, repo / "cancelling-bf16", "--runtime", "openvino", "--precision", "bf16")
    assert bad.returncode == 1, bad.stderr[-2000:]
    assert "FAILED at verify (bert): fidelity check" in bad.stderr and "min cosine" in bad.stderr
    assert not (repo / "cancelling-bf16").exists()
    good = export(src, repo / "cancelling-fp32", "--runtime", "openvino")  # the same model is exact in fp32
    assert good.returncode == 0, good.stderr[-2000:]


def test_bf16_refused_without_native_bf16() -> None:
    assert "FP32" in CAPABILITIES
    with pytest.raises(ConfigError) as info:
        check_bf16(("FP32", "INT8"), allow=False, where="model x")
    assert "native bf16" in info.value.message and "--allow-bf16-without-native" in info.value.message
    check_bf16(("FP32", "INT8"), allow=True, where="model x")
    check_bf16(("FP32", "BF16"), allow=False, where="model x")


@pytest.mark.skipif(NATIVE_BF16, reason="this CPU has native bf16: the bf16 tests above run instead")
def test_bf16_refused_on_this_cpu(sources: dict[str, Path], workdir: Path) -> None:
    """No native bf16 here: export refuses bf16 and names the flag; a variant forced past it is
    refused again by serve, unless serve is forced too."""
    refused = export(sources["tiny-bert"], workdir / "never" / "bf16", "--runtime", "openvino", "--precision", "bf16")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "needs a CPU with native bf16" in refused.stderr and "--allow-bf16-without-native" in refused.stderr
    repo = workdir / "bf16-forced"
    forced = export(sources["tiny-bert"], repo / "tiny-bf16", "--runtime", "openvino", "--precision", "bf16",
                    "--allow-bf16-without-native")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert _manifest(repo, "tiny-bf16")["graph"]["precision"] == "bf16"
    serve = subprocess.run([*EMBEDRANK, "serve", "--model-repository", str(repo), "--port", "0"],
                           capture_output=True, text=True, timeout=120)
    assert serve.returncode == 2 and "native bf16" in serve.stderr and "--allow-bf16-without-native" in serve.stderr
    proc = ServerProcess(repo, "--allow-bf16-without-native")
    try:
        with Client(proc.target) as client:
            assert client.encode("tiny-bf16", ["forced"]).shape == (1, 32)
    finally:
        proc.stop()


def test_self_check_refuses_tampered_manifests(ov_repo: Path, workdir: Path) -> None:
    tampered = workdir / "tampered"
    for name in ("tiny-bert", "tiny-bert-ort", "tiny-rerank"):
        shutil.copytree(ov_repo / name, tampered / name)
        path = tampered / name / "1" / "manifest.json"
        m = json.loads(path.read_text())
        ref = np.array(m["self_check"]["reference"])
        m["self_check"]["reference"] = (ref[::-1] if name != "tiny-rerank" else ref + 0.01).tolist()
        path.write_text(json.dumps(m))
    result = subprocess.run([*EMBEDRANK, "serve", "--model-repository", str(tampered), "--port", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    for name, runtime in (("tiny-bert", "OpenVINO CPU"), ("tiny-bert-ort", "CPUExecutionProvider"),
                          ("tiny-rerank", "OpenVINO CPU")):
        assert f"model {name} version 1: SELF CHECK FAILED on {runtime}" in result.stderr, result.stderr[-3000:]
    assert "min cosine" in result.stderr and "max abs logit diff" in result.stderr


def test_missing_openvino_names_the_install_line(ov_repo: Path, sources: dict[str, Path], workdir: Path) -> None:
    only = workdir / "ov-only"
    shutil.copytree(ov_repo / "tiny-bert", only / "tiny-bert")
    # sys.modules[name] = None makes `import openvino` raise ImportError, as in an install without it.
    blocked = "import sys; sys.modules['openvino'] = sys.modules['nncf'] = None; from embedrank.cli import main; sys.exit(main())"
    serve = subprocess.run([sys.executable, "-c", blocked, "serve", "--model-repository", str(only), "--port", "0"],
                           capture_output=True, text=True, timeout=120)
    assert serve.returncode == 2
    assert "pip install 'embedrank[openvino]'" in serve.stderr
    exp = subprocess.run([sys.executable, "-c", blocked, "export", str(sources["tiny-bert"]), "--output",
                          str(workdir / "never" / "x"), "--runtime", "openvino", "--precision", "bf16"],
                         capture_output=True, text=True, timeout=300)
    assert exp.returncode == 2 and "pip install 'embedrank[openvino]'" in exp.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--optimize", "O2"], "OpenVINO cannot read ONNX Runtime's fused contrib ops"),
    (["--quantize", "avx512-vnni"], "for OpenVINO use --precision int8"),
])
def test_openvino_export_option_errors(sources: dict[str, Path], workdir: Path, args: list[str], message: str) -> None:
    result = export(sources["tiny-bert"], workdir / "never" / "y", "--runtime", "openvino", *args)
    assert result.returncode == 2 and message in result.stderr


def test_bf16_needs_the_openvino_runtime(sources: dict[str, Path], workdir: Path) -> None:
    result = export(sources["tiny-bert"], workdir / "never" / "z", "--precision", "bf16")
    assert result.returncode == 2 and "--runtime openvino --precision bf16" in result.stderr


def test_old_manifests_still_load(ov_repo: Path) -> None:
    data = _manifest(ov_repo, "tiny-bert-ort")
    del data["graph"]["runtime"], data["self_check"]
    m = Manifest.from_json(data)
    assert m.graph.runtime is RuntimeKind.ONNXRUNTIME and m.self_check is None
    data["graph"]["precision"] = "bf16"
    with pytest.raises(ConfigError, match="not one onnxruntime serves"):
        Manifest.from_json(data)
