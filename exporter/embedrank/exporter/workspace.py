"""An export's temporary folders: locked while in use, removed on failure and on SIGTERM/SIGINT,
and removed by the next export when a SIGKILL left them behind.

Each folder holds a lock file that its export keeps ``flock``-ed until the folder is gone. The
kernel drops the lock when the process dies, however it dies, so a later export can tell a
leftover (lock free) from the folder of an export still running (lock held) and remove only
the former.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

WORK_PREFIX = "embedrank-export-"  # in TMPDIR: the traced, optimized and quantized graphs
PUBLISH_PREFIX = ".embedrank-publish-"  # in REPO: the version being published, for one rename
LOCK_FILE = ".lock"
_UNLOCKED_GRACE_S = 60.0  # a folder with no lock file yet may be an export between mkdtemp and lock


@contextlib.contextmanager
def workspace(parent: Path | None, prefix: str) -> Iterator[Path]:
    """A fresh folder under ``parent`` (TMPDIR when None), locked while the block runs, then removed."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(path / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def sweep(parent: Path, prefix: str) -> list[tuple[Path, int]]:
    """Remove the folders ``parent/prefix*`` of exports that are gone; returns (folder, bytes) removed."""
    removed: list[tuple[Path, int]] = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:  # no such folder, or not ours to list
        return removed
    for path in candidates:
        try:
            st = path.lstat()
        except OSError:
            continue
        if not path.is_dir() or path.is_symlink() or st.st_uid != os.getuid():
            continue
        try:
            fd = os.open(path / LOCK_FILE, os.O_RDWR)
        except FileNotFoundError:
            if time.time() - st.st_mtime > _UNLOCKED_GRACE_S:
                size = _size(path)
                shutil.rmtree(path, ignore_errors=True)
                removed.append((path, size))
            continue
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    continue  # an export is using it
                raise
            size = _size(path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append((path, size))
        finally:
            os.close(fd)
    return removed


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def sweep_leftovers(repository: Path) -> None:
    """Remove what SIGKILLed exports left in TMPDIR and in ``repository``, saying so on stderr."""
    removed = sweep(Path(tempfile.gettempdir()), WORK_PREFIX) + sweep(repository, PUBLISH_PREFIX)
    for path, size in removed:
        print(f"removed the leftovers of an interrupted export: {path} ({size / 1e6:.1f} MB)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into SystemExit(128 + signal) so every ``with`` cleans up on the way out.

    A second signal while cleaning up gets the default action (the next export sweeps what is left).
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        print(f"\ninterrupted by {signal.Signals(signum).name}: removing temporary files", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    except ImportError as exc:
        # The signal came while an extension module (onnxruntime, torch, ...) was being imported: its
        # initialisation turns our SystemExit into "ImportError: initialization failed".
        if isinstance(exc.__cause__, SystemExit):
            raise exc.__cause__ from None
        raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
