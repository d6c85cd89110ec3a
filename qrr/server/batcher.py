"""Dynamic batching: requests that arrive while the model is busy are scored together, in one call of the
``Reranker``, so their pairs share forward passes within the token budget (and a query's shared prefix). A call
takes waiting requests while they fit one forward pass (``batch_tokens``, by an estimate from their bytes), or
the first alone: each of them is answered when the call ends, so merging more only made the first wait on the
others' work, with nothing shared to gain (on a CPU, three of a burst of four requests were answered together
after 11.5 s, not after 6, 9 and 11.5 s). A request gets the same scores alone or among others, within rounding (a
batch's shape moves bf16 scores by a few 1e-3, more for a long document, fp32 ones by up to about 1e-6; see
docs/serving.md, Batching).

One worker thread runs the model; request handlers wait on futures. No web framework here.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from qrr.reranker import CHUNK, Reranker, Results, Stats, spans
from qrr.server import MAX_QUEUE


class QueueFull(Exception):
    """More requests are waiting than the queue holds."""


@dataclass(eq=False)  # one request is one job: equal pairs are another's (and were compared pair by pair)
class Job:
    """One request's pairs ``(query, document, instruction)``; its future gets ``(scores, stats)``, the scores a
    ``Results`` with each pair's ``pair_cut``. ``tokens``: about how many its pairs take (``estimate``). A job is
    scored a part at a time (``parts``: slices of its pairs and their estimated tokens), each in a call of its own
    with the requests that came meanwhile between two: a request of many documents held every request behind it
    for the whole of its call (a minute on a CPU)."""

    triples: list[tuple[str, str, str | None]]
    future: Future = field(default_factory=Future)
    left: bool = False  # its client left while it was being scored
    tokens: int = 0
    parts: list[tuple[slice, int]] = field(default_factory=list)  # none given: one part, the whole
    done: int = 0  # parts scored
    scored: Results = field(default_factory=Results)  # the scores of the parts scored, with their pair_tokens and cut
    seconds: float = 0.0  # its share of the time of the calls that scored its parts
    passed: int = 0  # the turns of parts that went to another job

    def __post_init__(self) -> None:
        self.parts = self.parts or [(slice(0, len(self.triples)), self.tokens)]

    @property
    def part(self) -> tuple[slice, int]:
        """The part to score next: its pairs' slice and their estimated tokens."""
        return self.parts[self.done]

    def add(self, scores: Results, seconds: float) -> bool:
        """Keep a part's ``scores`` (with their ``pair_tokens`` and ``pair_cut``) and its share of a call's
        ``seconds``: ``True`` where it was the last part, and the future has the whole request's result (or where
        the future has ended already: nothing more of it is scored)."""
        if self.future.done():
            return True
        self.scored += scores
        self.scored.pair_tokens += scores.pair_tokens
        self.scored.pair_cut += scores.pair_cut
        self.seconds += seconds
        self.done += 1
        if self.done < len(self.parts):
            return False
        self.scored.stats = Stats(pairs=len(self.scored), tokens=sum(self.scored.pair_tokens),
                                  truncated=sum(self.scored.pair_cut), seconds=self.seconds)  # fmt: skip
        self.future.set_result((self.scored, self.scored.stats))
        return True


BYTES_PER_TOKEN = 4  # of UTF-8, in Qwen3's tokenizer


def estimate(triples, max_length: int, frame: tuple[int, int] = (0, 0), share: bool = True,
             instruction: str | None = None) -> int:  # fmt: skip
    """About how many tokens ``triples`` take in forward passes: each text's UTF-8 bytes over ``BYTES_PER_TOKEN``
    (English about 4 characters a token, Chinese about one: 3 bytes), and the prompt's ``frame`` (``frame_tokens``:
    its tokens before a pair's texts, ``instruction`` included, and after them; a pair's own instruction is counted
    beside it); a pair at most ``max_length`` (a longer document is cut to it). With ``share`` (a shared prefix),
    the query, its instruction and the tokens before them count once for pairs in a row that share them, as they run
    once."""
    return sum(_estimates(triples, max_length, frame, share, instruction))


