"""What the exporter needs of a model kind: recognise and load a checkpoint of it, wrap it for
tracing, and measure the graph against the reference library. One module per kind beside this
one; ``embedrank.exporter.kinds.export_kind`` finds it."""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any

from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.options import ExportOptions
from embedrank.model.kinds import ModelKind
from embedrank.model.manifest import SelfCheck
from embedrank.model.tokenize import TextTokenizer


@dataclasses.dataclass
class Loaded:
    """A checkpoint loaded twice: for tracing (eager attention) and as users load it (the reference)."""

    model: Any
    reference: Any
    hf: Any  # the transformers model inside
    tokenizer: Any
    max_tokens: int
    info: dict[str, Any]  # the kind's manifest section


@dataclasses.dataclass
class Measured:
    """The verify step's figures ("parity", "fidelity") and what goes into the manifest section."""

    report: dict[str, Any]
    section: dict[str, Any]


class ExportKind(abc.ABC):
    kind: ModelKind
    pairs: bool  # inputs are (query, document) pairs: token type 1 marks the second segment
    output_axes: dict[int, str] = {0: "batch"}  # the graph outputs' dynamic axes (token outputs: + sequence)

    def axes_of(self, output: str) -> dict[int, str]:
        """The dynamic axes of one graph output (``output_axes`` unless a kind's outputs differ)."""
        return dict(self.output_axes)

    @abc.abstractmethod
    def recognises(self, path: Path) -> bool:
        """True when the local checkpoint at ``path`` is of this kind."""

    @abc.abstractmethod
    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        """Load with sentence-transformers (module ``st``): ``model_kwargs`` for the traced copy only,
        ``st_kwargs`` for both; ConfigError for what cannot be exported."""

    @abc.abstractmethod
    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        """A torch module (input_ids, attention_mask[, token_type_ids]) -> outputs, and the outputs' names."""

    @abc.abstractmethod
    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        """The export gate for these options."""

    @abc.abstractmethod
    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        """What in ``report`` is past ``limits``; empty when the graph may be published."""

    @abc.abstractmethod
    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        """Parity (always), fidelity on ``texts`` (when asked) and the section's calibrated extras."""

    def wrap_tokenizer(self, source: Any, base: TextTokenizer) -> TextTokenizer:
        """The tokenizer the graph is measured and calibrated with, as the server's kind wraps it."""
        return base

    def write_files(self, source: Any, folder: Path) -> None:
        """Files the kind keeps beside the graph and tokenizer.json (named in its manifest section)."""

    @abc.abstractmethod
    def calibration_items(self, texts: list[str]) -> list[Any]:
        """Inputs of this kind built from calibration texts (static int8 quantization)."""

    @abc.abstractmethod
    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        """A few parity inputs with the reference outputs, for the server's load-time check."""


def failed_min(figures: dict[str, Any], key: str, limit: float, label: str) -> list[str]:
    return [f"{label} {figures[key]:.6f} < {limit}"] if figures[key] < limit else []
