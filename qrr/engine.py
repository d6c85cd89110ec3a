"""The forward pass: token-budget batching, shared-prefix reuse, and the yes/no head on the last hidden state.

The full-vocabulary head never runs. ``p(yes) = sigmoid(h . (w_yes - w_no) + b_yes - b_no)`` where ``h`` is
the last real token's final hidden state and the rows come from ``lm_head`` (the 8B does not tie it to the
embeddings). That equals the recipe's ``softmax([logit_no, logit_yes])[1]``, computed in float32.

Shared-prefix reuse: sequences of one group (same instruction and query) start with the same tokens. The
longest common prefix of their full token sequences runs once; its key/value cache is shared by every batch of
the group, which then runs only each row's remaining tokens. Rows are right-padded and positions are given
explicitly, so a row's score depends neither on its padding nor on what else is in its batch.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

from qrr.errors import OutOfMemoryError, QrrError

# Padded tokens per forward pass. CPU throughput is flat past a few thousand; GPUs want wide batches.
DEFAULT_BATCH_TOKENS = {"cpu": 4096, "mps": 8192, "cuda": 32768}
# A shared prefix shorter than this is not worth a forward pass of its own.
MIN_SHARED_PREFIX = 8

Progress = Callable[[int], None]


def default_batch_tokens(device) -> int:
    """The default padded-token budget of one forward pass on ``device``."""
    return DEFAULT_BATCH_TOKENS.get(device.type, 8192)


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group indices into batches whose padded size (rows x longest row) stays within ``batch_tokens``.

    Indices are sorted longest first so rows of a batch have similar lengths (little padding) and the
    heaviest batch runs first, where running out of memory costs least. A row longer than the budget
    gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        # Sorted longest first, so the first row of a batch sets its width.
        width = width if current else lengths[i]
        if current and (len(current) + 1) * width > batch_tokens:
            batches.append(current)
            current, width = [], lengths[i]
        current.append(i)
    if current:
        batches.append(current)
    return batches


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``sequences`` share."""
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for seq in sequences[1:]:
        k = 0
        while k < n and seq[k] == first[k]:
            k += 1
        n = k
    return n


def plan_groups(sequences: Sequence[Sequence[int]], groups: Sequence[Hashable] | None):
    """Split indices into ``(prefix_length, indices)`` parts: one per group whose members share a prefix
    worth reusing, and one part (prefix 0) pooling everything else so it still batches together."""
    if groups is None:
        return [(0, list(range(len(sequences))))]
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(groups):
        members.setdefault(key, []).append(i)
    parts, pool = [], []
    for indices in members.values():
        shared = 0
        if len(indices) > 1:
            # Every row keeps at least its last token to run: that token's hidden state is the score.
            shared = min(common_prefix_length([sequences[i] for i in indices]),
                         min(len(sequences[i]) for i in indices) - 1)  # fmt: skip
        if shared >= MIN_SHARED_PREFIX:
            parts.append((shared, indices))
        else:
            pool.extend(indices)
    if pool:
        parts.append((0, sorted(pool)))
    return parts


