"""What every front end runs: score a stream of pairs, rank documents for a query, rerank a first-stage run (and
go on with an interrupted one). Each returns its results with its own ``Stats``; none prints or renders: progress
and messages go to the callbacks a front end passes.

Reranking a run from Python::

    from qrr import Reranker, pipelines

    inputs = pipelines.read_run_inputs("bm25.trec", "scifact/queries.jsonl", "scifact/corpus.jsonl", depth=100)
    output = pipelines.RunOutput.checked("qrr.trec")  # TREC, tag "qrr"
    output.prepare(inputs)  # where qrr.trec exists: skip the queries it completes
    done = pipelines.rerank_run(Reranker("0.6b"), inputs, output)
    print(done.stats)

Scoring pairs into a file, going on where an interrupted run stopped::

    from qrr import Reranker, formats, pipelines

    output = pipelines.ScoresOutput.checked("scores.jsonl")
    pipelines.score_run(Reranker("0.6b"), formats.read_pairs("pairs.jsonl"), output)
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import orjson

from qrr import formats
from qrr.engine import Progress, log_odds
from qrr.errors import (  # Missing and OutputBusy, raised here, named here too
    InputError,
    Interrupted,
    Missing,
    OutputBusy,
    PairError,
    Stopped,
    check_count,
    plural,
    qrr_cause,
)
from qrr.formats import DocRecord, PairRecord, Run, is_id_field
from qrr.formats.records import ErrorSink, json_text, record_fields
from qrr.reranker import (
    CHUNK,
    ProgressBar,
    RankResult,
    Results,
    Scorer,
    Stats,
    check_call,
    check_document_source,
    chunks,
    pair_rows,
    spans,
    triples,
)

try:
    import fcntl
except ImportError:  # Windows: no lock, the size check alone
    fcntl = None

DEFAULT_DEPTH = 100


# ------------------------------------------------------------------------------------------- pairs and documents


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


def _calls(items: Iterable, room: int, weigh: Callable[[object], tuple[int, int]]) -> Iterator[list]:
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
    chunk's ``records`` are its items as given. A chunk is ``chunk`` pairs, by default up to ``CHUNK`` or
    ``call_room``'s characters. Each chunk's scores carry its ``stats``.

    A pair whose query and instruction leave no room for its document within ``max_length`` raises ``InputError``
    (naming a ``PairRecord``'s file and line), or with ``on_error`` is handed to it and left out, with the chunk's
    other pairs of that query and instruction: the chunk's ``indexes`` say which pairs were scored. With ``idle``
    (seconds, above 0; not with ``chunk``), ``records`` are read ahead in a thread and a chunk ends where none came
    for that long (an input that pauses, as a pipe from a slow producer does); the thread stops when this generator
    is closed. ``first``: the input position of ``records``' first, which messages of a pair without a file and line
    count from (a run going on past the pairs an earlier one did); chunks count from 0."""
    if idle is not None and not idle > 0:
        raise InputError(f"{{idle}} must be a number of seconds above 0, not {idle!r}", "idle")
    check_count(chunk, "chunk")
    check_count(first, "first", least=0)
    check_sink(on_error)
    pairs = _with_triples(records)
    if idle is not None and not chunk:
        pairs = _prefetched(pairs, idle)
    parts = chunks(pairs, chunk) if chunk else _calls(pairs, call_room(reranker), _weigh_pair)
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
        counted = _CountedOnce(progress)
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


class _CountedOnce:
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


def check_sink(on_error: ErrorSink, param: str = "on_error") -> None:
    """``InputError`` unless ``on_error`` is ``None`` or a function (of each ``InputError``): a word such as
    ``"skip"`` failed as a ``TypeError`` at the first bad pair, hours in."""
    if on_error is not None and not callable(on_error):
        raise InputError(f"{{{param}}} must be a function that takes each error (a list's append, say), not "
                         f"{on_error!r}", param)  # fmt: skip


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


# What a --resume file was written with (``settings``: the model, instruction, max length and recipe) is kept beside
# it, in ``.NAME.qrr.json``, so that a run with other settings is refused before it scores anything: scoring a few
# results again (``check_written``, the check where no record is kept) let an instruction through whose scores moved
# less than the rounding of another dtype, and a finished file was not checked at all.
SETTINGS_FILE = ".{}.qrr.json"


def _triple(record) -> tuple:
    """One record's ``(query, document, instruction)``, checked as ``_with_triples`` checks them."""
    return next(_with_triples([record]))[1]


def settings_path(path: str | os.PathLike) -> str:
    """Where the settings of the output file ``path`` are kept: ``.NAME.qrr.json`` beside it."""
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, SETTINGS_FILE.format(name))


# the settings of a record that, unknown, leave another set-up's results unnoticed (a model is told by scoring)
UNSAID = ("model", "instruction", "max_length", "recipe")


@dataclass(kw_only=True)
class _Claimed:
    """What the outputs of ``score`` and ``rerank`` share: their file (``path``), held (``claimed``) from before a
    run reads it to go on from until its writing ends, and its bytes as read (``size``); see ``claim``. The run's
    ``settings`` (names a front end says its own way: ``model``, ``instruction``, ``max_length``, ``recipe``; a value
    of ``None`` is unknown) are kept beside a file it starts, and checked against those kept beside a file it goes
    on with: another setting is an ``InputError``, another model name is left to scoring results again
    (``settings_kept``: the settings were kept, and all matched)."""

    # the file's bytes as prepared (``open_exclusive``)
    size: int | None = field(default=None, repr=False, compare=False)
    claimed: Any = field(default=None, repr=False, compare=False)  # the file, locked from ``prepare`` to its writing
    settings: dict | None = field(default=None, repr=False, compare=False)  # the run's, kept beside the file
    held: bool = field(default=False, repr=False, compare=False)  # the file held results when prepared
    settings_kept: bool = field(default=False, repr=False, compare=False)
    # the record kept beside the file, where it is the file's
    kept: dict | None = field(default=None, repr=False, compare=False)
    # the settings this run has and the record does not know (a server that did not say them, an older qrr's
    # record): what was scored otherwise there goes unnoticed, and the record is never filled in with this run's
    unknown: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def _append(self):
        claimed, self.claimed = self.claimed, None
        handle = open_exclusive(self.path, self.size, claimed)  # this run's to write: then its record
        if not self.settings or (self.held and self.kept is None):
            return handle  # a file without a record (an older qrr's) gets none: its settings are not known
        record = {k: v for k, v in (self.kept or {}).items() if k not in ("first", "last")}
        # a server's unknowns keep what was known; what the record did not know stays unknown (the file's earlier
        # results were scored with it: filled in, it vouched for another instruction's results too)
        record |= {k: v for k, v in self.settings.items() if v is not None and k not in self.unknown}
        if not self.held:
            _keep_settings(self.path, record)
        return _Keeping(handle, self, record)

    def _written(self) -> dict:
        """What the record says of the results written, beside the settings (``ScoresOutput``: its last pair)."""
        return {}

    def _check_settings(self) -> None:
        """``InputError`` where the settings kept beside the file differ from this run's (a setting either side does
        not know is not compared). A record whose first line of the file is not the file's is another file's (one
        written over since, by other means): it is left alone."""
        self.settings_kept, self.kept, self.unknown = False, None, ()
        if not self.settings or not self.held:
            return
        kept = settings_path(self.path)
        try:
            with open(kept, "rb") as handle:
                then = orjson.loads(handle.read())
        except FileNotFoundError:
            return  # an older qrr's file, or one copied without its record: scoring results again is the check
        except (OSError, orjson.JSONDecodeError) as exc:
            then = exc
        if not isinstance(then, dict):  # damaged: going on unchecked mixed two instructions in one file
            why = then.strerror if isinstance(then, OSError) else "not qrr's JSON"
            raise InputError(f"{{output}} {self.path}: the record of its settings, {kept}, cannot be read ({why}); "
                             f"remove it to go on unchecked, or {self.verb} into a new file", "output")  # fmt: skip
        if "first" in then and then["first"] != _first_line(self.path):
            return
        self.kept = then
        self.unknown = tuple(k for k, now in self.settings.items() if now is not None and then.get(k) is None
                             and k in UNSAID)  # fmt: skip
        same = True
        for key, now in self.settings.items():
            was = then.get(key)
            if was is None or now is None:
                # a server's, or a record that does not say: what matters was not compared
                same = same and key not in ("model", "instruction") and key not in self.unknown
                continue
            if was == now:
                continue
            if key == "model":  # one model named two ways (a repo id, a folder it was copied to): its scores tell
                same = False
                continue
            raise InputError(f"{{output}} {self.path} was written with {{{key}}} {shown(was)}, not {shown(now)} (as "
                             f"{kept} keeps); go on with that, or {self.verb} into a new file", "output",
                             key)  # fmt: skip
        self.settings_kept = same

    def release(self) -> None:
        """Give up the claim ``prepare`` took, where no writing took it over (a run that failed before)."""
        if self.claimed is not None:
            self.claimed.close()
            self.claimed = None

    @contextlib.contextmanager
    def _released_on_error(self):
        """The claim, given up where reading the file fails (a file of another run, say)."""
        try:
            yield
        except BaseException:
            self.release()
            raise


