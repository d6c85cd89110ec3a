"""Planning a scoring call's forward passes: token-budget batches (padded or packed, longest first), the groups
whose shared prefix runs once, and the work that takes."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

# Batch widths are rounded up to a multiple of this. Every distinct shape makes oneDNN build and cache new
# kernels; with free widths, RSS grew by ~1 GB over 1,000 documents (0.6B, CPU), with this it stays flat.
WIDTH_MULTIPLE = 32
# A shared prefix shorter than this is not worth a forward pass of its own.
MIN_SHARED_PREFIX = 8


def plan_batches(lengths: Sequence[int], batch_tokens: int, max_rows: int | None = None) -> list[list[int]]:
    """Group indices into batches whose padded size (rows x longest row) stays within ``batch_tokens`` and,
    with ``max_rows``, whose rows are at most that many.

    Indices are sorted longest first so rows of a batch have similar lengths (little padding) and the
    heaviest batch runs first, where running out of memory costs least. A row longer than the budget
    gets a batch of its own.
    """
    rows = max_rows or len(lengths) or 1
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        # Sorted longest first, so the first row of a batch sets its width.
        width = width if current else lengths[i]
        if current and ((len(current) + 1) * width > batch_tokens or len(current) == rows):
            batches.append(current)
            current, width = [], lengths[i]
        current.append(i)
    if current:
        batches.append(current)
    return batches


def plan_packed(lengths: Sequence[int], batch_tokens: int, max_rows: int | None = None) -> list[list[int]]:
    """Group indices into packed batches (rows end to end, no padding) of at most ``batch_tokens`` tokens and,
    with ``max_rows``, at most that many rows; longest first, as ``plan_batches``."""
    rows = max_rows or len(lengths) or 1
    batches: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        if current and (tokens + lengths[i] > batch_tokens or len(current) == rows):
            batches.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        batches.append(current)
    return batches


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


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


def plan_groups(
    sequences: Sequence[Sequence[int]],
    groups: Sequence[Hashable] | None,
    worth: Callable[[int, float], bool] | None = None,
):
    """Split indices into ``(prefix_length, indices)`` parts: one per group whose members share a prefix
    worth reusing, and one part (prefix 0) pooling everything else so it still batches together.

    ``worth(shared, mean_rest)`` decides whether a group's shared prefix of ``shared`` tokens, followed by
    rests of ``mean_rest`` tokens on average, is worth a forward pass of its own (default: any of at least
    ``MIN_SHARED_PREFIX`` tokens).
    """
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
        mean_rest = sum(len(sequences[i]) for i in indices) / len(indices) - shared
        if shared >= MIN_SHARED_PREFIX and (worth is None or worth(shared, mean_rest)):
            parts.append((shared, indices))
        else:
            pool.extend(indices)
    if pool:
        parts.append((0, sorted(pool)))
    return parts


@dataclass
class Work:
    """What a scoring call computed: ``tokens`` run through the model (a shared prefix counts once) and
    ``attended`` (query, key) pairs of attention, for FLOP counts."""

    tokens: int = 0
    attended: int = 0


def work_of(sequences: Sequence[Sequence[int]], parts: list[tuple[int, list[int]]]) -> Work:
    """The work of scoring ``sequences`` in ``plan_groups``' ``parts``: each part's prefix once."""
    work = Work()
    for shared, indices in parts:
        rests = [len(sequences[i]) - shared for i in indices]
        work.tokens += shared + sum(rests)
        # causal attention: token at position p attends to p + 1 keys
        work.attended += shared * (shared + 1) // 2 + sum(n * shared + n * (n + 1) // 2 for n in rests)
    return work
