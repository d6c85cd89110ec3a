"""qrr's attention: rows packed end to end (no padding), and rows after a shared prefix merged exactly on a CPU.

Packed. Padding costs: a padded batch computes every pad's token through every layer (7-18% of the tokens of the
short-passage workloads on a CPU, more on a GPU's larger batches). Packed, a batch is one sequence of all its rows'
tokens, and attention keeps each row to itself through cumulative offsets (``cu_seq_lens``). On CUDA in half
precision that is the variable-length flash-attention kernel that torch ships (``torch.nn.attention.varlen``); a row
may continue a shared prefix (one of several, where groups are pooled): its keys are then its prefix's keys followed
by its own, gathered per row (``qrr_key_index``), and the causal mask is aligned to the end (every row token sees
the whole prefix). On a CPU each row gets one call of the CPU flash kernel: causal attention to itself, or after a
prefix, attention to the prefix's keys and its own behind a small offset-causal mask of the row's shape
(``cpu_rows``; that kernel computes a row this short in full, causal or not, so the mask costs nothing, and one call
a row ran 1.3-1.5x faster than the merge below on an AMD EPYC); a row longer than ``MASKED_ROWS`` is merged instead,
as below, since its mask grows with its square. Elsewhere (MPS, CUDA in fp32 or before Ampere) rows
are padded by default; packed there (tests force it), a reference computes the same thing row by row with SDPA.

After a prefix, padded rows (CPU). A cached prefix would force attention through an offset causal mask, which CPU
kernels compute in full. Instead each row's tokens attend to the prefix (no mask: they all see all of it) and to
their own tokens (plain causal, the kernel's fast path) separately, and the two are merged exactly by their
log-sum-exps: ``out = (out_p e^lse_p + out_r e^lse_r) / (e^lse_p + e^lse_r)`` (``merge``).

The function is registered with transformers as an attention implementation (``qrr_sdpa`` over SDPA, say) that
does what the model's own implementation does for every call but qrr's: the model stays usable as it was (the
recipe, a user's own calls). qrr's calls hand transformers ready masks (none), so no mask is ever built for them.
"""

from __future__ import annotations

import functools
import inspect
import itertools

PREFIX = "qrr_"


# What this torch's kernels take, looked up once. Plain dicts rather than functools.cache: compiled code reads them
# as constants (torch.compile traces through a cache wrapper, and warns that it does).
_LOOKED_UP: dict = {}


def settle() -> None:
    """Look up what the kernels take now, before any compiled code reads it."""
    _varlen()
    _cpu_flash_takes_gqa()


def _varlen():
    """torch's variable-length flash attention and the keyword arguments its version takes, or ``None``."""
    if "varlen" not in _LOOKED_UP:
        _LOOKED_UP["varlen"] = _find_varlen()
    return _LOOKED_UP["varlen"]


def _find_varlen():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    params = inspect.signature(varlen_attn).parameters
    # torch 2.10 says is_causal=True, 2.11 on window_size=(-1, 0): both are flash attention's causal mask, aligned
    # to the end where a row has more keys than queries (seen on torch 2.11; the 2.10 form has not run here)
    if "window_size" in params:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in params:
        causal = {"is_causal": True}
    else:
        return None
    return varlen_attn, causal, "enable_gqa" in params, "scale" in params


def kernel_available(device, dtype) -> bool:
    """Whether packed attention runs on the fast kernel here: CUDA, half precision, a GPU flash attention runs on
    (Ampere or newer), a torch that has it."""
    import torch

    if device.type != "cuda" or dtype not in (torch.float16, torch.bfloat16) or _varlen() is None:
        return False
    return torch.cuda.get_device_capability(device) >= (8, 0)


# The implementations qrr's attention can stand in front of: they take masks transformers builds, and need no name
# of their own at run time (flash-attn's looks its own name up, so a wrapped one breaks).
WRAPPABLE = ("sdpa", "eager")


def wrappable(name: str) -> bool:
    """Whether a model whose attention implementation is ``name`` can take qrr's attention (or has it)."""
    return name in WRAPPABLE or name.startswith(PREFIX)


