"""sentence-transformers' modules after the transformer (Pooling, Dense, Normalize), twice: appended to
a checkpoint's ONNX graph of its transformer with the `onnx` library (what `embedrank import` serves),
and in numpy over that graph's own output (the reference the import is verified against)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import graphfile
from embedrank.exporter.checkpoint import Checkpoint
from embedrank.exporter.graphfile import ExternalData
from embedrank.model.runtime.base import TokenSeq, pad_batch
from embedrank.model.tokenize import TextTokenizer, Truncate

HIDDEN = "last_hidden_state"  # optimum's (and sentence-transformers' ONNX backend's) name for the tokens' output


# --- numpy ------------------------------------------------------------------------------------


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "tanh":
        return np.asarray(np.tanh(x))
    if name == "relu":
        return np.asarray(np.maximum(x, 0))
    if name == "sigmoid":
        return np.asarray(1.0 / (1.0 + np.exp(-x)))
    return x


def pool(ckpt: Checkpoint, hidden: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sentence_embedding, pooled_embedding: before Normalize) as sentence-transformers computes them."""
    hidden = hidden.astype(np.float32)
    m3 = mask.astype(np.float32)[:, :, None]
    parts = []
    for mode in ckpt.pooling:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(np.where(m3 == 0, -np.inf, hidden).max(axis=1))
        elif mode == "lasttoken":
            last = mask.astype(np.int64).sum(axis=1) - 1
            parts.append(hidden[np.arange(hidden.shape[0]), last])
        else:
            total, count = (hidden * m3).sum(axis=1), np.maximum(m3.sum(axis=1), 1e-9)
            parts.append(total / (count if mode == "mean" else np.sqrt(count)))
    x = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    for dense in ckpt.dense:
        x = _activate(x @ dense.weight.T + (dense.bias if dense.bias is not None else 0), dense.activation)
    pooled = x.astype(np.float32)
    if not ckpt.normalize:
        return pooled, pooled
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), pooled


