"""The one status table: each domain error's gRPC status code, HTTP status and OpenAI error type.

Transport-neutral on purpose (no grpc, no HTTP stack imported here): the gRPC side
(``embedrank.server.api.status``) and the HTTP side (``embedrank.server.http.errors``) both
read their codes from these rows, so a condition cannot get one answer on one port and
another on the other.

    error                 gRPC                 HTTP  OpenAI ``error.type``
    InvalidArgument       INVALID_ARGUMENT     400   invalid_request_error
    UnsupportedMediaType  INVALID_ARGUMENT     415   invalid_request_error
    NotFound              NOT_FOUND            404   not_found_error
    FailedPrecondition    FAILED_PRECONDITION  400   invalid_request_error
    MessageTooLarge       RESOURCE_EXHAUSTED   413   invalid_request_error
    ResourceExhausted     RESOURCE_EXHAUSTED   429   rate_limit_error (+ Retry-After)
    Unavailable           UNAVAILABLE          503   service_unavailable_error
    DeadlineExceeded      DEADLINE_EXCEEDED    504   timeout_error
    Unauthenticated       UNAUTHENTICATED      401   authentication_error
    RequestTimeout        CANCELLED            408   timeout_error
    ConfigError           FAILED_PRECONDITION  500   server_error
    (anything else: a bug) INTERNAL            500   server_error

Rows are looked up along the exception's class hierarchy (most specific first), so
``ManifestError`` answers as ``ConfigError`` and ``MessageTooLarge`` before ``ResourceExhausted``.
``RequestTimeout`` only arises on the HTTP port (gRPC's own transport times out a slow peer);
its gRPC column is what grpc reports for a call whose peer went away.
"""

from __future__ import annotations

import dataclasses
import uuid

from embedrank.model import errors


@dataclasses.dataclass(frozen=True)
class Status:
    grpc: str  # a grpc.StatusCode member name
    http: int
    openai_type: str


INTERNAL = Status("INTERNAL", 500, "server_error")

ROWS: dict[type[errors.EmbedRankError], Status] = {
    errors.InvalidArgument: Status("INVALID_ARGUMENT", 400, "invalid_request_error"),
    errors.UnsupportedMediaType: Status("INVALID_ARGUMENT", 415, "invalid_request_error"),
    errors.NotFound: Status("NOT_FOUND", 404, "not_found_error"),
    errors.FailedPrecondition: Status("FAILED_PRECONDITION", 400, "invalid_request_error"),
    errors.MessageTooLarge: Status("RESOURCE_EXHAUSTED", 413, "invalid_request_error"),
    errors.ResourceExhausted: Status("RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
    errors.Unavailable: Status("UNAVAILABLE", 503, "service_unavailable_error"),
    errors.DeadlineExceeded: Status("DEADLINE_EXCEEDED", 504, "timeout_error"),
    errors.Unauthenticated: Status("UNAUTHENTICATED", 401, "authentication_error"),
    errors.RequestTimeout: Status("CANCELLED", 408, "timeout_error"),
    errors.ConfigError: Status("FAILED_PRECONDITION", 500, "server_error"),
}


def status_of(exc: BaseException) -> Status:
    """The row for ``exc``: its own class's, else its nearest base class's; INTERNAL for the rest."""
    if isinstance(exc, errors.EmbedRankError):
        for cls in type(exc).__mro__:
            row = ROWS.get(cls)
            if row is not None:
                return row
    return INTERNAL


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]
