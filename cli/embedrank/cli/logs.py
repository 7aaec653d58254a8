"""Logging for the `embedrank` command: our own lines at the chosen level, other libraries' below ERROR
only with --log-level DEBUG.

Libraries log things a user of `embedrank` cannot act on (ONNX Runtime's quantizer asks for its
pre-processing; transformers reports weights it initialised; Python warnings from deep inside torch):
at the default level they would be mistaken for ours. Their records below ERROR are shown as DEBUG
(so `--log-level DEBUG` still has them); ours, and anyone's errors, keep their level.
"""

from __future__ import annotations

import logging
import sys

from embedrank.server.logformat import RequestIds, formatter

OURS = ("embedrank", "__main__")


class ThirdPartyToDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and not record.name.startswith(OURS):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


class LevelAfterFilters(logging.Handler):
    """Passes records to ``inner`` only at ``level`` or above, judged after the filters ran."""

    def __init__(self, inner: logging.Handler, level: int) -> None:
        super().__init__(logging.NOTSET)
        self.inner, self.min_level = inner, level
        self.addFilter(ThirdPartyToDebug())

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.min_level:
            self.inner.handle(record)


def configure(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level`` (a name: DEBUG, INFO, ...), other libraries' chatter demoted; ``log_format``
    text or json (serve --log-format; embedrank.server.logformat)."""
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter(log_format))
    stream.addFilter(RequestIds())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, LevelAfterFilters)]:  # configured before (in-process calls)
        root.removeHandler(old)
    numeric = logging.getLevelName(level)
    root.addHandler(LevelAfterFilters(stream, numeric))
    # Libraries' WARNINGs must reach the filter to be demoted (and shown under DEBUG).
    root.setLevel(min(numeric, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn(...) from libraries: the py.warnings logger, demoted too
