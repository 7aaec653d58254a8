"""The export, step by step, with progress on stderr."""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from embedrank.exporter import corpus, package, verify, workspace
from embedrank.exporter.deps import need
from embedrank.exporter.export import OPSET, export_onnx
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.optimize import OptimizeLevel, optimize
from embedrank.exporter.quantize import QuantizePreset, quantize
from embedrank.exporter.source import Source, load
from embedrank.server.errors import ConfigError
from embedrank.server.manifest import FORMAT, MANIFEST_FILE, Manifest, ModelKind


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    source: str
    output: Path
    kind: ModelKind | None = None
    optimize: OptimizeLevel = OptimizeLevel.O2
    quantize: QuantizePreset = QuantizePreset.NONE
    min_cosine: float | None = None
    min_top1: float = 0.9
    calibration: Path | None = None
    corpus_size: int = 1000
    fidelity: bool | None = None  # None: only for optimized-lossy or quantized graphs


class ExportFailed(Exception):
    """The graph was built but is not faithful enough; nothing was written."""


def _step(n: int, total: int, text: str) -> float:
    print(f"[{n}/{total}] {text}", file=sys.stderr, flush=True)
    return time.monotonic()


def _done(t0: float, detail: str = "") -> None:
    print(f"      done in {time.monotonic() - t0:.1f}s{': ' + detail if detail else ''}", file=sys.stderr, flush=True)


