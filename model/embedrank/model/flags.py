"""Settings declared once: a dataclass field carries its default, type, help and flag; its env var is
EMBEDRANK_<NAME>. ``add_arguments`` turns a settings dataclass into command-line flags whose
defaults come from the environment; ``from_namespace`` builds the frozen dataclass back, which
validates itself (``__post_init__``). The server's ``ServerConfig`` and the exporter's flags both
stand on it, so a setting the two share (e.g. ``allow_bf16_without_native``) is declared once."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import typing
from pathlib import Path
from typing import Any

from embedrank.model.errors import ConfigError

ENV_PREFIX = "EMBEDRANK_"


def setting(default: Any = dataclasses.MISSING, *, help: str, choices: tuple[str, ...] = ()) -> Any:  # noqa: A002
    """A dataclass field that is also a flag: ``--name-with-dashes``, env ``EMBEDRANK_NAME``."""
    metadata = {"help": help, "choices": choices}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def env_name(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, only: tuple[str, ...] = ()) -> None:
    """One flag per field of ``cls`` declared with ``setting`` (or of the fields named in ``only``: another
    command taking one of them); defaults read from the env vars."""
    types = _types(cls)
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata or (only and field.name not in only):
            continue
        env = env_name(field.name)
        default: Any = os.environ.get(env)
        if default is None and field.default is not dataclasses.MISSING:
            default = field.default
        if isinstance(default, enum.Enum):
            default = default.value
        help_text = f"{field.metadata['help']} [env {env}]"
        if types[field.name] is bool:
            parser.add_argument(flag_name(field.name), action="store_true", default=_parse_bool(default), help=help_text)
            continue
        kwargs: dict[str, Any] = {"default": default, "help": help_text + " (default: %(default)s)"}
        if field.default is dataclasses.MISSING and default is None:
            kwargs["required"] = True
        typ = types[field.name]
        if isinstance(typ, type) and issubclass(typ, enum.Enum):
            kwargs["choices"] = [m.value for m in typ]
        elif field.metadata["choices"]:
            kwargs["choices"] = list(field.metadata["choices"])
        parser.add_argument(flag_name(field.name), **kwargs)


def _parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _convert(typ: Any, raw: Any) -> Any:
    if raw is None:
        return None
    if typ is bool:
        return _parse_bool(raw)
    if typ is Path or typ == Path | None:
        return Path(raw)
    if isinstance(typ, type) and issubclass(typ, (enum.Enum, int, float, str)):
        return typ(raw)
    return raw


def values_from(ns: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` declared with ``setting``, read from parsed flags and converted."""
    types = _types(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata:
            continue
        raw = getattr(ns, field.name)
        try:
            values[field.name] = _convert(types[field.name], raw)
        except ValueError as exc:
            raise ConfigError(f"{flag_name(field.name)}: cannot read {raw!r}: {exc}") from None
    return values