class Engine:
    """A loaded Qwen3 base model plus the one-row yes-minus-no head."""

    def __init__(self, body, head, bias: float, device, pad_id: int):
        self.body = body
        self.head = head
        self.bias = bias
        self.device = device
        self.pad_id = pad_id
        # transformers 5 calls the key/value cache argument `cache`; 4.x calls it `past_key_values`.
        params = inspect.signature(body.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @classmethod
    def load(cls, path: Path, device, dtype, yes_id: int, no_id: int, pad_id: int, attn: str = "sdpa") -> Engine:
        """Load the causal LM at ``path``, keep its base model and the two head rows, drop the rest."""
        import torch
        import transformers
        from transformers import AutoModelForCausalLM

        version = tuple(int(p) for p in transformers.__version__.split(".")[:2] if p.isdigit())
        dtype_kw = "dtype" if version >= (4, 56) else "torch_dtype"
        try:
            causal = AutoModelForCausalLM.from_pretrained(path, **{dtype_kw: dtype}, attn_implementation=attn)
        except (OSError, ValueError, KeyError) as exc:
            raise QrrError(f"cannot load the model at {path}: {str(exc).splitlines()[0]}") from exc
        output = causal.get_output_embeddings()
        # no_grad: an autograd graph from these rows back to lm_head would keep all of lm_head alive.
        with torch.no_grad():
            head = (output.weight[yes_id].float() - output.weight[no_id].float()).to(device)
            bias = 0.0 if output.bias is None else float(output.bias[yes_id].float() - output.bias[no_id].float())
        body = causal.get_decoder()
        # Dropping the wrapper frees an untied lm_head (1.2 GB on 8B); a tied one stays as the embeddings.
        del causal, output
        gc.collect()
        body.to(device).eval()
        return cls(body, head, bias, device, pad_id)

    def prefix_cache(self, prefix: Sequence[int]):
        """Run ``prefix`` once; returns its per-layer (keys, values), batch size 1."""
        import torch

        with torch.inference_mode():
            out = self.body(input_ids=torch.tensor([list(prefix)], device=self.device), use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        if hasattr(cache, "layers"):
            return [(layer.keys, layer.values) for layer in cache.layers]
        return list(zip(cache.key_cache, cache.value_cache, strict=True))

    def log_odds(self, rows: Sequence[Sequence[int]], prefix=None, prefix_len: int = 0):
        """``logit_yes - logit_no`` (float32 tensor) for a batch of token id lists, each continuing the
        cached ``prefix`` of ``prefix_len`` tokens when one is given."""
        import torch
        from transformers import DynamicCache

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width + prefix_len), dtype=torch.long)
        mask[:, :prefix_len] = 1
        for n, row in enumerate(rows):
            # Right padding: pads come after a row's real tokens, so causal attention keeps them out of it.
            ids[n, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[n, prefix_len : prefix_len + len(row)] = 1
        positions = torch.arange(prefix_len, prefix_len + width).expand(len(rows), width)
        last = torch.tensor([len(r) - 1 for r in rows], device=self.device)
        kwargs = {}
        if prefix is not None:
            cache = DynamicCache()
            for layer, (keys, values) in enumerate(prefix):
                # expand() is a view: the shared prefix is not copied per row until attention needs it.
                cache.update(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1), layer)
            kwargs = {self._cache_kw: cache, "use_cache": True}
        else:
            kwargs = {"use_cache": False}
        with torch.inference_mode():
            out = self.body(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                **kwargs,
            )
            hidden = out.last_hidden_state[torch.arange(len(rows), device=self.device), last].float()
            return hidden @ self.head + self.bias

    def score(
        self,
        sequences: Sequence[Sequence[int]],
        batch_tokens: int,
        progress: Progress | None = None,
        groups: Sequence[Hashable] | None = None,
    ) -> list[float]:
        """p(yes) for each token sequence, in input order.

        ``groups`` gives each sequence a key (such as its instruction and query); members of a group share
        their common token prefix's computation. Without it, nothing is shared.
        """
        import torch

        scores = [0.0] * len(sequences)
        for shared, indices in plan_groups(sequences, groups):
            prefix = self.prefix_cache(sequences[indices[0]][:shared]) if shared else None
            rests = [sequences[i][shared:] for i in indices]
            for batch in plan_batches([len(r) for r in rests], batch_tokens):
                try:
                    values = torch.sigmoid(self.log_odds([rests[j] for j in batch], prefix, shared)).tolist()
                except torch.OutOfMemoryError as exc:
                    raise OutOfMemoryError(
                        f"out of memory in a batch of {len(batch)} rows: lower --batch-tokens (now {batch_tokens})"
                    ) from exc
                for j, value in zip(batch, values, strict=True):
                    scores[indices[j]] = value
                if progress is not None:
                    progress(len(batch))
        return scores
