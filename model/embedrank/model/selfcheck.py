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


def measure(
    check: SelfCheck, kind: ModelKind, runtime: Runtime, tokenizer: TextTokenizer, *, spec: Any = None
) -> dict[str, float]:
    """Run the check's inputs one batch at a time, as served; the figures its gate speaks of.
    ``spec`` is the manifest's section of the kind (kinds whose RPC tokenizes its own way need it)."""
    inputs: list[Any] = list(check.inputs)
    k = kind_of(kind)
    if k.ragged:  # one kind-encoded row per input, of its own length
        rows = k.self_check_rows(spec, inputs, tokenizer, runtime, queries=check.queries)
        return k.measure([np.asarray(r, dtype=np.float64) for r in check.reference], rows, queries=check.queries)
    seqs, _ = tokenizer.encode(inputs, truncate=Truncate.END, field="self_check.inputs")
    got = np.concatenate([runtime.run([seq])[k.output] for seq in seqs]).astype(np.float32)
    ref = np.asarray(check.reference, dtype=np.float32)
    if got.shape != ref.shape:
        raise ManifestError(f"self check: the graph outputs {got.shape[1:]} per input, the manifest's reference "
                            f"{ref.shape[1:]}; re-export the model")
    return k.measure(ref, got, queries=check.queries)


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
    if "min_index_agreement" in gate and figures["index_agreement"] < gate["min_index_agreement"]:
        bad.append(f"same non-zero indices in {figures['index_agreement']:.3f} of the texts < {gate['min_index_agreement']}")
    if "max_rel_diff" in gate and figures["max_rel_diff"] > gate["max_rel_diff"]:
        bad.append(f"max relative value diff {figures['max_rel_diff']:.2e} > {gate['max_rel_diff']}")
    if "min_topk_recall" in gate and figures["min_topk_recall"] < gate["min_topk_recall"]:
        bad.append(f"min top-{figures['topk']:.0f} term recall {figures['min_topk_recall']:.3f} < {gate['min_topk_recall']}")
    if "min_mean_topk_recall" in gate and figures["topk_recall"] < gate["min_mean_topk_recall"]:
        bad.append(f"mean top-{figures['topk']:.0f} term recall {figures['topk_recall']:.3f} < {gate['min_mean_topk_recall']}")
    if "min_token_cosine" in gate and figures["min_token_cosine"] < gate["min_token_cosine"]:
        bad.append(f"min token cosine {figures['min_token_cosine']:.6f} < {gate['min_token_cosine']}")
    if "min_mean_token_cosine" in gate and figures["mean_token_cosine"] < gate["min_mean_token_cosine"]:
        bad.append(f"mean token cosine {figures['mean_token_cosine']:.6f} < {gate['min_mean_token_cosine']}")
    if "max_count_mismatch" in gate and figures["count_mismatch"] > gate["max_count_mismatch"]:
        bad.append(f"{figures['count_mismatch']:.0f} texts with another token count than the reference")
    return bad


def run_self_check(
    check: SelfCheck, kind: ModelKind, runtime: Runtime, tokenizer: TextTokenizer, *, where: str, spec: Any = None
) -> dict[str, float]:
    """Measure and gate; ManifestError (the model is not served) when past the gate."""
    figures = measure(check, kind, runtime, tokenizer, spec=spec)
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