def _estimates(triples, max_length: int, frame: tuple[int, int] = (0, 0), share: bool = True,
               instruction: str | None = None) -> list[int]:  # fmt: skip
    """``estimate`` of each pair (a shared prefix counted in the first pair that has it)."""
    head, tail = frame
    sizes, last = [], None
    for q, d, i in triples:
        size = len(d.encode()) // BYTES_PER_TOKEN + tail
        if not share or (q, i) != last:
            own = "" if i is None or i == instruction else i  # the frame's: the server writes it into every pair
            size += head + (len(q.encode()) + len(own.encode())) // BYTES_PER_TOKEN
            last = (q, i)
        sizes.append(min(size, max_length))
    return sizes


def frame_tokens(reranker: Reranker) -> tuple[int, int]:
    """The tokens of ``reranker``'s prompt besides a pair's query and document: before them (the system prompt, the
    markers, the Reranker's instruction), and after them (the suffix the answer follows). Short requests were
    estimated at a tenth of their tokens without them, and a backlog of 200 went into one call of ten forward passes,
    the first answered last."""
    prompter = reranker.prompter
    tail = len(prompter.suffix_ids)
    return len(prompter.encode([("", "", reranker.instruction)])[0].ids) - tail, tail


def split(sizes: list[int], max_pairs: int, max_tokens: int) -> list[tuple[slice, int]]:
    """Consecutive parts of pairs of estimated ``sizes``, each of at most ``max_pairs`` pairs and ``max_tokens``
    tokens (at least one pair): ``(slice, tokens)``."""
    parts, start, tokens = [], 0, 0
    for n, size in enumerate(sizes):
        if n > start and (n - start >= max_pairs or tokens + size > max_tokens):
            parts.append((slice(start, n), tokens))
            start, tokens = n, 0
        tokens += size
    parts.append((slice(start, len(sizes)), tokens))
    return parts


# a part of a request is at most this many forward passes' tokens: a request behind it waits for about as many, and
# each part's query prefix is made again (see BENCHMARKS.md)
PART_PASSES = 4


class Abandoned(Exception):
    """Every request of a scoring call lost its client: the call stopped at a forward pass."""


@dataclass(eq=False)
class _Call:
    """A scoring call the model runs: its jobs, their pairs and estimated tokens, when it began, the pairs its
    forward passes have scored and when the last one ended (``time.perf_counter``)."""

    jobs: list[Job]
    began: float
    pairs: int = field(init=False)
    tokens: int = field(init=False)
    done: int = 0
    last: float = 0.0

    def __post_init__(self) -> None:
        self.pairs = sum(_size(job) for job in self.jobs)
        self.tokens = sum(job.part[1] for job in self.jobs)

    def scored(self, n: int) -> None:
        self.last = time.perf_counter()
        self.done += n

    def seconds_left(self, now: float, rate: float | None) -> float:
        """About how long it takes yet: at its own pace up to its last pass, less the time since; before its first
        pass, its tokens at ``rate`` (the last call's estimated tokens a second), less the time since it began;
        0 where nothing tells."""
        if self.done:
            return max((self.last - self.began) / self.done * (self.pairs - self.done) - (now - self.last), 0.0)
        if rate:
            return max(self.tokens / rate - (now - self.began), 0.0)
        return 0.0

    @property
    def for_no_one(self) -> bool:
        """Whether the client of every request in it has left."""
        return all(job.left for job in self.jobs)


