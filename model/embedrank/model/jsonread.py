"""Typed access to a manifest's JSON: every failure names the key path and what to do."""

from __future__ import annotations

import enum
from typing import Any

from embedrank.model.errors import ManifestError


class Reader:
    """Typed access to a JSON object; every failure names the key path."""

    _MISSING = object()

    def __init__(self, data: Any, where: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: {prefix or 'manifest'} must be an object")
        self.data: dict[str, Any] = data
        self.where = where
        self.prefix = prefix

    def get(self, key: str, typ: type, default: Any = _MISSING) -> Any:
        name = self.prefix + key
        if key not in self.data or self.data[key] is None:
            if default is self._MISSING:
                raise ManifestError(f"{self.where}: {name} is missing; re-export the model")
            return default
        value = self.data[key]
        if typ is int and isinstance(value, bool) or not isinstance(value, typ):
            raise ManifestError(f"{self.where}: {name} must be {typ.__name__}, got {value!r}")
        return value

    def sub(self, key: str) -> Reader:
        return Reader(self.get(key, dict), self.where, f"{self.prefix}{key}.")

    def enum(self, key: str, typ: type[enum.Enum], default: Any = _MISSING) -> Any:
        value = self.get(key, str, default)
        if isinstance(value, typ):
            return value
        try:
            return typ(value)
        except ValueError:
            allowed = ", ".join(m.value for m in typ)
            raise ManifestError(f"{self.where}: {self.prefix}{key} is {value!r}, not one of {allowed}") from None