GAPS_CHECKED = 10_000  # pairs a --resume file left out that a run going on with it checks


@dataclass
class ScoresOutput(_Claimed):
    """Where ``qrr score --resume OUT`` writes: JSON lines, one result a pair (``index``, the input's ids,
    ``score``), appended as chunks are scored. Where OUT exists, ``prepare`` reads how far it got: the input's
    first ``done`` pairs are done with (the last result's ``index`` + 1: pairs left out by ``on_error`` leave
    gaps), the last result ``last`` (its line's fields) at ``where``; ``cut``: a half-written last line was cut
    off."""

    path: str
    done: int = 0
    last: dict | None = None
    where: str = ""
    cut: bool = False
    copied: str | None = None  # a field a result has beyond index, ids and score (``--with-fields``), where one has
    skipping: bool = field(default=False, compare=False)  # the run skips pairs (``prepare``)
    prepared: bool = field(default=False, compare=False)  # ``prepare`` ran, and no run went on with it since
    gaps: list[int] = field(default_factory=list, compare=False)  # the first places OUT's indexes skip
    latest: tuple[int, str] | None = field(default=None, compare=False)  # the last pair written: place, fingerprint
    verb = "score"

    def passed(self, index: int, record) -> None:
        """Note ``record``, the input's pair ``index``, as the last one whose result this run wrote: the record kept
        beside OUT says which it was, so that a run going on with OUT tells another input's pair at that place
        without a model (it kept another input's scores where they were as many)."""
        self.latest = (index, _fingerprint(record))

    def _written(self) -> dict:
        if self.latest is None:
            return {k: v for k, v in (self.kept or {}).items() if k == "last"}
        return {"last": {"index": self.latest[0], "pair": self.latest[1]}}

    @classmethod
    def checked(cls, path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                settings: dict | None = None) -> ScoresOutput:  # fmt: skip
        """The output at ``path``, checked before any input is read: ``inputs`` are the files the command reads,
        which it must not write over; ``settings`` the run's (see ``_Claimed``)."""
        path = formats.path_of(path, "output")
        check_appendable(path, inputs, "scores", "the scores")
        return cls(path, settings=settings)

    def prepare(self, skipping: bool = False) -> None:
        """Read how far OUT got, cutting off a half-written last line; ``InputError`` where a line is not the
        next result ``qrr score`` writes (its ``index`` in order, a ``score`` in [0, 1]). Indexes may skip pairs
        (``gaps``) only where this run skips too (``skipping``: ``on_error``), as the run that left them out did."""
        self.done, self.last, self.where, self.cut, self.size, self.copied = 0, None, "", False, 0, None
        self.held = self.settings_kept = False
        self.prepared = True
        self.skipping, self.gaps, self.kept, self.latest, self.unknown = skipping, [], None, None, ()
        self.release()  # prepared twice: the first claim goes
        self.claimed = claim(self.path)
        if self.claimed is not None:
            with self._released_on_error():
                self.held = os.path.getsize(self.path) > 0
                self._check_settings()
                self._read()

    def _read(self) -> None:
        end = 0
        self.size = os.path.getsize(self.path)
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                where = f"{self.path}:{number}"
                # a result cut off mid-write, anywhere (a full disk cuts a buffered write at any byte)
                if not raw.endswith(b"\n") and (raw.startswith(b'{"index":') or b'{"index":'.startswith(raw)):
                    self.cut = True
                    break
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    row = None
                # indexes rise, by more than one past pairs that --on-error skip left out
                index = row.get("index") if isinstance(row, dict) else None
                if type(index) is not int or index < self.done or not _is_probability(row.get("score")):
                    raise InputError(f"{where}: expected a result of index {self.done} or later as qrr score writes "
                                     "it (JSON lines of index, ids and score, in input order); give {output} a new "
                                     "file", "output")  # fmt: skip
                if index > self.done and not self.skipping:
                    after = f"after result {self.done - 1}" if self.done else "first"
                    raise InputError(f"{where}: result {index} comes {after}: a run with {{on_error}} skip left pairs "
                                     "out; give it to go on, or give {output} a new file", "on_error",
                                     "output")  # fmt: skip
                self.gaps += range(self.done, index)[: GAPS_CHECKED - len(self.gaps)]
                self.done, self.last, self.where = index + 1, row, where
                if self.copied is None:  # any result, not only the last: a label only some pairs have
                    self.copied = next((k for k in row if k not in formats.SCORE_FIELDS and not is_id_field(k)), None)
                end += len(raw)
        if self.cut:
            os.truncate(self.path, end)
            self.size = end

    def open(self):
        """OUT, to append results to, held against another run's writes (``open_exclusive``)."""
        return self._append()

    def skip_done(self, records: Iterator) -> tuple[object | None, list[tuple[int, object]]]:
        """Read ``records`` (an iterator of the input's pairs, from its first) past the ``done`` pairs OUT holds
        results of; return the last of those (``None`` where there are none), for ``check_input``, and those OUT
        has no result of (``gaps``) with their places, for ``check_left_out``. ``InputError`` where the input has
        fewer pairs: OUT holds another input's scores."""
        last, gaps, left_out = None, set(self.gaps), []
        for n in range(self.done):
            last = next(records, None)
            if last is None:
                raise InputError(f"{{output}} {self.path} holds results of the input's first {self.done:,} pairs, but "
                                 f"the input has {plural(n, 'pair')}: it holds another input's scores; give {{output}} "
                                 "a new file", "output")  # fmt: skip
            if n in gaps:
                left_out.append((n, last))
        return last, left_out

    def write(self, writer, rows: list[dict], chunk: ScoredChunk, start: int = 0) -> None:
        """Write ``rows``, the results of ``chunk`` (``formats.score_rows``; ``start``: the input position of the
        first pair its stream was read from), with ``writer`` (a ``formats.RowWriter`` on ``open()``'s file): the
        record kept beside OUT is to name the chunk's last pair (``passed``); where the write fails (a full disk), the
        pair written before stays named."""
        before = self.latest
        # noted before the write: a writer that holds a Ctrl-C back until its write ends (the command's) raises it
        # after the rows are written
        if chunk.records:
            self.passed(start + chunk.indexes[-1], chunk.records[-1])
        try:
            writer.write(rows)
        except Exception:
            self.latest = before
            raise

    def check_left_out(self, records: Iterable[tuple[int, object]], reranker) -> None:
        """``InputError`` where a pair that OUT holds no result of (``gaps``; ``records``: ``(place, record)``) fits
        ``max_length``: ``on_error`` left out only pairs whose query does not, so OUT lost a line, or holds another
        input's scores. Only a reranker here can tell (a server's is not asked)."""
        if getattr(reranker, "prompter", None) is None:
            return
        for n, record in records:
            query, _, instruction = _triple(record)
            if no_room(reranker, query, instruction) is not None:
                continue
            where = getattr(record, "where", None)
            raise InputError(f"{{output}} {self.path} holds no result of pair {n}{f' ({where})' if where else ''}, "
                             "though it fits {max_length}: the file lost a line, or holds another input's scores; "
                             "give {output} a new file", "output", "max_length")  # fmt: skip

    def check_input(self, record, reranker: Scorer | None, with_fields: bool = False) -> None:
        """``InputError`` where OUT's last result is not the one of ``record``, the input's pair at that place:
        other ids or other fields (``with_fields``: the run copies the pairs' other fields, as OUT's results must
        too, or must not without it), or (scored again by ``reranker``) another set-up's score."""
        fields = {k: v for k, v in self.last.items() if k not in formats.SCORE_FIELDS}
        ids = {k: v for k, v in fields.items() if is_id_field(k)}
        # as score_rows wrote them (a PairRecord's, a mapping's or a DataFrame row's by name), and as read back: a
        # pandas Timestamp was written as its text; fields not copied are not written, whatever they hold
        have, other = record_fields(record)
        have, other = _as_read(have), _as_read(other) if with_fields else other
        if ids != have:
            raise InputError(f"{self.where}: result {self.done - 1} has ids {_said(ids)}, but the input's pair "
                             f"{self.done - 1} has {_said(have)}; {{output}} holds another input's scores",
                             "output")  # fmt: skip
        copied = [k for k in fields if k not in ids]
        if self.copied and not with_fields:  # its lines would mix two shapes
            raise InputError(f'{{output}} {self.path}: its results have "{self.copied}": it was written with '
                             "{with_fields}; give it to go on, or score into a new file", "output",
                             "with_fields")  # fmt: skip
        if with_fields and other and not copied:
            raise InputError(f"{self.where}: result {self.done - 1} has no copied fields: {{output}} was written "
                             "without {with_fields}; leave it out to go on, or score into a new file", "output",
                             "with_fields")  # fmt: skip
        unlike = [k for k in copied if k not in other or other[k] != fields[k]]
        if unlike:
            name = unlike[0]
            has = f"{_said({name: other[name]})[1:-1]}" if name in other else f'no "{name}"'
            raise InputError(f"{self.where}: result {self.done - 1} has {_said({name: fields[name]})[1:-1]}, but the "
                             f"input's pair {self.done - 1} has {has}; {{output}} holds another input's scores",
                             "output")  # fmt: skip
        noted = (self.kept or {}).get("last")  # the last pair written, where the record is of OUT as it is now
        if isinstance(noted, dict) and noted.get("index") == self.done - 1 and noted.get("pair") != _fingerprint(
                record):  # fmt: skip
            raise InputError(f"{self.where}: result {self.done - 1} is of another pair than the input's pair "
                             f"{self.done - 1} (as {settings_path(self.path)} keeps); {{output}} holds another "
                             "input's scores: give it a new file", "output")  # fmt: skip
        if reranker is None:
            return
        now = reranker.score([_triple(record)])[0]
        _check_rescored(self.last["score"], now, f"{self.where}: result {self.done - 1}", self.path, "score")


