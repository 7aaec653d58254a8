"""`--model [NAME=]SOURCE[@REVISION][:OPTION=VALUE,...]`: what `embedrank serve --model` and
`embedrank pull` are asked to put into the model repository, and how an export already there is found.

SOURCE is a local checkpoint folder or a Hugging Face hub id (``org/name``; ``@REVISION`` picks a
branch, tag or commit). NAME defaults to SOURCE's last path part. The options are the export options
that matter per model: ``kind``, ``optimize``, ``quantize``, ``runtime``, ``precision``, ``external-data``
(their values as `embedrank export` takes them), e.g. ``minilm=./all-MiniLM-L6-v2:quantize=avx512-vnni,optimize=O2``.

An export is keyed by what it was made from: the hub id and the commit it resolved to, or the
folder's content hash, plus the options. The key is recorded in the manifest (``source.key``); the
newest valid version of REPO/NAME with the same key is served as it is, anything else is exported
again as the next version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

from embedrank.exporter.cli import OPTIMIZE_CHOICES, QUANTIZE_CHOICES
from embedrank.exporter.graphfile import ExternalData
from embedrank.model.errors import ConfigError, EmbedRankError, ManifestError
from embedrank.model.kinds import ModelKind
from embedrank.model.manifest import Manifest, RuntimeKind
from embedrank.model.repository import check_model_name, version_dirs

MODELS_ENV = "EMBEDRANK_MODELS"  # whitespace-separated --model values (containers)
SPEC_HELP = "[NAME=]SOURCE[@REVISION][:OPTION=VALUE,...]"
OPTIONS: dict[str, tuple[str, ...]] = {
    "kind": tuple(k.value for k in ModelKind),
    "optimize": tuple(OPTIMIZE_CHOICES),
    "quantize": tuple(QUANTIZE_CHOICES),
    "runtime": tuple(r.value for r in RuntimeKind),
    "precision": ("fp32", "bf16", "int8"),
    "external-data": tuple(e.value for e in ExternalData),
}
_OPTIONS_TAIL = re.compile(r"^[a-z-]+=[^,=:]+(,[a-z-]+=[^,=:]+)*$")
_SKIPPED_DIRS = {".git", ".cache", "__pycache__"}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One --model value, parsed."""

    text: str  # as given, for messages
    name: str
    source: str
    revision: str | None
    options: dict[str, str]

    @property
    def local(self) -> bool:
        return Path(self.source).is_dir()

    def export_args(self) -> list[str]:
        """The options as `embedrank export` flags."""
        return [arg for key, value in sorted(self.options.items()) for arg in (f"--{key}", value)]


def parse(text: str) -> ModelSpec:
    """One --model value; a mistake is a ConfigError that quotes it and says what is expected."""
    where = f"--model {text!r}"
    rest = text.strip()
    options: dict[str, str] = {}
    head, sep, tail = rest.rpartition(":")
    if sep and _OPTIONS_TAIL.match(tail) and not Path(rest).is_dir():
        rest = head
        for item in tail.split(","):
            key, value = item.split("=", 1)
            if key not in OPTIONS:
                raise ConfigError(f"{where}: unknown option {key!r}; per-model options are {', '.join(OPTIONS)}")
            if value not in OPTIONS[key]:
                raise ConfigError(f"{where}: {key}={value!r}; choose one of {', '.join(OPTIONS[key])}")
            if key in options:
                raise ConfigError(f"{where}: option {key!r} given twice")
            options[key] = value
    name = ""
    if "=" in rest and not Path(rest).is_dir():
        name, rest = rest.split("=", 1)
    revision = None
    if "@" in rest and not Path(rest).is_dir():
        rest, revision = rest.rsplit("@", 1)
        if not revision:
            raise ConfigError(f"{where}: nothing after '@' (a branch, tag or commit of the hub repository)")
    if not rest:
        raise ConfigError(f"{where}: no SOURCE; expected {SPEC_HELP}")
    local = Path(rest).is_dir()
    if not local and ("/" not in rest or rest.startswith((".", "/")) or rest.count("/") > 1):
        raise ConfigError(f"{where}: {rest} is no folder here and not a hub id (org/name)")
    if local and revision is not None:
        raise ConfigError(f"{where}: @{revision}: a revision is for hub ids; {rest} is a local folder")
    name = name or Path(rest.rstrip("/")).name
    try:
        check_model_name(name, field="--model")
    except EmbedRankError as exc:
        raise ConfigError(f"{where}: {exc.message}; name it with NAME=SOURCE") from None
    return ModelSpec(text=text, name=name, source=rest, revision=revision, options=options)


def parse_all(values: list[str] | None) -> list[ModelSpec]:
    """The --model flags, or EMBEDRANK_MODELS when none is given; one name once."""
    texts = list(values or []) or os.environ.get(MODELS_ENV, "").split()
    specs = [parse(text) for text in texts]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"--model {spec.text!r}: the name {spec.name!r} is taken by --model {seen[spec.name]!r}; "
                              "name one with NAME=SOURCE")
        seen[spec.name] = spec.text
    return specs


def folder_hash(folder: Path) -> str:
    """sha256 over the folder's files (relative path and content), hidden caches left out."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


def key(identity: str, spec: ModelSpec) -> str:
    """The export's key: what it was made from (``identity``) and with which options."""
    blob = json.dumps({"source": identity, "options": spec.options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def find_export(model_dir: Path, want: str) -> Path | None:
    """The newest valid version of ``model_dir`` when it was exported with key ``want``, else None
    (a newer export is needed: none yet, another source or options, or a version that does not read)."""
    if not model_dir.is_dir():
        return None
    for _, version in version_dirs(model_dir):
        try:
            manifest = Manifest.load(version)
        except ManifestError:
            continue
        source = manifest.raw.get("source")
        return version if isinstance(source, dict) and source.get("key") == want else None
    return None
