"""Step 6: write REPO/NAME/<next version>/ with model.onnx, tokenizer.json and manifest.json."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from embedrank.server.manifest import MANIFEST_FILE
from embedrank.server.repository import check_model_name, version_dirs


def write_tokenizer(source_tokenizer: Any, path: Path) -> int:
    """Save tokenizer.json without its own padding/truncation; returns the pad token id."""
    backend = source_tokenizer.backend_tokenizer
    data = json.loads(backend.to_str())
    data["padding"] = None
    data["truncation"] = None
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    pad = source_tokenizer.pad_token_id
    return int(pad) if pad is not None else 0


def target(output: Path) -> tuple[str, int]:
    """(model name, next version number) for ``--output REPO/NAME``."""
    name = output.name
    check_model_name(name, field="--output")
    output.mkdir(parents=True, exist_ok=True)
    versions = version_dirs(output)
    return name, (versions[0][0] + 1 if versions else 1)


def publish(staging: Path, output: Path, version: int, manifest: dict[str, Any]) -> Path:
    """Move the staged files into place as one rename, so a server never sees half a version."""
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=output))
    for item in ("model.onnx", "tokenizer.json", MANIFEST_FILE):
        shutil.move(str(staging / item), str(tmp / item))
    final = output / str(version)
    tmp.rename(final)
    return final
