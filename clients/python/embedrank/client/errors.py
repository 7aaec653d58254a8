"""The client's one exception: the gRPC status code and the server's message."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class EmbedRankError(Exception):
    """An RPC failed. ``code`` is a grpc.StatusCode; ``field`` names the bad request field, if any."""

    def __init__(self, code: grpc.StatusCode, message: str, *, field: str = "", request_id: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> EmbedRankError:
        call: Any = err
        field = ""
        try:
            status = rpc_status.from_call(call)
        except ValueError:
            status = None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    if bad.field_violations:
                        field = bad.field_violations[0].field
        return cls(call.code(), call.details() or "", field=field)

    @classmethod
    def from_stream_error(cls, error: Any) -> EmbedRankError:
        code = next((c for c in grpc.StatusCode if c.value[0] == error.code), grpc.StatusCode.UNKNOWN)
        return cls(code, error.message, field=error.field)
