"""Exporting sparse (SPLADE) models: a SparseEncoder (MLMTransformer + SpladePooling) or, with
``--kind sparse``, a plain ``*ForMaskedLM`` checkpoint (sentence-transformers then adds the pooling:
max, relu). The graph ends in the pooled vocabulary-sized activations, ``sparse_embedding``.

An inference-free SPLADE model (a Router: query route SparseStaticEmbedding, document route
MLMTransformer + SpladePooling) exports its document route as that graph and its query route as
``query_weights.npy`` plus that route's tokenizer settings (model/kinds/sparse.py says why).

Lossy variants (--quantize, O3, OpenVINO int8/bf16) move weights near zero across the relu, so the
exact gate (same non-zero indices) cannot hold; they are gated on what retrieval reads instead: the
cosine of each text's sparse vector to sentence-transformers' (its dot products with other vectors)
and the share of its ten highest-weighted terms that stay among the ten highest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import corpus, package, verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds.base import ExportKind, Loaded, Measured
from embedrank.exporter.options import ExportOptions
from embedrank.model.errors import ConfigError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.sparse import SPARSE as SPARSE_KIND
from embedrank.model.kinds.sparse import SparseSpec, compare, flat_pairs
from embedrank.model.manifest import SelfCheck
from embedrank.model.tokenize import Truncate

QUERY_WEIGHTS = "query_weights.npy"
QUERY_TOKENIZER = "query_tokenizer.json"
# SparseStaticEmbedding truncates at its tokenizer's model_max_length; HF's "no limit" is 1e30.
_NO_LIMIT = 1 << 20

def _st_model_type(path: Path) -> str | None:
    cfg = path / "config_sentence_transformers.json"
    return json.loads(cfg.read_text()).get("model_type") if cfg.is_file() else None


def _module_types(path: Path) -> list[str]:
    modules = path / "modules.json"
    return [str(m.get("type", "")) for m in json.loads(modules.read_text())] if modules.is_file() else []


def reference_rows(source: Any, texts: list[str], route: str = "document") -> np.ndarray:
    """SparseEncoder.encode, dense: one vocabulary-sized row per text (the model's max_active_dims applied),
    without a prompt (the graph is measured on the texts as given); ``route`` for a Router model."""
    task = {"task": route} if _router(source.reference) is not None else {}
    emb = source.reference.encode(texts, prompt="", batch_size=32, convert_to_tensor=True,
                                  convert_to_sparse_tensor=False, show_progress_bar=False, **task)
    return np.asarray(emb.cpu().numpy(), dtype=np.float32)


def _router(model: Any) -> Any:
    first = next(iter(model), None)
    return first if type(first).__name__ == "Router" else None


def _resolve(router: Any, task: str | None) -> str | None:
    """The route sentence-transformers takes for a text with this task (None: encode() without one)."""
    try:
        return str(router._resolve_route(task=task, modality="text"))  # noqa: SLF001 - ST's own routing rule
    except ValueError:
        return None


def _routes(model: Any, path_or_id: str) -> tuple[list[Any], list[Any] | None, str | None]:
    """(document modules, query modules or None, default route: query | document | None)."""
    router = _router(model)
    if router is None:
        return list(model), None, "document"
    if len(model) != 1:
        raise ConfigError(f"{path_or_id}: modules after the Router are not supported")
    query, document = _resolve(router, "query"), _resolve(router, "document")
    if query is None or document is None or query == document:
        raise ConfigError(f"{path_or_id}: the Router must route queries and documents apart "
                          f"(routes {sorted(router.sub_modules)}, query -> {query}, document -> {document})")
    default = _resolve(router, None)
    if default not in (query, document, None):
        raise ConfigError(f"{path_or_id}: the Router's default route {default!r} is neither the query nor the "
                          "document route; only those two are served")
    names = {query: "query", document: "document"}
    return list(router.sub_modules[document]), list(router.sub_modules[query]), names.get(default) if default else None
class SparseExport(ExportKind):
    kind = ModelKind.SPARSE
    pairs = False

    def recognises(self, path: Path) -> bool:
        return _st_model_type(path) == "SparseEncoder" or any("SpladePooling" in t for t in _module_types(path))

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        model = st.SparseEncoder(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.SparseEncoder(path_or_id, device="cpu", **st_kwargs)
        doc, query, default = _routes(model, path_or_id)
        names = [type(m).__name__ for m in doc]
        if len(names) != 2 or names[1] != "SpladePooling" or names[0] not in ("Transformer", "MLMTransformer"):
            raise ConfigError(f"{path_or_id}: modules {names} are not supported (Transformer + SpladePooling are)")
        transformer, pooling = doc
        if getattr(transformer, "transformer_task", "fill-mask") != "fill-mask":
            raise ConfigError(f"{path_or_id}: the Transformer must be a fill-mask (masked LM) model for SPLADE")
        hf = transformer.auto_model
        info: dict[str, Any] = {
            "dimensions": int(hf.config.vocab_size),
            "pooling": str(pooling.pooling_strategy),
            "activation": str(pooling.activation_function),
            "max_active_dims": model.max_active_dims,
            "prompts": {k: v for k, v in (model.prompts or {}).items() if v},
            "default_prompt_name": model.default_prompt_name,
            "similarity_fn": str(model.similarity_fn_name or "dot"),
        }
        if query is not None:
            info["router"] = self._query_route(query, transformer.tokenizer, info["dimensions"], default, path_or_id)
        tokenizer = transformer.tokenizer
        max_tokens = int(transformer.max_seq_length or tokenizer.model_max_length)
        return Loaded(model, reference, hf, tokenizer, max_tokens, info)

    @staticmethod
    def _query_route(query: list[Any], doc_tokenizer: Any, dimensions: int, default: str | None,
                     path_or_id: str) -> dict[str, Any]:
        """The manifest's sparse.router: an inference-free (SparseStaticEmbedding) query route only."""
        names = [type(m).__name__ for m in query]
        if names != ["SparseStaticEmbedding"]:
            raise ConfigError(f"{path_or_id}: the query route {names} is not served; only an inference-free query "
                              "route (one SparseStaticEmbedding) is")
        static = query[0]
        if int(static.weight.shape[0]) != dimensions:
            raise ConfigError(f"{path_or_id}: the query route has {int(static.weight.shape[0])} weights, the "
                              f"document route's vocabulary {dimensions}; they must be the same")
        tok = static.tokenizer
        same = package.tokenizer_json(tok) == package.tokenizer_json(doc_tokenizer)
        return {
            "query": {
                "type": "static", "weights": QUERY_WEIGHTS,
                # SparseStaticEmbedding.preprocess: truncation=True (at model_max_length), add_special_tokens=False
                "tokenizer": {"file": "tokenizer.json" if same else QUERY_TOKENIZER,
                              "max_tokens": int(min(tok.model_max_length, _NO_LIMIT)), "add_special_tokens": False},
            },
            "document": "graph",
            "default_route": default,
        }

    def write_files(self, source: Any, folder: Path) -> None:
        router = source.info.get("router")
        if router is None:
            return
        _, query, _ = _routes(source.reference, source.path)
        assert query is not None
        static = query[0]
        weights = static.weight.detach().to("cpu").float().numpy().astype(np.float32)
        np.save(folder / router["query"]["weights"], weights, allow_pickle=False)
        if router["query"]["tokenizer"]["file"] != "tokenizer.json":
            package.write_tokenizer(static.tokenizer, folder / router["query"]["tokenizer"]["file"])

    def _spec(self, source: Any, folder: Path) -> SparseSpec:
        """The manifest section as the server reads and loads it (query weights and tokenizer from ``folder``)."""
        spec = SPARSE_KIND.parse(Reader({"sparse": dict(source.info)}, "export"), outputs=[SPARSE_KIND.output],
                                 where="export")
        loaded: SparseSpec = SPARSE_KIND.attach(spec, folder)
        return loaded

    def _query_rows(self, source: Any, folder: Path, texts: list[str]) -> list[np.ndarray]:
        """The query route as the server runs it: its tokenizer, then the static weights."""
        spec = self._spec(source, folder)
        assert spec.query is not None
        _, tokenizer = spec.query.loaded()
        seqs, _ = tokenizer.encode(texts, truncate=Truncate.END, field="texts")
        return [flat_pairs(spec.query.row(seq), spec.max_active_dims) for seq in seqs]

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        (transformer, pooling), _, _ = _routes(model, "model")
        hf = transformer.auto_model
        use_max = pooling.pooling_strategy == "max"
        twice = pooling.activation_function == "log1p_relu"

        class Splade(torch.nn.Module):  # type: ignore[misc, name-defined]
            """SpladePooling.forward without its chunk loop (one pass; the same arithmetic)."""

            def __init__(self) -> None:
                super().__init__()
                self.model = hf

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    kwargs["token_type_ids"] = token_type_ids
                logits = self.model(**kwargs).logits
                x = torch.log1p(torch.relu(logits * attention_mask.unsqueeze(-1).to(logits.dtype)))
                if twice:
                    x = torch.log1p(x)
                return x.amax(dim=1) if use_max else x.sum(dim=1)

        return Splade().eval(), ["sparse_embedding"]

    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        if not opts.lossy:
            return {"min_index_agreement": 1.0, "max_rel_diff": 1e-4}
        # Mean over the texts, and a floor for the worst text (no one text's vector may break). The tiny
        # random test SPLADE (flat logits: which of its near-equal weights make the max_active_dims cut is
        # what int8 noise changes) measures mean cosine 0.984, min 0.952, top-10 recall 0.96 mean, 0.8 min
        # with --quantize avx2 on 200 texts; --min-cosine raises the mean-cosine floor.
        floor = opts.min_cosine if opts.min_cosine is not None else 0.98
        return {"min_mean_cosine": floor, "min_cosine": min(floor, 0.9),
                "min_mean_topk_recall": 0.9, "min_topk_recall": 0.6}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        bad = []
        for part in ("parity", "query_parity"):
            figures = report.get(part)
            if figures is None:
                continue
            label = "parity" if part == "parity" else "query route parity"
            # The query route is a lookup of stored fp32 weights: exact in every variant.
            exact = limits if part == "parity" else {"min_index_agreement": 1.0, "max_rel_diff": 1e-4}
            if "min_index_agreement" in exact and figures["index_agreement"] < exact["min_index_agreement"]:
                bad.append(f"{label}: same non-zero indices in {figures['index_agreement']:.3f} of the texts "
                           f"< {exact['min_index_agreement']}")
            if "max_rel_diff" in exact and figures["max_rel_diff"] > exact["max_rel_diff"]:
                bad.append(f"{label} max relative value diff {figures['max_rel_diff']:.2e} > {exact['max_rel_diff']}")
        lossy = report.get("fidelity") or report["parity"]
        where = "fidelity" if report.get("fidelity") else "parity"
        top = int(lossy["topk"])
        for key, figure, label in (
            ("min_mean_cosine", "mean_cosine", "mean cosine"), ("min_cosine", "min_cosine", "min cosine"),
            ("min_mean_topk_recall", "topk_recall", f"mean top-{top} term recall"),
            ("min_topk_recall", "min_topk_recall", f"min top-{top} term recall"),
        ):
            if key in limits and lossy[figure] < limits[key]:
                bad.append(f"{where} {label} {lossy[figure]:.4f} < {limits[key]}")
        return bad

    def _rows(self, source: Any, dense: np.ndarray) -> list[np.ndarray]:
        return [flat_pairs(row, source.info["max_active_dims"]) for row in dense]

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        items = corpus.parity_texts()
        ref = self._rows(source, reference_rows(source, items))
        got = self._rows(source, runner.run(items, "sparse_embedding"))
        parity: dict[str, Any] = {"items": len(items), **compare(ref, got),
                                  "mean_non_zero": float(np.mean([r[0] for r in ref]))}
        report: dict[str, Any] = {"parity": parity}
        if fidelity:
            ref = self._rows(source, reference_rows(source, texts))
            got = self._rows(source, runner.run(texts, "sparse_embedding"))
            report["fidelity"] = {"items": len(texts), **compare(ref, got),
                                  "mean_non_zero": float(np.mean([r[0] for r in ref]))}
        if "router" in source.info:
            qref = self._rows(source, reference_rows(source, items, "query"))
            qgot = self._query_rows(source, runner.folder, items)
            report["query_parity"] = {"items": len(items), **compare(qref, qgot),
                                      "mean_non_zero": float(np.mean([r[0] for r in qref]))}
        return Measured(report, dict(source.info))

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(texts)

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        texts = verify.self_check_texts()
        rows = self._rows(source, reference_rows(source, texts))
        queries: list[str] = []
        if "router" in source.info:  # a short query, one past any max length, non-ASCII: the query route first
            queries = [texts[0], texts[-1], "Wie funktioniert der Import?"]
            rows = self._rows(source, reference_rows(source, queries, "query")) + rows
        return SelfCheck(tuple(queries + texts), tuple(tuple(float(v) for v in r) for r in rows), gate,
                         queries=len(queries))


SPARSE = SparseExport()
