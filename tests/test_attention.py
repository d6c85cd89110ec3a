"""qrr's attention. Packed batches (rows end to end, no padding; the CPU default): the same scores as padded ones
(1e-6, float32) with and without a shared prefix; the CPU's row-by-row attention equals the reference that stands in
for the GPU's variable-length kernel where it cannot run. Padded rows after a prefix, merged by log-sum-exp on a
CPU: the same scores as without reuse and as the cached prefix with its offset mask. And the model stays what it
was for every other call."""

from __future__ import annotations

import itertools
import random

import pytest

from qrr import attention
from tests.test_prefix import DOCS
from tests.test_reranker import PAIRS, close

PAIRS_OF_GROUPS = [(q, d, i) for q in ("q one", "capital of China?") for d in DOCS for i in (None, "Judge it")]


def test_no_fast_kernel_on_a_cpu():
    import torch

    assert not attention.kernel_available(torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("budget, recipe", [(64, "transformers"), (700, "vllm"), (32768, "transformers")])
def test_packed_scores_equal_padded_ones(tiny, share_prefix, budget, recipe):
    padded = tiny(share_prefix=share_prefix, batch_tokens=budget, recipe=recipe)
    packed = tiny(share_prefix=share_prefix, batch_tokens=budget, recipe=recipe)
    assert packed.engine.packed  # by default on a CPU
    padded.engine.use_packed(False)
    pairs = PAIRS_OF_GROUPS + list(PAIRS)
    random.Random(budget).shuffle(pairs)
    want = padded.score(pairs)
    got = packed.score(pairs)
    close(got, want, 1e-6)
    if share_prefix:  # the prefix ran once per group: fewer tokens than the prompts hold
        assert got.stats.computed_tokens < got.stats.tokens
    packed.engine.use_packed(False)  # and back: padded again, the same scores
    close(packed.score(pairs), want, 1e-6)


def test_a_packed_batch_on_a_cpu_is_rounded_up_by_a_row_of_pads(tiny, monkeypatch):
    """Every new batch shape makes oneDNN build and keep kernels: packed batches on a CPU are whole multiples of
    32 tokens, as padded widths are, the rounding a row of pads whose score is dropped."""
    reranker = tiny(share_prefix=False)
    body = reranker.engine.body
    shapes = []
    forward = body.forward
    monkeypatch.setattr(body, "forward", lambda **kw: shapes.append(tuple(kw["input_ids"].shape)) or forward(**kw))
    pairs = [("q", "a b c"), ("q", "d e f g h i j")]
    got = reranker.score(pairs)
    lengths = [len(e.ids) for e in reranker.prompter.encode([(q, d, None) for q, d in pairs])]
    assert shapes == [(1, 32 * -(-sum(lengths) // 32))] and sum(lengths) % 32
    reranker.engine.use_packed(False)
    close(got, reranker.score(pairs), 1e-6)
    assert len(got) == 2


@pytest.mark.parametrize("gqa", [True, False])
@pytest.mark.parametrize("prefix", [0, 9])
def test_the_cpus_rows_attend_as_the_reference_does(prefix, gqa, monkeypatch):
    """``cpu_rows`` (short rows: one masked call after the prefix; long ones: their causal attention and the
    prefix's, merged) against the row-by-row reference with its masks, on random tensors with grouped key heads (4
    query heads, 2 key/value heads), laid out as the model hands them over (heads transposed out of tokens), with
    the kernel taking grouped heads or not."""
    import types

    import torch

    monkeypatch.setitem(attention._LOOKED_UP, "gqa", gqa)
    monkeypatch.setattr(attention, "MASKED_ROWS", 6)  # rows of 12 and 7 tokens merge, of 5 and 1 take a mask
    masks = []
    make_mask = attention._after_prefix_mask
    monkeypatch.setattr(attention, "_after_prefix_mask", lambda rows, *a: masks.append(rows) or make_mask(rows, *a))
    torch.manual_seed(prefix)
    lengths = [5, 1, 12, 7]
    tokens, layers = sum(lengths), 3
    query = torch.randn(1, tokens, 4, 8).transpose(1, 2)
    key, value = (torch.randn(1, tokens, 2, 8).transpose(1, 2) for _ in range(2))
    cu = torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32)
    stacked = (torch.randn(layers, 1, 2, prefix, 8), torch.randn(layers, 1, 2, prefix, 8)) if prefix else None
    module = types.SimpleNamespace(layer_idx=1)
    got = attention.cpu_rows(module, query, key, value, 0.3, cu, stacked)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    if prefix:  # each row's keys: the prefix's, then its own
        keys, values = (s[1, 0].transpose(0, 1) for s in stacked)
        rows = [(sum(lengths[:i]), n) for i, n in enumerate(lengths)]
        k = torch.cat([torch.cat([keys, k[a : a + n]]) for a, n in rows])
        v = torch.cat([torch.cat([values, v[a : a + n]]) for a, n in rows])
    cu_k = torch.tensor([0, *itertools.accumulate(n + prefix for n in lengths)], dtype=torch.int32)
    want = attention._reference(q, k, v, cu, cu_k, 0.3)
    assert got.shape == (1, tokens, 4, 8)
    assert (got[0] - want).abs().max() <= 1e-6
    assert masks == ([5, 1] if prefix else [])  # a mask grows with its row's square: none for a long row


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
    assert causal.config._attn_implementation == "qrr_sdpa"
    reranker.engine.use_packed(True)
    close(reranker.score([(q, d) for q, d in PAIRS]), before, 1e-6)
    reranker.engine.use_packed(False)
    assert recipe_scores(causal, tokenizer, prompts, torch.device("cpu")) == before
    close(reranker.score([(q, d) for q, d in PAIRS]), before, 1e-6)


@pytest.mark.parametrize("budget, recipe", [(64, "transformers"), (4096, "vllm")])
def test_a_prefix_merged_by_log_sum_exp_scores_as_no_reuse_and_as_a_cached_prefix(tiny, budget, recipe):
    merged = tiny(share_prefix=True, batch_tokens=budget, recipe=recipe)
    merged.engine.use_packed(False)  # padded rows after the prefix, merged
    cached = tiny(share_prefix=True, batch_tokens=budget, recipe=recipe)
    cached.engine.use_packed(False)
    cached.engine.merge_prefix = False  # the path of GPUs without the packed kernel: a cache and an offset mask
    cached.engine.worth_sharing = lambda shared, rest: True
    alone = tiny(share_prefix=False, batch_tokens=budget, recipe=recipe)
    assert merged.engine.merge_prefix and merged.engine.worth_sharing(8, 10_000)  # always, on a CPU
    pairs = PAIRS_OF_GROUPS + [("capital of China?", "Beijing " * n) for n in (1, 50, 300)]
    want = alone.score(pairs)
    got = merged.score(pairs)
    # the bar for reuse, in float32: within 1e-5 of no reuse (measured: about 1e-6, rounding of other shapes)
    close(got, want, 1e-5)
    close(cached.score(pairs), want, 1e-5)
    assert got.stats.computed_tokens < 0.5 * want.stats.computed_tokens


@pytest.mark.parametrize("packed", [True, False])
def test_a_prefix_merged_in_bf16_stays_within_bf16_noise(tiny_model, tokenizer, packed):
    """CPUs with native bf16 run bf16 by default: merged (packed rows, as by default, or padded), the scores keep
    the no-reuse path's closeness to fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    from qrr import Reranker

    pairs = PAIRS_OF_GROUPS
    truth = Reranker.from_model(AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32), tokenizer,
                                device="cpu", share_prefix=False).score(pairs)  # fmt: skip
    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    reranker = Reranker.from_model(causal, tokenizer, device="cpu")
    reranker.engine.use_packed(packed)
    merged = reranker.score(pairs)
    alone = Reranker.from_model(causal, tokenizer, device="cpu", share_prefix=False).score(pairs)
    assert merged.stats.computed_tokens < alone.stats.computed_tokens
    worst = max(abs(a - b) for a, b in zip(merged, truth, strict=True))
    assert worst <= 2e-2 and worst <= 2 * max(abs(a - b) for a, b in zip(alone, truth, strict=True)) + 1e-3


def test_a_model_with_an_attention_qrr_cannot_wrap_is_left_as_it_is(tiny_model, tokenizer):
    """flash-attn's implementation looks its own name up at run time: renamed, it would break. Such a model keeps its
    attention, and qrr pads rows and reuses no prefix through qrr's attention."""
    import torch
    from transformers import AttentionInterface, AutoModelForCausalLM
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    from qrr import Reranker

    AttentionInterface.register("someone_elses", sdpa_attention_forward)
    AttentionMaskInterface.register("someone_elses", sdpa_mask)
    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    plain = Reranker.from_model(causal, tokenizer, device="cpu", share_prefix=False).score(list(PAIRS))
    other = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32, attn_implementation="someone_elses")
    reranker = Reranker.from_model(other, tokenizer, device="cpu")
    assert other.config._attn_implementation == "someone_elses"
    assert reranker.engine.attention is None and not reranker.engine.packed and not reranker.engine.merge_prefix
    close(reranker.score(list(PAIRS)), plain, 1e-5)


def test_an_attention_switched_back_under_qrr_is_refused_not_scored_wrong(tiny_model, tokenizer):
    import pickle

    import torch
    from transformers import AutoModelForCausalLM

    from qrr import Reranker
    from qrr.errors import QrrError

    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reranker = Reranker.from_model(causal, tokenizer, device="cpu")
    pickle.dumps(causal)  # wrapped, the caller's model can still be saved whole
    causal.set_attn_implementation("sdpa")
    with pytest.raises(QrrError, match="^the model's attention implementation became 'sdpa' after qrr wrapped it as "
                                       "'qrr_sdpa'; set it back, or build the Reranker again$"):  # fmt: skip
        reranker.score([("q", "a document"), ("q", "another document")])
