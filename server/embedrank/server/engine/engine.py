"""The engine: the loaded models by name, admission, and the kind checks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import logging
import time

from embedrank.model.errors import ConfigError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from embedrank.model.kinds import ModelKind, kind_of
from embedrank.model.repository import ModelVersion, check_model_name, scan
from embedrank.model.runtime.select import open_runtime
from embedrank.model.runtime.settings import RuntimeSettings
from embedrank.model.selfcheck import run_self_check
from embedrank.model.tokenize import TextTokenizer
from embedrank.server.engine import observe
from embedrank.server.engine.classification import ClassificationModel
from embedrank.server.engine.embedding import EmbeddingModel
from embedrank.server.engine.hybrid import HybridModel
from embedrank.server.engine.inflight import VersionAdmission
from embedrank.server.engine.kinds import served_class
from embedrank.server.engine.multivector import MultiVectorModel
from embedrank.server.engine.rerank import RerankModel
from embedrank.server.engine.served import Admission, ServedModel
from embedrank.server.engine.settings import EngineSettings
from embedrank.server.engine.sparse import SparseModel

log = logging.getLogger(__name__)

# Threads that tokenize requests too long to tokenize on the event loop (shared by every model).
TOKENIZE_THREADS = 2


class Engine:
    def __init__(self, settings: EngineSettings, runtime: RuntimeSettings) -> None:
        self.settings = settings
        self.runtime_settings = runtime
        self.models: dict[str, ServedModel] = {}
        self.problems: list[str] = []
        self.ready = False
        self.admission = Admission(settings.max_inflight_inputs)
        # id(model) -> its inputs in flight (a replaced version closes when they are answered)
        self.inflight: dict[int, VersionAdmission] = {}
        self._tokenize_pool = concurrent.futures.ThreadPoolExecutor(TOKENIZE_THREADS, thread_name_prefix="tokenize")

    def _build(self, version: ModelVersion) -> ServedModel:
        m = version.manifest
        # The kind's own files beside the graph (a sparse model's query weights), loaded once per version.
        m = dataclasses.replace(m, spec=kind_of(m.kind).attach(m.spec, version.directory))
        runtime = open_runtime(
            version.directory / m.graph.file, m.graph, pad_token_id=m.tokenizer.pad_token_id,
            settings=self.runtime_settings,
        )
        tokenizer = kind_of(m.kind).tokenizer(m.spec, TextTokenizer(
            str(version.directory / m.tokenizer.file),
            max_tokens=m.tokenizer.max_tokens,
            with_type_ids="token_type_ids" in m.graph.inputs,
        ))
        if m.self_check is None:
            log.warning("model %s version %d has no self check (exported before self checks); re-export it",
                        m.name, m.version)
        else:
            with observe.span("embedrank.model.self_check", **model_attributes(version)):
                run_self_check(m.self_check, m.kind, runtime, tokenizer, where=f"model {m.name} version {m.version}",
                               spec=m.spec)
        inflight = VersionAdmission(self.admission)
        model = served_class(m.kind)(
            m, runtime, tokenizer, limits=self.settings.limits, admission=inflight, tokenize_pool=self._tokenize_pool
        )
        self.inflight[id(model)] = inflight
        return model

    async def load(self) -> None:
        """Load every servable model, warm each up, then mark the engine ready."""
        loop = asyncio.get_running_loop()
        versions, self.problems = await loop.run_in_executor(None, scan, self.settings.repository)
        for version in versions:
            start = time.monotonic()
            with observe.span("embedrank.model.load", **model_attributes(version)):
                try:
                    model = await self.build(version)
                except ConfigError as exc:
                    if "--device" in exc.message:
                        raise  # the whole server is misconfigured, not this model
                    self.problems.append(exc.message)
                    log.error("model %s skipped: %s", version.manifest.name, exc.message)
                    continue
                model.batcher.start()
                await model.warm_up()
            self.models[model.name] = model
            log.info(
                "model %s version %d (%s, %s) ready in %.1fs",
                model.name, version.manifest.version, model.manifest.kind.value,
                model.manifest.graph.precision, time.monotonic() - start,
            )
        if not self.models:
            raise ConfigError(
                f"no servable model in {self.settings.repository}: "
                + ("; ".join(self.problems) or "it is empty; run `embedrank export` into it")
            )
        default = self.settings.default_model
        if default and default not in self.models:
            raise ConfigError(
                f"--default-model {default!r} is not a loaded model (loaded: {', '.join(sorted(self.models))})"
            )
        self.ready = True

    async def build(self, version: ModelVersion) -> ServedModel:
        """``_build`` in a worker thread, inside the caller's context (a load's span holds the self check's)."""
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(None, ctx.run, self._build, version)

    async def close(self) -> None:
        self.ready = False
        for model in self.models.values():
            await model.batcher.close()
        self._tokenize_pool.shutdown(wait=False)

    def get(self, name: str) -> ServedModel:
        if not self.ready:
            raise Unavailable("models are loading; retry shortly")
        check_model_name(name)
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"model {name!r} is not loaded (loaded: {', '.join(sorted(self.models))})")
        return model

    def resolve(self, name: str, kind: ModelKind, *also: ModelKind) -> ServedModel:
        """The model for an RPC of ``kind`` (or of the ``also`` kinds the RPC serves too); an empty
        name means --default-model when it is of those kinds, else the only model of them."""
        kinds = (kind, *also)
        if not name:
            return self._unnamed([m for m in self.models.values() if m.manifest.kind in kinds], f"{kind.value} ")
        model = self.get(name)
        if model.manifest.kind not in kinds:
            raise FailedPrecondition(
                f"model {name!r} is a {model.manifest.kind.value} model; call "
                f"{kind_of(model.manifest.kind).rpc} for it"
            )
        return model

    def _unnamed(self, fitting: list[ServedModel], what: str) -> ServedModel:
        """A request that names no model: --default-model among ``fitting``, else the only one."""
        if not self.ready:
            raise Unavailable("models are loading; retry shortly")
        default = self.settings.default_model
        for model in fitting:
            if model.name == default:
                return model
        if len(fitting) == 1:
            return fitting[0]
        names = ", ".join(sorted(m.name for m in fitting))
        raise InvalidArgument(
            "model",
            f"is required: the server has {len(fitting)} {what}models" + (f" ({names})" if names else "")
            + ("; name one" + ("" if default else ", or start the server with --default-model") if fitting else ""),
        )

    # A hybrid (BGE-M3) model answers Encode, EncodeSparse, EncodeMultiVector and Rerank with one of its
    # outputs: it is among each of those RPCs' kinds (an empty name then means the only model of them all).

    def embedding(self, name: str) -> EmbeddingModel | HybridModel:
        model = self.resolve(name, ModelKind.EMBEDDING, ModelKind.HYBRID)
        assert isinstance(model, (EmbeddingModel, HybridModel))
        return model

    def reranker(self, name: str) -> RerankModel | MultiVectorModel | HybridModel:
        """A cross-encoder, a multi-vector model (it reranks by MaxSim) or a hybrid one (compute_score)."""
        model = self.resolve(name, ModelKind.RERANK, ModelKind.MULTI_VECTOR, ModelKind.HYBRID)
        assert isinstance(model, (RerankModel, MultiVectorModel, HybridModel))
        return model

    def sparse(self, name: str) -> SparseModel | HybridModel:
        model = self.resolve(name, ModelKind.SPARSE, ModelKind.HYBRID)
        assert isinstance(model, (SparseModel, HybridModel))
        return model

    def multi_vector(self, name: str) -> MultiVectorModel | HybridModel:
        model = self.resolve(name, ModelKind.MULTI_VECTOR, ModelKind.HYBRID)
        assert isinstance(model, (MultiVectorModel, HybridModel))
        return model

    def hybrid(self, name: str) -> HybridModel:
        model = self.resolve(name, ModelKind.HYBRID)
        assert isinstance(model, HybridModel)
        return model

    def classifier(self, name: str) -> ClassificationModel:
        model = self.resolve(name, ModelKind.CLASSIFICATION)
        assert isinstance(model, ClassificationModel)
        return model

    def any_model(self, name: str) -> ServedModel:
        """The model for an RPC every kind serves (Tokenize, Decode); an empty name means
        --default-model, else the only model."""
        if not name:
            return self._unnamed(list(self.models.values()), "")
        return self.get(name)


def model_attributes(version: ModelVersion) -> dict[str, str | int]:
    """A model version's span attributes (load, self check, swap)."""
    m = version.manifest
    return {"embedrank.model": m.name, "embedrank.model.version": m.version, "embedrank.model.kind": m.kind.value,
            "embedrank.model.precision": m.graph.precision}
