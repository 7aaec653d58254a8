from embedrank.v1 import embed_pb2 as _embed_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_EMBEDDING: _ClassVar[ModelKind]
    MODEL_KIND_RERANK: _ClassVar[ModelKind]
    MODEL_KIND_CLASSIFICATION: _ClassVar[ModelKind]
    MODEL_KIND_SPARSE: _ClassVar[ModelKind]
    MODEL_KIND_MULTI_VECTOR: _ClassVar[ModelKind]
    MODEL_KIND_HYBRID: _ClassVar[ModelKind]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_EMBEDDING: ModelKind
MODEL_KIND_RERANK: ModelKind
MODEL_KIND_CLASSIFICATION: ModelKind
MODEL_KIND_SPARSE: ModelKind
MODEL_KIND_MULTI_VECTOR: ModelKind
MODEL_KIND_HYBRID: ModelKind

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "kind", "dimensions", "max_tokens", "pooling", "prompts", "default_prompt_name", "similarity_fn", "graph_precision", "normalize", "output_precisions", "num_labels", "activation", "manifest_json", "labels", "problem_type", "sparse_pooling", "sparse_activation", "max_active_dims", "query_length", "document_length", "query_expansion_length")
    class PromptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    POOLING_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROMPT_NAME_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FN_FIELD_NUMBER: _ClassVar[int]
    GRAPH_PRECISION_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRECISIONS_FIELD_NUMBER: _ClassVar[int]
    NUM_LABELS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_POOLING_FIELD_NUMBER: _ClassVar[int]
    SPARSE_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_DIMS_FIELD_NUMBER: _ClassVar[int]
    QUERY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    QUERY_EXPANSION_LENGTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    kind: ModelKind
    dimensions: int
    max_tokens: int
    pooling: str
    prompts: _containers.ScalarMap[str, str]
    default_prompt_name: str
    similarity_fn: str
    graph_precision: str
    normalize: bool
    output_precisions: _containers.RepeatedScalarFieldContainer[_embed_pb2.Precision]
    num_labels: int
    activation: str
    manifest_json: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    problem_type: str
    sparse_pooling: str
    sparse_activation: str
    max_active_dims: int
    query_length: int
    document_length: int
    query_expansion_length: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., dimensions: _Optional[int] = ..., max_tokens: _Optional[int] = ..., pooling: _Optional[str] = ..., prompts: _Optional[_Mapping[str, str]] = ..., default_prompt_name: _Optional[str] = ..., similarity_fn: _Optional[str] = ..., graph_precision: _Optional[str] = ..., normalize: _Optional[bool] = ..., output_precisions: _Optional[_Iterable[_Union[_embed_pb2.Precision, str]]] = ..., num_labels: _Optional[int] = ..., activation: _Optional[str] = ..., manifest_json: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., problem_type: _Optional[str] = ..., sparse_pooling: _Optional[str] = ..., sparse_activation: _Optional[str] = ..., max_active_dims: _Optional[int] = ..., query_length: _Optional[int] = ..., document_length: _Optional[int] = ..., query_expansion_length: _Optional[int] = ...) -> None: ...