@dataclass
class ScoredRun:
    """What ``score_run`` did: the scoring ``stats``, the results it ``wrote``, and the input's pairs it went past
    as ``resumed`` (an earlier run's output held their results)."""

    stats: Stats
    wrote: int
    resumed: int


def score_run(
    reranker: Scorer,
    records: Iterable,
    output: ScoresOutput | str | os.PathLike,
    with_fields: bool = False,
    progress: Progress | None = None,
    on_error: ErrorSink = None,
    show_progress_bar: bool = False,
) -> ScoredRun:
    """Score ``records`` (as ``score_records`` takes them) into ``output`` (a path, or ``ScoresOutput.checked(path)``)
    as ``qrr score --resume`` does: JSON lines of ``index``, the records' id fields (``id``, ``qid``, ``docid``, and
    names ending in ``_id`` or ``Id``) and ``score`` (with ``with_fields``, their other fields too), a chunk at a
    time, each written as soon as it is scored. Where the file exists, the input's pairs it holds results of are
    gone past, once its last result is found to be the input's pair at that place (its ids, and its score again):
    the same call after an interruption or a failure goes on where it stopped (an iterator read from before must be
    made again: the input is read from its first pair), and one on another input or with another set-up is refused
    (``InputError``) before anything is written.

    An output without ``settings`` takes the reranker's (``Reranker.settings``) for this call, kept beside a file
    it starts and checked against those beside one it goes on with. The output is prepared here (``prepare``)
    unless the caller did so first. ``progress`` is called with the pairs each batch scored; ``show_progress_bar``
    draws a tqdm bar. A pair whose query leaves no room within ``max_length`` raises ``InputError``, or with
    ``on_error`` (a function of each error: ``errors.append``) is handed to it and left out (its ``index`` skipped
    in the file; a call that goes on must pass ``on_error`` too). Ctrl-C raises ``qrr.errors.Interrupted`` (a
    ``KeyboardInterrupt``) saying what the file holds."""
    check_call(show_progress_bar=show_progress_bar)
    check_sink(on_error)
    if isinstance(output, str | os.PathLike):
        output = ScoresOutput.checked(output)
    elif not isinstance(output, ScoresOutput):
        raise InputError(f"{{output}} must be a path or a ScoresOutput, not {type(output).__name__}", "output")
    total = len(records) if isinstance(records, Sized) else None
    once = hasattr(records, "__next__")  # an iterator: read again, it goes on from where it was
    with _lent_settings(output, reranker):
        try:
            if not output.prepared:
                output.prepare(skipping=on_error is not None)
            output.prepared = False  # a preparation serves one run
            rows = iter(pair_rows(records, "records"))
            try:
                last, left_out = output.skip_done(rows)
                if last is not None:
                    output.check_input(last, reranker, with_fields)
                    output.check_left_out(left_out, reranker)
            except InputError as exc:
                if not once:
                    raise
                # a notebook's cell run again with the generator it had read: the file was blamed
                raise InputError(f"{exc.template} (or, where the input is an iterator read from before, make it "
                                 "again: it is read from its first pair)", *exc.params) from None  # fmt: skip
            return _scored_into(reranker, rows, output, with_fields, progress, on_error, show_progress_bar, total)
        finally:
            output.release()  # a run that ended before its first result still held the file