def register(padded: str) -> str:
    """Register, once, qrr's attention falling back to the implementation named ``padded`` (``sdpa`` or ``eager``)
    for every other call, with that implementation's masks; returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if padded.startswith(PREFIX):
        return padded
    name = PREFIX + padded
    if name not in ALL_ATTENTION_FUNCTIONS:
        fallback = ALL_ATTENTION_FUNCTIONS.get(padded)
        AttentionInterface.register(name, functools.partial(attention_forward, fallback=fallback))
        if padded in ALL_MASK_ATTENTION_FUNCTIONS:
            AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[padded])
    return name


# qrr's calls' ``attention_mask``: masks ready (none), so transformers builds none (from packed positions, say).
# Qwen3-Reranker has no sliding-window layers (use_sliding_window is false), so neither path looks at a window.
NO_MASKS = {"full_attention": None, "sliding_attention": None}


def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, fallback=None, **kwargs):
    """transformers' attention interface. With ``cu_seq_lens_q`` in ``kwargs``, a packed batch
    (``packed_attention``); with ``qrr_prefix`` alone, padded rows after a shared prefix (``after_prefix``); any
    other call goes to ``fallback`` (eager attention where that is ``None``)."""
    if "cu_seq_lens_q" in kwargs:
        return packed_attention(module, query, key, value, scaling, **kwargs)
    if "qrr_prefix" in kwargs:
        return after_prefix(module, query, key, value, scaling, kwargs["qrr_prefix"])
    if fallback is None:
        from transformers.models.qwen3.modeling_qwen3 import eager_attention_forward as fallback
    return fallback(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)


def after_prefix(module, query, key, value, scaling, prefix):
    """Right-padded rows ``(batch, heads, rows, head_dim)`` after a shared prefix (``prefix``: every layer's keys and
    values stacked, ``(layers, 1, kv_heads, prefix, head_dim)`` each): attention to the prefix and to the rows' own
    tokens, merged by log-sum-exp. CPU kernels only (they return the log-sum-exp). Returns
    ``(batch, rows, heads, head_dim)``."""
    import torch

    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    keys, values = prefix[0][module.layer_idx], prefix[1][module.layer_idx]
    batch, heads, rows, dim = query.shape
    key, value, keys, values = _grouped(heads, key, value, keys, values)
    own, own_lse = flash(query, key, value, 0.0, True, scale=scaling)
    # every row token sees the whole prefix: one unmasked attention of all rows' tokens as one sequence
    flat = query.transpose(0, 1).reshape(1, heads, batch * rows, dim)
    pre, pre_lse = flash(flat, keys, values, 0.0, False, scale=scaling)
    pre = pre.reshape(heads, batch, rows, dim).transpose(0, 1)
    pre_lse = pre_lse.reshape(heads, batch, rows).transpose(0, 1)
    return merge(own, own_lse, pre, pre_lse).transpose(1, 2).contiguous(), None


def cpu_rows(module, query, key, value, scaling, cu_seq_lens, prefix=None):
    """A packed batch on a CPU (``query`` ``(1, heads, tokens, head_dim)``, rows bounded by ``cu_seq_lens``): each
    row's causal attention to its own tokens, after a shared prefix (every layer's keys and values stacked) to the
    prefix's keys too, in one call of the CPU flash kernel a row. No token attends to a pad, and none is computed.
    Returns ``(1, tokens, heads, head_dim)``."""
    import torch

    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    heads, tokens = query.shape[1], query.shape[2]
    key, value = _grouped(heads, key, value)
    if prefix is not None:
        keys, values = _grouped(heads, prefix[0][module.layer_idx], prefix[1][module.layer_idx])
    out = query.new_empty(1, tokens, heads, query.shape[3])
    for a, b in itertools.pairwise(cu_seq_lens.tolist()):
        if prefix is None:
            own, _ = flash(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], 0.0, True, scale=scaling)
        elif b - a > MASKED_ROWS:  # a long row: its causal attention and the prefix's, merged
            own, own_lse = flash(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], 0.0, True, scale=scaling)
            pre, pre_lse = flash(query[:, :, a:b], keys, values, 0.0, False, scale=scaling)
            own = merge(own, own_lse, pre, pre_lse)
        else:
            mask = _after_prefix_mask(b - a, keys.shape[2], query.dtype)
            row_keys = torch.cat([keys, key[:, :, a:b]], 2)
            row_values = torch.cat([values, value[:, :, a:b]], 2)
            own, _ = flash(query[:, :, a:b], row_keys, row_values, 0.0, False, attn_mask=mask, scale=scaling)
        out[:, a:b] = own.transpose(1, 2)
    return out


# The longest row after a prefix that takes one masked call: the mask is rows x (prefix + rows) and the kernel
# computes it all, masked or not, so past this the two merged calls win (0.98-1.34x at 1,024 tokens, 1.4-1.9x at
# 2,048-4,096, 0.84-1.0x at 512; a 2-core AMD EPYC, 0.6B heads, fp32 and bf16: benchmarks/long_rows.py), and a
# mask at 40,960 tokens took 6.7 GB.
MASKED_ROWS = 512


def _after_prefix_mask(rows: int, prefix: int, dtype):
    """``(rows, prefix + rows)``: 0 where a row token sees a key (the whole prefix, its own row up to itself), -inf
    elsewhere, in the queries' dtype (the CPU flash kernel takes no boolean mask)."""
    import torch

    seen = torch.ones(rows, prefix + rows, dtype=torch.bool).tril(prefix)
    return torch.zeros(rows, prefix + rows, dtype=dtype).masked_fill_(~seen, float("-inf"))


