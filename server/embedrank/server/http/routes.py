"""What a convention module hands the HTTP server: its POST routes, each a function of the parsed body.

A convention (Cohere, OpenAI, TEI) maps its request to an engine call and the result to its response;
the server (``app.HttpServer``) does the rest the same way for all: the bearer token, the body limit
and JSON parsing, the drain, metrics, and the error answer from the one status table, which the
convention's ``error_body`` only reshapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from embedrank.model.errors import FailedPrecondition
from embedrank.model.kinds import ModelKind
from embedrank.server.engine.engine import Engine
from embedrank.server.http.errors import Answer

# (engine, the request's JSON object, request id) -> the response's JSON payload.
Work = Callable[[Engine, dict[str, Any], str], Awaitable[dict[str, Any]]]
ErrorBody = Callable[[Answer], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class PostRoute:
    path: str
    name: str  # the handler's name in ROUTES (and the metrics' rpc label is "HTTP " + path)
    work: Work
    error_body: ErrorBody
    renames: Mapping[str, str] = dataclasses.field(default_factory=dict)  # engine field -> the request's


def check_kind(engine: Engine, name: str, kinds: tuple[ModelKind, ...], route_for_kind: Mapping[ModelKind, str]) -> None:
    """A named model of another kind than the route serves: the message names the route of this
    convention to call instead (the engine's own message names the gRPC method)."""
    if name:
        model = engine.get(name)
        if model.manifest.kind not in kinds:
            other = route_for_kind.get(model.manifest.kind)
            hint = f"call {other} for it" if other else "no route of this API serves it"
            raise FailedPrecondition(f"model {name!r} is a {model.manifest.kind.value} model; {hint}")
