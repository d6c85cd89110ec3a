"""Score a stream of pairs a chunk at a time, and rank documents for a query: what every front end runs."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from qrr.engine import Progress
from qrr.errors import InputError, PairError, check_count
from qrr.formats import DocRecord, PairRecord
from qrr.formats.records import ErrorSink, check_sink
from qrr.reranker import CHUNK, RankResult, Results, Scorer, check_document_source, chunks, pair_rows, triples


@dataclass
class ScoredChunk:
    """Scores of a chunk of pairs, in input order: ``start`` is the input position of its first pair, ``indexes``
    the input position of each record scored (``on_error`` may have left some out)."""

    start: int
    records: list[PairRecord]
    scores: Results[float]
    indexes: list[int] = field(default_factory=list)


# Batches of tokens one scoring call of a stream or a run takes (see call_room). Fewer cost more: on a 2-core CPU
# (0.6B, bf16, 48 short passages; benchmarks/calls.py) calls of 2, 4 and 8 batches ran 0.95x, 0.97x and 0.99x the
# speed of one call of them all, as each call runs its own query prefix and a part-filled last batch.
CALL_BATCHES = 8


def call_room(reranker: Scorer) -> int:
    """About how many characters of pairs (4 a token) one scoring call of a stream or a run takes before its results
    are written: ``CALL_BATCHES`` batches' worth, so that on a CPU results come out (and an interruption loses)
    every 20 seconds or so for the 0.6B rather than every 1,024 pairs (13 minutes), and a GPU's batches stay full."""
    return CALL_BATCHES * 4 * reranker.batch_tokens


def call_groups(items: Iterable, room: int, weigh: Callable[[object], tuple[int, int]]) -> Iterator[list]:
    """``items`` in groups that end once they reach ``CHUNK`` pairs or ``room`` characters, or where the input
    pauses (``_IDLE``, from ``_prefetched``); ``weigh(item)`` gives an item's (pairs, characters)."""
    group, pairs, chars = [], 0, 0
    for item in items:
        if item is _IDLE:
            if group:
                yield group
                group, pairs, chars = [], 0, 0
            continue
        group.append(item)
        more, longer = weigh(item)
        pairs, chars = pairs + more, chars + longer
        if pairs >= CHUNK or chars >= room:
            yield group
            group, pairs, chars = [], 0, 0
    if group:
        yield group


_IDLE = object()  # no item came for a while: the group so far is scored (see ``_prefetched``)


READER = "qrr-read"  # the name of the thread that reads ahead


def _prefetched(items: Iterable, idle: float) -> Iterator:
    """``items``, read ahead in a thread, with ``_IDLE`` where none came for ``idle`` seconds: a producer that pauses
    (``tail -f log | qrr score``) gets the results of what it sent, where they waited for a full call before. An
    error reading them is raised here, in its place."""
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=4 * CHUNK)
    stop, end = threading.Event(), object()

    def put(entry) -> None:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            for item in items:
                put((True, item))
                if stop.is_set():
                    return
            put((True, end))
        except BaseException as exc:  # noqa: BLE001 (handed to the reader's thread, raised there)
            put((False, exc))

    threading.Thread(target=read, name=READER, daemon=True).start()
    try:
        while True:
            try:
                read_ok, item = box.get(timeout=idle)
            except queue.Empty:
                yield _IDLE
                continue
            if not read_ok:
                raise item
            if item is end:
                return
            yield item
    finally:
        stop.set()  # a consumer that stops early: the thread ends at its next item (one blocked reading stays so)


