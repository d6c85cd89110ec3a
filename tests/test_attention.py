"""Packed batches (rows end to end, no padding): the same scores as padded ones (1e-6, float32) with and without a
shared prefix, through the row-by-row reference kernel that stands in for the GPU's variable-length one here; and
the model stays what it was for every other call."""

from __future__ import annotations

import random

import pytest

from qrr import attention
from qrr.engine import plan_packed
from tests.test_prefix import DOCS
from tests.test_reranker import PAIRS, close

PAIRS_OF_GROUPS = [(q, d, i) for q in ("q one", "capital of China?") for d in DOCS for i in (None, "Judge it")]


def test_plan_packed_keeps_each_batch_within_its_tokens_and_rows():
    lengths = [5, 40, 7, 7, 30, 2, 90]
    batches = plan_packed(lengths, batch_tokens=50)
    # longest first; a row over the budget alone
    assert batches == [[6], [1], [4, 2, 3, 0], [5]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert plan_packed(lengths, batch_tokens=1000, max_rows=3) == [[6, 1, 4], [2, 3, 0], [5]]
    assert plan_packed([], batch_tokens=10) == []


def test_no_fast_kernel_on_a_cpu():
    import torch

    assert not attention.kernel_available(torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("budget", [64, 700, 32768])
def test_packed_scores_equal_padded_ones(tiny, share_prefix, budget):
    padded = tiny(share_prefix=share_prefix, batch_tokens=budget)
    packed = tiny(share_prefix=share_prefix, batch_tokens=budget)
    assert not packed.engine.packed  # never by default on a CPU
    packed.engine.use_packed(True)
    pairs = PAIRS_OF_GROUPS + list(PAIRS)
    random.Random(budget).shuffle(pairs)
    want = padded.score(pairs)
    got = packed.score(pairs)
    close(got, want, 1e-6)
    if share_prefix:  # the prefix ran once per group: fewer tokens than the prompts hold
        assert got.stats.computed_tokens < got.stats.tokens
    packed.engine.use_packed(False)  # and back: padded again, the same scores
    close(packed.score(pairs), want, 1e-6)


def test_a_packed_model_answers_other_calls_as_before(tiny_model, tokenizer):
    """The engine shares the caller's modules: after packing, the model's own forward pass (the recipe, say) gives
    the same logits as before, masks and all."""
    import torch
    from transformers import AutoModelForCausalLM

    from qrr import Reranker
    from qrr.bench import recipe_scores

    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reranker = Reranker.from_model(causal, tokenizer, device="cpu")
    prompts = [e.ids for e in reranker.prompter.encode([(q, d, None) for q, d in PAIRS])]
    before = recipe_scores(causal, tokenizer, prompts, torch.device("cpu"))
    reranker.engine.use_packed(True)
    assert causal.config._attn_implementation == "qrr_packed_sdpa"
    assert recipe_scores(causal, tokenizer, prompts, torch.device("cpu")) == before
    close(reranker.score([(q, d) for q, d in PAIRS]), before, 1e-6)
