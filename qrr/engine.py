"""The forward pass: token-budget batching, left padding, and the yes/no head on the last hidden state.

The full-vocabulary head never runs. ``p(yes) = sigmoid(h . (w_yes - w_no) + b_yes - b_no)`` where ``h`` is
the last real token's final hidden state and the rows come from ``lm_head`` (the 8B does not tie it to the
embeddings). That equals the recipe's ``softmax([logit_no, logit_yes])[1]``, computed in float32.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from pathlib import Path

from qrr.errors import OutOfMemoryError, QrrError

# Padded tokens per forward pass. CPU throughput is flat past a few thousand; GPUs want wide batches.
DEFAULT_BATCH_TOKENS = {"cpu": 4096, "mps": 8192, "cuda": 32768}

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


class Engine:
    """A loaded Qwen3 base model plus the one-row yes-minus-no head."""

    def __init__(self, body, head, bias: float, device, pad_id: int):
        self.body = body
        self.head = head
        self.bias = bias
        self.device = device
        self.pad_id = pad_id

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

    def log_odds(self, rows: Sequence[Sequence[int]]):
        """``logit_yes - logit_no`` (float32 tensor) for one batch of token id lists of any lengths."""
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, row in enumerate(rows):
            # Left padding: position -1 is every row's last real token.
            ids[n, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[n, width - len(row) :] = 1
        # Positions count real tokens only, so a row's score does not depend on its padding.
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self.body(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=False,
            )
            last = out.last_hidden_state[:, -1, :].float()
            return last @ self.head + self.bias

    def score(self, sequences: Sequence[Sequence[int]], batch_tokens: int, progress: Progress | None = None):
        """p(yes) for each token sequence, in input order."""
        import torch

        scores = [0.0] * len(sequences)
        for batch in plan_batches([len(s) for s in sequences], batch_tokens):
            try:
                values = torch.sigmoid(self.log_odds([sequences[i] for i in batch])).tolist()
            except torch.OutOfMemoryError as exc:
                raise OutOfMemoryError(
                    f"out of memory in a batch of {len(batch)} rows: lower --batch-tokens (now {batch_tokens})"
                ) from exc
            for i, value in zip(batch, values, strict=True):
                scores[i] = value
            if progress is not None:
                progress(len(batch))
        return scores
