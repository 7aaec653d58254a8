from embedrank.v1 import common_pb2 as _common_pb2
from embedrank.v1 import embed_pb2 as _embed_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EncodeMultiVectorRequest(_message.Message):
    __slots__ = ("model", "texts", "input_type", "prompt_name", "truncation", "precision")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_NAME_FIELD_NUMBER: _ClassVar[int]
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    model: str
    texts: _containers.RepeatedScalarFieldContainer[str]
    input_type: _embed_pb2.InputType
    prompt_name: str
    truncation: _common_pb2.Truncation
    precision: _embed_pb2.Precision
    def __init__(self, model: _Optional[str] = ..., texts: _Optional[_Iterable[str]] = ..., input_type: _Optional[_Union[_embed_pb2.InputType, str]] = ..., prompt_name: _Optional[str] = ..., truncation: _Optional[_Union[_common_pb2.Truncation, str]] = ..., precision: _Optional[_Union[_embed_pb2.Precision, str]] = ...) -> None: ...

class EncodeMultiVectorResponse(_message.Message):
    __slots__ = ("embeddings", "vector_counts", "token_counts", "truncated", "metadata")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    embeddings: _embed_pb2.Embeddings
    vector_counts: _containers.RepeatedScalarFieldContainer[int]
    token_counts: _containers.RepeatedScalarFieldContainer[int]
    truncated: _containers.RepeatedScalarFieldContainer[bool]
    metadata: _common_pb2.Metadata
    def __init__(self, embeddings: _Optional[_Union[_embed_pb2.Embeddings, _Mapping]] = ..., vector_counts: _Optional[_Iterable[int]] = ..., token_counts: _Optional[_Iterable[int]] = ..., truncated: _Optional[_Iterable[bool]] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ...) -> None: ...

class EncodeMultiVectorStreamRequest(_message.Message):
    __slots__ = ("id", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    request: EncodeMultiVectorRequest
    def __init__(self, id: _Optional[str] = ..., request: _Optional[_Union[EncodeMultiVectorRequest, _Mapping]] = ...) -> None: ...

class EncodeMultiVectorStreamResponse(_message.Message):
    __slots__ = ("id", "response", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: EncodeMultiVectorResponse
    error: _common_pb2.StreamError
    def __init__(self, id: _Optional[str] = ..., response: _Optional[_Union[EncodeMultiVectorResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.StreamError, _Mapping]] = ...) -> None: ...
