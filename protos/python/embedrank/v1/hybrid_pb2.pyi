from embedrank.v1 import common_pb2 as _common_pb2
from embedrank.v1 import embed_pb2 as _embed_pb2
from embedrank.v1 import sparse_pb2 as _sparse_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HybridOutput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HYBRID_OUTPUT_UNSPECIFIED: _ClassVar[HybridOutput]
    HYBRID_OUTPUT_DENSE: _ClassVar[HybridOutput]
    HYBRID_OUTPUT_SPARSE: _ClassVar[HybridOutput]
    HYBRID_OUTPUT_MULTI_VECTOR: _ClassVar[HybridOutput]
HYBRID_OUTPUT_UNSPECIFIED: HybridOutput
HYBRID_OUTPUT_DENSE: HybridOutput
HYBRID_OUTPUT_SPARSE: HybridOutput
HYBRID_OUTPUT_MULTI_VECTOR: HybridOutput

class EncodeHybridRequest(_message.Message):
    __slots__ = ("model", "texts", "input_type", "prompt_name", "truncation", "outputs", "sparse_top_k", "return_tokens", "precision")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_NAME_FIELD_NUMBER: _ClassVar[int]
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    SPARSE_TOP_K_FIELD_NUMBER: _ClassVar[int]
    RETURN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    model: str
    texts: _containers.RepeatedScalarFieldContainer[str]
    input_type: _embed_pb2.InputType
    prompt_name: str
    truncation: _common_pb2.Truncation
    outputs: _containers.RepeatedScalarFieldContainer[HybridOutput]
    sparse_top_k: int
    return_tokens: bool
    precision: _embed_pb2.Precision
    def __init__(self, model: _Optional[str] = ..., texts: _Optional[_Iterable[str]] = ..., input_type: _Optional[_Union[_embed_pb2.InputType, str]] = ..., prompt_name: _Optional[str] = ..., truncation: _Optional[_Union[_common_pb2.Truncation, str]] = ..., outputs: _Optional[_Iterable[_Union[HybridOutput, str]]] = ..., sparse_top_k: _Optional[int] = ..., return_tokens: _Optional[bool] = ..., precision: _Optional[_Union[_embed_pb2.Precision, str]] = ...) -> None: ...

class EncodeHybridResponse(_message.Message):
    __slots__ = ("dense", "sparse", "multi_vector", "vector_counts", "sparse_dimensions", "token_counts", "truncated", "metadata")
    DENSE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    MULTI_VECTOR_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SPARSE_DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    dense: _embed_pb2.Embeddings
    sparse: _containers.RepeatedCompositeFieldContainer[_sparse_pb2.SparseVector]
    multi_vector: _embed_pb2.Embeddings
    vector_counts: _containers.RepeatedScalarFieldContainer[int]
    sparse_dimensions: int
    token_counts: _containers.RepeatedScalarFieldContainer[int]
    truncated: _containers.RepeatedScalarFieldContainer[bool]
    metadata: _common_pb2.Metadata
    def __init__(self, dense: _Optional[_Union[_embed_pb2.Embeddings, _Mapping]] = ..., sparse: _Optional[_Iterable[_Union[_sparse_pb2.SparseVector, _Mapping]]] = ..., multi_vector: _Optional[_Union[_embed_pb2.Embeddings, _Mapping]] = ..., vector_counts: _Optional[_Iterable[int]] = ..., sparse_dimensions: _Optional[int] = ..., token_counts: _Optional[_Iterable[int]] = ..., truncated: _Optional[_Iterable[bool]] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ...) -> None: ...

class EncodeHybridStreamRequest(_message.Message):
    __slots__ = ("id", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    request: EncodeHybridRequest
    def __init__(self, id: _Optional[str] = ..., request: _Optional[_Union[EncodeHybridRequest, _Mapping]] = ...) -> None: ...

class EncodeHybridStreamResponse(_message.Message):
    __slots__ = ("id", "response", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: EncodeHybridResponse
    error: _common_pb2.StreamError
    def __init__(self, id: _Optional[str] = ..., response: _Optional[_Union[EncodeHybridResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.StreamError, _Mapping]] = ...) -> None: ...
