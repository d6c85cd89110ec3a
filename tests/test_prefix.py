"""Shared-prefix reuse: same scores as without it (1e-5, float32) on every input the oracle covers."""

from __future__ import annotations

import random

import pytest

from qrr.batching import common_prefix_length
from qrr.engine import TransformerEngine
from tests.test_reranker import PAIRS, close

DOCS = [d for _, d in PAIRS] + ["The capital is Beijing.", "The", "Thekla", "日本語 🎉"]
TASK = "Given a question, find passages that answer it"


@pytest.fixture(scope="module")
def pair(tiny):
    return lambda **kwargs: (tiny(share_prefix=True, **kwargs), tiny(share_prefix=False, **kwargs))


def by_index(ranked):
    return [r["score"] for r in sorted(ranked, key=lambda r: r["corpus_id"])]


def test_rank_with_and_without_reuse(pair):
    on, off = pair()
    for query in ("capital of China?", "日本の首都は？", "The"):
        close(by_index(on.rank(query, DOCS)), by_index(off.rank(query, DOCS)))


def test_custom_instruction_with_and_without_reuse(pair):
    on, off = pair(instruction=TASK)
    close(by_index(on.rank("q", DOCS)), by_index(off.rank("q", DOCS)))


def test_truncated_documents_with_and_without_reuse(pair):
    on, off = pair(max_length=120)
    docs = ["alpha " * 500, "beta gamma " * 300, "fits", "delta " * 80]
    ranked = on.rank("a query", docs)
    close(by_index(ranked), by_index(off.rank("a query", docs)))
    assert ranked.stats.truncated == 3


def test_score_groups_by_instruction_and_query_in_any_order(pair, tiny):
    on, off = pair()
    pairs = [(q, d, i) for q in ("q one", "q two") for d in DOCS for i in (None, TASK)]
    pairs += [(q, d) for q, d in PAIRS]
    expected = off.score(pairs)
    rng = random.Random(3)
    for budget in (1, 50, 333, 4096):
        rr = tiny(batch_tokens=budget)
        order = list(range(len(pairs)))
        rng.shuffle(order)
        got = rr.score([pairs[i] for i in order])
        close([got[order.index(i)] for i in range(len(pairs))], expected)


def test_reuse_runs_the_prefix_once_per_group_and_stops_before_the_document(pair, monkeypatch):
    on, _ = pair()
    calls = []
    original = TransformerEngine.prefix_cache

    def spy(self, prefix):
        calls.append(list(prefix))
        return original(self, prefix)

    monkeypatch.setattr(TransformerEngine, "prefix_cache", spy)
    on.score([("q", d) for d in ("The cat", "The dog", "Theatre")] + [("other", "x"), ("other", "y")])
    assert len(calls) == 2
    tok = on.prompter.tokenizer
    head = tok.encode("<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
                      "<Query>: q\n<Document>:", add_special_tokens=False)  # fmt: skip
    # The space after "<Document>:" merges with the first word (" The"), so the shared part ends right there.
    assert calls[0] == on.prompter.prefix_ids + head


@pytest.mark.parametrize("packed, merge", [(True, True), (False, True), (False, False)])
def test_a_prefix_serves_batches_of_any_size_without_growing(pair, packed, merge):
    on, _ = pair()
    engine = on.engine
    # packed rows (CPUs), padded ones merged by log-sum-exp, or padded behind a cache with an offset mask (elsewhere)
    engine.use_packed(packed)
    engine.merge_prefix = merge
    seqs = [e.ids for e in on.prompter.encode([("q", d, None) for d in ("The cat sat", "A dog", "x")])]
    shared = common_prefix_length(seqs)
    cache = engine.prefix_cache(seqs[0][:shared])
    rests = [s[shared:] for s in seqs]
    together = engine.log_odds(rests, cache, shared).tolist()
    alone = [engine.log_odds([r], cache, shared).item() for r in rests]
    close(together, alone)
    # nothing of the batches stayed behind in the cache
    assert (cache[0][0].shape[-2] if packed or merge else cache.get_seq_length()) == shared
    close(together, engine.log_odds(seqs, None, 0).tolist())


def test_long_rows_after_a_short_prefix_are_not_worth_sharing_through_a_mask(pair):
    engine = pair()[0].engine
    assert engine.worth_sharing(70, 5000)  # packed or merged on a CPU: the prefix costs attention nothing more
    engine.use_packed(False)
    assert engine.worth_sharing(70, 5000)
    engine.merge_prefix = False
    # on 0.6B shapes the break-even for a 70-token prefix is ~730 tokens; the tiny model's is far shorter
    assert engine.worth_sharing(70, 20)
    assert not engine.worth_sharing(70, 5000)
    assert engine.worth_sharing(700, 600) and not engine.worth_sharing(7, 600)


