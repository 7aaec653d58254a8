"""The model repository: REPO/<name>/<version>/ with manifest.json, model.onnx, tokenizer.json.

The newest version whose manifest is valid is served; a broken version is skipped
loudly (logged with what to fix), and so is a model with no valid version.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

from embedrank.model.errors import ConfigError, InvalidArgument, ManifestError
from embedrank.model.manifest import Manifest, unreadable

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_model_name(name: str, field: str = "model") -> str:
    """A model name is a plain folder name: no path separators, no '..'."""
    if not _NAME.match(name) or ".." in name:
        raise InvalidArgument(
            field, f"{name[:64]!r} is not a model name (letters, digits, '.', '_', '-'; no '/' or '..')"
        )
    return name


def version_dirs(model_dir: Path) -> list[tuple[int, Path]]:
    """Version folders (integer names) of one model, newest first."""
    found = [(int(p.name), p) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(found, reverse=True)


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    directory: Path
    manifest: Manifest


def scan(repository: Path, *, log_problems: bool = True) -> tuple[list[ModelVersion], list[str]]:
    """Find the servable version of every model. Returns (versions, problems); each problem is
    logged as an ERROR unless ``log_problems`` is off (a caller that scans again reports its own)."""
    if not repository.is_dir():
        raise ConfigError(f"--model-repository {repository}: not a folder; export a model there first")
    chosen: list[ModelVersion] = []
    problems: list[str] = []
    try:
        entries = sorted(p for p in repository.iterdir() if p.is_dir())
    except PermissionError:
        raise ConfigError(unreadable(repository, repository)) from None
    for model_dir in entries:
        if model_dir.name.startswith("."):
            continue  # hidden: e.g. an export publishing right now
        if not _NAME.match(model_dir.name):
            problems.append(f"{model_dir}: skipped, not a valid model name")
            continue
        try:
            versions = version_dirs(model_dir)
        except PermissionError:
            problems.append(unreadable(model_dir, repository))
            continue
        if not versions:
            problems.append(f"{model_dir}: skipped, no version folders (1/, 2/, ...)")
            continue
        for number, vdir in versions:
            try:
                manifest = Manifest.load(vdir)
                if manifest.version != number:
                    raise ManifestError(f"{vdir}: manifest says version {manifest.version}, folder says {number}")
            except ManifestError as exc:
                problems.append(f"{exc.message} (version skipped)")
                continue
            chosen.append(ModelVersion(vdir, dataclasses.replace(manifest, name=model_dir.name)))
            break
        else:
            problems.append(f"{model_dir}: no servable version; the model is not served")
    if log_problems:
        for problem in problems:
            log.error("model repository: %s", problem)
    return chosen, problems
