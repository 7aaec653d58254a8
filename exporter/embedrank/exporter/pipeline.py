"""The export, step by step, with progress on stderr."""

from __future__ import annotations

import dataclasses
import datetime
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from embedrank.exporter import corpus, failures, graphfile, package, workspace
from embedrank.exporter import openvino as ov_export
from embedrank.exporter.deps import need
from embedrank.exporter.export import export_onnx
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.optimize import OptimizeLevel, optimize
from embedrank.exporter.quantize import QuantizePreset, quantize
from embedrank.exporter.kinds import export_kind
from embedrank.exporter.options import ExportOptions
from embedrank.exporter.source import Source, load
from embedrank.model import selfcheck
from embedrank.model.errors import ConfigError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds import kind_of
from embedrank.model.manifest import FORMAT, MANIFEST_FILE, Manifest, RuntimeKind
from embedrank.model.runtime.onnx import OrtRuntime
from embedrank.model.tokenize import TextTokenizer


class ExportFailed(Exception):
    """The graph was built but is not faithful enough; nothing was written."""


def _step(n: int, total: int, text: str) -> float:
    failures.entered(n)  # a failure from here on is this step's
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


@workspace.exit_on_signals()  # SIGTERM/SIGINT unwind the `with` blocks below: temporary files go
def run_export(opts: ExportOptions) -> Path:
    """Nothing is created in the repository before step 6; temporary files are removed on failure,
    SIGTERM and SIGINT, and a SIGKILLed export's by the next export."""
    _check_source(opts.source)
    opts = resolve(opts)
    name, version = package.target(opts.output)
    workspace.sweep_leftovers(opts.output.parent)
    t = _step(1, STEPS, f"loading {opts.source}")
    source: Source = load(opts.source, opts.kind, trust_remote_code=opts.trust_remote_code)
    weights = sum(p.numel() * p.element_size() for p in source.model.parameters())
    _done(t, f"{source.kind.value} model, {source.model_type}, max {source.max_tokens} tokens, "
             f"{graphfile.size_text(weights)} of weights")
    check_one_file(opts, weights, f"{opts.source}: its weights")
    with workspace.workspace(None, workspace.WORK_PREFIX) as tmp:
        t = _step(2, STEPS, f"exporting to ONNX (opset {opts.opset})")
        exported = tmp / "exported" / graphfile.GRAPH
        outputs = export_onnx(source, exported, opset=opts.opset, external_data=opts.external_data)
        source.model = None  # the traced copy: the reference alone is needed from here on
        release()
        _done(t, f"outputs {', '.join(outputs)}{_with_data(exported)}")
        return finish(opts, source, tmp, exported, outputs,
                      name=name, version=version, reference=_versions(), against="sentence-transformers")


STEPS = 6


def check_one_file(opts: ExportOptions, nbytes: int, what: str) -> None:
    """--external-data never with fp32 weights past 2 GiB: refused before minutes of tracing (a lossy
    variant may shrink under the limit: checked when it is written)."""
    if opts.external_data is graphfile.ExternalData.NEVER and opts.precision == "fp32" and nbytes >= graphfile.LIMIT:
        graphfile.refuse_never(nbytes, what)


def release() -> None:
    """Hand memory freed by a step (the traced copy, a graph read by onnx) back to the system: with a 2.3 GB
    model each copy is 2.3 GB, and glibc keeps freed heap unless trimmed."""
    gc.collect()
    OrtRuntime.trim()


def _with_data(graph: Path) -> str:
    data = graphfile.external_files(graph)
    return f"; weights in {', '.join(d.name for d in data)} ({graphfile.size_text(graphfile.graph_bytes(graph))})" if data else ""


def resolve(opts: ExportOptions) -> ExportOptions:
    """The options with the runtime's precision and optimize level decided; bf16 checked here."""
    precision, level = ov_export.resolve(opts.runtime, opts.precision, opts.optimize, opts.quantize)
    if opts.runtime is RuntimeKind.OPENVINO and precision == "bf16":
        ov_export.check_bf16_here(opts.allow_bf16_without_native)
    return dataclasses.replace(opts, precision=precision, optimize=level)


