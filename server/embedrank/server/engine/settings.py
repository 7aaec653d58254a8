"""The engine's settings, handed down whole from the server's configuration (embedrank.server.config)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from embedrank.server.engine.served import Limits


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    repository: Path  # the model repository
    limits: Limits  # per request and per batch
    max_inflight_inputs: int  # admission bound across all models
    # --default-model: the model a request that names none gets, when it is of the kind the call needs
    # ("" = the only model of that kind).
    default_model: str = ""
