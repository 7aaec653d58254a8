"""Step 6: write REPO/NAME/<next version>/ with model.onnx, tokenizer.json and manifest.json."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from embedrank.exporter.workspace import PUBLISH_PREFIX, workspace
from embedrank.model.errors import ConfigError
from embedrank.model.manifest import MANIFEST_FILE
from embedrank.model.repository import check_model_name, version_dirs


def tokenizer_json(source_tokenizer: Any) -> dict[str, Any]:
    """An HF fast tokenizer's tokenizer.json, without its own padding/truncation (set per request)."""
    data: dict[str, Any] = json.loads(source_tokenizer.backend_tokenizer.to_str())
    data["padding"] = None
    data["truncation"] = None
    return data


def write_tokenizer(source_tokenizer: Any, path: Path) -> int:
    """Save tokenizer.json without its own padding/truncation; returns the pad token id."""
    path.write_text(json.dumps(tokenizer_json(source_tokenizer), ensure_ascii=False), encoding="utf-8")
    pad = source_tokenizer.pad_token_id
    return int(pad) if pad is not None else 0


def target(output: Path) -> tuple[str, int]:
    """(model name, next version number) for ``--output REPO/NAME``; creates nothing."""
    name = output.name
    check_model_name(name, field="--output")
    existing = next(p for p in (output, *output.parents) if p.exists())  # checked now, not after minutes of work
    if not existing.is_dir():
        raise ConfigError(f"--output {output}: {existing} is not a folder")
    # publish() writes in REPO (its staging folder) and in REPO/NAME when there is one
    for folder in {existing, next(p for p in output.parents if p.exists())}:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"--output {output}: this user may not write in {folder}")
    versions = version_dirs(output) if output.is_dir() else []
    return name, (versions[0][0] + 1 if versions else 1)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(staging: Path, output: Path, version: int, manifest: dict[str, Any]) -> Path:
    """Put the staged files in place as ``output/<version>`` with one rename, so a server never sees
    half a version, and ``output`` itself appears only with its first version inside.

    Folders get 0777 and files 0666 less the umask (0755/0644 as usual), so a server running
    as another user (the image's uid 1000) can read what was exported.
    """
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    repository = output.parent
    repository.mkdir(parents=True, exist_ok=True)
    dir_mode, file_mode = 0o777 & ~_umask(), 0o666 & ~_umask()
    final = output / str(version)
    with workspace(repository, PUBLISH_PREFIX) as tmp:
        model_dir = tmp / output.name  # becomes REPO/NAME when there is none yet
        version_dir = model_dir / str(version)
        version_dir.mkdir(parents=True)
        # The graph (model.onnx, or OpenVINO IR model.xml + model.bin), tokenizer.json, the manifest.
        for item in sorted(p.name for p in staging.iterdir()):
            shutil.move(str(staging / item), str(version_dir / item))
            os.chmod(version_dir / item, file_mode)
        os.chmod(version_dir, dir_mode)
        os.chmod(model_dir, dir_mode)
        if not output.exists():
            try:
                model_dir.rename(output)
                return final
            except OSError as exc:  # another export created REPO/NAME meanwhile
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        try:
            version_dir.rename(final)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise ConfigError(f"{final}: another export published this version meanwhile; export again") from None
            raise
    return final
