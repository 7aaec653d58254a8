"""Which model serves a call whose convention names none (TEI's gRPC tei.v1 and HTTP bodies).

TEI serves one model per process; this server serves many. A call that names no model is served by
``--default-model`` when that model is of a kind the call needs, else by the only model of those
kinds; with none or several, it is refused with the loaded models named, so the caller sees what to
change. A call that does name a model (a convention's own way to, e.g. the ``embedrank-model``
gRPC metadata key) gets the usual checks of ``Engine.resolve``.
"""

from __future__ import annotations

from embedrank.model.errors import FailedPrecondition, NotFound, Unavailable
from embedrank.model.kinds import ModelKind
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.served import ServedModel


def _loaded(engine: Engine) -> str:
    return ", ".join(f"{n} ({m.manifest.kind.value})" for n, m in sorted(engine.models.items())) or "none"


def pick_model(engine: Engine, kind: ModelKind, *also: ModelKind, name: str = "") -> ServedModel:
    """The model for a call of ``kind`` (or of the ``also`` kinds it serves too); ``name`` when the
    call names one. Refusals: NotFound for a default that is not loaded, FailedPrecondition when no
    model, or more than one and no default, is of those kinds."""
    if name:
        return engine.resolve(name, kind, *also)
    if not engine.ready:
        raise Unavailable("models are loading; retry shortly")
    kinds = (kind, *also)
    default = engine.settings.default_model
    if default:
        model = engine.models.get(default)
        if model is None:
            raise NotFound(f"--default-model {default!r} is not loaded (loaded: {_loaded(engine)})")
        if model.manifest.kind in kinds:
            return model
    of_kind = sorted((m for m in engine.models.values() if m.manifest.kind in kinds), key=lambda m: m.name)
    if len(of_kind) == 1:
        return of_kind[0]
    wanted = "" if set(kinds) == set(ModelKind) else " or ".join(k.value for k in kinds) + " "
    if not of_kind:
        raise FailedPrecondition(f"this call needs a {wanted}model and none is loaded (loaded: {_loaded(engine)})")
    raise FailedPrecondition(
        f"this call names no model and {len(of_kind)} {wanted}models are loaded "
        f"({', '.join(m.name for m in of_kind)}): set --default-model to one of them, or name one in the call"
    )
