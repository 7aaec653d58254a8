"""An export leaves nothing behind when it is killed: no empty REPO/NAME/, no temporary files.

Real exports of the tiny BERT, interrupted when their progress line for a step appears.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from embedrank.exporter.workspace import PUBLISH_PREFIX, WORK_PREFIX
from embedrank.model.manifest import Manifest
from tests.conftest import EMBEDRANK

STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*)")


class Export:
    """`embedrank export` with its own TMPDIR, read line by line from stderr."""

    def __init__(self, source: Path, output: Path, tmpdir: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*EMBEDRANK, "export", str(source), "--output", str(output), "--corpus-size", "200"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TMPDIR": str(tmpdir)},
        )

    def wait_for_step(self, step: int | str) -> re.Match[str]:
        """Read stderr until the progress line of ``step`` (its number, or a word of its text)."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = STEP.match(line)
            if found and (int(found.group(1)) == step if isinstance(step, int) else step in found.group(3)):
                return found
        raise AssertionError(f"the export ended before step {step!r}:\n{''.join(self.lines)[-3000:]}")

    def finish(self, timeout: float = 300) -> int:
        _, rest = self.proc.communicate(timeout=timeout)
        self.lines.append(rest)
        return self.proc.returncode

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def leftovers(tmpdir: Path, repo: Path) -> list[Path]:
    found = [p for p in tmpdir.iterdir() if p.name.startswith(WORK_PREFIX)]
    if repo.is_dir():
        found += [p for p in repo.iterdir() if p.name.startswith(PUBLISH_PREFIX)]
    return found


def assert_no_half_model(output: Path) -> None:
    """REPO/NAME is absent, or holds a complete, servable version: never an empty folder."""
    if output.exists():
        versions = sorted(output.iterdir())
        assert [p.name for p in versions] == ["1"], f"{output}: {versions}"
        assert Manifest.load(output / "1").version == 1


@pytest.mark.slow
def test_sigkill_at_every_step_leaves_no_model_folder_and_the_next_export_sweeps(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    tmpdir, repo = tmp_path / "tmp", tmp_path / "repo"
    tmpdir.mkdir()
    output = repo / "tiny"
    first = Export(sources["tiny-bert"], output, tmpdir)
    total = int(first.wait_for_step(1).group(2))
    first.proc.kill()
    first.finish()
    assert not output.exists() and not repo.exists()  # loading: nothing made yet
    left_before = 0
    for step in range(2, total + 1):
        export = Export(sources["tiny-bert"], output, tmpdir)
        export.wait_for_step(1)  # the sweep of the previous run's leftovers is done by now
        assert ("removed the leftovers of an interrupted export" in export.stderr) == (left_before > 0), export.stderr
        export.wait_for_step(step)
        export.proc.send_signal(signal.SIGKILL)
        export.finish()
        assert_no_half_model(output)
        left_before = len(leftovers(tmpdir, repo))
        if step < total:
            assert left_before >= 1, f"step {step}: a killed export should leave its temporary folder"
    final = Export(sources["tiny-bert"], output, tmpdir)
    assert final.finish() == 0, final.stderr
    assert leftovers(tmpdir, repo) == []
    # What remains is not ours: onnxruntime keeps a 51-byte session id file (.ses) in TMPDIR.
    assert sum(p.stat().st_size for p in tmpdir.rglob("*") if p.is_file()) < 1000, list(tmpdir.rglob("*"))
    assert Manifest.load(sorted(p for p in output.iterdir() if p.name.isdigit())[-1]).kind.value == "embedding"


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "step", "code"), [(signal.SIGTERM, "verifying", 143), (signal.SIGINT, "optimizing", 130)])
def test_sigterm_and_sigint_remove_the_temporary_files(
    sources: dict[str, Path], tmp_path: Path, sig: signal.Signals, step: str, code: int
) -> None:
    tmpdir, repo = tmp_path / "tmp", tmp_path / "repo"
    tmpdir.mkdir()
    export = Export(sources["tiny-bert"], repo / "tiny", tmpdir)
    export.wait_for_step(step)
    assert leftovers(tmpdir, repo), "the export should be using a temporary folder at this step"
    export.proc.send_signal(sig)
    assert export.finish() == code, export.stderr
    assert f"interrupted by {sig.name}" in export.stderr
    assert leftovers(tmpdir, repo) == []
    assert sum(p.stat().st_size for p in tmpdir.rglob("*") if p.is_file()) < 1000, list(tmpdir.rglob("*"))
    assert not repo.exists()


def test_a_running_exports_folder_is_not_swept(tmp_path: Path) -> None:
    """The lock tells a live export's folder from a dead one's."""
    from embedrank.exporter.workspace import sweep, workspace

    with workspace(tmp_path, WORK_PREFIX) as live:
        (live / "model.onnx").write_bytes(b"x" * 1000)
        dead = tmp_path / f"{WORK_PREFIX}dead"
        dead.mkdir()
        (dead / ".lock").touch()  # a lock file nobody holds: its export was SIGKILLed
        (dead / "exported.onnx").write_bytes(b"y" * 2000)
        removed = sweep(tmp_path, WORK_PREFIX)
        assert removed == [(dead, 2000)]
        assert live.is_dir() and not dead.exists()
    assert not live.exists()
