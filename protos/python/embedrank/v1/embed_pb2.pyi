from embedrank.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InputType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INPUT_TYPE_UNSPECIFIED: _ClassVar[InputType]
    INPUT_TYPE_QUERY: _ClassVar[InputType]
    INPUT_TYPE_DOCUMENT: _ClassVar[InputType]

class Precision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRECISION_UNSPECIFIED: _ClassVar[Precision]
    PRECISION_FLOAT32: _ClassVar[Precision]
    PRECISION_INT8: _ClassVar[Precision]
    PRECISION_UINT8: _ClassVar[Precision]
    PRECISION_BINARY: _ClassVar[Precision]
    PRECISION_UBINARY: _ClassVar[Precision]
INPUT_TYPE_UNSPECIFIED: InputType
INPUT_TYPE_QUERY: InputType
INPUT_TYPE_DOCUMENT: InputType
PRECISION_UNSPECIFIED: Precision
PRECISION_FLOAT32: Precision
PRECISION_INT8: Precision
PRECISION_UINT8: Precision
PRECISION_BINARY: Precision
PRECISION_UBINARY: Precision

class EncodeRequest(_message.Message):
    __slots__ = ("model", "texts", "input_type", "prompt_name", "normalize", "dimensions", "truncation", "precision", "long_input", "chunk_overlap", "return_chunks")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_NAME_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    LONG_INPUT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    RETURN_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    model: str
    texts: _containers.RepeatedScalarFieldContainer[str]
    input_type: InputType
    prompt_name: str
    normalize: bool
    dimensions: int
    truncation: _common_pb2.Truncation
    precision: Precision
    long_input: _common_pb2.LongInput
    chunk_overlap: int
    return_chunks: bool
    def __init__(self, model: _Optional[str] = ..., texts: _Optional[_Iterable[str]] = ..., input_type: _Optional[_Union[InputType, str]] = ..., prompt_name: _Optional[str] = ..., normalize: _Optional[bool] = ..., dimensions: _Optional[int] = ..., truncation: _Optional[_Union[_common_pb2.Truncation, str]] = ..., precision: _Optional[_Union[Precision, str]] = ..., long_input: _Optional[_Union[_common_pb2.LongInput, str]] = ..., chunk_overlap: _Optional[int] = ..., return_chunks: _Optional[bool] = ...) -> None: ...

class Embeddings(_message.Message):
    __slots__ = ("precision", "rows", "dimensions", "data")
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    precision: Precision
    rows: int
    dimensions: int
    data: bytes
    def __init__(self, precision: _Optional[_Union[Precision, str]] = ..., rows: _Optional[int] = ..., dimensions: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("embeddings", "token_counts", "truncated", "metadata", "chunk_counts", "chunk_embeddings", "chunks")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    embeddings: Embeddings
    token_counts: _containers.RepeatedScalarFieldContainer[int]
    truncated: _containers.RepeatedScalarFieldContainer[bool]
    metadata: _common_pb2.Metadata
    chunk_counts: _containers.RepeatedScalarFieldContainer[int]
    chunk_embeddings: Embeddings
    chunks: _containers.RepeatedCompositeFieldContainer[TextChunk]
    def __init__(self, embeddings: _Optional[_Union[Embeddings, _Mapping]] = ..., token_counts: _Optional[_Iterable[int]] = ..., truncated: _Optional[_Iterable[bool]] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ..., chunk_counts: _Optional[_Iterable[int]] = ..., chunk_embeddings: _Optional[_Union[Embeddings, _Mapping]] = ..., chunks: _Optional[_Iterable[_Union[TextChunk, _Mapping]]] = ...) -> None: ...

class TextChunk(_message.Message):
    __slots__ = ("text_index", "span", "token_count")
    TEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    text_index: int
    span: _common_pb2.Span
    token_count: int
    def __init__(self, text_index: _Optional[int] = ..., span: _Optional[_Union[_common_pb2.Span, _Mapping]] = ..., token_count: _Optional[int] = ...) -> None: ...

class EncodeStreamRequest(_message.Message):
    __slots__ = ("id", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    request: EncodeRequest
    def __init__(self, id: _Optional[str] = ..., request: _Optional[_Union[EncodeRequest, _Mapping]] = ...) -> None: ...

class EncodeStreamResponse(_message.Message):
    __slots__ = ("id", "response", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: EncodeResponse
    error: _common_pb2.StreamError
    def __init__(self, id: _Optional[str] = ..., response: _Optional[_Union[EncodeResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.StreamError, _Mapping]] = ...) -> None: ...