def test_work_counts_the_shared_prefix_once(pair):
    on, off = pair()
    docs = ["The cat sat", "A dog ran far", "x"]
    without, with_reuse = off.rank("q", docs).stats, on.rank("q", docs).stats
    assert without.computed_tokens == without.tokens == with_reuse.tokens
    shared = without.tokens - with_reuse.computed_tokens
    assert shared > 0 and shared % 2 == 0  # the prefix ran once instead of three times
    assert with_reuse.attended < without.attended


def test_pooled_groups_score_as_they_do_one_group_at_a_time(pair, tiny, monkeypatch):
    """Pooling (the default where CUDA's packed kernel runs; forced here): a round's prefixes run in one packed
    pass, and batches mix its groups' rows, each after its own prefix. The same scores as without reuse."""
    on, off = pair()
    assert not on.engine.pooling  # on CPUs a batch holds one group
    pairs = [(q, d, i) for q in ("q one", "q two", "a third query") for d in DOCS[:6] for i in (None, TASK)]
    pairs += [(q, d) for q, d in PAIRS]  # groups of one: no prefix of their own
    expected = off.score(pairs)
    passes, mixed = [], []
    prefix_pass, mixed_log_odds = TransformerEngine._prefix_pass, TransformerEngine.mixed_log_odds
    monkeypatch.setattr(
        TransformerEngine, "_prefix_pass", lambda self, p: passes.append(len(p)) or prefix_pass(self, p)
    )
    monkeypatch.setattr(TransformerEngine, "mixed_log_odds",
                        lambda self, rows, *a: mixed.append(len(rows)) or mixed_log_odds(self, rows, *a))  # fmt: skip
    for budget, rounds in ((64, 6), (1024, 2), (8192, 1)):  # prefixes of ~70 tokens in a quarter of the budget
        passes.clear()
        mixed.clear()
        rr = tiny(batch_tokens=budget)
        rr.engine.pool_groups = True
        assert rr.engine.pooling
        close(rr.score(pairs), expected, tol=1e-6)
        assert len(passes) == rounds and sum(passes) == 6, (budget, passes)
        assert bool(mixed) == (budget > 64), (budget, mixed)


def test_pooling_a_lone_prefix_with_rows_of_no_group_and_a_pooled_pass_out_of_memory(tiny, monkeypatch):
    import torch

    from qrr.errors import OutOfMemoryError

    rr = tiny(batch_tokens=4096)
    rr.engine.pool_groups = True
    pairs = [("q one", f"doc {i}") for i in range(4)] + [("lonely", "d"), ("another", "e")]
    expected = tiny(share_prefix=False).score(pairs)
    close(rr.score(pairs), expected, tol=1e-6)  # one prefix, and rows of no group, in one round
    # a pooled prefix pass out of memory: its groups run one at a time instead
    many = pairs + [("q two", f"doc {i}") for i in range(3)]
    expected = tiny(share_prefix=False).score(many)
    passes = []
    prefix_pass = TransformerEngine._prefix_pass

    def short_of_memory(self, prefixes):
        passes.append(len(prefixes))
        if len(prefixes) > 1:
            raise torch.OutOfMemoryError("pretend")
        return prefix_pass(self, prefixes)

    monkeypatch.setattr(TransformerEngine, "_prefix_pass", short_of_memory)
    close(rr.score(many), expected, tol=1e-6)
    assert passes == [2, 1, 1]
    monkeypatch.setattr(TransformerEngine, "_prefix_pass", lambda self, prefixes: short_of_memory(self, prefixes * 2))
    said = (
        r"^out of memory running a shared prefix of \d+ tokens \(the frame, instruction and query\): shorten "
        r"the query or instruction, or use a smaller model$"
    )
    with pytest.raises(OutOfMemoryError, match=said):
        rr.score(many)

    def cpu_allocator_fails(self, prefixes):  # a CPU's allocator raises a plain RuntimeError
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: not enough memory")

    monkeypatch.setattr(TransformerEngine, "_prefix_pass", cpu_allocator_fails)
    with pytest.raises(OutOfMemoryError, match=r"^out of memory running a shared prefix of \d+ tokens \(the frame"):
        rr.score(many)
