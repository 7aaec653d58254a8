"""Put each --model into the model repository unless its verified export is there already.

`embedrank serve --model` runs this while the server answers health NOT_SERVING, then serves;
`embedrank pull` (an init container's job) runs it and exits. Each export is `embedrank export`
(or `embedrank import` where torch is absent and the checkpoint ships an ONNX graph) in a child
process: its progress and its one-line failure go to the console as they do on their own, and the
server process never imports torch. Exports into one repository take turns (a lock file in it), so
replicas that share the repository's volume export a model once and serve that one export.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from embedrank.cli import models
from embedrank.cli.models import ModelSpec
from embedrank.model.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_FILE = ".embedrank-pull.lock"  # hidden: the repository scan skips it
EXPORT_HINT = "pip install '.[export]' (torch) in a checkout of this repository"
IMPORT_HINT = "pip install '.[import]' (no torch), for checkpoints that ship onnx/model.onnx"
GRAPHS = ("onnx/model.onnx", "model.onnx")  # where checkpoints keep an ONNX graph of their transformer


def torch_present() -> bool:
    return importlib.util.find_spec("torch") is not None


def shipped_graph(folder: Path) -> Path | None:
    return next((folder / g for g in GRAPHS if (folder / g).is_file()), None)


def _resolve(spec: ModelSpec) -> tuple[Path, str]:
    """(local folder, identity): the folder itself and its content hash, or the hub snapshot and
    the commit the hub id (and revision) resolved to."""
    if spec.local:
        folder = Path(spec.source).resolve()
        return folder, f"folder:{models.folder_hash(folder)}"
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConfigError(f"--model {spec.text!r}: a hub id needs huggingface_hub: {IMPORT_HINT}") from None
    try:
        folder = Path(snapshot_download(spec.source, revision=spec.revision))
    except Exception as exc:  # offline, no such repository or revision, no access: one line
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model {spec.text!r}: cannot fetch {spec.source} from the hub ({why[:300]}); "
                          "give a local checkpoint folder instead") from None
    return folder, f"hub:{spec.source}@{folder.name}"  # the snapshot folder is named by its commit


def _tool(spec: ModelSpec, folder: Path) -> str:
    """`export` (torch) or, without torch, `import` of the checkpoint's own ONNX graph."""
    if torch_present():
        return "export"
    if shipped_graph(folder) is not None and importlib.util.find_spec("onnx") is not None:
        return "import"
    if shipped_graph(folder) is not None:
        raise ConfigError(f"--model {spec.text!r}: importing its ONNX graph needs onnx: {IMPORT_HINT}")
    raise ConfigError(f"--model {spec.text!r}: {folder} ships no ONNX graph ({' or '.join(GRAPHS)}), so exporting "
                      f"it needs torch: {EXPORT_HINT}")


@contextlib.contextmanager
def _locked(repository: Path) -> Iterator[None]:
    with open(repository / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is exporting into %s; waiting for it", repository)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def _run(argv: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL)
    try:
        return await proc.wait()
    except asyncio.CancelledError:  # a signal: the exporter removes its temporary files on SIGTERM
        proc.terminate()
        await asyncio.shield(proc.wait())
        raise


async def _one(spec: ModelSpec, repository: Path) -> None:
    loop = asyncio.get_running_loop()
    folder, identity = await loop.run_in_executor(None, _resolve, spec)
    key = models.key(identity, spec)
    model_dir = repository / spec.name
    found = await loop.run_in_executor(None, models.find_export, model_dir, key)
    if found is not None:
        log.info("model %s: %s is the verified export of %s (%s); not exporting again", spec.name, found, spec.source,
                 identity)
        return
    tool = _tool(spec, folder)
    log.info("model %s: %sing %s (%s) into %s", spec.name, tool, spec.source, identity, model_dir)
    start = time.monotonic()
    argv = [sys.executable, "-m", "embedrank.cli", tool, str(folder), "--output", str(model_dir),
            "--source-key", key, *spec.export_args()]
    if await _run(argv) != 0:
        raise ConfigError(f"--model {spec.text!r}: the {tool} failed (its reason is above); nothing is served")
    found = await loop.run_in_executor(None, models.find_export, model_dir, key)
    if found is None:
        raise ConfigError(f"--model {spec.text!r}: the {tool} finished but {model_dir} has no valid version "
                          "made from it (another process wrote a newer one?)")
    log.info("model %s: %sed %s in %.0fs", spec.name, tool, found, time.monotonic() - start)


async def pull(specs: list[ModelSpec], repository: Path) -> None:
    """Each spec's export, in turn, made where missing; models the specs do not name stay as they are."""
    if not specs:
        return
    try:
        repository.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--model-repository {repository}: cannot create it ({exc.strerror or exc})") from None
    loop = asyncio.get_running_loop()
    lock = _locked(repository)
    await loop.run_in_executor(None, lock.__enter__)
    try:
        for spec in specs:
            await _one(spec, repository)
    finally:
        lock.__exit__(None, None, None)
