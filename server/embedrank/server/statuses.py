"""The one status table: each domain error's gRPC status code, HTTP status and OpenAI error type,
and TEI's (text-embeddings-inference) HTTP status and ``error_type``.

Transport-neutral on purpose (no grpc, no HTTP stack imported here): the gRPC side
(``embedrank.server.api.status``) and the HTTP side (``embedrank.server.http.errors``) both
read their codes from these rows, so a condition cannot get one answer on one port and
another on the other.

    error                 gRPC                 HTTP  OpenAI ``error.type``                TEI HTTP, error_type
    InvalidArgument       INVALID_ARGUMENT     400   invalid_request_error                422 Validation
    EmptyInput            INVALID_ARGUMENT     400   invalid_request_error                400 Empty
    UnsupportedMediaType  INVALID_ARGUMENT     415   invalid_request_error                415 Validation
    NotFound              NOT_FOUND            404   not_found_error                      422 Validation
    FailedPrecondition    FAILED_PRECONDITION  400   invalid_request_error                424 Backend
    MessageTooLarge       RESOURCE_EXHAUSTED   413   invalid_request_error                413 Validation
    ResourceExhausted     RESOURCE_EXHAUSTED   429   rate_limit_error (+ Retry-After)     429 Overloaded
    Unavailable           UNAVAILABLE          503   service_unavailable_error            503 Unhealthy
    DeadlineExceeded      DEADLINE_EXCEEDED    504   timeout_error                        504 Overloaded
    Unauthenticated       UNAUTHENTICATED      401   authentication_error                 401 Unauthorized
    RequestTimeout        CANCELLED            408   timeout_error                        408 Validation
    ConfigError           FAILED_PRECONDITION  500   server_error                         424 Backend
    (anything else: a bug) INTERNAL            500   server_error                         424 Backend

TEI's column follows its router (router/src/http/server.rs ``From<&ErrorType> for StatusCode``): validation
422, empty batch 400, a model of the wrong kind 424 (``Backend``, "model is not a re-ranker model"),
overloaded 429, unhealthy 503, a failed inference 424; a body that is not JSON 415 (axum's Json extractor).
TEI has no model names, deadlines, read timeouts nor error body on 401 (its auth layer answers a bare 401);
those rows are ours, in TEI's shape (``Unauthorized`` is not one of TEI's error types).

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
    tei_http: int
    tei_type: str


INTERNAL = Status("INTERNAL", 500, "server_error", 424, "Backend")

ROWS: dict[type[errors.EmbedRankError], Status] = {
    errors.InvalidArgument: Status("INVALID_ARGUMENT", 400, "invalid_request_error", 422, "Validation"),
    errors.EmptyInput: Status("INVALID_ARGUMENT", 400, "invalid_request_error", 400, "Empty"),
    errors.UnsupportedMediaType: Status("INVALID_ARGUMENT", 415, "invalid_request_error", 415, "Validation"),
    errors.NotFound: Status("NOT_FOUND", 404, "not_found_error", 422, "Validation"),
    errors.FailedPrecondition: Status("FAILED_PRECONDITION", 400, "invalid_request_error", 424, "Backend"),
    errors.MessageTooLarge: Status("RESOURCE_EXHAUSTED", 413, "invalid_request_error", 413, "Validation"),
    errors.ResourceExhausted: Status("RESOURCE_EXHAUSTED", 429, "rate_limit_error", 429, "Overloaded"),
    errors.Unavailable: Status("UNAVAILABLE", 503, "service_unavailable_error", 503, "Unhealthy"),
    errors.DeadlineExceeded: Status("DEADLINE_EXCEEDED", 504, "timeout_error", 504, "Overloaded"),
    errors.Unauthenticated: Status("UNAUTHENTICATED", 401, "authentication_error", 401, "Unauthorized"),
    errors.RequestTimeout: Status("CANCELLED", 408, "timeout_error", 408, "Validation"),
    errors.ConfigError: Status("FAILED_PRECONDITION", 500, "server_error", 424, "Backend"),
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