def _scored_into(reranker, rows, output, with_fields, progress, on_error, show_progress_bar, total) -> ScoredRun:
    start, stats = output.done, Stats()
    writer = formats.RowWriter("jsonl")
    again = "call score_run again with the input from its first pair to go on"
    try:
        left = None if total is None else max(total - start, 0)
        with contextlib.ExitStack() as held, ProgressBar(left, show_progress_bar, progress) as advance:
            chunks = score_records(reranker, rows, progress=advance, on_error=on_error, first=start)
            held.callback(chunks.close)
            for chunk in chunks:
                stats += chunk.scores.stats
                if writer.out is None:  # opened at the first result: a run that fails before leaves no file
                    writer.out = held.enter_context(output.open())
                written = formats.score_rows(chunk.records, chunk.scores, [start + n for n in chunk.indexes],
                                             with_fields)  # fmt: skip
                try:
                    output.write(writer, written, chunk, start)
                except Exception:
                    if not start and not output.held:  # its first write failed (a value no JSON writes)
                        _remove_started(output.path, writer.out)
                    raise
                if chunk.records:
                    output.done = start + chunk.indexes[-1] + 1  # as a run prepared now would find it
    except KeyboardInterrupt as exc:
        done = start + writer.count
        said = f"after writing the results of {plural(writer.count, 'pair')} to {output.path} ({done:,} in all)"
        if not done:
            said = "before any result was written"
        raise Interrupted.of(exc, f"{said}; {again}", done, total or 0, output.path) from None
    except Exception as exc:
        cause = qrr_cause(exc)
        kept = file_size(output.path)
        if isinstance(cause, InputError) and kept and type(cause) in (InputError, PairError):
            # a bad pair hours in: what is written stands, and the same call goes on from it once it is mended
            skip = " or pass on_error" if getattr(cause, "skippable", False) and on_error is None else ""
            first = plural(output.done, "pair")  # a bad pair stops its call: those before it there are not written
            then = f"; the results of the first {first} are in {output.path}: mend it{skip}, then {again}"
            if isinstance(cause, PairError):
                raise PairError(cause.pair, cause.text + then, *cause.params) from None
            raise InputError(cause.template + then, *cause.params) from None
        if kept and not isinstance(cause, SAYS_WHAT_TO_DO):  # a runtime failure (a full disk, a server gone)
            raise Stopped(cause, 0, None, output.path, kept="the results written before",
                          verb="score") from exc  # fmt: skip
        raise
    return ScoredRun(stats, writer.count, start)


def _remove_started(path: str, handle) -> None:
    """The file a run started, and the record of its settings beside it, removed while the run still holds it
    (``handle``, locked) where nothing reached it: a run that failed at its first write leaves no empty file. A link
    is left as it is (its target is the user's to name)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        held = os.fstat(handle.fileno())
        if held.st_size == 0 and not os.path.islink(path) and os.path.samestat(held, os.stat(path)):
            os.remove(path)
            with contextlib.suppress(OSError):
                os.remove(settings_path(path))


def file_size(path: str) -> int:
    """The bytes of the file at ``path``; 0 where there is none (or it cannot be read)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


@contextlib.contextmanager
def _lent_settings(output: _Claimed | None, reranker: Scorer, more: dict | None = None):
    """For the body, the guard a command's run has: an ``output`` without ``settings`` takes the reranker's (with
    ``more``), so that a file written with another instruction is refused, not gone on with; for this call only (the
    output used again with another reranker is checked against that one's). Where the caller prepared the output
    first, its settings are checked now."""
    lent = output is not None and output.settings is None and hasattr(reranker, "settings")
    if lent:
        output.settings = reranker.settings() | (more or {})
    try:
        if lent and output.prepared:
            with output._released_on_error():
                output._check_settings()
        yield
    finally:
        if lent:
            output.settings = None


class _Keeping:
    """An output's handle, held as a context: when the run's writing ends (finished, failed or interrupted), its
    record is written again with the file's first line, by which a later run tells that the record is this file's."""

    def __init__(self, handle, output: _Claimed, record: dict):
        self.handle, self.output, self.record = handle, output, record

    def __enter__(self):
        return self.handle

    def __exit__(self, *exc) -> None:
        self.handle.close()
        first = _first_line(self.output.path)
        if first is not None:
            _keep_settings(self.output.path, self.record | self.output._written(), first)


def _keep_settings(path: str, settings: dict, first: str | None = None) -> None:
    """Write ``settings`` beside the output ``path`` (``settings_path``), whole or not at all, with ``first``, the
    file's first line, where it has one."""
    kept = settings_path(path)
    record = settings | ({"first": first} if first is not None else {})
    part = f"{kept}.{os.getpid()}.part"  # a writer's own: two on a disk without locks do not mix their records
    try:
        with open(part, "wb") as handle:
            handle.write(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())  # whole on disk before the rename: a crash left an empty record, now refused
        os.replace(part, kept)
    except OSError:
        # a folder that takes the results but not a new file (or a full disk): a later run checks by scoring
        # results again
        with contextlib.suppress(OSError):
            os.remove(part)


def _fingerprint(record) -> str:
    """A short digest of a pair's query, document and instruction, as the record of a --resume file keeps it."""
    import hashlib

    return hashlib.sha256(orjson.dumps(_triple(record))).hexdigest()[:16]


