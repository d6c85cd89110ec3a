"""Dynamic batching: requests waiting together share one scoring call; a failure stays with its request."""

from __future__ import annotations

import threading

import pytest

from qrr import Reranker
from qrr.errors import InputError
from qrr.server.batcher import Batcher, QueueFull


class Gate(Reranker):
    """The fake model that holds its first call until released, and records the pairs of every call."""

    def __init__(self):
        super().__init__("fake")
        self.calls: list[list] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def score(self, pairs, *args, **kwargs):
        pairs = list(pairs)
        self.calls.append(pairs)
        self.started.set()
        self.release.wait(30)
        if any(q == "bad" for q, _, _ in pairs):
            raise InputError("a bad query")
        return super().score(pairs, *args, **kwargs)


def triples(query, n):
    return [(query, f"document {i}", None) for i in range(n)]


def test_requests_that_wait_together_share_one_call_with_the_scores_they_get_alone():
    model = Gate()
    batcher = Batcher(model)
    first = batcher.submit(triples("a", 2))
    assert model.started.wait(10)  # the model is busy with the first request
    waiting = [batcher.submit(triples(q, 3)) for q in ("b", "c", "d")]
    assert batcher.depth == 3
    model.release.set()
    results = [job.future.result(30) for job in (first, *waiting)]
    assert [len(c) for c in model.calls] == [2, 9]  # the three waiting requests in one call
    alone = Reranker("fake")
    for (scores, stats), query, n in zip(results, "abcd", (2, 3, 3, 3), strict=True):
        assert scores == alone.score(triples(query, n))
        assert stats.pairs == n and stats.tokens == alone.score(triples(query, n)).stats.tokens
    batcher.stop(10)


def test_a_failing_request_fails_alone():
    model = Gate()
    batcher = Batcher(model)
    first = batcher.submit(triples("a", 1))
    assert model.started.wait(10)
    bad, good = batcher.submit(triples("bad", 2)), batcher.submit(triples("ok", 2))
    model.release.set()
    first.future.result(30)
    with pytest.raises(InputError, match="a bad query"):
        bad.future.result(30)
    assert len(good.future.result(30)[0]) == 2
    batcher.stop(10)


def test_a_full_queue_and_a_cancelled_job():
    model = Gate()
    batcher = Batcher(model, max_queue=2)
    batcher.submit(triples("a", 1))
    assert model.started.wait(10)
    kept, dropped = batcher.submit(triples("b", 1)), batcher.submit(triples("c", 1))
    with pytest.raises(QueueFull):
        batcher.submit(triples("d", 1))
    batcher.cancel(dropped)  # its client left
    assert batcher.depth == 1 and dropped.future.cancelled()
    model.release.set()
    kept.future.result(30)
    assert all(q != "c" for call in model.calls for q, _, _ in call)
    batcher.stop(10)
    with pytest.raises(QueueFull, match="stopping"):
        batcher.submit(triples("e", 1))


def test_merged_one_document_requests_share_forward_passes():
    model = Gate()
    batcher = Batcher(model)
    first = batcher.submit(triples("a", 1))
    assert model.started.wait(10)
    jobs = [batcher.submit([(f"query {n}", "a document", None)]) for n in range(8)]
    model.release.set()
    first.future.result(30)
    assert [len(job.future.result(30)[0]) for job in jobs] == [1] * 8
    engine = model.engine
    assert max(engine.rows) == 8  # eight requests, one forward pass
    batcher.stop(10)


def test_the_worker_outlives_any_failure():
    class Breaking(Gate):
        def score(self, pairs, *args, **kwargs):
            if list(pairs)[0][0] == "stop":
                raise KeyboardInterrupt  # not even this ends the worker
            return super().score(pairs, *args, **kwargs)

    model = Breaking()
    model.release.set()
    batcher = Batcher(model)
    with pytest.raises(KeyboardInterrupt):
        batcher.submit(triples("stop", 1)).future.result(30)
    assert len(batcher.submit(triples("fine", 2)).future.result(30)[0]) == 2
    batcher.stop(10)