def finish(
    opts: ExportOptions, source: Any, tmp: Path, current: Path, outputs: list[str], *,
    name: str, version: int, reference: dict[str, str], against: str,
) -> Path:
    """Steps 3-6 from a graph of the whole model (``current``, in the work folder ``tmp``): optimize,
    quantize, verify against ``source.reference`` (the gate), publish ``opts.output/version``.
    ``source`` is an exporter Source, or the importer's with the same fields."""
    total = STEPS
    precision, level = str(opts.precision), opts.optimize or OptimizeLevel.NONE
    openvino = opts.runtime is RuntimeKind.OPENVINO
    quantized = opts.quantize is not QuantizePreset.NONE
    kind = export_kind(source.kind, Path(source.path))  # the kind's variant that recognises the checkpoint
    fused: dict[str, int] = {}
    t = _step(3, total, f"optimizing ({level.value}{', the plain graph for OpenVINO' if openvino else ''})")
    if level is not OptimizeLevel.NONE:
        fused = optimize(source, current, tmp / "optimized" / graphfile.GRAPH, level)
        release()
        graphfile.remove(current)
        current = tmp / "optimized" / graphfile.GRAPH
    _done(t, ", ".join(f"{k} x{v}" for k, v in sorted(fused.items())) or "graph unchanged")
    staging = tmp / "staging"
    staging.mkdir()
    pad_id = package.write_tokenizer(source.tokenizer, staging / "tokenizer.json")
    kind.write_files(source, staging)
    ov_int8 = openvino and precision == "int8"
    t = _step(4, total, "quantizing (" + ("NNCF int8 for OpenVINO" if ov_int8 else opts.quantize.value) + ")")
    kept_fp32: list[str] = []
    int8_info: dict[str, Any] = {}
    graph_file = graphfile.GRAPH
    external_data: dict[str, Any] | None = None
    if quantized:
        kept_fp32 = quantize(current, tmp / "quantized" / graphfile.GRAPH, opts.quantize)
        release()
        graphfile.remove(current)
        current = tmp / "quantized" / graphfile.GRAPH
        _done(t, f"dynamic int8 weights; kept in fp32: {kept_fp32 or 'none'}")
    elif ov_int8:
        graph_file = "model.xml"
        calibration = kind.wrap_tokenizer(source, TextTokenizer(
            str(staging / "tokenizer.json"), max_tokens=source.max_tokens,
            with_type_ids="token_type_ids" in source.input_names))
        items = kind.calibration_items(_calibration_texts(opts))
        int8_info = ov_export.quantize_int8(current, staging / graph_file, calibration, source.input_names,
                                            items, pad_token_id=pad_id)
        _done(t, f"static int8 (NNCF {int8_info['nncf']}), {int8_info['calibration_items']} calibration inputs")
    else:
        _done(t, "skipped")
    if not ov_int8:  # model.onnx, with model.onnx.data as --external-data says
        external_data = graphfile.publish_graph(current, staging, opts.external_data)

    t = _step(5, total, f"verifying against {against} ({opts.runtime.value}, {precision})")
    runner = GraphRunner(
        staging / graph_file, staging / "tokenizer.json", max_tokens=source.max_tokens,
        pad_token_id=pad_id, inputs=source.input_names, precision=precision, runtime=opts.runtime,
        allow_bf16_without_native=opts.allow_bf16_without_native,
    )
    runner.tokenizer = kind.wrap_tokenizer(source, runner.tokenizer)  # pairs as the kind's RPC formats them
    # bf16's gate is on the fidelity corpus: it is always measured.
    want_fidelity = (opts.lossy if opts.fidelity is None else opts.fidelity) or precision == "bf16"
    measured = kind.measure(source, runner, _calibration_texts(opts), fidelity=want_fidelity)
    report: dict[str, Any] = {"reference": reference, **measured.report}
    limits = kind.thresholds(opts)
    report["thresholds"] = limits
    failures = kind.failures(report, limits)
    check = kind.self_check(source, _self_check_gate(limits))
    spec = kind_of(source.kind).parse(Reader({kind_of(source.kind).section: measured.section}, "export"),
                                      outputs=outputs, where="export")
    spec = kind_of(source.kind).attach(spec, staging)  # the kind's own files, as the server loads them
    figures = selfcheck.measure(check, source.kind, runner.runtime, runner.tokenizer, spec=spec)
    report["self_check"] = figures
    failures += [f"self check: {f}" for f in selfcheck.failures(figures, check.gate)]
    summary = json.dumps({k: report[k] for k in ("parity", "query_parity", "scores", "fidelity", "self_check") if k in report})
    _done(t, summary)
    if failures:
        raise ExportFailed("; ".join(failures) + f" (figures: {summary})")

    manifest = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "kind": source.kind.value,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": str(opts.source), "model_type": source.model_type,
                   **({"key": opts.source_key} if opts.source_key else {})},
        "graph": {
            "file": graph_file, "inputs": source.input_names, "outputs": outputs, "precision": precision,
            "runtime": opts.runtime.value, "optimize": level.value, "quantize": opts.quantize.value, "opset": opts.opset,
            "fused_ops": fused, "kept_fp32": kept_fp32, **({"int8": int8_info} if int8_info else {}),
            **({"external_data": external_data} if external_data else {}),
        },
        "tokenizer": {"file": "tokenizer.json", "max_tokens": source.max_tokens, "pad_token_id": pad_id},
        "fidelity": report,
        "self_check": {"inputs": [list(i) if isinstance(i, tuple) else i for i in check.inputs],
                       "reference": [list(r) for r in check.reference], "gate": check.gate,
                       "queries": check.queries},
    }
    manifest[kind_of(source.kind).section] = measured.section
    Manifest.from_json(manifest)  # the server must be able to read what we write
    t = _step(6, total, f"writing {opts.output}/{version}")
    final = package.publish(staging, opts.output, version, manifest)
    _done(t)
    return final


