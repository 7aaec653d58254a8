"""`embedrank export`: flags and the entry point (heavy imports happen in run())."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from embedrank.exporter.graphfile import ExternalData
from embedrank.exporter.options import OPSET
from embedrank.model import flags
from embedrank.model.errors import ConfigError, EmbedRankError
from embedrank.model.kinds import ModelKind
from embedrank.model.manifest import RuntimeKind
from embedrank.model.runtime.settings import RuntimeFlags

OPTIMIZE_CHOICES = ["none", "O1", "O2", "O3", "O4"]
QUANTIZE_CHOICES = ["none", "avx2", "avx512", "avx512-vnni", "arm64"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, *, importing: bool = False) -> None:
    """`embedrank export`'s flags; ``importing``: `embedrank import`'s (no tracing: --variant instead of
    --opset and --trust-remote-code)."""
    if importing:
        parser.add_argument("source", help="A local sentence-transformers checkpoint folder that ships an ONNX graph of its transformer (onnx/model.onnx or model.onnx).")
    else:
        parser.add_argument("source", help="A local sentence-transformers or Hugging Face model folder (or a hub id, where the hub is reachable).")
    parser.add_argument("--output", required=True, type=Path, help="REPO/NAME: the model's folder in a model repository; each export adds the next version.")
    parser.add_argument("--kind", choices=[k.value for k in ModelKind], help="Model kind; detected from the checkpoint when omitted.")
    parser.add_argument("--optimize", help="Graph optimization (ONNX Runtime): none, O1, O2 (fusions; default), O3 (+GELU approximation), O4 (+fp16, CUDA only). OpenVINO exports keep the plain graph (none).")
    parser.add_argument("--quantize", default="none", help="Dynamic int8: none (default), avx2, avx512, avx512-vnni, arm64.")
    parser.add_argument("--runtime", choices=[r.value for r in RuntimeKind], default=RuntimeKind.ONNXRUNTIME.value, help="The runtime the server runs this model with, verified here and recorded in the manifest (default onnxruntime). openvino needs: pip install 'embedrank[openvino]'.")
    parser.add_argument("--precision", choices=["fp32", "bf16", "int8"], help="--runtime openvino: fp32 (exact, default), bf16 (needs a CPU with native bf16; gated at 0.9999 min cosine on the fidelity corpus), int8 (NNCF static quantization). ONNX Runtime's precision follows --optimize/--quantize.")
    flags.add_arguments(parser, RuntimeFlags)  # the runtime flags `serve` takes too
    parser.add_argument("--min-cosine", type=float, help="Fail below this cosine to sentence-transformers (default: 0.99999 min for fp32, 0.9999 for O3, 0.99 mean for int8).")
    parser.add_argument("--min-top1", type=float, default=0.9, help="Rerankers, lossy variants: fail below this top-1 agreement with CrossEncoder (default 0.9).")
    parser.add_argument("--calibration", type=Path, help="Text file, one text per line, for int8 output ranges and the fidelity report (default: built-in English corpus).")
    parser.add_argument("--corpus-size", type=int, default=1000, help="Texts from the built-in corpus for calibration and fidelity (default 1000).")
    parser.add_argument("--fidelity", action=argparse.BooleanOptionalAction, default=None, help="Measure fidelity on the corpus (default: for lossy variants only).")
    parser.add_argument("--external-data", choices=[e.value for e in ExternalData], default=ExternalData.AUTO.value,
                        help="Where the graph's weights go: auto (default) keeps one model.onnx up to protobuf's 2 GiB "
                             "limit and past it writes the weights to model.onnx.data beside it (ONNX external data; "
                             "models over ~500 M fp32 parameters, e.g. BGE-M3); always writes the data file for any "
                             "size; never refuses a graph past the limit.")
    parser.add_argument("--source-key", help="Recorded in the manifest (source.key): `embedrank serve --model` and `pull` set it to find this export again instead of exporting anew.")
    if importing:
        parser.add_argument("--variant", help="Serve onnx/model_VARIANT.onnx (e.g. O2, qint8_avx512_vnni) instead of onnx/model.onnx; it is verified against onnx/model.onnx (fp32) with the gates of a lossy variant when it is quantized.")
        return
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset of the exported graph (default {OPSET}; 14 or newer). A newer one can help when an operator does not export.")
    parser.add_argument("--trust-remote-code", action="store_true", help="Run the modeling code a checkpoint brings with it (auto_map in its config.json), for architectures transformers does not ship. Only for code you trust.")


def run(args: argparse.Namespace) -> int:
    from embedrank.exporter.optimize import OptimizeLevel
    from embedrank.exporter.options import ExportOptions
    from embedrank.exporter.pipeline import ExportFailed, run_export
    from embedrank.exporter.quantize import QuantizePreset

    try:
        level = OptimizeLevel(args.optimize) if args.optimize is not None else None
    except ValueError:
        raise ConfigError(f"--optimize {args.optimize!r}: unknown preset; choose one of {', '.join(OPTIMIZE_CHOICES)}") from None
    try:
        preset = QuantizePreset(args.quantize)
    except ValueError:
        raise ConfigError(f"--quantize {args.quantize!r}: unknown preset; choose one of {', '.join(QUANTIZE_CHOICES)}") from None
    if level is OptimizeLevel.O4 and preset is not QuantizePreset.NONE:
        raise ConfigError("--optimize O4 (fp16) and --quantize (int8) exclude each other; pick one")
    if args.corpus_size < 20:
        raise ConfigError("--corpus-size must be at least 20")
    importing = hasattr(args, "variant")
    if not importing and args.opset < 14:
        raise ConfigError(f"--opset {args.opset}: too old for transformer graphs; use 14 or newer (default {OPSET})")
    opts = ExportOptions(
        source=args.source,
        output=args.output,
        kind=ModelKind(args.kind) if args.kind else None,
        optimize=level,
        quantize=preset,
        runtime=RuntimeKind(args.runtime),
        precision=args.precision,
        allow_bf16_without_native=args.allow_bf16_without_native,
        min_cosine=args.min_cosine,
        min_top1=args.min_top1,
        calibration=args.calibration,
        corpus_size=args.corpus_size,
        fidelity=args.fidelity,
        opset=getattr(args, "opset", OPSET),
        trust_remote_code=getattr(args, "trust_remote_code", False),
        source_key=args.source_key,
        external_data=ExternalData(args.external_data),
    )
    from embedrank.exporter import failures

    failures.entered(0)
    command = "embedrank import" if importing else "embedrank export"
    try:
        if importing:
            from embedrank.exporter.importing import run_import

            final = run_import(opts, variant=args.variant)
        else:
            final = run_export(opts)
    except ExportFailed as exc:
        print(f"{command}: FAILED at verify ({failures.architecture(args.source)}): fidelity check: {exc}; "
              "try: a less lossy variant, or --min-cosine/--min-top1 if these figures are good enough", file=sys.stderr)
        return 1
    except EmbedRankError:
        raise  # already one line that says what to fix (exit 2)
    except Exception as exc:  # any other failure inside a step: one line here, the traceback at DEBUG
        failure = failures.describe(exc, args.source, trust_remote_code=opts.trust_remote_code)
        log.debug("export failed at %s", failure.step, exc_info=exc)
        print(f"{command}: {failure.line()}", file=sys.stderr)
        return 1
    print(f"{'imported' if importing else 'exported'} {final}")
    return 0
