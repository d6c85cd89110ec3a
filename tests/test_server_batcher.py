"""Dynamic batching: requests waiting together share one scoring call; a failure stays with its request."""

from __future__ import annotations

import threading
import time

import pytest

from qrr import Reranker
from qrr.errors import InputError
from qrr.family import QWEN3
from qrr.server.batcher import (
    Abandoned,
    Batcher,
    Job,
    QueueFull,
    _Call,
    estimate,
    frame_tokens,
    retry_after,
    split,
)


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


# the tests of parts count requests by their texts alone, without the prompt's frame: about 500 tokens a pair of
# "word " * 400, whatever the tokenizer
TEXTS = (0, 0)


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


def test_a_call_takes_waiting_requests_while_they_fit_one_forward_pass():
    model = Gate()  # a CPU's budget: 1,024 tokens a forward pass
    batcher = Batcher(model)
    first = batcher.submit(triples("a", 1))
    assert model.started.wait(10)
    # about 450 tokens each by their characters and the prompt's frame: two fit one pass, a third waits for the next
    # call, in order
    jobs = [batcher.submit([(f"query {n}", "word " * 300, None)]) for n in range(3)]
    jobs.append(batcher.submit(triples("small", 2)))
    model.release.set()
    for job in (first, *jobs):
        job.future.result(30)
    assert [[q for q, _, _ in call] for call in model.calls] == [
        ["a"], ["query 0", "query 1"], ["query 2", "small", "small"]]  # fmt: skip
    batcher.stop(10)


def test_a_request_is_estimated_by_its_bytes_and_the_prompts_frame_each_pair_at_most_the_max_length():
    assert estimate([("abcd", "efgh", None), ("abcd", "efgh", "ijkl")], 8192) == 2 + 3
    assert estimate([("", "\u4e2d\u6587" * 4, None)], 8192) == 6  # Chinese: about a token a character, 3 bytes
    assert estimate([("q", "x" * 200_000, None)], 8192) == 8192  # cut to fit: no longer than that
    # the frame: before the texts once where pairs share their query and instruction (a shared prefix), after each
    pairs = [("abcd", "efgh", None), ("abcd", "efgh", None), ("abcd", "efgh", "ijkl")]
    assert estimate(pairs, 8192, frame=(50, 9)) == (50 + 1 + 1 + 9) + (1 + 9) + (50 + 2 + 1 + 9)
    assert estimate(pairs, 8192, frame=(50, 9), share=False) == 3 * (50 + 1 + 1 + 9) + 1
    # the real tokenizer: the frame of the default recipe and the Reranker's instruction, without the texts
    assert frame_tokens(Reranker("fake")) == (64, 9)
    assert frame_tokens(Reranker("fake", instruction="Find")) == (64 - 12, 9)  # the default instruction's 13 tokens
    # estimated against the prompt's real tokens: the Reranker's instruction once, as the server writes it into every
    # pair (counted twice, a server with a long -i took half the pairs a pass); a pair's own beside it
    for instruction, head, real in ((None, 64, 76), ("Find", 52, 64)):
        reranker = Reranker("fake", instruction=instruction)
        batcher = Batcher(reranker)
        said = reranker.instruction or QWEN3.default_instruction
        assert len(reranker.prompter.encode([("a query", "a document", said)])[0].ids) == real
        for i in (None, said):
            assert batcher.submit([("a query", "a document", i)]).tokens == head + 7 // 4 + 10 // 4 + 9 == real
        own = "Find the opposite"
        assert batcher.submit([("a query", "a document", own)]).tokens == head + (7 + 17) // 4 + 10 // 4 + 9
        batcher.stop(10)