def merge(own, own_lse, pre, pre_lse):
    """Two attentions of the same queries to two disjoint sets of keys, ``(..., queries, head_dim)`` each with its
    log-sum-exp ``(..., queries)``, as one attention to all the keys: exact, in float32; in the queries' dtype."""
    import torch

    top = torch.maximum(own_lse, pre_lse)
    w_own, w_pre = (own_lse - top).exp().unsqueeze(-1), (pre_lse - top).exp().unsqueeze(-1)
    return ((own.float() * w_own + pre.float() * w_pre) / (w_own + w_pre)).to(own.dtype)


def _grouped(heads: int, *tensors):
    """Key and value heads ``(batch, kv_heads, keys, head_dim)`` repeated up to ``heads`` query heads, where the
    CPU flash kernel cannot group them itself."""
    if tensors[0].shape[1] == heads or _cpu_flash_takes_gqa():
        return tensors
    return tuple(t.repeat_interleave(heads // t.shape[1], dim=1) for t in tensors)


def _cpu_flash_takes_gqa() -> bool:
    """The CPU flash kernel takes fewer key/value heads than query heads from torch 2.9 on."""
    if "gqa" not in _LOOKED_UP:
        import torch

        _LOOKED_UP["gqa"] = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 9)
    return _LOOKED_UP["gqa"]


def packed_attention(module, query, key, value, scaling=None, **kwargs):
    """One packed batch: ``query`` is ``(1, heads, tokens, head_dim)``; ``kwargs`` carry ``cu_seq_lens_q`` and
    ``max_length_q`` and, after a shared prefix, ``qrr_prefix`` (every layer's prefix keys and values, stacked),
    ``qrr_key_index``, ``cu_seq_lens_k`` and ``max_length_k``. Returns ``(1, tokens, heads, head_dim)``."""
    import torch

    prefix = kwargs.get("qrr_prefix")
    if query.device.type == "cpu" and "qrr_key_index" not in kwargs:  # one prefix for all rows, if any
        return cpu_rows(module, query, key, value, scaling, kwargs["cu_seq_lens_q"], prefix), None
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (tokens, heads, head_dim)
    cu_q, max_q = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    cu_k, max_k = cu_q, max_q
    if prefix is not None:
        keys, values = prefix[0][module.layer_idx], prefix[1][module.layer_idx]
        index = kwargs["qrr_key_index"]
        k = torch.cat([keys[0].transpose(0, 1), k])[index]
        v = torch.cat([values[0].transpose(0, 1), v])[index]
        cu_k, max_k = kwargs["cu_seq_lens_k"], kwargs["max_length_k"]
    kernel = kwargs.get("qrr_kernel")  # qrr's calls say, so compiled code asks no device
    if kernel if kernel is not None else kernel_available(q.device, q.dtype):
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
