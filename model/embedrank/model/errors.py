"""The domain errors of embedrank, one tree for the engine, runtime and repository.

    EmbedRankError
    ├── InvalidArgument        a request field is wrong; names the field ("texts[3]")
    │   ├── EmptyInput         an empty list, or a text with nothing to read (TEI answers these apart)
    │   └── UnsupportedMediaType   an HTTP body that is not application/json (HTTP 415)
    ├── NotFound               a well-formed model name that is not loaded
    ├── FailedPrecondition     the model cannot do what was asked (wrong kind, no ranges)
    ├── ResourceExhausted      admission control: too much work in flight
    │   └── MessageTooLarge    a request body over --max-message-mb (HTTP; grpc refuses its own)
    ├── Unavailable            loading, warming up or shutting down
    ├── DeadlineExceeded       the caller's deadline passed before the model ran
    ├── Unauthenticated        missing or wrong bearer token
    ├── RequestTimeout         a client too slow to send its request head or body (HTTP 408)
    └── ConfigError            bad configuration or model repository (start-up only)
        └── ManifestError      a model version that cannot be served

Exactly one table maps these to gRPC status codes and HTTP statuses: ``embedrank.server.statuses``.
Anything else raised in a handler is a bug and becomes INTERNAL with a request id.
"""

from __future__ import annotations


class EmbedRankError(Exception):
    """Base of every error embedrank raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(EmbedRankError):
    """A request field is wrong. ``field`` names it, e.g. ``texts[3]``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message


class EmptyInput(InvalidArgument):
    """An empty list of inputs, or an input with nothing a model could read: INVALID_ARGUMENT like
    the rest, but a convention may answer it apart (TEI: 400 ``Empty``, not 422 ``Validation``)."""


class UnsupportedMediaType(InvalidArgument):
    """An HTTP request body in another format than JSON (Content-Type not application/json)."""

    def __init__(self, message: str) -> None:
        super().__init__("Content-Type", message)


class NotFound(EmbedRankError):
    """A well-formed model name that the server has not loaded."""


class FailedPrecondition(EmbedRankError):
    """The model exists but cannot serve this request (e.g. Encode on a reranker)."""


class ResourceExhausted(EmbedRankError):
    """Too much work in flight; the caller should back off and retry."""

    def __init__(self, message: str, *, retry_after_s: float = 0.1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MessageTooLarge(ResourceExhausted):
    """A request body over the size limit (--max-message-mb)."""


class Unavailable(EmbedRankError):
    """The server cannot take work now (loading, warming up, shutting down)."""


class DeadlineExceeded(EmbedRankError):
    """The caller's deadline passed while the work was queued; the model did not run."""


class Unauthenticated(EmbedRankError):
    """The call did not carry the server's bearer token."""


class RequestTimeout(EmbedRankError):
    """The client stopped sending its request (head or body) for longer than the server waits."""


class ConfigError(EmbedRankError):
    """Configuration that cannot work; the message says what to change."""


class ManifestError(ConfigError):
    """A model version in the repository that cannot be served."""