class Batcher:
    """Scores jobs on one worker thread, merging the jobs waiting when it starts a call (up to ``max_pairs``
    pairs and ``max_tokens`` estimated tokens, by default the reranker's ``batch_tokens``; at least one job).
    A job is scored in parts of at most ``max_pairs`` pairs and ``part_tokens`` tokens (``PART_PASSES`` times
    ``max_tokens``). Where jobs of one part wait, they and the parts take turns by tokens (after a part, calls of
    them until they have taken as many), so that such a job waits for about one part where few wait, and gets half
    the model under a backlog. Of the jobs of parts, the one with the fewest parts left less the turns it was passed
    over goes next: equal ones end one after another rather than all at the end, and a long one is not held forever
    by short ones. ``max_queue`` bounds the jobs waiting to begin (a begun job's parts are bounded by the job);
    ``submit`` raises ``QueueFull`` past it. Jobs are estimated by their texts and the prompt's ``frame`` (by
    default the reranker's, ``frame_tokens``)."""

    def __init__(self, reranker: Reranker, max_queue: int = MAX_QUEUE, max_pairs: int = CHUNK,
                 max_tokens: int | None = None, part_tokens: int | None = None,
                 frame: tuple[int, int] | None = None):  # fmt: skip
        self.reranker = reranker
        self.max_queue = max_queue
        self.max_pairs = max_pairs
        self.max_tokens = max_tokens if max_tokens is not None else reranker.batch_tokens
        self.part_tokens = part_tokens if part_tokens is not None else PART_PASSES * self.max_tokens
        self.frame = frame if frame is not None else frame_tokens(reranker)
        self._waiting: deque[Job] = deque()  # jobs not started, as they came
        self._parted: list[Job] = []  # jobs of parts begun, between two of their parts
        # the tokens jobs of one part may take before the next part, where they wait: a part's (theirs took a forward
        # pass a call, a part up to PART_PASSES; a turn a call gave them a fifth of the model under a backlog)
        self._owed = 0
        self._ready = threading.Condition()
        self._stopping = False
        self.busy = False
        self.calls = 0  # scoring calls made, for /metrics
        self.abandoned = 0  # calls stopped because every client of theirs had left
        self.scored = Stats()  # what the calls run to their end scored, for /metrics (replaced whole: read anywhere)
        self._running: _Call | None = None
        self._rate: float | None = None  # estimated tokens a second of the last call that ran to its end
        self._thread = threading.Thread(target=self._run, name="qrr-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Jobs waiting to be scored (not one whose parts have begun)."""
        return len(self._waiting)

    def submit(self, triples) -> Job:
        triples = list(triples)
        reranker = self.reranker  # its instruction as its text, the default's too: what the server writes into pairs
        sizes = _estimates(triples, reranker.max_length, self.frame, reranker.share_prefix,
                           reranker.settings()["instruction"])  # fmt: skip
        job = Job(triples, tokens=sum(sizes), parts=split(sizes, self.max_pairs, self.part_tokens))
        with self._ready:
            if self._stopping:
                raise QueueFull("the server is stopping")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are waiting")
            self._waiting.append(job)
            self._ready.notify()
        return job

    def cancel(self, job: Job) -> None:
        """Drop a job whose client left: one waiting at once; one being scored stops at the call's next forward pass
        where every job of the call has left (a timed-out client's work held up every request behind it)."""
        with self._ready:
            if job in self._waiting:
                self._waiting.remove(job)
                job.future.cancel()
            elif job in self._parted:  # between two of its parts: running, it cannot be cancelled
                self._parted.remove(job)
                _abandon([job])
            else:
                job.left = True

    def seconds_left(self) -> float:
        """About how long the call running now will take yet (``_Call.seconds_left``); 0 where none runs. A full
        queue has room again then."""
        running = self._running
        return running.seconds_left(time.perf_counter(), self._rate) if running is not None else 0.0

    def stop(self, timeout: float | None = None) -> bool:
        """Finish the jobs waiting, then end the worker: ``True`` once it has ended. ``False`` where ``timeout``
        passed, or where what is left is a call no client waits for (a document longer than the budget is a forward
        pass of its own, which cannot be stopped: a minute on a CPU): its thread is left to the process's end."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        end = None if timeout is None else time.monotonic() + timeout
        while self._thread.is_alive():
            running = self._running
            if running is not None and running.for_no_one and not self._waiting and not self._parted:
                return False
            if end is not None and time.monotonic() >= end:
                return False
            self._thread.join(0.05)
        return True

    def _take(self) -> list[Job]:
        with self._ready:
            while not self._waiting and not self._parted and not self._stopping:
                self._ready.wait()
            jobs, pairs, tokens = [], 0, 0
            ones = [job for job in self._waiting if len(job.parts) == 1]
            parted = self._parted + [job for job in self._waiting if len(job.parts) > 1]  # begun first, then as came
            if parted and (self._owed <= 0 or not ones):
                # the fewest parts left first (a request of two parts goes before the rest of one of twenty; of equal
                # ones the first begun ends first, rather than all at the end), less the turns a job was passed over
                # (a stream of short ones held a long one forever)
                job = min(parted, key=lambda job: len(job.parts) - job.done - job.passed)
                for other in parted:
                    other.passed += other is not job
                if job in self._parted:
                    self._parted.remove(job)
                    jobs = [job]
                else:
                    self._waiting.remove(job)
                    jobs = [job] if job.future.set_running_or_notify_cancel() else []
                pairs, tokens = sum(_size(job) for job in jobs), sum(job.part[1] for job in jobs)
                self._owed = tokens
            for job in ones:
                if jobs and not self._joins(job, pairs, tokens):
                    break
                self._waiting.remove(job)
                if job.future.set_running_or_notify_cancel():  # from here on it cannot be cancelled
                    jobs.append(job)
                    pairs += _size(job)
                    tokens += job.part[1]
                    self._owed -= job.part[1]
            self.busy = bool(jobs)
            return jobs

    def _joins(self, job: Job, pairs: int, tokens: int) -> bool:
        """Whether ``job``'s next part joins a call of ``pairs`` pairs and ``tokens`` estimated tokens."""
        return pairs + _size(job) <= self.max_pairs and tokens + job.part[1] <= self.max_tokens

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if not jobs:
                if self._stopping and not self._waiting and not self._parted:
                    return
                continue
            self._call(jobs)
            # a failure's traceback holds the call's tensors (on a GPU, its prefixes' caches): not kept while idle
            del jobs

    def _call(self, jobs: list[Job]) -> None:
        try:
            self._score(jobs)
        except BaseException as exc:  # noqa: BLE001  (the worker lives on: no request may wait forever)
            with self._ready:
                self._parted = [job for job in self._parted if job not in jobs]  # told below: none scored after
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self.busy = False

    def _score(self, jobs: list[Job]) -> None:
        call = _Call(jobs, time.perf_counter())

        def progress(n: int) -> None:
            call.scored(n)
            if call.for_no_one:  # nobody waits for the rest: the requests behind it go first
                raise Abandoned

        if call.for_no_one:  # left since the call took them: no pass for no one
            return _abandon(jobs)
        try:
            self._running = call
            try:
                scores = self.reranker.score([t for job in jobs for t in job.triples[job.part[0]]], progress=progress)
            finally:
                self._running = None
            seconds = time.perf_counter() - call.began
        except Abandoned:
            self.abandoned += 1
            return _abandon(jobs)
        except Exception as exc:  # noqa: BLE001  (every waiting request must hear of it)
            if len(jobs) > 1:  # one request's failure is not the others': each alone, but those no one waits for
                for job in jobs:
                    if job.left:
                        _abandon([job])
                    else:
                        self._score([job])
                return
            jobs[0].future.set_exception(exc)
            return
        self.calls += 1
        self.scored = self.scored + scores.stats
        if seconds > 0 and call.tokens:
            self._rate = call.tokens / seconds
        more = [job for job, part in zip(jobs, spans(_size(job) for job in jobs), strict=True)
                if not job.add(_part_of(scores, part), seconds * (part.stop - part.start) / len(scores))]  # fmt: skip
        with self._ready:  # parts left: its next part when its turn comes, unless its client left
            for job in more:
                if job.left:
                    _abandon([job])
                else:
                    self._parted.append(job)
                    self._ready.notify()


def _part_of(scores: Results, part: slice) -> Results:
    """The scores of a call's ``part``, with their ``pair_tokens`` and ``pair_cut``."""
    own = Results(scores[part])
    own.pair_tokens, own.pair_cut = scores.pair_tokens[part], scores.pair_cut[part]
    return own


def _size(job: Job) -> int:
    """The pairs of ``job``'s next part."""
    part = job.part[0]
    return part.stop - part.start


def _abandon(jobs: list[Job]) -> None:
    """End the futures of ``jobs`` whose clients left: read by no one, each its own ``Abandoned``, with no traceback
    to keep the call's tensors alive."""
    for job in jobs:
        job.future.set_exception(Abandoned())


def retry_after(seconds: float) -> str:
    """``Retry-After``'s whole seconds for a wait of ``seconds``: at least 1, at most 60 (a client waits no longer
    between two tries, and a guess that far ahead is no better)."""
    return str(min(max(math.ceil(seconds), 1), 60))