class Reference:
    """The checkpoint's own (fp32) ONNX graph in ONNX Runtime, then the modules in numpy: stands in
    for sentence-transformers in the export's verify step (``encode`` / ``logits``)."""

    def __init__(self, ckpt: Checkpoint) -> None:
        import onnxruntime as ort

        self.ckpt = ckpt
        self.session = ort.InferenceSession(str(ckpt.reference_graph), providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = TextTokenizer(str(ckpt.tokenizer_file), max_tokens=ckpt.max_tokens,
                                       with_type_ids="token_type_ids" in self.inputs)

    def _batches(self, items: Sequence[Any], batch_size: int = 32) -> Any:
        seqs, _ = self.tokenizer.encode(items, truncate=Truncate.END, field="inputs")
        order = np.argsort([s.length for s in seqs], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch: list[TokenSeq] = [seqs[i] for i in idx]
            feed = pad_batch(batch, self.ckpt.pad_token_id, with_type_ids="token_type_ids" in self.inputs)
            yield idx, {k: v for k, v in feed.items() if k in self.inputs}

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        rows = np.zeros((len(texts), int(self.ckpt.info["dimensions"])), dtype=np.float32)
        output = HIDDEN if HIDDEN in [o.name for o in self.session.get_outputs()] else self.session.get_outputs()[0].name
        for idx, feed in self._batches(texts):
            hidden = self.session.run([output], feed)[0]
            rows[idx] = pool(self.ckpt, hidden, feed["attention_mask"])[0]
        return rows

    def raw_logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        rows: list[np.ndarray] = [np.zeros(0)] * len(pairs)
        for idx, feed in self._batches(pairs):
            out = self.session.run(["logits"], feed)[0]
            for j, i in enumerate(idx):
                rows[i] = out[j]
        return np.stack(rows).astype(np.float32)


# --- ONNX -------------------------------------------------------------------------------------


def append(ckpt: Checkpoint, src: Path, dst: Path, *, external_data: ExternalData = ExternalData.AUTO) -> list[str]:
    """Write ``src`` (the transformer, its external data read from beside it) with the modules appended
    as ``dst`` (model.onnx in a folder of its own, with model.onnx.data past 2 GiB or when
    ``external_data`` is always); returns the outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    external = graphfile.wants_external(graphfile.graph_bytes(src), external_data)
    model = onnx.load(str(src))
    graph = model.graph
    outputs = [o.name for o in graph.output]
    if ckpt.info.get("num_labels") is not None:  # a cross-encoder: its logits are the output
        if "logits" not in outputs:
            raise _bad(ckpt, f"outputs {outputs}, no logits")
        _keep_outputs(graph, ["logits"])
        graphfile.save(model, dst, external=external)
        return ["logits"]
    hidden = HIDDEN if HIDDEN in outputs else outputs[0]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise _bad(ckpt, f"opset {opset}; import needs 13 or newer")
    nodes: list[Any] = []
    inits: list[Any] = []
    n = 0

    def const(value: np.ndarray) -> str:
        nonlocal n
        n += 1
        name = f"st_const_{n}"
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        nonlocal n
        n += 1
        out = f"st_{op.lower()}_{n}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def reduce(op: str, x: str, axis: int, keep: int) -> str:
        if op == "ReduceSum" or opset >= 18:
            return node(op, [x, const(np.array([axis], dtype=np.int64))], keepdims=keep)
        return node(op, [x], axes=[axis], keepdims=keep)

    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m3 = node("Unsqueeze", [mask, const(np.array([2], dtype=np.int64))])
    parts = []
    for mode in ckpt.pooling:
        if mode == "cls":
            parts.append(node("Gather", [hidden, const(np.array(0, dtype=np.int64))], axis=1))
        elif mode == "max":
            empty = node("Equal", [m3, const(np.array(0, dtype=np.float32))])
            parts.append(reduce("ReduceMax", node("Where", [empty, const(np.array(-np.inf, dtype=np.float32)), hidden]), 1, 0))
        elif mode == "lasttoken":
            count = reduce("ReduceSum", node("Cast", ["attention_mask"], to=TensorProto.INT64), 1, 1)
            last = node("Sub", [count, const(np.array(1, dtype=np.int64))])
            parts.append(node("GatherND", [hidden, last], batch_dims=1))
        else:
            total = reduce("ReduceSum", node("Mul", [hidden, m3]), 1, 0)
            count = node("Max", [reduce("ReduceSum", m3, 1, 0), const(np.array(1e-9, dtype=np.float32))])
            parts.append(node("Div", [total, count if mode == "mean" else node("Sqrt", [count])]))
    x = node("Concat", parts, axis=-1) if len(parts) > 1 else parts[0]
    for dense in ckpt.dense:
        x = node("MatMul", [x, const(np.ascontiguousarray(dense.weight.T))])
        if dense.bias is not None:
            x = node("Add", [x, const(dense.bias)])
        if dense.activation != "identity":
            x = node({"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}[dense.activation], [x])
    dims = int(ckpt.info["dimensions"])
    names = ["sentence_embedding"]
    if ckpt.normalize:
        norm = node("Sqrt", [reduce("ReduceSum", node("Mul", [x, x]), 1, 1)])
        nodes.append(helper.make_node("Identity", [x], ["pooled_embedding"], name="st_pooled_embedding"))
        x = node("Div", [x, node("Max", [norm, const(np.array(1e-12, dtype=np.float32))])])
        names.append("pooled_embedding")
    nodes.append(helper.make_node("Identity", [x], ["sentence_embedding"], name="st_sentence_embedding"))
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    _keep_outputs(graph, [])
    for name in names:
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", dims]))
    graphfile.save(model, dst, external=external)
    graphfile.check(dst)
    return names


def _keep_outputs(graph: Any, keep: list[str]) -> None:
    for out in [o for o in graph.output if o.name not in keep]:
        graph.output.remove(out)


def _bad(ckpt: Checkpoint, why: str) -> Exception:
    from embedrank.model.errors import ConfigError

    return ConfigError(f"{ckpt.graph}: {why}")