def _calibration_texts(opts: ExportOptions) -> list[str]:
    if opts.calibration is None:
        return corpus.sentences(opts.corpus_size // 2) + corpus.paragraphs(opts.corpus_size - opts.corpus_size // 2)
    try:
        lines = [line.strip() for line in opts.calibration.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--calibration {opts.calibration}: cannot read it ({exc})") from None
    texts = [line for line in lines if line]
    if not texts:
        raise ConfigError(f"--calibration {opts.calibration}: no text in it (one text per line)")
    return texts


def _check_source(path: str) -> None:
    manifest = Path(path) / MANIFEST_FILE
    if manifest.is_file():
        try:
            quantized = json.loads(manifest.read_text()).get("graph", {}).get("quantize", "none") != "none"
        except ValueError:
            quantized = False
        what = "an already quantized embedrank graph" if quantized else "an embedrank export"
        raise ConfigError(f"{path} is {what}, not a checkpoint; export from the original sentence-transformers checkpoint")


def thresholds(opts: ExportOptions, kind: ModelKind) -> dict[str, float]:
    lossy = opts.quantize is not QuantizePreset.NONE or opts.optimize in (OptimizeLevel.O3, OptimizeLevel.O4)
    if kind is ModelKind.RERANK:
        return {"max_abs_diff": 1e-4} if not lossy else {"min_top1_agreement": opts.min_top1}
    if opts.quantize is not QuantizePreset.NONE:
        return {"min_mean_cosine": opts.min_cosine if opts.min_cosine is not None else 0.99}
    if opts.optimize is OptimizeLevel.O4:
        return {"min_cosine": opts.min_cosine if opts.min_cosine is not None else 0.999}
    if opts.optimize is OptimizeLevel.O3:
        return {"min_cosine": opts.min_cosine if opts.min_cosine is not None else 0.9999}
    return {"min_cosine": opts.min_cosine if opts.min_cosine is not None else 0.99999}


def _failures(report: dict[str, Any], limits: dict[str, float], kind: ModelKind) -> list[str]:
    parity, fidelity = report["parity"], report.get("fidelity") or {}
    bad: list[str] = []
    if "min_cosine" in limits and parity["min_cosine"] < limits["min_cosine"]:
        bad.append(f"parity min cosine {parity['min_cosine']:.6f} < {limits['min_cosine']}")
    if "min_mean_cosine" in limits:
        mean = fidelity.get("mean_cosine", parity["mean_cosine"])
        if mean < limits["min_mean_cosine"]:
            bad.append(f"mean cosine {mean:.5f} < {limits['min_mean_cosine']}")
    if "max_abs_diff" in limits and kind is ModelKind.RERANK:
        if parity["max_abs_diff"] > limits["max_abs_diff"]:
            bad.append(f"parity max abs logit diff {parity['max_abs_diff']:.2e} > {limits['max_abs_diff']}")
        if not parity["same_ranking"]:
            bad.append("parity ranking differs from CrossEncoder")
    if "min_top1_agreement" in limits:
        top1 = fidelity.get("top1_agreement", parity["top1_agreement"])
        if top1 < limits["min_top1_agreement"]:
            bad.append(f"top-1 agreement {top1:.3f} < {limits['min_top1_agreement']}")
    return bad


@workspace.exit_on_signals()  # SIGTERM/SIGINT unwind the `with` blocks below: temporary files go
def run_export(opts: ExportOptions) -> Path:
    """Nothing is created in the repository before step 6; temporary files are removed on failure,
    SIGTERM and SIGINT, and a SIGKILLed export's by the next export."""
    _check_source(opts.source)
    name, version = package.target(opts.output)
    workspace.sweep_leftovers(opts.output.parent)
    quantized = opts.quantize is not QuantizePreset.NONE
    total = 6
    t = _step(1, total, f"loading {opts.source}")
    source: Source = load(opts.source, opts.kind)
    _done(t, f"{source.kind.value} model, {source.model_type}, max {source.max_tokens} tokens")
    with workspace.workspace(None, workspace.WORK_PREFIX) as tmp:
        t = _step(2, total, f"exporting to ONNX (opset {OPSET})")
        outputs = export_onnx(source, tmp / "exported.onnx")
        _done(t, f"outputs {', '.join(outputs)}")
        current = tmp / "exported.onnx"
        fused: dict[str, int] = {}
        t = _step(3, total, f"optimizing ({opts.optimize.value})")
        if opts.optimize is not OptimizeLevel.NONE:
            fused = optimize(source, current, tmp / "optimized.onnx", opts.optimize)
            current = tmp / "optimized.onnx"
        _done(t, ", ".join(f"{k} x{v}" for k, v in sorted(fused.items())) or "graph unchanged")
        t = _step(4, total, f"quantizing ({opts.quantize.value})")
        kept_fp32: list[str] = []
        if quantized:
            kept_fp32 = quantize(current, tmp / "quantized.onnx", opts.quantize)
            current = tmp / "quantized.onnx"
        _done(t, f"dynamic int8 weights; kept in fp32: {kept_fp32 or 'none'}" if quantized else "skipped")
        staging = tmp / "staging"
        staging.mkdir()
        current.rename(staging / "model.onnx")
        pad_id = package.write_tokenizer(source.tokenizer, staging / "tokenizer.json")
        precision = "int8" if quantized else ("fp16" if opts.optimize is OptimizeLevel.O4 else "fp32")

        t = _step(5, total, "verifying against sentence-transformers")
        runner = GraphRunner(
            staging / "model.onnx", staging / "tokenizer.json", max_tokens=source.max_tokens,
            pad_token_id=pad_id, inputs=source.input_names, precision=precision,
        )
        lossy = quantized or opts.optimize in (OptimizeLevel.O3, OptimizeLevel.O4)
        want_fidelity = lossy if opts.fidelity is None else opts.fidelity
        report: dict[str, Any] = {"reference": _versions()}
        ranges = None
        if source.kind is ModelKind.EMBEDDING:
            report["parity"] = verify.embedding_parity(source, runner)
            texts = _calibration_texts(opts)
            if want_fidelity:
                report["fidelity"] = verify.embedding_fidelity(source, runner, texts)
            ranges = verify.calibrate_ranges(runner, texts)
        else:
            report["parity"] = verify.rerank_parity(source, runner)
            if want_fidelity:
                report["fidelity"] = verify.rerank_fidelity(source, runner, _calibration_texts(opts))
        limits = thresholds(opts, source.kind)
        report["thresholds"] = limits
        failures = _failures(report, limits, source.kind)
        summary = json.dumps({k: report[k] for k in ("parity", "fidelity") if k in report})
        _done(t, summary)
        if failures:
            raise ExportFailed("; ".join(failures) + f" (figures: {summary})")

        manifest = {
            "format": FORMAT,
            "name": name,
            "version": version,
            "kind": source.kind.value,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": {"path": str(opts.source), "model_type": source.model_type},
            "graph": {
                "file": "model.onnx", "inputs": source.input_names, "outputs": outputs, "precision": precision,
                "optimize": opts.optimize.value, "quantize": opts.quantize.value, "opset": OPSET, "fused_ops": fused,
                "kept_fp32": kept_fp32,
            },
            "tokenizer": {"file": "tokenizer.json", "max_tokens": source.max_tokens, "pad_token_id": pad_id},
            "fidelity": report,
        }
        if source.kind is ModelKind.EMBEDDING:
            manifest["embedding"] = {**source.info, "ranges": ranges}
        else:
            manifest["rerank"] = source.info
        Manifest.from_json(manifest)  # the server must be able to read what we write
        t = _step(6, total, f"writing {opts.output}/{version}")
        final = package.publish(staging, opts.output, version, manifest)
        _done(t)
    return final


def _versions() -> dict[str, str]:
    out = {}
    for mod in ("sentence_transformers", "transformers", "torch", "onnxruntime"):
        out[mod] = str(getattr(need(mod), "__version__", "?"))
    return out