def score_records(
    reranker: Scorer, records: Iterable, progress: Progress | None = None, chunk: int | None = None,
    on_error: ErrorSink = None, idle: float | None = None, first: int = 0,
) -> Iterator[ScoredChunk]:  # fmt: skip
    """Score pairs a chunk at a time, in input order, so that each chunk's results can be written as soon as they
    are done and memory stays flat over any number of pairs. ``records``: ``PairRecord``s (from
    ``formats.read_pairs``) or whatever ``Reranker.score`` takes (``(query, document)`` tuples, dicts, ...); a
    chunk's ``records`` are its items as given. A chunk is ``chunk`` pairs, by default up to ``CHUNK`` (1,024) or
    ``call_room``'s characters. Each chunk's scores carry its ``stats``.

    A pair whose query and instruction leave no room for its document within ``max_length`` raises ``InputError``
    (naming a ``PairRecord``'s file and line), or with ``on_error`` is handed to it and left out, with the chunk's
    other pairs of that query and instruction: the chunk's ``indexes`` say which pairs were scored. With ``idle``
    (seconds, above 0; not with ``chunk``), ``records`` are read ahead in a thread and a chunk ends where none came
    for that long (an input that pauses, as a pipe from a slow producer does); the thread stops when this generator
    is closed. ``first``: the input position of ``records``' first, which messages of a pair without a file and line
    count from (a run going on past the pairs an earlier one did); chunks count from 0. The arguments are checked
    at the call, before any pair is read."""
    check_scorer(reranker)
    if idle is not None and not idle > 0:
        raise InputError(f"{{idle}} must be a number of seconds above 0, not {idle!r}", "idle")
    if idle is not None and chunk:  # it was taken, and played no part
        raise InputError("{idle}: not with {chunk}, whose chunks are fixed; give one of them", "idle", "chunk")
    check_count(chunk, "chunk")
    check_count(first, "first", least=0)
    check_sink(on_error)
    return _scored_records(reranker, records, progress, chunk, on_error, idle, first)


def _scored_records(reranker, records, progress, chunk, on_error, idle, first) -> Iterator[ScoredChunk]:
    pairs = _with_triples(records)
    if idle is not None and not chunk:
        pairs = _prefetched(pairs, idle)
    parts = chunks(pairs, chunk) if chunk else call_groups(pairs, call_room(reranker), _weigh_pair)
    with contextlib.closing(pairs) if hasattr(pairs, "close") else contextlib.nullcontext():
        # closed when the caller stops (an error, Ctrl-C, closing this generator): a thread reading ahead stops too
        yield from _scored_parts(reranker, parts, progress, on_error, first)


def _scored_parts(reranker, parts, progress, on_error, first) -> Iterator[ScoredChunk]:
    start = 0
    for part in _counted_from(parts, first):
        places = list(range(len(part)))
        if on_error is not None:  # each query checked once, before the call: not a call again for each one too long
            verdicts = {key: no_room(reranker, *key) for key in dict.fromkeys((t[0], t[2]) for _, t in part)}
            places = _left_out(part, places, first + start, {k: e for k, e in verdicts.items() if e is not None},
                               on_error)  # fmt: skip
        counted = CountedOnce(progress)
        while True:
            try:
                scores = reranker.score([part[n][1] for n in places], progress=counted.trying())
                break
            except PairError as exc:  # a reranker that cannot tell before (a server's), or no on_error
                record, (query, _, instruction) = part[places[exc.pair]]
                if on_error is None or "max_length" not in exc.params:
                    where = getattr(record, "where", None)
                    error = InputError(f"{where}: {exc.text}", *exc.params) if where else PairError(
                        first + start + places[exc.pair], exc.text, *exc.params)  # fmt: skip
                    error.skippable = "max_length" in exc.params  # a query too long: on_error would leave it out
                    raise error from None
                error = InputError(exc.text, *exc.params)
                places = _left_out(part, places, first + start, {(query, instruction): error}, on_error)
        if progress is not None and len(places) < len(part):
            progress(len(part) - len(places))  # the pairs left out are done with too
        yield ScoredChunk(start, [part[n][0] for n in places], scores, [start + n for n in places])
        start += len(part)


class CountedOnce:
    """The progress of a call that may be tried again without some pairs (a server that refuses a query too long
    after scoring the requests before it): each try counts on from what the tries before it counted, so that no pair
    is counted twice (a bar went past its total)."""

    def __init__(self, progress: Progress | None):
        self.progress, self.counted, self.now = progress, 0, 0

    def trying(self) -> Progress | None:
        """The callback for a try."""
        self.now = 0
        return self if self.progress is not None else None

    def __call__(self, n: int) -> None:
        self.now += n
        if self.now > self.counted:
            self.progress(self.now - self.counted)
            self.counted = self.now


def _counted_from(parts: Iterable, first: int) -> Iterator:
    """``parts``, a bad pair found in reading them said at its place in the input (from ``first``)."""
    parts = iter(parts)
    while True:
        try:
            part = next(parts)
        except StopIteration:
            return
        except PairError as exc:  # counted from the stream's first pair
            raise exc.shifted(first) from None
        yield part


