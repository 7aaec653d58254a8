"""Imports of the heavy exporter dependencies, with the install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from embedrank.model.errors import ConfigError

INSTALL_HINT = "pip install '.[export]' (in a checkout of this repository; embedrank is not on PyPI)"


def need(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"the exporter needs {module.split('.')[0]} ({exc}); install it with: {INSTALL_HINT}") from None
