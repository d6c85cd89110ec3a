"""Deterministic rerank workloads: one query and documents of chosen token lengths (real tokenizer)."""

from __future__ import annotations

import random

from qrr.bench import SINGLE_TOKEN_WORDS

WORDS = SINGLE_TOKEN_WORDS
QUERY = "what are the health benefits of drinking green tea every day?"


def make_documents(tokenizer, n: int, low: int, high: int, seed: int = 0) -> list[str]:
    """``n`` documents whose token counts are drawn uniformly from ``[low, high]``."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        target = rng.randint(low, high)
        words = [rng.choice(WORDS) for _ in range(target * 2)]
        ids = tokenizer.encode(" ".join(words), add_special_tokens=False)[:target]
        docs.append(tokenizer.decode(ids).strip())
    return docs


WORKLOADS = {
    # name: (documents, min tokens, max tokens)
    "short": (64, 80, 350),
    "long": (16, 1500, 2000),
}
