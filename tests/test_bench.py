"""The benchmark's workloads and its count of the work done."""

from __future__ import annotations

import pytest

from qrr import bench
from qrr.batching import common_prefix_length
from qrr.family import QWEN3, Size
from qrr.reranker import CHUNK, Stats
from tests.tiny import SHAPE

TINY = Size("test/tiny", {**SHAPE, "tie_word_embeddings": False})


def test_documents_and_query_have_exact_token_lengths(tokenizer):
    format_body = QWEN3.format_body
    query, docs = bench.make_workload(tokenizer, 4, 33, 7)
    assert len(docs) == 4 and len(set(docs)) == 4
    head = len(tokenizer.encode(format_body(query, ""), add_special_tokens=False))
    for doc in docs:
        # the document's first word absorbs the space after "<Document>:"
        assert len(tokenizer.encode(format_body(query, doc), add_special_tokens=False)) == head - 1 + 33
    one_word = len(tokenizer.encode(format_body("the", "d"), add_special_tokens=False))
    assert len(tokenizer.encode(format_body(query, "d"), add_special_tokens=False)) == one_word + 7 - 1


def test_tflops_count_every_chunk(monkeypatch, tokenizer):
    """More documents than one chunk: the work of every chunk counts, not only the last one's."""
    monkeypatch.setitem(QWEN3.sizes, "tiny", TINY)
    docs = CHUNK + 6
    (row,) = bench.run(["tiny"], [8], docs=docs, device="cpu", dtype="fp32", random_weights=True)
    query, documents = bench.make_workload(tokenizer, 2, 8, 16)
    from qrr.prompt import Prompter

    prompts = [e.ids for e in Prompter(tokenizer).encode([(query, d, None) for d in documents])]
    length, shared = len(prompts[0]), common_prefix_length(prompts)
    rest = length - shared
    chunks = 2  # each chunk runs the shared prefix once
    work = Stats(
        computed_tokens=chunks * shared + docs * rest,
        attended=chunks * shared * (shared + 1) // 2 + docs * (rest * shared + rest * (rest + 1) // 2),
    )
    assert row.prompt_tokens == docs * length and row.computed_tokens == work.computed_tokens
    assert row.tflops * row.seconds * 1e12 == pytest.approx(bench.executed_flops("tiny", work), rel=1e-9)


def test_progress_counts_work_and_adds_up_to_the_plan(monkeypatch):
    """The bar counts work, not pairs: a row's pairs weigh as their size and length cost, skipped rows too."""
    monkeypatch.setitem(QWEN3.sizes, "tiny", TINY)
    assert bench.pair_work("8b", 2148) / bench.pair_work("0.6b", 244) > 100  # 8b at 2,048 tokens, 0.6b at 128
    reported = []
    room = bench.estimate_memory("tiny", 4, 1024, 0, 2, baseline=False)  # the 2,000-token row does not fit
    monkeypatch.setattr(bench, "available_memory", lambda device: room)
    rows = list(bench.run(["tiny"], [8, 2000], docs=2, repeat=2, device="cpu", dtype="fp32", random_weights=True,
                          baseline=True, batch_tokens=100_000, progress=reported.append))  # fmt: skip
    assert [r.skipped is None for r in rows] == [True, False]
    assert sum(reported) == pytest.approx(bench.planned_work(["tiny"], [8, 2000], 2, 16, repeat=2, baseline=True))


def test_peak_memory_where_there_is_no_proc(monkeypatch):
    """Without /proc: macOS's ru_maxrss is in bytes (Linux's in KiB; a Mac's peak read 1,024 times too high), and
    Windows has no resource module (bench failed after its first measure): no figure there."""
    import sys
    import types
    from pathlib import Path

    import torch

    def no_proc(self, *args, **kwargs):
        raise FileNotFoundError(str(self))

    monkeypatch.setattr(Path, "read_text", no_proc)
    usage = types.SimpleNamespace(ru_maxrss=3 * 2**30)
    resource = types.SimpleNamespace(RUSAGE_SELF=0, getrusage=lambda who: usage)
    monkeypatch.setitem(sys.modules, "resource", resource)
    memory = bench.PeakMemory(torch.device("cpu"))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert memory.peak_mb() == 3 * 1024
    monkeypatch.setattr(sys, "platform", "linux")
    assert memory.peak_mb() == 3 * 2**20  # KiB: a peak of 3 TiB, as Linux would mean it
    monkeypatch.setitem(sys.modules, "resource", None)  # import resource: ImportError, as on Windows
    assert memory.peak_mb() is None
