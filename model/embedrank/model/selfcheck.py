"""The load-time self check: the manifest's reference outputs, re-run on the runtime that serves.

The exporter stores a few parity inputs with sentence-transformers' outputs and the export's
gate. At load the server runs those inputs through its own tokenizer and runtime (whichever
the manifest names, ONNX Runtime or OpenVINO, at the precision it names) and refuses the model
when the results moved past the gate: a runtime, library or CPU change can never silently
change what callers get. The exporter runs the same function before it writes the manifest.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.model.errors import ManifestError
from embedrank.model.kinds import ModelKind, kind_of
from embedrank.model.manifest import SelfCheck
from embedrank.model.runtime.base import Runtime

log = logging.getLogger(__name__)


def measure(check: SelfCheck, kind: ModelKind, runtime: Runtime, tokenizer: TextTokenizer) -> dict[str, float]:
    """Run the check's inputs one batch at a time, as served; the figures its gate speaks of."""
    inputs: list[Any] = list(check.inputs)
    seqs, _ = tokenizer.encode(inputs, truncate=Truncate.END, field="self_check.inputs")
    spec = kind_of(kind)
    got = np.concatenate([runtime.run([seq])[spec.output] for seq in seqs]).astype(np.float32)
    ref = np.asarray(check.reference, dtype=np.float32)
    if got.shape != ref.shape:
        raise ManifestError(f"self check: the graph outputs {got.shape[1:]} per input, the manifest's reference "
                            f"{ref.shape[1:]}; re-export the model")
    return spec.measure(ref, got, queries=check.queries)


def failures(figures: dict[str, float], gate: dict[str, float]) -> list[str]:
    bad = []
    if "min_cosine" in gate and figures["min_cosine"] < gate["min_cosine"]:
        bad.append(f"min cosine {figures['min_cosine']:.6f} < {gate['min_cosine']}")
    if "min_mean_cosine" in gate and figures["mean_cosine"] < gate["min_mean_cosine"]:
        bad.append(f"mean cosine {figures['mean_cosine']:.6f} < {gate['min_mean_cosine']}")
    if "max_abs_diff" in gate and figures["max_abs_diff"] > gate["max_abs_diff"]:
        bad.append(f"max abs logit diff {figures['max_abs_diff']:.2e} > {gate['max_abs_diff']}")
    if "min_top1_agreement" in gate and figures["top1_agreement"] < gate["min_top1_agreement"]:
        bad.append(f"top-1 agreement {figures['top1_agreement']:.3f} < {gate['min_top1_agreement']}")
    return bad


def run_self_check(
    check: SelfCheck, kind: ModelKind, runtime: Runtime, tokenizer: TextTokenizer, *, where: str
) -> dict[str, float]:
    """Measure and gate; ManifestError (the model is not served) when past the gate."""
    figures = measure(check, kind, runtime, tokenizer)
    bad = failures(figures, check.gate)
    if bad:
        raise ManifestError(
            f"{where}: SELF CHECK FAILED on {runtime.provider}: {'; '.join(bad)} against the reference outputs "
            f"recorded at export ({len(check.inputs)} inputs). The runtime, a library or the CPU changed what "
            "this model computes, or the manifest was edited; re-export the model with this installation"
        )
    log.info("%s: self check passed on %s: %s", where, runtime.provider,
             ", ".join(f"{k} {v:.6g}" for k, v in figures.items()))
    return figures
