"""The gRPC side of the one status table (embedrank.server.statuses), and the one place that applies it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from embedrank.model import errors
from embedrank.server import metrics, statuses
from embedrank.server.api.drain import Calls
from embedrank.server.engine import observe
from embedrank.server.statuses import new_request_id as new_request_id  # re-exported for the servicers

# The request id's header (HTTP) and metadata key (gRPC, answered in the trailing metadata).
REQUEST_ID_HEADER = "x-request-id"

log = logging.getLogger(__name__)

# The gRPC column of the one status table (embedrank.server.statuses) as grpc.StatusCode members;
# a misspelt code name fails here, at import.
_CODES = {row.grpc: grpc.StatusCode[row.grpc] for row in (*statuses.ROWS.values(), statuses.INTERNAL)}

T = TypeVar("T")


def request_id() -> str:
    """The current request's id: the caller's x-request-id, or one the transport made (server/api/context.py);
    a new one outside a request."""
    scope = observe.current.get()
    return scope.request_id if scope is not None else new_request_id()


def code_for(exc: errors.EmbedRankError) -> grpc.StatusCode:
    return _CODES[statuses.status_of(exc).grpc]


def _details(exc: errors.EmbedRankError) -> list[any_pb2.Any]:
    packed: list[any_pb2.Any] = []
    if isinstance(exc, errors.InvalidArgument):
        detail = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.description)]
        )
    elif isinstance(exc, errors.ResourceExhausted):
        seconds = exc.retry_after_s
        detail = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))
        )
    else:
        return packed
    item = any_pb2.Any()
    item.Pack(detail)
    packed.append(item)
    return packed


def to_grpc_status(exc: BaseException, request_id: str) -> grpc.Status:
    """The status for any exception; unexpected ones are logged and hidden behind INTERNAL."""
    if isinstance(exc, errors.EmbedRankError):
        code, message, details = code_for(exc), exc.message, _details(exc)
    else:
        log.error("request %s failed", request_id, exc_info=exc)
        code, message, details = grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})", []
    proto = status_pb2.Status(code=code.value[0], message=message, details=details)
    return rpc_status.to_status(proto)


def stream_error_fields(exc: BaseException, status: grpc.Status) -> tuple[int, str, str]:
    """(code, message, field) of an error item in a stream, from its error and its status (``to_grpc_status``)."""
    field = exc.field if isinstance(exc, errors.InvalidArgument) else ""
    return status.code.value[0], status.details, field


async def guarded(
    context: grpc.aio.ServicerContext,
    request_id: str,
    call: Callable[[], Awaitable[T]],
    *,
    rpc: str,
    calls: Calls | None = None,
) -> T:
    """Run a handler body; any error ends the RPC with its status from the table. With ``calls``,
    the call counts as in flight for the drain (and is refused once draining)."""
    start = time.monotonic()
    try:
        if calls is None:
            result = await call()
        else:
            with calls.track():
                result = await call()
    except Exception as exc:  # every exception gets a status; unexpected ones are logged as bugs
        status = to_grpc_status(exc, request_id)
    else:
        metrics.request_finished(rpc, "OK", time.monotonic() - start)
        return result
    metrics.request_finished(rpc, status.code.name, time.monotonic() - start)
    await context.abort(status.code, status.details,
                        trailing_metadata=(*status.trailing_metadata, (REQUEST_ID_HEADER, request_id)))
    raise AssertionError("unreachable: abort raises")


assert code_pb2.INVALID_ARGUMENT == grpc.StatusCode.INVALID_ARGUMENT.value[0]