def check_scorer(reranker, method: str = "score", param: str = "reranker") -> None:
    """``InputError`` unless ``reranker`` has the ``Reranker`` ``method`` a call needs (a model name given in its
    place failed as an ``AttributeError``); any object with it will do (``qrr.Scorer``, a mock)."""
    if isinstance(reranker, str | os.PathLike) or not callable(getattr(reranker, method, None)):
        raise InputError(f'{{{param}}} must be a Reranker (Reranker("0.6b")) or a RemoteReranker, not '
                         f"{type(reranker).__name__}", param)  # fmt: skip


def _left_out(part: list, places: list[int], start: int, bad: dict, on_error: ErrorSink) -> list[int]:
    """``places`` (of ``part``'s pairs, the first at input position ``start``) without the pairs whose ``(query,
    instruction)`` is one of ``bad``'s, each handed to ``on_error`` with ``bad``'s error, said of its line."""
    kept = []
    for n in places:
        record, (query, _, instruction) = part[n]
        error = bad.get((query, instruction))
        if error is None:
            kept.append(n)
            continue
        where = getattr(record, "where", None) or f"pair {start + n}"
        on_error(InputError(f"{where}: {error.template}", *error.params))
    return kept


def no_room(reranker, query: str, instruction: str | None = None) -> InputError | None:
    """The ``InputError`` of a ``query`` whose ``instruction`` (``None``: the reranker's) and it leave a document
    no room within the reranker's ``max_length``; ``None`` where they do, or where the reranker cannot tell before it
    scores (a server's)."""
    prompter = getattr(reranker, "prompter", None)
    if prompter is None:
        return None
    try:
        prompter.check_room(query, reranker.instruction if instruction is None else instruction)
    except InputError as exc:
        return exc
    return None


def _with_triples(records: Iterable) -> Iterator[tuple[object, tuple]]:
    """Each record with its ``(query, document, instruction)``, checked as ``Reranker.score`` checks pairs (a bad
    one a ``PairError`` at its place in ``records``)."""
    kept, read = itertools.tee(pair_rows(records, "records"))
    pairs = ((r.query, r.document, r.instruction) if isinstance(r, PairRecord) else r for r in read)
    return zip(kept, triples(pairs), strict=True)


def record_triple(record) -> tuple:
    """One record's ``(query, document, instruction)``, checked as ``_with_triples`` checks them."""
    return next(_with_triples([record]))[1]


def pair_fingerprint(record) -> str:
    """A short digest of a pair's query, document and instruction, as the record of a --resume file keeps it."""
    import hashlib

    return hashlib.sha256(orjson.dumps(record_triple(record))).hexdigest()[:16]


def _weigh_pair(pair: tuple[object, tuple]) -> tuple[int, int]:
    _, (query, document, _) = pair
    return 1, len(query) + len(document)


def rank_records(
    reranker: Scorer,
    query: str,
    records: Iterable,
    top_k: int | None = None,
    return_documents: bool = False,
    instruction: str | None = None,
    progress: Progress | None = None,
    with_fields: bool = False,
) -> Results[RankResult]:
    """Rank documents for ``query``: ``Reranker.rank``'s results, with each document's ``id``, (with
    ``return_documents``) ``text`` and (with ``with_fields``) ``fields``, a ``DocRecord``'s other fields.
    ``records``: ``DocRecord``s (from ``formats.read_documents``) or texts, whose id is ``None``. The documents
    are read and scored a chunk at a time; only scores, ids and kept texts and fields stay in memory."""
    check_scorer(reranker, "rank")
    check_document_source(
        records,
        "records",
        "[DocRecord(text, id) for id, text in d.items()]",
        "pass DocRecords, [DocRecord(text, id) for id, text in frame['document'].items()]",
    )
    texts, ids = itertools.tee(records)
    # the fields ride with the ids, which are kept with their results (with top_k, only the best k); without
    # with_fields none are kept (a chunk file's embeddings took memory for every document)
    ids = ((d.id, d.other if with_fields else None) if isinstance(d, DocRecord) else (None, {}) for d in ids)
    ranked = reranker.rank(query, (d.text if isinstance(d, DocRecord) else d for d in texts), top_k=top_k,
                           return_documents=return_documents, instruction=instruction, progress=progress,
                           ids=ids)  # fmt: skip
    for result in ranked:
        result["id"], fields = result["id"]
        if with_fields:
            result["fields"] = fields
    return ranked
