"""Planning forward passes: token budgets, row caps, packed batches and the groups whose prefix runs once."""

from __future__ import annotations

import random

from qrr.batching import common_prefix_length, plan_batches, plan_groups, plan_packed


def test_every_index_once_within_budget_longest_first():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 500) for _ in range(rng.randint(0, 60))]
        budget = rng.randint(1, 3000)
        rows = rng.choice([None, 1, 3, 10])
        batches = plan_batches(lengths, budget, rows)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
        for b in batches:
            width = max(lengths[i] for i in b)
            assert len(b) == 1 or len(b) * width <= budget
            assert rows is None or len(b) <= rows
            assert lengths[b[0]] == width
        widths = [lengths[b[0]] for b in batches]
        assert widths == sorted(widths, reverse=True)


def test_sorting_keeps_padding_small():
    lengths = [10, 100, 11, 101, 12, 102]
    assert plan_batches(lengths, 306) == [[5, 3, 1], [4, 2, 0]]
    assert plan_batches(lengths, 306, max_rows=2) == [[5, 3], [1, 4], [2, 0]]


def test_a_row_longer_than_the_budget_runs_alone():
    assert plan_batches([5000, 10, 10], 100) == [[0], [1, 2]]


def test_plan_packed_keeps_each_batch_within_its_tokens_and_rows():
    lengths = [5, 40, 7, 7, 30, 2, 90]
    batches = plan_packed(lengths, batch_tokens=50)
    # longest first; a row over the budget alone
    assert batches == [[6], [1], [4, 2, 3, 0], [5]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert plan_packed(lengths, batch_tokens=1000, max_rows=3) == [[6, 1, 4], [2, 3, 0], [5]]
    assert plan_packed([], batch_tokens=10) == []


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[1, 2], [3]]) == 0
    assert common_prefix_length([[5, 6, 7]]) == 3


def test_plan_groups_pools_what_cannot_share():
    seqs = [[1] * 20 + [2], [1] * 20 + [3], [9] * 30, [1] * 20 + [4], [7, 7]]
    parts = plan_groups(seqs, ["a", "a", "b", "a", "c"])
    assert parts == [(20, [0, 1, 3]), (0, [2, 4])]
    assert plan_groups(seqs, None) == [(0, [0, 1, 2, 3, 4])]
    # identical rows keep their last token to run
    assert plan_groups([[1] * 20, [1] * 20], ["a", "a"]) == [(19, [0, 1])]
    # a short shared prefix is not worth its own forward pass
    assert plan_groups([[1, 2, 3], [1, 2, 4]], ["a", "a"]) == [(0, [0, 1])]


def test_plan_groups_asks_whether_reuse_is_worth_it():
    seqs = [[1] * 20 + [2] * 30, [1] * 20 + [3] * 50]
    assert plan_groups(seqs, ["a", "a"], lambda shared, rest: True) == [(20, [0, 1])]
    assert plan_groups(seqs, ["a", "a"], lambda shared, rest: False) == [(0, [0, 1])]
    seen = []
    plan_groups(seqs, ["a", "a"], lambda shared, rest: seen.append((shared, rest)))
    assert seen == [(20, 40.0)]
