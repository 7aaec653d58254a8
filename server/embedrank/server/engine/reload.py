"""Model updates without a restart: the repository is watched (every --model-poll-s, 2 s by default,
and on SIGHUP) and the engine follows it.

- The watch is cheap: each poll reads the modification times of the repository folder and of each
  model folder (one directory listing); only when one changed is the repository scanned (manifests
  read). An export publishes with a rename into those folders and a removal changes them too, so
  both are seen; a manifest edited in place is not (send SIGHUP, which always scans).

- A new version is loaded, self-checked and warmed up beside the one serving; then new requests go
  to it (one dict assignment), while requests already running finish on the old one, which is
  closed once it has nothing in flight.
- A new version that fails (unreadable manifest, missing or broken graph, failed self check) is
  refused with an ERROR naming the problem, once; the version serving keeps serving. SIGHUP tries
  refused versions again.
- A model whose folder is gone (or holds no version folder any more) stops taking requests
  (NOT_FOUND), drains and is unloaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from embedrank.server.engine import observe
from embedrank.server.engine.engine import Engine, model_attributes
from embedrank.server.engine.served import ServedModel
from embedrank.model.errors import EmbedRankError
from embedrank.model.repository import ModelVersion, scan, version_dirs

log = logging.getLogger(__name__)


class ModelWatcher:
    def __init__(self, engine: Engine, *, poll_s: float, on_poll: Callable[[], object] | None = None) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self._on_poll = on_poll  # e.g. TLS files re-read when they changed
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._refused: dict[Path, str] = {}  # version folder -> why (reported once)
        self._reported: set[str] = set()  # repository problems already logged
        self.swaps = 0
        # The repository's folders' mtimes at the last scan; None: the first poll scans (a version
        # published while the engine was loading is seen).
        self._stamp: tuple[tuple[str, int], ...] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def wake(self, *, retry_refused: bool = True) -> None:
        """Scan now (SIGHUP); by default versions refused before are tried again."""
        if retry_refused:
            self._refused.clear()
            self._reported.clear()
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            woken = True
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s if self.poll_s > 0 else None)
            except asyncio.TimeoutError:
                woken = False
            self._wake.clear()
            if self._on_poll is not None:
                self._on_poll()
            now = stamp(self.engine.settings.repository)
            if not woken and now == self._stamp:
                continue  # nothing was published or removed since the last scan
            self._stamp = now
            try:
                await self.refresh()
            except EmbedRankError as exc:  # e.g. the repository folder itself became unreadable
                log.error("model repository scan failed, serving what is loaded: %s", exc.message)

    async def refresh(self) -> None:
        """One pass: load new versions, drop removed models."""
        loop = asyncio.get_running_loop()
        repository = self.engine.settings.repository
        versions, problems = await loop.run_in_executor(None, lambda: scan(repository, log_problems=False))
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.error("model repository: %s", problem)
        wanted = {v.manifest.name: v for v in versions}
        for name, version in sorted(wanted.items()):
            current = self.engine.models.get(name)
            if current is not None and current.manifest.version == version.manifest.version:
                continue
            if version.directory in self._refused:
                continue
            with observe.span("embedrank.model.swap", **model_attributes(version),
                              **{"embedrank.model.previous_version": current.manifest.version if current else 0}):
                await self._load(name, version, current)
        for name in sorted(set(self.engine.models) - set(wanted)):
            if not await loop.run_in_executor(None, _has_versions, repository / name):
                self._unload(name)

    async def _load(self, name: str, version: ModelVersion, current: ServedModel | None) -> None:
        engine, number = self.engine, version.manifest.version
        start = time.monotonic()
        log.info("model %s version %d found; loading it beside version %s", name, number,
                 current.manifest.version if current is not None else "(none)")
        try:
            model = await engine.build(version)
        except Exception as exc:  # noqa: BLE001 - any failure of a new version refuses it, never the server
            why = exc.message if isinstance(exc, EmbedRankError) else f"{type(exc).__name__}: {exc}"
            self._refused[version.directory] = why
            log.error("model %s version %d REFUSED, %s: %s", name, number,
                      f"version {current.manifest.version} keeps serving" if current is not None else "not served", why)
            return
        model.batcher.start()
        try:
            await model.warm_up()
        except Exception as exc:  # noqa: BLE001
            await model.batcher.close()
            engine.inflight.pop(id(model), None)
            self._refused[version.directory] = str(exc)
            log.error("model %s version %d REFUSED (warm-up failed): %s", name, number, exc)
            return
        engine.models[name] = model  # new requests go to it from here
        self.swaps += 1
        log.info("model %s version %d serving (loaded and warmed in %.1fs)", name, number, time.monotonic() - start)
        if current is not None:
            self._retire(current, why=f"replaced by version {number}")

    def _unload(self, name: str) -> None:
        model = self.engine.models.pop(name)
        log.info("model %s removed from the repository: no new requests; unloading it", name)
        self._retire(model, why="removed")

    def _retire(self, model: ServedModel, *, why: str) -> None:
        tracked = self.engine.inflight.pop(id(model), None)
        log.info("model %s version %d %s: %d input(s) in flight finish on it, then it is closed",
                 model.name, model.manifest.version, why, tracked.in_flight if tracked is not None else 0)

        async def retire() -> None:
            if tracked is not None:
                await tracked.wait_idle()
            await model.batcher.close()
            log.info("model %s version %d unloaded (%s)", model.name, model.manifest.version, why)

        task = asyncio.ensure_future(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)


def stamp(repository: Path) -> tuple[tuple[str, int], ...]:
    """The modification times of the repository folder and of its model folders: a publish (a rename
    into one of them) or a removal changes one. Empty when the repository cannot be read."""
    try:
        found = [(".", repository.stat().st_mtime_ns)]
        with os.scandir(repository) as entries:
            found += [(e.name, e.stat().st_mtime_ns) for e in entries if e.is_dir()]
    except OSError:
        return ()
    return tuple(sorted(found))


def _has_versions(model_dir: Path) -> bool:
    try:
        return model_dir.is_dir() and bool(version_dirs(model_dir))
    except OSError:
        return True  # unreadable for now: keep serving what is loaded
