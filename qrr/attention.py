"""Attention over packed sequences: the rows of a batch laid end to end, with no padding.

On a GPU, padding costs most: a padded batch computes every pad's token through every layer. Packed, a batch is
one sequence of all its rows' tokens, and attention keeps each row to itself through cumulative offsets
(``cu_seq_lens``), with the variable-length flash-attention kernel that torch ships
(``torch.nn.attention.varlen``). A row may continue a shared prefix: its keys are then the prefix's keys followed
by its own, gathered per row, and the causal mask is aligned to the end (every row token sees the whole prefix).

The function is registered with transformers as an attention implementation (``qrr_packed_sdpa`` over SDPA, say)
that does what the model's own implementation does for every call but qrr's packed ones: the model stays usable
as it was (the recipe, a user's own calls). A packed call hands transformers a ready mask (none), so no mask of
tokens x tokens is ever built. Where the kernel cannot run (a CPU, float32) a reference computes the same thing
row by row with SDPA: tests check the packing against it, and it keeps a packed model usable anywhere.
"""

from __future__ import annotations

import functools
import inspect

PREFIX = "qrr_packed_"


@functools.cache
def _varlen():
    """torch's variable-length flash attention and the keyword arguments its version takes, or ``None``."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    params = inspect.signature(varlen_attn).parameters
    # torch 2.10 says is_causal=True; 2.11 on, window_size=(-1, 0), whose causal mask is aligned to the end
    if "window_size" in params:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in params:
        causal = {"is_causal": True}
    else:
        return None
    return varlen_attn, causal, "enable_gqa" in params, "scale" in params


def kernel_available(device, dtype) -> bool:
    """Whether packed attention runs on the fast kernel here: CUDA, half precision, a torch that has it."""
    import torch

    return device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and _varlen() is not None


def register(padded: str) -> str:
    """Register, once, the packed attention that falls back to the implementation named ``padded`` (``sdpa``,
    ``eager``, ``flash_attention_2``) for every other call, with that implementation's masks; returns its name."""
    import functools

    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if padded.startswith(PREFIX):
        return padded
    name = PREFIX + padded
    if name not in ALL_ATTENTION_FUNCTIONS:
        fallback = ALL_ATTENTION_FUNCTIONS.get(padded)
        AttentionInterface.register(name, functools.partial(packed_attention, fallback=fallback))
        if padded in ALL_MASK_ATTENTION_FUNCTIONS:
            AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[padded])
    return name


# A packed call's ``attention_mask``: masks ready (none), so transformers builds none from the packed positions.
NO_MASKS = {"full_attention": None, "sliding_attention": None}


def packed_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, fallback=None, **kwargs):
    """transformers' attention interface for one packed batch: ``query`` is ``(1, heads, tokens, head_dim)``;
    ``kwargs`` carry ``cu_seq_lens_q`` and ``max_length_q`` and, after a shared prefix, ``qrr_prefix`` (each
    layer's prefix keys and values), ``qrr_key_index``, ``cu_seq_lens_k`` and ``max_length_k``. Returns
    ``(1, tokens, heads, head_dim)``. A call without ``cu_seq_lens_q`` goes to ``fallback`` (eager attention
    where that is ``None``)."""
    import torch

    if "cu_seq_lens_q" not in kwargs:
        if fallback is None:
            from transformers.models.qwen3.modeling_qwen3 import eager_attention_forward as fallback
        return fallback(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (tokens, heads, head_dim)
    cu_q, max_q = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    cu_k, max_k = cu_q, max_q
    prefix = kwargs.get("qrr_prefix")
    if prefix is not None:
        keys, values = prefix[module.layer_idx]
        index = kwargs["qrr_key_index"]
        k = torch.cat([keys[0].transpose(0, 1), k])[index]
        v = torch.cat([values[0].transpose(0, 1), v])[index]
        cu_k, max_k = kwargs["cu_seq_lens_k"], kwargs["max_length_k"]
    if kernel_available(q.device, q.dtype):
        out = _flash(q, k, v, cu_q, cu_k, max_q, max_k, scaling)
    else:
        out = _reference(q, k, v, cu_q, cu_k, scaling)
    return out.unsqueeze(0), None


def _flash(q, k, v, cu_q, cu_k, max_q, max_k, scaling):
    varlen_attn, causal, gqa, has_scale = _varlen()
    options = dict(causal)
    if has_scale:
        options["scale"] = scaling
    if k.shape[1] != q.shape[1]:
        if gqa:
            options["enable_gqa"] = True
        else:
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu_q, cu_k, max_q, max_k, **options)


def _reference(q, k, v, cu_q, cu_k, scaling):
    """Row by row with SDPA: row ``i``'s queries are the last of its keys (causal, aligned to the end)."""
    import torch

    out = torch.empty_like(q)
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for i in range(len(bounds_q) - 1):
        a, b = bounds_q[i], bounds_q[i + 1]
        c, d = bounds_k[i], bounds_k[i + 1]
        rows, keys = b - a, d - c
        mask = torch.ones(rows, keys, dtype=torch.bool, device=q.device).tril(keys - rows)
        out[a:b] = torch.nn.functional.scaled_dot_product_attention(
            q[a:b].transpose(0, 1), k[c:d].transpose(0, 1), v[c:d].transpose(0, 1), attn_mask=mask, scale=scaling,
            enable_gqa=True,
        ).transpose(0, 1)  # fmt: skip
    return out