def test_a_backlog_of_short_requests_is_taken_about_a_forward_pass_a_call():
    """Estimated by their texts alone, at a tenth of their tokens, 200 short requests that waited together went into
    one call of ten forward passes: the first of them was answered after all ten."""
    model = Gate()  # a CPU's budget: 1,024 tokens a forward pass
    batcher = Batcher(model)
    first = batcher.submit(triples("a", 1))
    assert model.started.wait(10)
    jobs = [batcher.submit([(f"what is item {n}?", f"item {n} is a thing", None)]) for n in range(200)]
    model.release.set()
    for job in (first, *jobs):
        job.future.result(30)
    assert len(model.prompter.encode([jobs[0].triples[0]])[0].ids) == 83  # the prompt's real tokens
    assert [len(call) for call in model.calls] == [1] + [12] * 16 + [8]  # 12 x 83 = 996 tokens a call
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


def test_a_call_whose_every_client_left_stops_at_its_next_forward_pass(fake, tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("0")  # batch n runs once the file says n
    name, _ = fake(gate=gate)
    model = Reranker(name)
    batcher = Batcher(model)
    pairs = triples("a query", 40)  # two forward passes: 32 rows, then 8
    gone = batcher.submit(pairs)
    until(lambda: batcher.busy)
    batcher.cancel(gone)  # its client left while the model was on it
    gate.write_text("1000")
    with pytest.raises(Abandoned):
        gone.future.result(30)
    assert (model.engine.rows, batcher.calls, batcher.abandoned) == ([32], 0, 1)  # the second pass never ran
    # a call shared with a request whose client stays runs to its end, and the worker goes on
    gate.write_text("1")
    first = batcher.submit(triples("held", 1))
    until(lambda: batcher.busy)
    left, stays = batcher.submit(pairs), batcher.submit(triples("b query", 40))  # they wait: one call
    gate.write_text("3")
    until(lambda: len(model.engine.rows) == 4)  # the shared call's second pass waits
    batcher.cancel(left)
    gate.write_text("1000")
    assert first.future.result(30)[0] == Reranker(name).score(triples("held", 1))
    assert stays.future.result(30)[0] == Reranker(name).score(triples("b query", 40))
    assert model.engine.rows == [32, 1, 32, 8, 32, 8] and (batcher.calls, batcher.abandoned) == (2, 1)
    # /metrics' pairs are those of the calls run to their end, a client's who left as its call ran on too
    assert batcher.scored.pairs == 1 + 40 + 40
    assert batcher.scored.tokens == sum(stays.future.result()[0].pair_tokens) * 2 + first.future.result()[1].tokens
    batcher.stop(10)


def test_a_stop_does_not_wait_on_a_pass_no_client_waits_for(fake, tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("0")
    name, _ = fake(gate=gate)
    batcher = Batcher(Reranker(name))
    held = batcher.submit(triples("a query", 1))
    until(lambda: batcher.busy)  # in its forward pass, at the gate
    assert batcher.stop(0.2) is False  # its client waits: a stop waits for it (here, only so long)
    batcher.cancel(held)
    start = time.monotonic()
    assert batcher.stop(30) is False and time.monotonic() - start < 5  # no one waits for it: not waited for
    gate.write_text("1000")
    until(lambda: not batcher.busy)
    assert batcher.stop(30) is True  # the pass ended: so did the worker
    with pytest.raises(Abandoned):
        held.future.result(30)


def test_a_full_queue_asks_a_client_to_come_back_when_the_call_running_now_ends():
    call = _Call([Job([("q", "d", None)] * 40, tokens=400)], began=100.0)  # 40 pairs, about 400 tokens
    assert call.seconds_left(101.0, rate=None) == 0.0  # nothing tells
    assert call.seconds_left(101.0, rate=80.0) == 4.0  # before its first pass: its tokens at the last call's pace
    assert call.seconds_left(109.0, rate=80.0) == 0.0
    call.done, call.last = 10, 102.0  # a pass ended: 10 pairs in 2 s, 30 left
    assert call.seconds_left(102.0, rate=80.0) == 6.0
    assert call.seconds_left(105.0, rate=80.0) == 3.0  # the time since its last pass counts down, not up
    assert call.seconds_left(120.0, rate=80.0) == 0.0
    assert [retry_after(s) for s in (0.0, 0.2, 1.0, 6.1, 59.5, 600.0)] == ["1", "1", "1", "7", "60", "60"]
    batcher = Batcher(Gate())
    assert batcher.seconds_left() == 0.0  # no call runs
    batcher.stop(10)


class Stepping(Reranker):
    """The fake model whose every call waits for its own go, recording its pairs, and fails where ``check`` says."""

    def __init__(self):
        super().__init__("fake")
        self.calls: list[list] = []
        self.entered, self.go = threading.Semaphore(0), threading.Semaphore(0)

    def score(self, pairs, *args, **kwargs):
        pairs = list(pairs)
        self.calls.append(pairs)
        self.entered.release()
        assert self.go.acquire(timeout=30)
        self.check(pairs)
        return super().score(pairs, *args, **kwargs)

    def check(self, pairs) -> None:
        """Raise where a call of ``pairs`` fails: none does."""

    def step(self) -> None:
        """Let the call in the model end, and wait for the next to enter it."""
        self.go.release()
        assert self.entered.acquire(timeout=30)


def test_after_a_merged_call_fails_a_request_whose_client_left_is_not_scored_again():
    class Holding(Stepping):
        """A query "bad" fails."""

        def check(self, pairs) -> None:
            if any(q == "bad" for q, _, _ in pairs):
                raise InputError("a bad query")

    model = Holding()
    batcher = Batcher(model)
    first = batcher.submit(triples("first", 1))
    assert model.entered.acquire(timeout=30)
    gone, bad = batcher.submit(triples("gone", 3)), batcher.submit(triples("bad", 2))
    model.go.release()
    assert model.entered.acquire(timeout=30)  # the two, merged, in the model
    batcher.cancel(gone)
    model.go.release()  # the merged call fails: each is tried alone, but the one no one waits for
    assert model.entered.acquire(timeout=30)
    model.go.release()
    first.future.result(30)
    with pytest.raises(InputError, match="a bad query"):
        bad.future.result(30)
    with pytest.raises(Abandoned):
        gone.future.result(30)
    assert [{q for q, _, _ in call} for call in model.calls] == [{"first"}, {"gone", "bad"}, {"bad"}]
    batcher.stop(10)


def until(condition, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_a_request_of_many_documents_is_scored_in_parts_with_others_between():
    """A request of 1,000 documents was one call: every request that came after it waited for all of it."""
    model = Gate()  # a CPU's budget: 1,024 tokens a forward pass, so parts of at most 4,096 estimated tokens
    batcher = Batcher(model, frame=TEXTS)
    big = [("big", "word " * 400, None)] * 20  # about 500 tokens each: parts of 8, 8 and 4 pairs
    job = batcher.submit(big)
    assert [(part.start, part.stop, tokens) for part, tokens in job.parts] == [(0, 8, 4000), (8, 16, 4000),
                                                                                (16, 20, 2000)]  # fmt: skip
    assert model.started.wait(10)  # in its first part
    small = batcher.submit(triples("small", 2))
    assert batcher.depth == 1
    model.release.set()
    scores, stats = job.future.result(30)
    assert [[q for q, _, _ in call] for call in model.calls] == [["big"] * 8, ["small"] * 2, ["big"] * 8,
                                                                 ["big"] * 4]  # fmt: skip
    alone = Reranker("fake").score(big)
    assert scores == alone and scores.pair_cut == alone.pair_cut == [False] * 20
    assert (stats.pairs, stats.tokens, stats.truncated) == (20, alone.stats.tokens, 0) and stats.seconds > 0
    assert small.future.result(30)[0] == Reranker("fake").score(triples("small", 2))
    batcher.stop(10)


def test_a_request_in_parts_whose_client_left_is_scored_no_further():
    model = Stepping()
    batcher = Batcher(model, part_tokens=1000, frame=TEXTS)  # parts of two pairs
    big = [("big", "word " * 400, None)] * 20  # about 500 tokens each
    gone = batcher.submit(big)
    assert model.entered.acquire(timeout=30)  # its first part
    # a part's worth of tokens (about 1,000): then the parts' turn again; too many to join a part in a forward pass
    others = [("oth", "word " * 400, None)] * 2
    other = batcher.submit(others)
    model.step()  # its first part scored: the other request, which came meanwhile, is in the model now
    assert batcher.depth == 0  # begun, it does not count as waiting (--max-queue)
    batcher.cancel(gone)  # its client left between two parts: none scored after, its future told
    with pytest.raises(Abandoned):
        gone.future.result(30)
    assert batcher.depth == 0
    # left during a call it shared with a request whose client stays: that call ends, and none of it is scored after
    left = batcher.submit(big)
    stays = batcher.submit(triples("stays", 2))
    model.step()  # the other request's call ended: the next takes a part of two pairs and the two pairs behind it
    batcher.cancel(left)
    model.go.release()
    assert len(stays.future.result(30)[0]) == 2
    with pytest.raises(Abandoned):
        left.future.result(30)
    until(lambda: not batcher.busy and not batcher.depth)
    assert [[q for q, _, _ in call] for call in model.calls] == [["big"] * 2, ["oth"] * 2,
                                                                 ["big"] * 2 + ["stays"] * 2]  # fmt: skip
    assert other.future.result(30)[0] == Reranker("fake").score(others)
    batcher.stop(10)


def test_requests_of_parts_end_one_after_another_with_others_between():
    """Each request of parts took its turn a part at a time: four of them came to their ends all at once, each
    later than it would have one after another; and a request that came after two of them waited for both."""
    model = Stepping()
    batcher = Batcher(model, max_queue=2, part_tokens=1000, frame=TEXTS)  # parts of two pairs
    big = [("one", "word " * 400, None)] * 4  # two parts (about 500 tokens a pair)
    first = batcher.submit(big)
    assert model.entered.acquire(timeout=30)
    second = batcher.submit([("two", "word " * 400, None)] * 4)
    small = batcher.submit(triples("small", 1))
    with pytest.raises(QueueFull, match="^2 requests are waiting$"):
        batcher.submit(triples("refused", 1))  # --max-queue 2
    model.step()  # the first's first part ended: the small request goes next; the second waits for the first
    later = batcher.submit(triples("later", 1))  # the first, begun, does not count against --max-queue
    model.step()  # requests of one part go on until they took a part's tokens, or none wait
    model.step()  # the first's last part, before the second
    model.step()
    model.step()
    model.go.release()
    for job in (first, second, small, later):
        job.future.result(30)
    assert [[q for q, _, _ in call] for call in model.calls] == [
        ["one"] * 2, ["small"], ["later"], ["one"] * 2, ["two"] * 2, ["two"] * 2]  # fmt: skip
    assert first.future.result(30)[0] == Reranker("fake").score(big)
    batcher.stop(10)


def test_the_request_with_the_fewest_parts_left_goes_first():
    model = Stepping()
    batcher = Batcher(model, part_tokens=1000, frame=TEXTS)  # parts of two pairs
    big = batcher.submit([("big", "word " * 400, None)] * 8)  # four parts
    assert model.entered.acquire(timeout=30)
    medium = batcher.submit([("mid", "word " * 400, None)] * 4)  # two: it went after all four of the other's
    for _ in range(5):
        model.step()
    model.go.release()
    for job in (big, medium):
        job.future.result(30)
    assert [call[0][0] for call in model.calls] == ["big", "mid", "mid", "big", "big", "big"]
    batcher.stop(10)


def test_a_long_request_is_not_held_forever_by_a_stream_of_shorter_ones():
    model = Stepping()
    batcher = Batcher(model, part_tokens=1000, frame=TEXTS)  # parts of two pairs
    long = batcher.submit([("big", "word " * 400, None)] * 12)  # six parts
    assert model.entered.acquire(timeout=30)
    shorts = []
    for n in range(30):  # a request of two parts comes at every call: the fewest parts left alone took them all
        shorts.append(batcher.submit([(f"m{n:02}", "word " * 400, None)] * 4))
        model.step()
    assert long.future.done()
    assert [call[0][0] for call in model.calls].index("big", 1) < 20  # its second part came within 20 calls
    model.go.release(1000)
    for job in shorts:
        job.future.result(30)
    batcher.stop(10)


def test_requests_of_one_part_get_a_parts_worth_of_tokens_between_two_parts():
    """A call of theirs took one forward pass, a part up to four: under a backlog they had a fifth of the model."""
    model = Stepping()
    batcher = Batcher(model, frame=TEXTS)  # a CPU's: passes of 1,024 tokens, parts of 4,096
    long = batcher.submit([("big", "word " * 400, None)] * 16)  # parts of 8 pairs, about 4,000 tokens
    assert model.entered.acquire(timeout=30)
    small = [batcher.submit([(f"s{n}", "word " * 400, None)] * 2) for n in range(8)]  # about 1,000 tokens each
    model.go.release(1000)
    for job in (long, *small):
        job.future.result(30)
    assert [call[0][0] for call in model.calls] == ["big", "s0", "s1", "s2", "s3", "big", "s4", "s5", "s6", "s7"]
    batcher.stop(10)


def test_a_failure_in_a_part_ends_its_request_alone():
    class Failing(Stepping):
        """A call with a document "fail ..." fails, and one that merges the query "stop" with others; one of "stop"
        alone raises KeyboardInterrupt."""

        def check(self, pairs) -> None:
            queries = {q for q, _, _ in pairs}
            if queries == {"stop"}:
                raise KeyboardInterrupt
            if any(d.startswith("fail") for _, d, _ in pairs) or "stop" in queries:
                raise InputError("a bad part")

    ok, bad = ("big", "word " * 400, None), ("big", "fail " * 400, None)
    model = Failing()
    batcher = Batcher(model, part_tokens=1000, frame=TEXTS)
    # its second part fails: it gets the error, its third part is never scored, a request merged with it is not
    failing = batcher.submit([ok, ok, bad, bad, ok, ok])
    assert model.entered.acquire(timeout=30)
    small = batcher.submit([("sml", "word " * 400, None)] * 2)  # a part's worth: then the parts' turn
    model.step()  # the small request's call: then the failing part with the one that came meanwhile
    merged = batcher.submit(triples("merged", 2))
    model.step()
    model.step()  # the merged call failed: each alone
    model.step()
    model.go.release()
    with pytest.raises(InputError, match="a bad part"):
        failing.future.result(30)
    assert len(small.future.result(30)[0]) == 2 and len(merged.future.result(30)[0]) == 2
    until(lambda: not batcher.busy and not batcher.depth)
    assert [len(call) for call in model.calls] == [2, 2, 4, 2, 2]
    # a request of parts scored alone after a merged call failed, then the other's failure ends the worker's call:
    # it is told too, and none of it is scored after (it stayed in the queue, failed, and failed others' calls)
    model.calls.clear()
    parted = batcher.submit([ok] * 6)
    assert model.entered.acquire(timeout=30)
    small = batcher.submit([("sml", "word " * 400, None)] * 2)
    model.step()
    stopping = batcher.submit(triples("stop", 1))
    model.step()  # its second part with the request "stop": merged, it fails
    model.step()  # the request of parts alone: its second part scored, a third left
    model.step()  # "stop" alone: KeyboardInterrupt
    model.go.release()
    for job in (parted, stopping):
        with pytest.raises(KeyboardInterrupt):
            job.future.result(30)
    until(lambda: not batcher.busy and not batcher.depth)
    assert [[q for q, _, _ in call] for call in model.calls] == [
        ["big"] * 2, ["sml"] * 2, ["big"] * 2 + ["stop"], ["big"] * 2, ["stop"]]  # fmt: skip
    later = batcher.submit(triples("later", 1))
    model.go.release()
    assert len(later.future.result(30)[0]) == 1  # the worker goes on
    batcher.stop(10)


def test_split_parts_by_pairs_and_tokens():
    assert split([5, 5, 5], 2, 100) == [(slice(0, 2), 10), (slice(2, 3), 5)]
    assert split([60, 50, 10, 200, 1], 10, 100) == [(slice(0, 1), 60), (slice(1, 3), 60), (slice(3, 4), 200),
                                                    (slice(4, 5), 1)]  # fmt: skip
    assert split([], 10, 100) == [(slice(0, 0), 0)]
