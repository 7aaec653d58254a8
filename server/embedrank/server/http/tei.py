"""TEI's (text-embeddings-inference) HTTP API on --http-port: a TEI client switches by address.

    POST /embed          {inputs, normalize, truncate, truncation_direction, prompt_name, dimensions} -> [[f32]]
    POST /embed_all      token vectors of a multi-vector model -> [[[f32]]]
    POST /embed_sparse   a sparse model's weights -> [[{index, value}]]
    POST /rerank         {query, texts, raw_scores, return_text, truncate} -> [{index, score, text?}]
    POST /predict        a string, a pair, or a batch of [a] / [a, b] -> [{label, score}] (or a list of them)
    POST /similarity     {inputs: {source_sentence, sentences}, parameters} -> [cosine]
    POST /tokenize       {inputs, add_special_tokens, prompt_name} -> [[{id, text, special, start, stop}]]
    POST /decode         {ids, skip_special_tokens} -> [text]
    GET  /info           the model: id, dtype, type, limits
    POST /, /invocations as the model's kind answers (TEI's dispatch: classifier -> predict, reranker ->
                         rerank, sparse -> embed_sparse, multi-vector -> embed_all, else embed); a
                         {source_sentence, sentences} body -> similarity
    GET  /ping           = GET /health (app.py)

Every route also under /models/{name}/ (our extension): TEI serves one model and its bodies name
none, so a client that takes only a base URL reaches any model of a multi-model server by its own
prefix. Which model answers: the path's {name}, else a "model" field in the body, else
--default-model when it is of the kind the route needs, else the only model of that kind; several
and none chosen -> 422 naming them. Errors: TEI's {"error", "error_type"} from the one status table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiohttp import web

from embedrank.model.errors import EmptyInput, FailedPrecondition, InvalidArgument
from embedrank.model.kinds import ModelKind
from embedrank.server.api.tei.common import server_version, tei_dtype
from embedrank.server.engine.classification import ClassifyParams, ClassifyResult
from embedrank.server.engine.engine import TOKENIZE_THREADS
from embedrank.server.engine.multivector import MultiVectorParams
from embedrank.server.engine.requests import EncodeParams, RerankParams, ScoreMode
from embedrank.server.engine.served import ServedModel
from embedrank.server.engine.sparse import SparseParams
from embedrank.server.engine.tokens import TokenizeParams
from embedrank.model.tokenize import Truncate
from embedrank.server.http import tei_bodies as b
from embedrank.server.http.schemas import _bool, _str
from embedrank.server.http.serving import RequestState, Route, Serving

_OWN: tuple[Route, ...] = (
    ("POST", "/embed", "embed"),
    ("POST", "/embed_all", "embed_all"),
    ("POST", "/embed_sparse", "embed_sparse"),
    ("POST", "/rerank", "rerank"),
    ("POST", "/predict", "predict"),
    ("POST", "/similarity", "similarity"),
    ("POST", "/tokenize", "tokenize"),
    ("POST", "/decode", "decode"),
    ("GET", "/info", "info"),
    ("POST", "/", "root"),
    ("POST", "/invocations", "root"),
)
PREFIX = "/models/{name}"
ROUTES: tuple[Route, ...] = (
    *_OWN,
    *((m, PREFIX + ("" if p == "/" else p), n) for m, p, n in _OWN),
    *((m, PREFIX + "/", n) for m, p, n in _OWN if p == "/"),
)
# The kinds each route serves, as the engine's accessors do (a hybrid model answers with one of its outputs).
_EMBED = (ModelKind.EMBEDDING, ModelKind.HYBRID)
_SPARSE = (ModelKind.SPARSE, ModelKind.HYBRID)
_ALL = (ModelKind.MULTI_VECTOR, ModelKind.HYBRID)
_RERANK = (ModelKind.RERANK, ModelKind.MULTI_VECTOR, ModelKind.HYBRID)
# The TEI route that serves each kind (messages name it).
ROUTE_FOR_KIND = {
    ModelKind.EMBEDDING: "/embed", ModelKind.RERANK: "/rerank", ModelKind.SPARSE: "/embed_sparse",
    ModelKind.MULTI_VECTOR: "/embed_all", ModelKind.CLASSIFICATION: "/predict", ModelKind.HYBRID: "/embed",
}
_POOLING = {ModelKind.SPARSE: "splade", ModelKind.MULTI_VECTOR: "none"}

Body = dict[str, Any]
Step = Callable[[web.Request, Body, str], Awaitable[Any]]


class Handlers:
    # The doors' refusals (token, media type, size, admission before the body) answer in TEI's shape too.
    ERROR_SHAPE = staticmethod(b.tei_error)

    def __init__(self, serving: Serving) -> None:
        self._s = serving
        self._steps: dict[ModelKind, Step] = {
            ModelKind.EMBEDDING: self._embed, ModelKind.RERANK: self._rerank, ModelKind.SPARSE: self._embed_sparse,
            ModelKind.MULTI_VECTOR: self._embed_all, ModelKind.CLASSIFICATION: self._predict,
            ModelKind.HYBRID: self._embed,  # its dense output (POST /v1/hybrid has all three)
        }

    # -- which model ---------------------------------------------------------------------------

    def _model(self, request: web.Request, body: Body, route: str, *kinds: ModelKind) -> ServedModel:
        sent = _str(body, "model")  # checked even when the path names the model (found by Schemathesis)
        name = request.match_info.get("name", "") or sent
        engine = self._s.engine
        if name:
            model = engine.get(name)
            if kinds and model.manifest.kind not in kinds:
                kind = model.manifest.kind
                raise FailedPrecondition(
                    f"model {name!r} is of kind {kind.value}; {route} serves "
                    f"{' or '.join(k.value for k in kinds)} models: call {ROUTE_FOR_KIND.get(kind, '/embed')} for it"
                )
            return model
        try:
            return engine.resolve("", kinds[0], *kinds[1:]) if kinds else engine.any_model("")
        except InvalidArgument as exc:
            raise InvalidArgument(exc.field, f"{exc.description}; or call /models/<name>{route}") from None

    # -- routes: each reads the body, picks the model and calls the engine ---------------------

    async def _serve(self, request: web.Request, route: str, step: Step) -> web.Response:
        async def work(req: web.Request, rid: str, _state: RequestState) -> Any:
            return await step(req, await self._s.body(req), rid)

        return await self._s.serve(request, f"HTTP {route}", work, shape=b.tei_error)

    async def _embed(self, request: web.Request, body: Body, rid: str) -> Any:
        texts, scalar = b.texts(body)
        params = EncodeParams(
            texts=texts, prompt_name=b.prompt_name(body), normalize=_bool(body, "normalize", True),
            dimensions=b.dimensions(body), truncate=b.truncation(body),
        )
        model = self._s.engine.embedding(self._model(request, body, "/embed", *_EMBED).name)
        with b.fields(b.inputs_field(scalar)):
            result = await model.encode(params, deadline=None, request_id=rid)
        return np.ascontiguousarray(result.embeddings)

    async def _embed_all(self, request: web.Request, body: Body, rid: str) -> Any:
        texts, scalar = b.texts(body)
        params = MultiVectorParams(texts=texts, prompt_name=b.prompt_name(body), truncate=b.truncation(body))
        model = self._s.engine.multi_vector(self._model(request, body, "/embed_all", *_ALL).name)
        with b.fields(b.inputs_field(scalar)):
            result = await model.encode_multi_vector(params, deadline=None, request_id=rid)
        return [np.ascontiguousarray(v) for v in result.vectors]

    async def _embed_sparse(self, request: web.Request, body: Body, rid: str) -> Any:
        texts, scalar = b.texts(body)
        params = SparseParams(texts=texts, prompt_name=b.prompt_name(body), truncate=b.truncation(body))
        model = self._s.engine.sparse(self._model(request, body, "/embed_sparse", *_SPARSE).name)
        with b.fields(b.inputs_field(scalar)):
            result = await model.encode_sparse(params, deadline=None, request_id=rid)
        out = []
        for v in result.vectors:
            order = np.argsort(v.indices, kind="stable")  # TEI lists a text's weights by index
            out.append([{"index": int(i), "value": float(x)} for i, x in zip(v.indices[order], v.values[order])])
        return out

    async def _rerank(self, request: web.Request, body: Body, rid: str) -> Any:
        params = RerankParams(
            query=b.required_str(body, "query"), documents=b.string_list(body, "texts"),
            return_documents=bool(_bool(body, "return_text", False)),
            scores=ScoreMode.RAW if _bool(body, "raw_scores", False) else ScoreMode.ACTIVATED,
            truncate=b.truncation(body),
        )
        model = self._s.engine.reranker(self._model(request, body, "/rerank", *_RERANK).name)
        with b.fields(lambda head, i, rest: ("texts" if head == "documents" else head)
                      + ("" if i is None else f"[{i}]") + rest):
            result = await model.rerank(params, deadline=None, request_id=rid)
        ranks = []
        for r in result.results:
            rank: dict[str, Any] = {"index": r.index, "score": r.score}
            if r.document is not None:
                rank["text"] = r.document
            ranks.append(rank)
        return ranks

    async def _predict(self, request: web.Request, body: Body, rid: str) -> Any:
        inputs = b.predict_inputs(body)
        scores = ScoreMode.RAW if _bool(body, "raw_scores", False) else ScoreMode.ACTIVATED
        truncate = b.truncation(body)
        model = self._s.engine.classifier(self._model(request, body, "/predict", ModelKind.CLASSIFICATION).name)
        calls: list[Awaitable[ClassifyResult]] = []
        if inputs.texts:
            calls.append(model.classify(ClassifyParams(texts=[t for _, t in inputs.texts], scores=scores,
                                                       truncate=truncate), deadline=None, request_id=rid))
        if inputs.pairs:
            calls.append(model.classify(ClassifyParams(pairs=[p for _, p in inputs.pairs], scores=scores,
                                                       truncate=truncate), deadline=None, request_id=rid))
        with b.fields(b.predict_field(inputs)):
            results = await asyncio.gather(*calls)
        positions = [i for i, _ in inputs.texts] + [i for i, _ in inputs.pairs]
        answers = [c for r in results for c in r.results]
        out: list[Any] = [None] * len(positions)
        for position, c in zip(positions, answers, strict=True):
            out[position] = [{"label": s.label, "score": s.score} for s in c.labels]
        return out[0] if inputs.single else out

    async def _similarity(self, request: web.Request, body: Body, rid: str) -> Any:
        raw = body.get("inputs")
        if not isinstance(raw, dict):
            raise InvalidArgument("inputs", "must be an object {source_sentence, sentences}")
        source = b.required_str(raw, "source_sentence", "inputs.")
        sentences = b.string_list({"inputs.sentences": raw.get("sentences")}, "inputs.sentences")
        parameters = body.get("parameters")
        if parameters is None:
            parameters = {}
        elif not isinstance(parameters, dict):
            raise InvalidArgument("parameters", "must be an object {prompt_name, truncate, truncation_direction}")
        if not sentences:
            raise EmptyInput("inputs.sentences", "is empty; send at least one")
        params = EncodeParams(texts=[source, *sentences], prompt_name=b.prompt_name(parameters, "parameters."),
                              normalize=True, truncate=b.truncation(parameters, "parameters."))
        model = self._s.engine.embedding(self._model(request, body, "/similarity", *_EMBED).name)
        with b.fields(lambda head, i, rest: "inputs.source_sentence" if i == 0
                      else "inputs.sentences" + ("" if i is None else f"[{i - 1}]")):
            result = await model.encode(params, deadline=None, request_id=rid)
        vectors = result.embeddings
        return [float(x) for x in vectors[1:] @ vectors[0]]

    async def _tokenize(self, request: web.Request, body: Body, rid: str) -> Any:
        texts, scalar = b.texts(body)
        add_special = bool(_bool(body, "add_special_tokens", True))
        model = self._model(request, body, "/tokenize")
        params = TokenizeParams(texts=texts, prompt_name=b.prompt_name(body), truncate=Truncate.NONE)
        with b.fields(b.inputs_field(scalar)):
            result = await model.tokenize(params, request_id=rid)
        return [b.tei_tokens(t, text, add_special_tokens=add_special) for t, text in zip(result.inputs, texts)]

    async def _decode(self, request: web.Request, body: Body, rid: str) -> Any:
        raw = body.get("ids")
        if not isinstance(raw, list):
            raise InvalidArgument("ids", "is required: a list of token ids, or a list of such lists")
        single = not raw or not isinstance(raw[0], list)
        batch = [raw] if single else raw
        if not batch or not batch[0]:
            raise EmptyInput("ids", "is empty; send at least one token id")
        skip = bool(_bool(body, "skip_special_tokens", True))
        model = self._model(request, body, "/decode")
        out = []
        for i, ids in enumerate(batch):
            where = "ids" if single else f"ids[{i}]"
            if not isinstance(ids, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                                    for x in ids):
                raise InvalidArgument(where, "must be a list of token ids (integers >= 0)")
            with b.fields(b.under(where)):
                out.append((await model.decode(ids, skip_special_tokens=skip, request_id=rid)).text)
        return out

    async def _root(self, request: web.Request, body: Body, rid: str) -> Any:
        """TEI's POST / : the model's kind decides the route; a similarity body goes to /similarity."""
        inputs = body.get("inputs")
        if isinstance(inputs, dict) and "source_sentence" in inputs:
            return await self._similarity(request, body, rid)
        model = self._model(request, body, "/")
        return await self._steps[model.manifest.kind](request, body, rid)

    def _info(self, request: web.Request) -> dict[str, Any]:
        model = self._model(request, {}, "/info")
        m = model.manifest
        limits = self._s.engine.settings.limits
        labels: tuple[str, ...] = getattr(m.spec, "labels", ()) or ("LABEL_0",)
        classes = {"id2label": {str(i): label for i, label in enumerate(labels)},
                   "label2id": {label: i for i, label in enumerate(labels)}}
        if m.kind is ModelKind.CLASSIFICATION:
            model_type: dict[str, Any] = {"classifier": classes}
        elif m.kind is ModelKind.RERANK:
            model_type = {"reranker": classes}
        else:
            pooling = _POOLING.get(m.kind) or ",".join(getattr(m.spec, "pooling", ())) or "mean"
            model_type = {"embedding": {"pooling": pooling}}
        return {
            "model_id": m.name, "model_sha": None, "model_dtype": tei_dtype(m.graph.precision), "served_model_name": m.name,
            "model_type": model_type, "max_concurrent_requests": self._s.engine.settings.max_inflight_inputs,
            "max_input_length": m.tokenizer.max_tokens, "max_batch_tokens": limits.batch.max_batch_tokens,
            "max_batch_requests": limits.batch.max_batch_size or None, "max_client_batch_size": limits.max_inputs,
            "auto_truncate": True, "tokenization_workers": TOKENIZE_THREADS, "version": server_version(), "sha": None,
            "docker_label": None,
            # Ours: the model's kind and version in the repository.
            "kind": m.kind.value, "model_version": m.version,
        }

    # -- the handlers the route table names ----------------------------------------------------

    async def embed(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/embed", self._embed)

    async def embed_all(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/embed_all", self._embed_all)

    async def embed_sparse(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/embed_sparse", self._embed_sparse)

    async def rerank(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/rerank", self._rerank)

    async def predict(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/predict", self._predict)

    async def similarity(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/similarity", self._similarity)

    async def tokenize(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/tokenize", self._tokenize)

    async def decode(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/decode", self._decode)

    async def root(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/invocations" if request.path.endswith("/invocations") else "/", self._root)

    async def info(self, request: web.Request) -> web.Response:
        async def work(req: web.Request, _rid: str, _state: RequestState) -> Any:
            return self._info(req)

        return await self._s.serve(request, "HTTP /info", work, shape=b.tei_error)
