"""Runs an exported graph exactly as the server does: its tokenizer wrapper and runtime (ORT or OpenVINO)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.model.manifest import Graph, RuntimeKind
from embedrank.model.runtime.select import open_runtime
from embedrank.model.runtime.settings import RuntimeSettings


class GraphRunner:
    def __init__(
        self,
        graph: Path,
        tokenizer: Path,
        *,
        max_tokens: int,
        pad_token_id: int,
        inputs: Sequence[str],
        precision: str,
        runtime: RuntimeKind = RuntimeKind.ONNXRUNTIME,
        allow_bf16_without_native: bool = False,
    ) -> None:
        spec = Graph(file=graph.name, inputs=tuple(inputs), outputs=(), precision=precision, runtime=runtime)
        settings = RuntimeSettings(allow_fp16_on_cpu=True, allow_bf16_without_native=allow_bf16_without_native)
        self.folder = graph.parent  # the staged version folder (a kind's own files lie beside the graph)
        self.runtime = open_runtime(graph, spec, pad_token_id=pad_token_id, settings=settings)
        self.tokenizer = TextTokenizer(str(tokenizer), max_tokens=max_tokens, with_type_ids="token_type_ids" in inputs)

    def run(self, inputs: Sequence[str] | Sequence[tuple[str, str]], output: str, *, batch_size: int = 32) -> np.ndarray:
        seqs, _ = self.tokenizer.encode(inputs, truncate=Truncate.END, field="inputs")
        order = np.argsort([s.length for s in seqs], kind="stable")
        rows: list[np.ndarray | None] = [None] * len(seqs)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out = self.runtime.run([seqs[i] for i in idx])[output]
            for j, i in enumerate(idx):
                rows[i] = out[j]
        return np.stack(rows).astype(np.float32)  # type: ignore[arg-type]
