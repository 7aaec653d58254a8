from embedrank.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_MODE_UNSPECIFIED: _ClassVar[ScoreMode]
    SCORE_MODE_ACTIVATED: _ClassVar[ScoreMode]
    SCORE_MODE_RAW: _ClassVar[ScoreMode]

class HybridScore(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HYBRID_SCORE_UNSPECIFIED: _ClassVar[HybridScore]
    HYBRID_SCORE_WEIGHTED: _ClassVar[HybridScore]
    HYBRID_SCORE_DENSE: _ClassVar[HybridScore]
    HYBRID_SCORE_SPARSE: _ClassVar[HybridScore]
    HYBRID_SCORE_COLBERT: _ClassVar[HybridScore]
    HYBRID_SCORE_SPARSE_DENSE: _ClassVar[HybridScore]
SCORE_MODE_UNSPECIFIED: ScoreMode
SCORE_MODE_ACTIVATED: ScoreMode
SCORE_MODE_RAW: ScoreMode
HYBRID_SCORE_UNSPECIFIED: HybridScore
HYBRID_SCORE_WEIGHTED: HybridScore
HYBRID_SCORE_DENSE: HybridScore
HYBRID_SCORE_SPARSE: HybridScore
HYBRID_SCORE_COLBERT: HybridScore
HYBRID_SCORE_SPARSE_DENSE: HybridScore

class RerankRequest(_message.Message):
    __slots__ = ("model", "query", "documents", "top_k", "return_documents", "scores", "truncation", "long_input", "chunk_overlap", "hybrid_score", "hybrid_weights")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RETURN_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    LONG_INPUT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    HYBRID_SCORE_FIELD_NUMBER: _ClassVar[int]
    HYBRID_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    query: str
    documents: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    return_documents: bool
    scores: ScoreMode
    truncation: _common_pb2.Truncation
    long_input: _common_pb2.LongInput
    chunk_overlap: int
    hybrid_score: HybridScore
    hybrid_weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model: _Optional[str] = ..., query: _Optional[str] = ..., documents: _Optional[_Iterable[str]] = ..., top_k: _Optional[int] = ..., return_documents: _Optional[bool] = ..., scores: _Optional[_Union[ScoreMode, str]] = ..., truncation: _Optional[_Union[_common_pb2.Truncation, str]] = ..., long_input: _Optional[_Union[_common_pb2.LongInput, str]] = ..., chunk_overlap: _Optional[int] = ..., hybrid_score: _Optional[_Union[HybridScore, str]] = ..., hybrid_weights: _Optional[_Iterable[float]] = ...) -> None: ...

class HybridScores(_message.Message):
    __slots__ = ("dense", "sparse", "colbert", "sparse_dense", "weighted")
    DENSE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    COLBERT_FIELD_NUMBER: _ClassVar[int]
    SPARSE_DENSE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    dense: float
    sparse: float
    colbert: float
    sparse_dense: float
    weighted: float
    def __init__(self, dense: _Optional[float] = ..., sparse: _Optional[float] = ..., colbert: _Optional[float] = ..., sparse_dense: _Optional[float] = ..., weighted: _Optional[float] = ...) -> None: ...

class RerankResult(_message.Message):
    __slots__ = ("index", "score", "document", "truncated", "token_count", "label_scores", "span", "chunk_count", "hybrid_scores")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_SCORES_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    HYBRID_SCORES_FIELD_NUMBER: _ClassVar[int]
    index: int
    score: float
    document: str
    truncated: bool
    token_count: int
    label_scores: _containers.RepeatedScalarFieldContainer[float]
    span: _common_pb2.Span
    chunk_count: int
    hybrid_scores: HybridScores
    def __init__(self, index: _Optional[int] = ..., score: _Optional[float] = ..., document: _Optional[str] = ..., truncated: _Optional[bool] = ..., token_count: _Optional[int] = ..., label_scores: _Optional[_Iterable[float]] = ..., span: _Optional[_Union[_common_pb2.Span, _Mapping]] = ..., chunk_count: _Optional[int] = ..., hybrid_scores: _Optional[_Union[HybridScores, _Mapping]] = ...) -> None: ...

class RerankResponse(_message.Message):
    __slots__ = ("results", "metadata")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RerankResult]
    metadata: _common_pb2.Metadata
    def __init__(self, results: _Optional[_Iterable[_Union[RerankResult, _Mapping]]] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ...) -> None: ...

class RerankStreamRequest(_message.Message):
    __slots__ = ("id", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    request: RerankRequest
    def __init__(self, id: _Optional[str] = ..., request: _Optional[_Union[RerankRequest, _Mapping]] = ...) -> None: ...

class RerankStreamResponse(_message.Message):
    __slots__ = ("id", "response", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: RerankResponse
    error: _common_pb2.StreamError
    def __init__(self, id: _Optional[str] = ..., response: _Optional[_Union[RerankResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.StreamError, _Mapping]] = ...) -> None: ...
