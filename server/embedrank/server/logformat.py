"""How the server's log lines look (--log-format): text, or one JSON object a line.

Inside a request (server/engine/observe.py's scope, opened by the transport) a line carries its
``request_id``, and ``trace_id`` / ``span_id`` when the request is traced. The command line
(cli/logs.py) and each --processes child (supervise.py) set the handlers up with these formatters.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from embedrank.server.engine import observe

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def now_iso(created: float | None = None) -> str:
    """UTC, milliseconds, ISO 8601: 2026-12-07T07:30:00.123+00:00."""
    when = datetime.datetime.now(datetime.timezone.utc) if created is None else \
        datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    return when.isoformat(timespec="milliseconds")


def json_line(level: str, logger: str, message: str, **fields: Any) -> str:
    return json.dumps({"time": now_iso(), "level": level, "logger": logger, "message": message, **fields})


class TextFormatter(logging.Formatter):
    """time level logger: message, then ``[request <id>]`` inside a request."""

    def __init__(self, fmt: str = TEXT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = getattr(record, "request_ids", None)
        if ids:
            line += f" [request {ids['request_id']}" + (f" trace {ids['trace_id']}]" if "trace_id" in ids else "]")
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (+ exception, the request's ids, access fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": now_iso(record.created), "level": record.levelname, "logger": record.name,
            "message": record.getMessage(),
        }
        ids = getattr(record, "request_ids", None)
        if ids:
            entry.update(ids)
        fields = getattr(record, "access", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class RequestIds(logging.Filter):
    """Adds the current request's ids to a record (in the thread or task that logs it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_ids"):
            record.request_ids = observe.log_fields()
        return True


def formatter(log_format: str, fmt: str = TEXT) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter(fmt)
