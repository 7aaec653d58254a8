"""The mask switch the exporter traces with (exporter/embedrank/exporter/tracing.py), on transformers' own mask builder.

transformers builds a mask with torch.vmap whenever a model adds an overlay (or_mask_function /
and_mask_function): Gemma3's bidirectional attention is one. TorchScript cannot trace vmap; within
``broadcast_masks`` it traces, and the traced mask follows new shapes and padding as vmap's does.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

from embedrank.exporter.tracing import MaskMismatch, broadcast_masks, check_same_outputs

masking_utils = pytest.importorskip("transformers.masking_utils")


def _config() -> Any:
    from transformers import Qwen3Config

    config = Qwen3Config(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=8, intermediate_size=32)
    config._attn_implementation = "eager"
    return config


def _window(b: Any, h: Any, q: Any, kv: Any) -> Any:  # element-wise: a bidirectional window of 3
    return (q - kv).abs() < 3


class Masker(torch.nn.Module):
    def __init__(self, overlay: Any) -> None:
        super().__init__()
        self.config, self.overlay = _config(), overlay

    def forward(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return masking_utils.create_causal_mask(
            config=self.config, inputs_embeds=embeds, attention_mask=attention_mask, cache=None,
            position_ids=torch.arange(embeds.shape[1]).unsqueeze(0), or_mask_function=self.overlay,
        )


def _inputs(batch: int, length: int, pad_from: int) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[-1, pad_from:] = 0
    return torch.zeros(batch, length, 16), mask


def test_traced_mask_follows_shapes_and_padding_as_vmaps_does() -> None:
    masker = Masker(_window)
    with broadcast_masks() as switched, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes read in Python: followed, as in export
        assert "eager" in switched and "sdpa" in switched
        traced = torch.jit.trace(masker, _inputs(2, 16, 10), check_trace=False)
    for batch, length, pad_from in [(2, 16, 10), (3, 9, 4), (1, 40, 40)]:
        args = _inputs(batch, length, pad_from)
        expected = masker(*args)  # eager, transformers' vmap path
        assert expected.shape == (batch, 1, length, length)
        assert torch.equal(traced(*args), expected)


def test_the_registry_is_restored() -> None:
    before = {key: masking_utils.ALL_MASK_ATTENTION_FUNCTIONS[key] for key in ("eager", "sdpa")}
    with broadcast_masks():
        assert masking_utils.ALL_MASK_ATTENTION_FUNCTIONS["eager"] is not before["eager"]
    assert {key: masking_utils.ALL_MASK_ATTENTION_FUNCTIONS[key] for key in before} == before


def test_a_mask_function_that_is_not_element_wise_is_refused() -> None:
    # Under vmap kv is one index, so kv.max() == kv and the overlay allows everything; broadcast,
    # kv.max() is the last index. The exporter refuses such a model instead of tracing a wrong mask.
    masker = Masker(lambda b, h, q, kv: kv == kv.max())
    with pytest.raises(MaskMismatch, match="not element-wise"):
        check_same_outputs(masker, _inputs(2, 8, 5))
    check_same_outputs(Masker(_window), _inputs(2, 8, 5))
