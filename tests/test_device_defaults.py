"""Issue #9's parts that run without a GPU: device-aware defaults and length buckets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedrank.server import config
from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.model.errors import ConfigError
from embedrank.model.manifest import Manifest
from embedrank.model.runtime.onnx import OrtRuntime


def test_cuda_picks_gpu_defaults_unless_set() -> None:
    cpu = config.parse(["--model-repository", "/m"])
    assert (cpu.batch_tokens, cpu.batch_size, cpu.batch_fill, cpu.buckets) == (8192, 128, 0.95, ())
    cuda = config.parse(["--model-repository", "/m", "--device", "cuda"])
    assert (cuda.batch_tokens, cuda.batch_size, cuda.batch_fill) == (65536, 512, 0.0)
    assert cuda.buckets == (16, 32, 64, 128, 256, 512)
    assert (cuda.runtime_threads, cuda.runtime_workers) == (1, 4)
    assert cuda.effective()["gpu_mem_limit_mb"] == "auto"
    mine = config.parse([
        "--model-repository", "/m", "--device", "cuda", "--max-batch-tokens", "4096", "--max-batch-size", "64",
        "--min-batch-fill", "0.5", "--length-buckets", "none", "--gpu-mem-limit-mb", "2048",
    ])
    assert (mine.batch_tokens, mine.batch_size, mine.batch_fill, mine.buckets) == (4096, 64, 0.5, ())
    assert mine.effective()["gpu_mem_limit_mb"] == 2048
    assert config.parse(["--model-repository", "/m", "--length-buckets", "256, 64,128"]).buckets == (64, 128, 256)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--length-buckets", "32,x"], "--length-buckets: '32,x' is not a comma-separated list"),
        (["--length-buckets", "0,32"], "every bucket must be a positive token count"),
        (["--max-batch-size", "-3"], "--max-batch-size must be >= 0"),
        (["--min-batch-fill", "2"], "--min-batch-fill must be within 0..1"),
    ],
)
def test_bad_device_settings_say_what_to_fix(args: list[str], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(["--model-repository", "/m", *args])
    assert words in info.value.message


class _Shapes:
    """Sits in front of the real session and records the width of every batch it runs."""

    def __init__(self, session: object) -> None:
        self.session, self.widths = session, set()

    def run(self, names: object, feed: dict[str, np.ndarray]) -> object:
        self.widths.add(feed["input_ids"].shape[1])
        return self.session.run(names, feed)  # type: ignore[attr-defined]


def test_buckets_give_the_same_vectors_in_few_shapes(repo: Path) -> None:
    from embedrank.exporter import corpus
    from embedrank.model.runtime.settings import Device

    version = repo / "minilm" / "1"
    manifest = Manifest.load(version)
    tok = TextTokenizer(str(version / "tokenizer.json"), max_tokens=manifest.tokenizer.max_tokens, with_type_ids=True)
    texts = corpus.sentences(64) + corpus.paragraphs(16)
    seqs, _ = tok.encode(texts, truncate=Truncate.END, field="texts")

    def runtime(buckets: tuple[int, ...]) -> OrtRuntime:
        return OrtRuntime(version / manifest.graph.file, device=Device.CPU, threads=2,
                          pad_token_id=manifest.tokenizer.pad_token_id, precision="fp32", buckets=buckets)

    exact, bucketed = runtime(()), runtime((32, 64, 128, 256))
    bucketed._session = _Shapes(bucketed._session)  # type: ignore[assignment]
    bucketed._small = _Shapes(bucketed._small)  # type: ignore[assignment]
    for start in range(0, len(seqs), 8):
        batch = seqs[start : start + 8]
        want = exact.run(batch)["sentence_embedding"]
        got = bucketed.run(batch)["sentence_embedding"]
        cos = (want * got).sum(1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1))
        assert cos.min() >= 0.99999, cos.min()
    widths = bucketed._session.widths | bucketed._small.widths  # type: ignore[attr-defined]
    assert widths <= {32, 64, 128, 256}, widths
    bucketed.warm(max_rows=8)  # every bucket once, one row and a full batch
    assert bucketed._session.widths | bucketed._small.widths == {32, 64, 128, 256}  # type: ignore[attr-defined]
