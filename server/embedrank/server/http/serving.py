"""One request on the HTTP port, whatever its convention: the token, the drain, the body, the
answer (a payload, or an error shaped by the convention from the one status table) and its metrics.

Each convention module (openai.py, tei.py, ...) maps its bodies to the engine's calls and back;
this is the part they share, so that no convention copies another's handling.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from embedrank.model.errors import FailedPrecondition, InvalidArgument, MessageTooLarge
from embedrank.model.kinds import ModelKind
from embedrank.server import metrics
from embedrank.server.api.drain import Calls
from embedrank.server.api.status import request_id
from embedrank.server.engine.engine import Engine
from embedrank.server.http import schemas
from embedrank.server.http.errors import Answer, error_answer
from embedrank.server.tokens import BearerTokens

JSON = "application/json"
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Where a model of the wrong kind is sent by the OpenAI / Cohere routes.
_ROUTE_FOR_KIND = {ModelKind.EMBEDDING: "POST /v1/embeddings", ModelKind.RERANK: "POST /v1/rerank",
                   ModelKind.HYBRID: "POST /v1/hybrid", ModelKind.MULTI_VECTOR: "POST /v1/rerank"}


# The request's key for the status table's gRPC code of its error answer (a convention may answer TEI's 422 or
# 424, which no row's HTTP status names): the request span reads it.
GRPC_CODE = "embedrank.grpc_code"


class RequestState:
    """What one request's error answer needs to know about it."""

    __slots__ = ("renames", "scalar_input")

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames
        self.scalar_input = False


Work = Callable[[web.Request, str, RequestState], Awaitable[Any]]
# A convention's error shape: (exception, request id, state) -> status, headers and body.
Shape = Callable[[BaseException, str, RequestState], Answer]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (method, path, handler name): one convention's routes; the names are its handler class's methods.
Route = tuple[str, str, str]


def openai_error(exc: BaseException, rid: str, state: RequestState) -> Answer:
    return error_answer(exc, rid, renames=state.renames, scalar_input=state.scalar_input)


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload, option=_DUMPS_OPTIONS), status=status, headers=headers,
                        content_type=JSON)


class Serving:
    """The engine and the port's shared state, as every convention's handlers see them."""

    def __init__(self, engine: Engine, calls: Calls, *, tokens: BearerTokens | None, max_body_mb: int) -> None:
        self.engine = engine
        self.calls = calls
        self._tokens = tokens  # any token of --auth-token-file, the scheme in any case (server/tokens.py)
        self.max_body_mb = max_body_mb

    async def serve(
        self, request: web.Request, rpc: str, work: Work, renames: dict[str, str] | None = None, *,
        shape: Shape = openai_error,
    ) -> web.Response:
        """Answer one request: ``work`` gives the payload; any exception becomes ``shape``'s answer."""
        rid = request_id()  # the caller's X-Request-Id or one made (http/context.py)
        start = time.monotonic()
        state = RequestState(renames or {})
        try:
            self.check_token(request)
            with self.calls.track():
                payload = await work(request, rid, state)
        except Exception as exc:  # every exception gets an answer from the table; unexpected ones are logged
            answer = shape(exc, rid, state)
            request[GRPC_CODE] = answer.grpc_code  # the span's code (http/context.py), not guessed from the status
            metrics.REQUESTS.labels(rpc, answer.grpc_code).inc()
            response = json_response(answer.body, status=answer.status, headers=answer.headers)
            if answer.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
        else:
            metrics.REQUESTS.labels(rpc, "OK").inc()
            metrics.observe_request(rpc, time.monotonic() - start)
            response = json_response(payload, headers={"X-Request-Id": rid})
        if self.calls.draining:
            response.force_close()  # no keep-alive: the caller's next request goes elsewhere
        return response

    def check_token(self, request: web.Request) -> None:
        if self._tokens is not None:
            self._tokens.check(request.headers.get("Authorization", ""), where="header Authorization")

    async def body(self, request: web.Request) -> dict[str, Any]:
        """The request's JSON object; over --max-message-mb is MessageTooLarge (413)."""
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise MessageTooLarge(
                f"request body over {self.max_body_mb} MiB (--max-message-mb); "
                "send fewer or shorter inputs per request"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument("body", f"is not valid JSON ({exc})") from None
        return schemas.body_object(data)

    def check_kind(self, name: str, kind: ModelKind, *also: ModelKind,
                   routes: Mapping[ModelKind, str] = _ROUTE_FOR_KIND) -> None:
        """A named model of another kind than the route serves (``kind`` or ``also``): the message names
        the route to call instead, one of ``routes`` (the convention's); the engine's names the gRPC method."""
        if name:
            model = self.engine.get(name)
            if model.manifest.kind not in (kind, *also):
                other = routes.get(model.manifest.kind)
                hint = f"call {other} for it" if other else "no route of this API serves it"
                raise FailedPrecondition(f"model {name!r} is a {model.manifest.kind.value} model; {hint}")
