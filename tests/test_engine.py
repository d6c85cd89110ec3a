from __future__ import annotations

import random

from qrr.engine import plan_batches


def test_every_index_once_within_budget_longest_first():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 500) for _ in range(rng.randint(0, 60))]
        budget = rng.randint(1, 3000)
        batches = plan_batches(lengths, budget)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
        for b in batches:
            width = max(lengths[i] for i in b)
            assert len(b) == 1 or len(b) * width <= budget
            assert lengths[b[0]] == width
        widths = [lengths[b[0]] for b in batches]
        assert widths == sorted(widths, reverse=True)


def test_sorting_keeps_padding_small():
    lengths = [10, 100, 11, 101, 12, 102]
    assert plan_batches(lengths, 306) == [[5, 3, 1], [4, 2, 0]]


def test_a_row_longer_than_the_budget_runs_alone():
    assert plan_batches([5000, 10, 10], 100) == [[0], [1, 2]]
