"""Tracing a model with TorchScript: the one switch transformers' attention masks need for it.

transformers (>= 4.53) builds attention masks in ``masking_utils`` from *mask functions* of the
(batch, head, query, key) indices. Whenever a model adds an overlay of its own
(``or_mask_function`` / ``and_mask_function``: Gemma3 with ``use_bidirectional_attention``, the
vision-language models, packed sequences), ``create_causal_mask`` and ``create_bidirectional_mask``
switch from broadcasting the indices to ``torch.vmap``, because transformers cannot promise that an
overlay is index-based. ``torch.vmap`` does not compose with the TorchScript tracer that
``torch.onnx.export(dynamo=False)`` uses: functorch's batched tensors have no value in the trace,
and the tracer dies with ``IndexError: unordered_map::at``.

While tracing, :func:`broadcast_masks` makes the mask builders registered for each attention
implementation broadcast instead (``use_vmap=False``: transformers' own default path, and the one
optimum-onnx's model patcher uses for export). A mask function is an element-wise function of
four index tensors, so broadcasting and vmap give the same mask; :func:`check_same_outputs`
runs the model both ways on the trace sample before the trace and refuses a difference, and the
verify step measures the finished graph against sentence-transformers anyway.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from embedrank.exporter.deps import need


def _mask_registry() -> Any:
    try:
        from transformers import masking_utils
    except ImportError:  # transformers before masking_utils (< 4.53) built masks without vmap
        return None
    return getattr(masking_utils, "ALL_MASK_ATTENTION_FUNCTIONS", None)


def _takes_use_vmap(fn: Callable[..., Any]) -> bool:
    try:
        return "use_vmap" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _without_vmap(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def build(*args: Any, **kwargs: Any) -> Any:
        kwargs["use_vmap"] = False
        return fn(*args, **kwargs)

    return build


@contextlib.contextmanager
def broadcast_masks() -> Iterator[list[str]]:
    """Within the block, every registered mask builder that can use vmap broadcasts instead.

    Yields the attention implementations switched (empty where transformers has none)."""
    registry = _mask_registry()
    if registry is None:
        yield []
        return
    local = getattr(registry, "_local_mapping", {})
    switched: dict[str, tuple[bool, Any]] = {}
    for key in list(registry):
        fn = registry[key]
        if callable(fn) and _takes_use_vmap(fn):
            switched[key] = (key in local, fn)
            registry[key] = _without_vmap(fn)
    try:
        yield sorted(switched)
    finally:
        for key, (was_local, fn) in switched.items():
            if was_local:
                registry[key] = fn
            else:
                del registry[key]


def _flat(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


class MaskMismatch(Exception):
    """The model's attention masks differ between vmap and broadcasting: it cannot be traced this way."""


def check_same_outputs(module: Any, args: tuple[Any, ...], *, tolerance: float = 1e-5) -> None:
    """Run ``module`` eagerly as transformers runs it and with broadcast masks; raise MaskMismatch
    when the outputs differ (a mask function that is not element-wise)."""
    torch = need("torch")
    with torch.inference_mode():
        expected = _flat(module(*args))
        with broadcast_masks():
            got = _flat(module(*args))
    for a, b in zip(expected, got):
        worst = float((a.float() - b.float()).abs().max())
        if not worst <= tolerance:  # NaN fails too
            raise MaskMismatch(
                f"the attention masks built by broadcasting differ from transformers' vmap masks "
                f"(max abs output diff {worst:.2e}); a mask function of this model is not element-wise"
            )
