"""A failed export in one line: the step, the architecture, the cause and what to try.

The pipeline marks each step as it starts (:func:`entered`, from its ``[n/6]`` progress line); when
a step raises something that is not already a one-line error of ours (``EmbedRankError``), the CLI
turns it into a :class:`StepFailure` with :func:`describe` and prints its :meth:`~StepFailure.line`.
The traceback goes to the log at DEBUG (``--log-level DEBUG``), nowhere else.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
from pathlib import Path
from typing import Any

STEPS = {0: "setup", 1: "load", 2: "trace", 3: "optimize", 4: "quantize", 5: "verify", 6: "publish"}

_current: contextvars.ContextVar[int] = contextvars.ContextVar("embedrank_export_step", default=0)

_MAX_CAUSE = 240

_HINTS = {
    "setup": "rerun with --log-level DEBUG for the traceback",
    "load": "check that it loads in Python: SentenceTransformer(path) or CrossEncoder(path)",
    "trace": "another --opset (e.g. --opset 18), or another transformers version; --log-level DEBUG shows where the trace stopped",
    "optimize": "--optimize O1 or --optimize none (the plain graph, which every runtime reads)",
    "quantize": "another --quantize preset, or --quantize none",
    "verify": "--optimize none (a fused graph may use operators this runtime lacks), or another --opset",
    "publish": "check that the --output folder is writable and its disk has room",
}


def entered(step: int) -> None:
    """The pipeline calls this as step ``step`` (1-6) starts; 0 resets it before an export."""
    _current.set(step)


def current_step() -> str:
    return STEPS.get(_current.get(), "setup")


@dataclasses.dataclass(frozen=True)
class StepFailure:
    step: str
    architecture: str
    cause: str
    hint: str

    def line(self) -> str:
        return f"FAILED at {self.step} ({self.architecture}): {self.cause}; try: {self.hint}"


def _config(source: str) -> dict[str, Any]:
    """The checkpoint's transformers config.json (at the top, or in its Transformer module's folder)."""
    root = Path(source)
    candidates = [root / "config.json"]
    modules = root / "modules.json"
    try:
        if modules.is_file():
            candidates += [root / entry.get("path", "") / "config.json" for entry in json.loads(modules.read_text())]
        for path in candidates:
            if path.is_file():
                config = json.loads(path.read_text())
                if isinstance(config, dict):
                    return config
    except (OSError, ValueError):
        pass
    return {}


def architecture(source: str) -> str:
    """What the checkpoint says it is: its model_type (or first architecture), else "unknown architecture"."""
    config = _config(source)
    name = config.get("model_type") or (config.get("architectures") or [None])[0]
    return str(name) if name else "unknown architecture"


def _known_to_transformers(model_type: str) -> bool | None:
    try:
        from transformers import CONFIG_MAPPING
    except ImportError:
        return None
    return model_type in CONFIG_MAPPING


def _transformers_version() -> str:
    try:
        import transformers
    except ImportError:
        return "?"
    return str(transformers.__version__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # newlines and runs of spaces: one line
    cause = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return cause if len(cause) <= _MAX_CAUSE else cause[: _MAX_CAUSE - 1] + "…"


def describe(exc: BaseException, source: str, *, trust_remote_code: bool = False) -> StepFailure:
    """The one-line account of ``exc``, raised while exporting ``source`` in the current step."""
    step = current_step()
    config = _config(source)
    arch = architecture(source)
    cause, hint = _one_line(exc), _HINTS[step]
    if step in ("setup", "load"):
        model_type = str(config.get("model_type") or "")
        if config.get("auto_map") and not trust_remote_code:
            cause = ("the checkpoint brings its own modeling code (auto_map in config.json), and transformers "
                     "runs it only when told to")
            hint = "--trust-remote-code, if you trust that code"
        elif model_type and _known_to_transformers(model_type) is False:
            cause = f"transformers {_transformers_version()} does not know the architecture {model_type!r}"
            hint = ("a newer transformers (pip install -U transformers); or --trust-remote-code if the checkpoint "
                    "ships its own modeling code")
    elif "index out of range" in cause:
        hint = ("check that the tokenizer fits the model: its token ids and token types must be below "
                "vocab_size and type_vocab_size in config.json")
    return StepFailure(step=step, architecture=arch, cause=cause, hint=hint)
