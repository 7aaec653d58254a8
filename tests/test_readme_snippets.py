"""The README's Python blocks run as pasted, in order, against a live server holding what they name
(`minilm` from `make demo`, `demo-reranker` from the retrieve-then-rerank example), from the
checkout's root, with the server's addresses in place of localhost:50051 (gRPC) and localhost:8080
(--http-port: the OpenAI, Cohere and LangChain blocks)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(readme: Path) -> list[str]:
    return FENCE.findall(readme.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo_server(repo: Path, workdir: Path, kinds_repo: Path, bgem3_export: Path) -> Iterator[ServerProcess]:
    demo = workdir / "readme-demo"
    shutil.copytree(repo / "minilm", demo / "minilm")
    shutil.copytree(repo / "minilm-rerank", demo / "demo-reranker")
    # The sparse and multi-vector block's "splade" and "colbert": the tiny ones of tests/checkpoints.py.
    shutil.copytree(kinds_repo / "tiny-sparse", demo / "splade")
    shutil.copytree(kinds_repo / "tiny-colbert", demo / "colbert")
    shutil.copytree(bgem3_export, demo / "bge-m3")  # the hybrid block's: the tiny one in BGE-M3's layout
    proc = ServerProcess(demo, "--http-port", "0")
    yield proc
    assert proc.stop() == 0, proc.output()[-3000:]


def test_readme_python_blocks_run_as_pasted(demo_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 6
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    http = re.search(r"HTTP listening on http://([\d.]+:\d+)", demo_server.output())
    assert http is not None, demo_server.output()[-2000:]
    for i, block in enumerate(blocks):
        code = block.replace("localhost:50051", demo_server.target).replace("localhost:8080", http.group(1))
        exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102
    # What the blocks promise, checked on what they made.
    assert namespace["vectors"].shape == (2, 384)  # type: ignore[attr-defined]
    assert namespace["corpus"].shape == (1000, 384)  # type: ignore[attr-defined]
    assert len(namespace["hits"]) == 2  # type: ignore[arg-type]  # the long-texts block reranks both documents
    assert namespace["matrix"].shape == (1, 30522)  # type: ignore[attr-defined]
    assert namespace["vecs"][0].indices.size == 64  # type: ignore[index]
    assert namespace["q"][0].shape == (12, 16)  # type: ignore[index]  # the tiny ColBERT expands queries to 12
    both = namespace["both"]
    assert both.dense.shape[0] == 2 and len(both.sparse) == 2 and len(both.multi_vector) == 2  # type: ignore[attr-defined]
    assert len(namespace["hybrid_hits"]) == 2 and namespace["hybrid_hits"][0].hybrid_scores  # type: ignore[index]
    assert len(namespace["ranked"]) == 2  # type: ignore[arg-type]
    namespace["client"].close()  # type: ignore[attr-defined]
    assert os.getcwd() == str(ROOT)