def _first_line(path: str) -> str | None:
    """The first line of the file at ``path`` (at most its first 1,000 characters), ``None`` where it has none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            line = handle.readline(1000)
    except OSError:
        return None
    return line.rstrip("\n") or None


def shown(value) -> str:
    """A setting's value as a message shows it: JSON, cut to 80 characters."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def check_appendable(path: str, inputs: Iterable[str | os.PathLike | None], kind: str, what: str) -> None:
    """Raise ``InputError`` (of the parameter ``output``) unless a long job can append ``what`` (``kind``, in a
    word) to ``path`` and cut an interrupted end off again: a file in an existing folder, not gzipped, writable
    (found now, not after hours of scoring) and none of ``inputs``, the files the job reads."""
    if os.path.isdir(path):
        raise InputError(f"{{output}} {path}: is a folder; give a file for {what}", "output")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise InputError(f"{{output}} {path}: not a file in an existing folder", "output")
    target = os.path.dirname(os.path.realpath(path))
    if os.path.islink(path) and not os.path.isdir(target):  # a link to a new file is fine, in a folder that is not
        raise InputError(f"{{output}} {path}: a link into {target}, which is no folder", "output")
    if os.path.exists(path) and not os.path.isfile(path):  # a device or a pipe: read to go on from, it never ends
        raise InputError(f"{{output}} {path}: not a regular file", "output")
    if path.lower().endswith(".gz"):
        raise InputError(f"{{output}} {path}: qrr writes {kind} uncompressed; name it without .gz (gzip it once it "
                         "is complete)", "output")  # fmt: skip
    if not os.access(path if os.path.exists(path) else os.path.dirname(os.path.abspath(path)), os.W_OK):
        raise InputError(f"{{output}} {path}: not writable here", "output")
    try:  # as root, access() says yes where the file system says no (/sys): the first write failed, hours on
        if os.path.exists(path):
            with open(path, "a", encoding="utf-8"):
                pass
        else:  # where it will be (a link to a new file: its target)
            new = os.path.realpath(path)
            os.close(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            os.unlink(new)  # a run that fails before its first result leaves no empty file behind
    except OSError as exc:
        raise InputError(f"{{output}} {path}: not writable here ({exc.strerror})", "output") from None
    if os.path.exists(path):
        read = next((i for i in map(_path_or_none, inputs) if i and i != "-" and os.path.exists(i)
                     and os.path.samefile(i, path)), None)  # fmt: skip
        if read is not None:
            raise InputError(f"{{output}} {path}: the command reads {read}; give a new file for {what}", "output")


def _path_or_none(value) -> str | None:
    return None if value is None else formats.path_of(value, "inputs")


def _is_probability(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _as_read(fields: dict) -> dict:
    """``fields`` as their JSON reads back (where it can be written: one that cannot is never in a file, and
    compares unequal as it is)."""
    try:
        return orjson.loads(json_text(fields))
    except (TypeError, orjson.JSONDecodeError):
        return fields


def _said(ids: dict) -> str:
    return orjson.dumps(ids).decode() if ids else "none"


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


# -------------------------------------------------------------------------------------------- first-stage runs


@dataclass(frozen=True)
class Job:
    """One query of a run to rerank: its id and text, and the docids of its first-stage top ``depth`` (in
    trec_eval order) that the corpus holds."""

    qid: str
    query: str
    docids: tuple[str, ...]


@dataclass
class RunInputs:
    """A first-stage run and what reranking it needs: the jobs (queries with their top documents) and the texts
    of those documents. With ``keep_rest``, each query's results go on below its reranked documents with the rest
    of its first-stage results (``with_rest``), in trec_eval's order of the first stage, each scored its rank there
    negated (below every p(yes)): recall and MAP past the depth are the first stage's."""

    run: Run
    jobs: list[Job]
    corpus: dict[str, str]
    keep_rest: bool = False

    @property
    def pairs(self) -> int:
        return sum(len(j.docids) for j in self.jobs)

    def __repr__(self) -> str:  # a notebook showed the whole corpus
        return (
            f"RunInputs(run=<{plural(len(self.run), 'query', 'queries')}>, jobs=<{plural(len(self.jobs), 'job')}, "
            f"{plural(self.pairs, 'pair')}>, corpus=<{plural(len(self.corpus), 'text')}>"
            f"{', keep_rest=True' if self.keep_rest else ''})"
        )


def top(run: Run, depth: int, only: Collection[str] | None = None) -> dict[str, list[str]]:
    """Each query's top ``depth`` docids by score, in the run's query order; ``only`` limits the queries (those
    with qrels, for an evaluation). Equal scores keep the run's own order (its lines' order), not trec_eval's docid
    order: a run that ranks by its rank column alone (every score 0) had its last documents reranked."""
    return {q: sorted(docs, key=lambda d: -docs[d])[:depth] for q, docs in run.items() if only is None or q in only}


def with_rest(best: list[tuple[str, float]], docs: dict[str, float]) -> list[tuple[str, float]]:
    """``best`` (a query's reranked results) and below them the rest of its first-stage results ``docs``, in the
    order trec_eval reads the first stage (equal scores by docid, descending), each scored its rank there negated
    (-101.0 for the 101st): measures past the reranked ones are the first stage's."""
    from qrr.metrics import ranking

    reranked = {d for d, _ in best}
    return best + [(d, float(-n)) for n, d in enumerate(ranking(docs), 1) if d not in reranked]


def plan(tops: dict[str, list[str]], queries: dict[str, str], corpus: dict[str, str], on_missing: ErrorSink = None,
         sources: tuple[str, str] = ("the queries file", "the corpus")):  # fmt: skip
    """The jobs for each query's top documents (from ``top``), in order, with their query texts.

    A query missing from ``queries`` or a document missing from ``corpus`` is an error naming how many are
    missing and where they were looked for (``sources``: the queries' and the corpus's names); with
    ``on_missing`` each is handed over and left out instead."""
    jobs, missing_queries, missing_docs = [], [], []
    for qid, docids in tops.items():
        if qid not in queries:
            missing_queries.append(qid)
            continue
        kept = tuple(d for d in docids if d in corpus)
        missing_docs += [(qid, d) for d in docids if d not in corpus]
        if kept:
            jobs.append(Job(qid, queries[qid], kept))
    if missing_queries:
        _missing([f"query {q}" for q in missing_queries], "query", f"not in {sources[0]}", on_missing)
    if missing_docs:
        _missing([f"document {d} of query {q}" for q, d in missing_docs], "document", f"not in {sources[1]}",
                 on_missing)  # fmt: skip
    return jobs


def _missing(items: list[str], kind: str, reason: str, on_missing: ErrorSink) -> None:
    if on_missing is None:
        verb = "is" if len(items) == 1 else "are"
        what = "queries" if kind == "query" else "documents"
        raise InputError(f"{len(items):,} of the run's {what} {verb} {reason} (first: {items[0]}); to rerank without "
                         "them, pass {on_missing}", "on_missing")  # fmt: skip
    for item in items:
        on_missing(Missing(f"{item}: {reason}", kind))


def read_run_inputs(
    run: str | os.PathLike,
    queries: str | os.PathLike,
    corpus: str | os.PathLike,
    depth: int = DEFAULT_DEPTH,
    only: Collection[str] | None = None,
    on_error: ErrorSink = None,
    on_missing: ErrorSink = None,
    status: Callable[[str], contextlib.AbstractContextManager] | None = None,
    keep_rest: bool = False,
) -> RunInputs:
    """Read a first-stage run (TREC or qrr's JSON lines), its queries and, of the corpus, only the documents
    each query's top ``depth`` needs; ``only`` limits the queries. Bad lines raise, or go to ``on_error`` and
    are skipped; a query or document the run names but the files lack raises, or goes to ``on_missing``.
    ``status(message)`` gives a context to read the corpus in (a spinner); ``keep_rest``: see ``RunInputs``."""
    check_count(depth, "depth")
    named = ((run, "run"), (queries, "queries"), (corpus, "corpus"))
    run, queries, corpus = formats.stdin_once([formats.path_of(path, name) for path, name in named])
    table = formats.read_run(run, on_error)
    if not table:
        raise InputError(f"{formats.label(run)}: no results in the run")
    texts = formats.read_queries(queries, on_error)
    tops = top(table, depth, only)
    needed = {d for docids in tops.values() for d in docids}
    with (status or contextlib.nullcontext)(f"reading {corpus} for {len(needed):,} documents"):
        documents = formats.read_corpus(corpus, keep=needed, on_error=on_error)
    sources = (formats.label(queries), formats.label(corpus))
    return RunInputs(table, plan(tops, texts, documents, on_missing, sources), documents, keep_rest)


@dataclass
class RunOutput(_Claimed):
    """Where reranked results go: the file ``path`` (appended to; ``None`` means stdout) in ``fmt`` (``trec`` or
    ``jsonl``) with the TREC run ``tag``. ``done`` counts the queries the file already held, ``cut_query`` names an
    unfinished one cut off its end, and ``written`` holds results of the first finished one to score again before
    going on (see ``prepare``, ``check_written``)."""

    path: str | None = None
    fmt: str = "trec"
    tag: str = formats.TAG
    done: int = field(default=0, compare=False)
    prepared: bool = field(default=False, compare=False)
    written: list[Written] = field(default_factory=list, repr=False, compare=False)
    cut_query: str | None = field(default=None, compare=False)
    verb = "rerank"

    @classmethod
    def checked(cls, path: str | os.PathLike | None = None, fmt: str | None = None, tag: str = formats.TAG,
                inputs: Iterable[str | os.PathLike | None] = (), settings: dict | None = None,
                ) -> RunOutput:  # fmt: skip
        """The output the arguments ask for, checked before any input is read; ``inputs`` are the files the run
        reads, which it must not write over; ``settings`` the run's (see ``_Claimed``). An existing file keeps its
        format; ``fmt`` defaults to it, else to ``jsonl`` for a name ending in ``.jsonl``, else to ``trec``."""
        path = None if path is None else formats.path_of(path, "output")
        if fmt is not None and fmt.lower() not in formats.RUN_FORMATS:
            raise InputError(f"{{fmt}} {fmt}: use trec or jsonl for a run", "fmt")
        if not tag or any(c.isspace() for c in tag):
            raise InputError(f"{{tag}} {tag!r}: TREC run tags are one word", "tag")
        fmt = fmt.lower() if fmt else None
        if path:
            check_appendable(path, inputs, "runs", "the reranked run")
        existing = formats.output_format(path) if path else None
        if fmt and existing and fmt != existing:
            raise InputError(f"{{output}} {path}: the file holds a {existing} run, not {{fmt}} {fmt}", "output", "fmt")
        named = "jsonl" if path and path.lower().endswith(".jsonl") else None
        fmt = fmt or existing or named or "trec"
        if fmt == "jsonl" and tag != formats.TAG:  # it would be dropped, unsaid
            raise InputError(f"{{tag}} {tag}: a jsonl run has no tag (it is a TREC run's last column)", "tag")
        return cls(path, fmt, tag, settings=settings)

    def prepare(
        self, inputs: RunInputs, top_k: int | None = None, others: Mapping[str, int] | Collection[str] | None = None
    ) -> bool:
        """Before any scoring: refuse ids a TREC run cannot hold, and where the file exists drop the queries it
        completes from ``inputs.jobs`` (counted in ``done``) and cut off an unfinished query at its end, to be
        reranked again. ``others``: queries of the run not reranked here, whose results the file may hold already,
        with the number of results each gets where known (see ``resume_point``). Before the file is gone on with,
        ``rerank_run`` scores ``written`` again (``check_written``). Returns whether an unfinished query was cut off."""
        check_count(top_k, "top_k")
        self.prepared, self.done, self.written, self.cut_query = True, 0, [], None
        self.held = self.settings_kept = False
        self.kept, self.unknown = None, ()
        if self.fmt == "trec":
            spaced = next((i for j in inputs.jobs for i in (j.qid, *j.docids) if any(c.isspace() for c in i)), None)
            if spaced is not None:
                raise InputError(
                    f"id {spaced!r} holds a space, which a TREC run cannot hold; write a jsonl run ({{fmt}} jsonl)",
                    "fmt",
                )
        self.release()  # prepared twice: the first claim goes
        self.claimed = claim(self.path) if self.path else None
        self.size = os.path.getsize(self.path) if self.claimed is not None else 0
        if self.claimed is None or formats.output_format(self.path) is None:
            return False
        with self._released_on_error():
            self.held = self.size > 0
            self._check_settings()
            return self._go_on_from(inputs, top_k, others)

    def _go_on_from(self, inputs: RunInputs, top_k: int | None, others) -> bool:
        documents = {j.qid: set(j.docids) for j in inputs.jobs}
        if inputs.keep_rest:  # every document of the run, the rest below the reranked ones
            expected = {j.qid: len(inputs.run[j.qid]) for j in inputs.jobs}
            rest = {j.qid: set(inputs.run[j.qid]) - documents[j.qid] for j in inputs.jobs}
        else:
            expected = {j.qid: min(len(j.docids), top_k or len(j.docids)) for j in inputs.jobs}
            rest = None
        done, keep = resume_point(self.path, self.fmt, expected, others, self.tag, documents, rest)
        cut = keep < os.path.getsize(self.path)
        if cut:
            self.cut_query = _query_at(self.path, self.fmt, keep)
            os.truncate(self.path, keep)
            self.size = keep
        self.written = written_results(self.path, self.fmt, done, inputs)
        inputs.jobs = [j for j in inputs.jobs if j.qid not in done]
        self.done = len(done)
        return cut

    def open(self):
        """The file to append results to, held against another run's writes (``open_exclusive``); stdout where
        there is no path."""
        if not self.path:
            return contextlib.nullcontext(_STDOUT)
        handle = self._append()
        self.size = None  # one run's: another prepares again
        return handle


# Two runs of one command on one output (a job restarted while the old one still ran) each read the same place to
# go on from and wrote every result after it twice. So an output is locked (flock, where the system has it) from
# before it is read to go on from (``claim``) until its writing ends, and where it did not exist yet, a run that
# finds it grown since it looked stops (``open_exclusive``).


# errors that say themselves what to do: a failure mid-run that is one of these is not wrapped in ``Stopped``
SAYS_WHAT_TO_DO = InputError | Stopped | OutputBusy


def claim(path: str):
    """``path``, where it exists, opened to append to and locked before it is read to go on from; ``None`` where it
    does not exist (creating it would leave an empty file behind a run that fails before its first result)."""
    if not os.path.exists(path):
        return None
    return locked(open(path, "a", encoding="utf-8"), path)  # noqa: SIM115 (the caller's to close)


def open_exclusive(path: str, size: int | None, claimed=None):
    """``path`` opened to append to and locked (``claimed``: as ``claim`` gave it), ``size`` its bytes when this run
    read it (``None``: it never did); ``OutputBusy`` where another run holds it or wrote to it since."""
    if size is None:
        raise InputError(f"{{output}} {path}: prepare it first (that reads how far it got)", "output")
    handle = claimed or locked(open(path, "a", encoding="utf-8"), path)  # noqa: SIM115 (the caller's to close)
    try:
        if os.fstat(handle.fileno()).st_size != size:
            raise OutputBusy(f"{{output}} {path}: another run wrote to it since this one read it; try again "
                             "to go on from what it holds", "output")  # fmt: skip
    except BaseException:
        handle.close()
        raise
    return handle


def locked(handle, path: str):
    """``handle`` (a file open to write) locked for this run alone, or ``OutputBusy`` (and closed) where another run
    holds ``path``; as it is where the file system has no ``flock``."""
    if fcntl is None:  # Windows: the size check alone
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OutputBusy(f"{{output}} {path}: another run is writing it (two would write each result twice); let it "
                         "finish, or stop it and try again", "output") from None  # fmt: skip
    except OSError as exc:  # a file system without flock (NFS without lockd, Lustre): the size check alone
        if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            handle.close()
            raise
    return handle


class _Stdout:
    """``sys.stdout`` as it is at each write: a front end may stand in for it a while (a progress display does)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_STDOUT = _Stdout()


def resume_point(
    path: str | os.PathLike,
    fmt: str,
    expected: dict[str, int],
    others: Mapping[str, int] | Collection[str] | None = None,
    tag: str | None = None,
    documents: Mapping[str, Collection[str]] | None = None,
    rest: Mapping[str, Collection[str]] | None = None,
) -> tuple[set[str], int]:
    """What an interrupted output already holds: the queries it completes and the bytes up to the end of the
    last complete one. A query cut off by the interruption (or a half-written line) lies after that point.

    ``expected`` is the number of results each query to rerank gets. ``others`` are queries of the run that
    this call leaves alone (an evaluation reranks only judged ones), with the most results each gets: their lines
    are kept as they are, but one at the end with fewer is cut, as it may be unfinished (given as a collection, with
    no counts, every line of theirs is kept).
    A query with another count that is not the last one, a query twice, an unknown query, a score that is no p(yes)
    or a malformed line mean the file is not this run's output: an ``InputError`` says so; so does, with ``tag``, a
    TREC line of a query to rerank with another tag (going on would mix two tags in one run), and with
    ``documents`` (each query's documents to rerank) a result of a query to rerank that names another document.
    With ``rest`` (each query's documents of the first stage not reranked: ``RunInputs.keep_rest``), those are
    written with their first-stage rank negated, and the documents reranked with a p(yes)."""
    if not isinstance(others, Mapping):
        others = dict.fromkeys(others or (), 0)
    done: set[str] = set()
    seen: set[str] = set()
    keep = offset = count = 0
    current = None
    label = str(path)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                break  # the line the interruption cut
            where = f"{label}:{number}"
            qid, docid, score = formats.result_line(raw, fmt, where)
            ranked = score <= -1 and score.is_integer()  # a first-stage rank negated: the rest's
            if not (0 <= score <= 1 or rest is not None and ranked):
                why = " nor a first-stage rank negated" if rest is not None else (
                    " (a run written with {keep_rest}?)" if ranked else "")  # fmt: skip
                raise InputError(f"{where}: score {score!r} is not a p(yes){why}; the file is not a run qrr wrote",
                                 "keep_rest")  # fmt: skip
            if rest is not None and qid in rest and ranked:
                if docid not in rest[qid]:
                    raise InputError(f"{where}: document {docid} is written with its first-stage rank, but it is "
                                     f"among query {qid}'s reranked top documents or not in the run; the file was "
                                     "written from other inputs or {depth}", "depth")  # fmt: skip
            elif documents is not None and qid in documents and docid not in documents[qid]:
                raise InputError(f"{where}: document {docid} is not among query {qid}'s top documents in the run; the "
                                 "file was written from other inputs or {depth}", "depth")  # fmt: skip
            if qid != current:
                if current in others:
                    keep = start  # a query left alone ends where the next one starts (it may have lost documents)
                if current in expected and current not in done:
                    said = "{depth}, or without {keep_rest}" if rest is not None else "{depth} or {top_k}"
                    raise InputError(f"{where}: query {current} has {plural(count, 'result')} before query {qid} "
                                     f"starts, not {expected[current]}; the file was written from other inputs, "
                                     f"{said}", "depth", "top_k", "keep_rest")  # fmt: skip
                if qid in seen:
                    raise InputError(f"{where}: query {qid} appears a second time; the file is not qrr's output")
                if qid not in expected and qid not in others:
                    raise InputError(f"{where}: query {qid} is not among the queries to rerank; the file was "
                                     "written from other inputs")  # fmt: skip
                current, count = qid, 0
                seen.add(qid)
            count += 1
            if tag is not None and fmt == "trec" and qid in expected and (said := raw.decode().split()[5]) != tag:
                raise InputError(f"{where}: the run's tag is {said}, not {{tag}} {tag}; give {{tag}} {said} to go "
                                 "on, or rerank into a new file", "tag")  # fmt: skip
            if qid in others:
                if count >= others[qid]:
                    keep = offset
            elif count > expected[qid]:
                raise InputError(f"{where}: query {qid} has more than {plural(expected[qid], 'result')}; the file was "
                                 "written with another {depth} or {top_k}", "depth", "top_k")  # fmt: skip
            elif count == expected[qid]:
                done.add(qid)
                keep = offset
    return done, keep


class Written(NamedTuple):
    """A result a resumed file holds: where, for which query and document (ids and texts), with what score."""

    where: str
    qid: str
    docid: str
    query: str
    document: str
    score: float


def written_results(path: str | os.PathLike, fmt: str, done: Collection[str], inputs: RunInputs) -> list[Written]:
    """The best and the middle result of the first query of ``done`` that the file at ``path`` holds (none where
    ``done`` is empty), as ``resume_point`` checked them. The middle rather than the last: the worst documents'
    log-odds lie far out (-10 to -20), where half precision rounds them most."""
    jobs = {j.qid: j for j in inputs.jobs}
    first, lines = None, []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.endswith(b"\n"):
                break  # a half-written line
            qid, docid, score = formats.result_line(raw, fmt, f"{path}:{number}")
            if first is None and qid in done:
                first = qid
            if qid != first:
                if first is not None:
                    break
                continue
            if 0 <= score <= 1:  # reranked, not the first stage's rest below them
                lines.append((f"{path}:{number}", docid, score))
    if first is None or not lines:
        return []
    job = jobs[first]
    return [Written(where, job.qid, docid, job.query, inputs.corpus[docid], score)
            for where, docid, score in dict.fromkeys([lines[0], lines[len(lines) // 2]])]  # fmt: skip


def _query_at(path: str | os.PathLike, fmt: str, offset: int) -> str | None:
    """The query of the line at ``offset`` in the file, where that line is whole and one."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        raw = handle.readline()
    try:
        return formats.result_line(raw, fmt, "")[0] if raw.endswith(b"\n") else None
    except InputError:
        return None


# Log-odds apart by more than 1 (2.7 times the odds) plus a tenth of their size, a result scored again is another
# set-up's: far past the rounding of bf16 against fp32, or of one device against another, which grows with them.
RESCORED_TOLERANCE = (1.0, 0.1)


def check_written(reranker: Scorer, output: RunOutput | None) -> None:
    """Before going on with a file: score ``output.written`` again and raise ``InputError`` where one comes out
    other than written (another model, instruction, max length or recipe wrote the file)."""
    if output is None or not output.written:
        return
    now = reranker.score([(w.query, w.document) for w in output.written])
    for w, score in zip(output.written, now, strict=True):
        _check_rescored(w.score, score, f"{w.where}: query {w.qid}'s document {w.docid}", output.path, "rerank")


def _check_rescored(then: float, now: float, result: str, path, verb: str) -> None:
    """Raise ``InputError`` where ``result`` of the file at ``path``, written with score ``then``, scores ``now``
    as another set-up's would (``RESCORED_TOLERANCE``); ``verb`` is the command's, for its advice."""
    gap, share = RESCORED_TOLERANCE
    then_odds, now_odds = _log_odds(then), _log_odds(now)
    if abs(now_odds - then_odds) <= gap + share * max(abs(then_odds), abs(now_odds)):
        return
    then_said, now_said = _apart(then, now)
    raise InputError(
        f"{result} has score {then_said} there but scores {now_said} now, so {path} holds scores of another input "
        "or set-up (other texts, another {model}, {instruction}, {max_length} or {recipe}, or a server running "
        f"another); go on with the input and set-up that wrote it, or {verb} into a new file",
        "model", "instruction", "max_length", "recipe",
    )  # fmt: skip


def _checking(reranker: Scorer, output: RunOutput | None) -> Iterator:
    """``check_written``, run on the first ``next``; yields nothing."""
    check_written(reranker, output)
    yield from ()


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with four decimals, or as many more as tell them apart (0.9999999979 and 0.99999998)."""
    for digits in range(4, 18):
        said = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if said[0] != said[1]:
            return said
    return repr(a), repr(b)


def _log_odds(p: float) -> float:
    return log_odds(min(max(p, 1e-15), 1 - 1e-15))  # a score written as 0 or 1


def ranked(docids, scores) -> list[tuple[str, float]]:
    """(docid, score) best first, equal scores by docid, descending, as trec_eval orders them, so that the ranks
    written are the order in which ``qrr eval`` and trec_eval take the results (where trec_eval's single precision
    ties scores that differ past it, near 1.0, the ranks keep the scores' full order, as written)."""
    return sorted(zip(docids, scores, strict=True), key=lambda pair: (pair[1], pair[0]), reverse=True)


def rerank_jobs(
    reranker: Scorer, jobs: Iterable[Job], corpus: dict[str, str], top_k: int | None = None,
    progress: Progress | None = None, stats: Stats | None = None, on_error: ErrorSink = None,
) -> Iterator[tuple[Job, list[tuple[str, float]]]]:  # fmt: skip
    """Score each job's documents for its query and yield ``(job, [(docid, score), ...])`` best first (only the
    best ``top_k``), job by job, in order. ``progress`` is called with the pairs each batch finished; ``stats``
    collects what the scoring did. A query that leaves its documents no room within ``max_length`` raises
    ``InputError``, or with ``on_error`` is handed to it and left out."""
    check_count(top_k, "top_k")

    # Queries share a call, and so batches (see call_room): each query's results are written once its call is done.
    def weigh(job: Job) -> tuple[int, int]:
        return len(job.docids), sum(len(job.query) + len(corpus[d]) for d in job.docids)

    for group in _calls(jobs, call_room(reranker), weigh):
        yield from _rerank_group(reranker, group, corpus, top_k, progress, stats, on_error)


def _rerank_group(reranker, group, corpus, top_k, progress, stats, on_error):
    if on_error is not None:  # each query checked before the call: not a call again for each one too long
        group = [job for job in group if not _skipped(job, no_room(reranker, job.query), on_error, progress)]
    counted = _CountedOnce(progress)
    while True:
        try:
            pairs = [(job.query, corpus[d]) for job in group for d in job.docids]
            scores = reranker.score(pairs, progress=counted.trying())
            break
        except PairError as exc:  # said of the query, which a run's user knows, not of a pair of this call
            places = spans(len(job.docids) for job in group)
            job = next(job for job, span in zip(group, places, strict=True) if exc.pair < span.stop)
            if on_error is None or "max_length" not in exc.params:
                raise InputError(f"query {job.qid}: {exc.text}", *exc.params) from None
            _skipped(job, InputError(exc.text, *exc.params), on_error, progress)  # a server's: told as it scores
            group = [j for j in group if j is not job]
    if stats is not None:
        stats += scores.stats
    for job, span in zip(group, spans(len(job.docids) for job in group), strict=True):
        yield job, ranked(job.docids, scores[span])[:top_k]


def _skipped(job: Job, error: InputError | None, on_error: ErrorSink, progress: Progress | None) -> bool:
    """Whether ``job`` is left out for ``error`` (its query's, or ``None``), which is then handed to ``on_error``
    and its pairs counted done."""
    if error is None:
        return False
    on_error(InputError(f"query {job.qid}: {error.template}", *error.params))
    if progress is not None:
        progress(len(job.docids))
    return True


@dataclass
class Reranked:
    """What ``rerank_run`` did: the results (``run``, kept only where there was no output), the scoring ``stats``
    and the number of queries reranked."""

    run: Run
    stats: Stats
    queries: int

    def __repr__(self) -> str:  # a notebook showed the whole run
        return (
            f"Reranked(run=<{plural(len(self.run), 'query', 'queries')}>, stats={self.stats!r}, queries={self.queries})"
        )


def rerank_run(
    reranker: Scorer,
    inputs: RunInputs,
    output: RunOutput | str | os.PathLike | None = None,
    top_k: int | None = None,
    progress: Progress | None = None,
    on_query: Callable[[str], None] | None = None,
    on_error: ErrorSink = None,
    show_progress_bar: bool = False,
) -> Reranked:
    """Rerank every job of ``inputs``, writing each query's results to ``output`` (a path, or
    ``RunOutput.checked(path)``) as soon as it is done, or keeping them in ``Reranked.run`` where there is no output.
    An output file survives an interruption: where it exists, the queries it completes are skipped
    (``output.prepare``, run here on a copy of ``inputs`` unless the caller ran it first). An output without
    ``settings`` takes the reranker's (``Reranker.settings``): a file started keeps them beside it, and one gone on
    with that keeps others is refused (``InputError``) before any scoring. ``progress`` is called with the pairs each
    batch scored, ``on_query`` with each finished query's id; ``show_progress_bar`` draws a tqdm bar of the pairs
    left (a notebook's widget) as ``Reranker.score`` does. A query too long for ``max_length`` raises
    ``InputError``, or with ``on_error`` (a function of each error) is handed to it and left out. Ctrl-C (or SIGTERM,
    where a front end raises ``Terminated``) raises ``Interrupted`` saying how many queries are done."""
    check_count(top_k, "top_k")
    check_call(show_progress_bar=show_progress_bar)
    check_sink(on_error)
    if isinstance(output, str | os.PathLike):
        output = RunOutput.checked(output)
    elif output is not None and not isinstance(output, RunOutput):
        raise InputError(f"{{output}} must be a path or a RunOutput, not {type(output).__name__}", "output")
    if top_k is not None and inputs.keep_rest:
        raise InputError("{top_k}: not with keep_rest, which writes every document of the run", "top_k")
    with _lent_settings(output, reranker, {"keep_rest": inputs.keep_rest}):
        if output is not None and not output.prepared:
            # on a copy: the caller's inputs keep every query (a notebook's next rerank_run found none left)
            inputs = replace(inputs, jobs=list(inputs.jobs))
            output.prepare(inputs, top_k)
        stats = Stats()
        with ProgressBar(inputs.pairs, show_progress_bar, progress, "reranking") as advance:
            # the check scores, so it runs where a failure mid-run says what the file holds: as the results are
            # written
            results = itertools.chain(
                _checking(reranker, output),
                rerank_jobs(reranker, inputs.jobs, inputs.corpus, top_k, advance, stats, on_error),
            )
            return write_reranked(results, inputs, output, on_query, stats)


def write_reranked(
    results: Iterable[tuple[Job, list[tuple[str, float]]]],
    inputs: RunInputs,
    output: RunOutput | None = None,
    on_query: Callable[[str], None] | None = None,
    stats: Stats | None = None,
) -> Reranked:
    """Write each query's reranked results (from ``rerank_jobs``, or scored elsewhere: ``qrr.raydata``) to
    ``output`` as they come, or keep them; the writing half of ``rerank_run``, Ctrl-C included. ``output`` must be
    prepared (``RunOutput.prepare``); ``stats`` are what the scoring did (the caller's to fill)."""
    kept: Run = {}
    finished = 0
    before = output.done if output else 0
    if output is not None:
        # a preparation serves one run: a second run into this output prepares again and finds the first's results
        output.prepared = False
    try:
        with contextlib.ExitStack() as files:
            out = None
            for job, best in results:
                if inputs.keep_rest:
                    best = with_rest(best, inputs.run[job.qid])
                if output is not None:
                    # opened at the first result: a run that fails before any leaves no empty file behind
                    out = out or files.enter_context(output.open())
                    out.write(formats.format_results(job.qid, best, output.fmt, output.tag))
                    out.flush()
                else:
                    kept[job.qid] = dict(best)
                finished += 1
                if on_query is not None:
                    on_query(job.qid)
    except KeyboardInterrupt as exc:
        path = output.path if output else None
        done, total = before + finished, before + len(inputs.jobs)
        then = f"; rerank into {path} again to go on" if path else ""
        if output is None:
            then = "; their results are the exception's .partial (in a notebook, sys.last_value.partial)"
        error = Interrupted.of(exc, f"after {done} of {total} queries{then}", done, total, path)
        error.partial = kept if output is None else None
        raise error from None
    except Exception as exc:
        # a runtime failure mid-run (a server gone, memory; on Ray, wrapped) loses nothing that was written: say so
        cause, done = qrr_cause(exc), before + finished
        if output is not None and output.path and done and not isinstance(cause, SAYS_WHAT_TO_DO):
            raise Stopped(cause, done, before + len(inputs.jobs), output.path) from exc
        raise
    finally:
        if output is not None:
            output.release()  # a run that ended before its first result still held the file
    return Reranked(kept, stats if stats is not None else Stats(), finished)