# The export gate, as the self check's: what the server re-checks at every load.
_SELF_CHECK_GATE: dict[str, str | None] = {
    "min_cosine": "min_cosine", "min_fidelity_cosine": "min_cosine", "min_mean_cosine": "min_mean_cosine",
    "max_abs_diff": "max_abs_diff", "max_score_diff": "max_abs_diff", "min_top1_agreement": "min_top1_agreement",
    "min_index_agreement": "min_index_agreement", "max_rel_diff": "max_rel_diff",
    "min_token_cosine": "min_token_cosine", "max_count_mismatch": "max_count_mismatch",
    "min_topk_recall": "min_topk_recall", "min_mean_topk_recall": "min_mean_topk_recall",
    "min_mean_token_cosine": "min_mean_token_cosine",
    "min_maxsim_top1_agreement": None,  # export only: the self check's few inputs rank nothing
    "min_maxsim_spearman": None,
    "max_hybrid_score_diff": None,  # the self check's vectors make the scores: gated through them
}


def _self_check_gate(limits: dict[str, float]) -> dict[str, float]:
    """The export gate, as the self check's: what the server re-checks at every load."""
    gate: dict[str, float] = {}
    for key, value in limits.items():
        mapped = _SELF_CHECK_GATE[key]
        if mapped is None:
            continue
        gate[mapped] = min(gate.get(mapped, value), value) if mapped.startswith("min") else value
    return gate


def _versions() -> dict[str, str]:
    out = {}
    for mod in ("sentence_transformers", "transformers", "torch", "onnxruntime"):
        out[mod] = str(getattr(need(mod), "__version__", "?"))
    try:
        import openvino

        out["openvino"] = str(openvino.__version__)
    except ImportError:
        pass
    return out
