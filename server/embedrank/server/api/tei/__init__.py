"""TEI's gRPC API (tei.v1, protos/embedrank/tei/v1/tei.proto) beside embedrank.v1: the same engine
calls, admission, drain, deadlines, token and status table; docs/http.md, "TEI gRPC"."""

from __future__ import annotations

from typing import Any

from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.tei.embed import TeiEmbedServicer
from embedrank.server.api.tei.predict import TeiPredictServicer
from embedrank.server.api.tei.rerank import TeiRerankServicer
from embedrank.server.api.tei.tokenize import TeiInfoServicer, TeiTokenizeServicer
from embedrank.server.engine.engine import Engine
from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc

SERVICES = tuple(s.full_name for s in tei_pb2.DESCRIPTOR.services_by_name.values())


def add_tei_services(engine: Engine, rpcs: Rpcs, server: Any) -> None:
    """Every tei.v1 service on ``server`` (a grpc.aio.Server, or the Registrar that wraps one)."""
    tei_pb2_grpc.add_InfoServicer_to_server(TeiInfoServicer(engine, rpcs), server)
    tei_pb2_grpc.add_EmbedServicer_to_server(TeiEmbedServicer(engine, rpcs), server)
    tei_pb2_grpc.add_PredictServicer_to_server(TeiPredictServicer(engine, rpcs), server)
    tei_pb2_grpc.add_RerankServicer_to_server(TeiRerankServicer(engine, rpcs), server)
    tei_pb2_grpc.add_TokenizeServicer_to_server(TeiTokenizeServicer(engine, rpcs), server)
