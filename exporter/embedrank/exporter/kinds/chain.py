"""A CrossEncoder's module chain as modules.json lists it, and the one-line refusal of a chain the
exporter does not know (an unknown head), before sentence-transformers loads anything.

A chain is named by its modules' signatures: a ``Transformer`` with its ``transformer_task``
(``Transformer(text-generation)``), any other module by its class name (``LogitScore``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from embedrank.model.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Module:
    index: int
    folder: str
    type: str  # the dotted class path modules.json names

    @property
    def name(self) -> str:
        return self.type.rsplit(".", 1)[-1]


def _task(path: Path, module: Module) -> str:
    config = path / module.folder / "sentence_bert_config.json"
    try:
        task = json.loads(config.read_text()).get("transformer_task") if config.is_file() else None
    except (OSError, ValueError):
        task = None
    return str(task or "feature-extraction")


def modules(path: Path) -> list[Module]:
    """modules.json's entries in order; empty for a checkpoint without one (a plain transformers folder)."""
    listing = path / "modules.json"
    try:
        entries = json.loads(listing.read_text()) if listing.is_file() else []
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [Module(i, str(e.get("path", "")), str(e.get("type", "?"))) for i, e in enumerate(entries) if isinstance(e, dict)]


def signature(path: Path, module: Module) -> str:
    return f"Transformer({_task(path, module)})" if module.name == "Transformer" else module.name


def signatures(path: Path) -> list[str]:
    return [signature(path, m) for m in modules(path)]


def first_task(path: Path) -> str | None:
    """The transformer_task of the chain's first module, when it is a Transformer."""
    found = modules(path)
    return _task(path, found[0]) if found and found[0].name == "Transformer" else None


def check_loaded(model: Any, known: tuple[tuple[str, ...], ...], *, what: str, where: str) -> None:
    """``check`` on a loaded CrossEncoder (a hub id has no local modules.json to read before loading)."""
    found = [Module(i, f"{i}", f"{type(m).__module__}.{type(m).__name__}") for i, m in enumerate(model)]
    sigs = [f"Transformer({getattr(m, 'transformer_task', '?')})" if type(m).__name__ == "Transformer" else
            type(m).__name__ for m in model]
    _refuse(Path(where), found, sigs, known, what=what)


def check(path: Path, known: tuple[tuple[str, ...], ...], *, what: str) -> None:
    """ConfigError naming the first module of ``path``'s chain that no chain in ``known`` has there."""
    found = modules(path)
    if found:
        _refuse(path, found, [signature(path, m) for m in found], known, what=what)


def _refuse(path: Path, found: list[Module], sigs: list[str], known: tuple[tuple[str, ...], ...], *, what: str) -> None:
    if tuple(sigs) in known:
        return
    # The known chain sharing the longest start with this one says where it goes astray.
    def shared(chain: tuple[str, ...]) -> int:
        n = 0
        while n < min(len(chain), len(sigs)) and chain[n] == sigs[n]:
            n += 1
        return n

    best = max(known, key=shared)
    n = shared(best)
    names = "; ".join(" -> ".join(chain) for chain in known)
    if n == len(sigs):  # a known chain's start, its head missing
        raise ConfigError(f"{path}: the {what}'s chain ends after {sigs[-1]} (module {found[-1].index}) without "
                          f"{best[n]}, the module that makes its score; the exporter knows: {names}")
    module = found[n]
    after = f" after {sigs[n - 1]}" if n else " as its first module"
    raise ConfigError(
        f"{path}: module {module.index} ({module.folder or '.'}) of the {what} is {sigs[n]} ({module.type}), which "
        f"the exporter does not know{after}; it knows: {names}"
    )
