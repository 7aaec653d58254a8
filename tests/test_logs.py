"""The `embedrank` command's logging: our lines at the chosen level, other libraries' only at DEBUG."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, sys, warnings
from embedrank.cli import logs
logs.configure(sys.argv[1])
logging.getLogger("onnxruntime.quantization").warning("library warning")
logging.warning("root warning")  # onnxruntime's quantizer logs this way
warnings.warn("library python warning")
logging.getLogger("embedrank.exporter.x").warning("our warning")
logging.getLogger("embedrank.exporter.x").info("our info")
logging.getLogger("transformers").error("library error")
"""


def _run(level: str) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_default_level_shows_our_lines_and_errors_only() -> None:
    out = _run("WARNING")
    assert "WARNING embedrank.exporter.x: our warning" in out
    assert "ERROR transformers: library error" in out
    for hidden in ("library warning", "root warning", "library python warning", "our info"):
        assert hidden not in out, out


def test_debug_shows_library_lines_as_debug() -> None:
    out = _run("DEBUG")
    assert "DEBUG onnxruntime.quantization: library warning" in out
    assert "DEBUG root: root warning" in out
    assert "DEBUG py.warnings:" in out and "library python warning" in out
    assert "WARNING embedrank.exporter.x: our warning" in out and "INFO embedrank.exporter.x: our info" in out
