"""Errors on the HTTP port: OpenAI's shape, statuses from the one table (embedrank.server.statuses).

    {"error": {"message": "...", "type": "invalid_request_error", "param": "input[3]", "code": "invalid_argument"}}

``type`` and the HTTP status come from the table's row for the error; ``code`` is the row's gRPC
code name in lower case (what the same condition answers on the gRPC port); ``param`` names the
request field in the HTTP request's own terms (the engine says ``texts[3]``, the caller sent
``input[3]``). 429 carries ``Retry-After`` (whole seconds, at least 1).
"""

from __future__ import annotations

import logging
import math
import re

from embedrank.model import errors
from embedrank.server.statuses import Status, status_of

log = logging.getLogger(__name__)

# The engine's field names -> each route's: the first path segment is renamed.
EMBEDDINGS_FIELDS = {"texts": "input"}
RERANK_FIELDS = {"top_k": "top_n"}

_HEAD = re.compile(r"^([A-Za-z_]+)(.*)$")


def http_field(field: str, renames: dict[str, str]) -> str:
    match = _HEAD.match(field)
    if match is None:
        return field
    head, rest = match.groups()
    return renames.get(head, head) + rest


class Answer:
    """The status, headers and JSON body of one error answer."""

    def __init__(self, status: int, body: dict[str, object], headers: dict[str, str], grpc_code: str) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.grpc_code = grpc_code


def error_answer(exc: BaseException, request_id: str, *, renames: dict[str, str] | None = None,
                 scalar_input: bool = False) -> Answer:
    """The answer for any exception raised while serving a request; unexpected ones are logged
    (as bugs) and hidden behind a generic 500 that carries the request id."""
    row: Status = status_of(exc)
    param: str | None = None
    headers = {"X-Request-Id": request_id}
    if isinstance(exc, errors.EmbedRankError):
        message = exc.message
        if isinstance(exc, errors.InvalidArgument):
            param = http_field(exc.field, renames or {})
            if scalar_input and param == "input[0]":
                param = "input"  # the caller sent one string, not a list
            message = f"{param}: {exc.description}" if param else exc.description
        elif isinstance(exc, (errors.NotFound, errors.FailedPrecondition)):
            param = "model"
        if isinstance(exc, errors.ResourceExhausted) and not isinstance(exc, errors.MessageTooLarge):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    else:
        log.error("request %s failed", request_id, exc_info=exc)
        message = f"internal error (request id {request_id})"
    body: dict[str, object] = {
        "error": {"message": message, "type": row.openai_type, "param": param, "code": row.grpc.lower()}
    }
    return Answer(row.http, body, headers, row.grpc)
