"""Scores of a stream of pairs written into a file that an interrupted run goes on with (``qrr score --resume``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any

import orjson

from qrr import formats
from qrr.engine import Progress
from qrr.errors import InputError, Interrupted, PairError, Stopped, plural, qrr_cause
from qrr.formats import is_id_field
from qrr.formats.records import ErrorSink
from qrr.formats.rows import record_fields
from qrr.pipelines.files import (
    SAYS_WHAT_TO_DO,
    _as_read,
    _check_rescored,
    _Claimed,
    _is_probability,
    _lent_settings,
    _said,
    check_appendable,
    claim,
    file_size,
    lines_until,
    settings_path,
    zero_tail,
)
from qrr.pipelines.streams import (
    ScoredChunk,
    check_scorer,
    check_sink,
    no_room,
    pair_fingerprint,
    record_triple,
    score_records,
)
from qrr.reranker import ProgressBar, Scorer, Stats, check_call, pair_rows

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
        self.latest = (index, pair_fingerprint(record))

    def _written(self) -> dict:
        if self.latest is None:
            return {k: v for k, v in (self.kept or {}).items() if k == "last"}
        return {"last": {"index": self.latest[0], "pair": self.latest[1]}}

    @classmethod
    def checked(cls, path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None] = (),
                settings: dict | None = None) -> ScoresOutput:  # fmt: skip
        """The output at ``path``, checked before any input is read: ``inputs`` are the files the run reads,
        which it must not write over; ``settings`` the run's (``model``, ``instruction``, ``max_length``, ``recipe``:
        kept beside a file it starts, checked against those kept beside a file it goes on with; by default
        ``score_run`` takes the reranker's)."""
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
        lines_end, zeroed = zero_tail(self.path) or (None, 0)
        with open(self.path, "rb") as handle:
            # up to a crash's NULs, dropped once what comes before is read as qrr's
            for number, raw in enumerate(lines_until(handle, lines_end), 1):
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
        if self.cut or zeroed:
            os.truncate(self.path, end)
            self.size, self.zeroed = end, zeroed
            self.held = end > 0  # cut to nothing: the run starts the file, and its record

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
            query, _, instruction = record_triple(record)
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
        if isinstance(noted, dict) and noted.get("index") == self.done - 1 and noted.get("pair") != pair_fingerprint(
                record):  # fmt: skip
            raise InputError(f"{self.where}: result {self.done - 1} is of another pair than the input's pair "
                             f"{self.done - 1} (as {settings_path(self.path)} keeps); {{output}} holds another "
                             "input's scores: give it a new file", "output")  # fmt: skip
        if reranker is None:
            return
        now = reranker.score([record_triple(record)])[0]
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
    records: Iterable[Any],
    output: ScoresOutput | str | os.PathLike[str],
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
    ``KeyboardInterrupt``) saying what the file holds; any other failure once results were written (a full disk, a
    server gone, an error of the input's own generator) raises ``qrr.errors.Stopped``, whose ``cause`` it is,
    saying so too (``InputError`` and ``OutputBusy`` say it themselves, and come as they are)."""
    check_scorer(reranker)
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
                if not chunk.records:  # every pair of it skipped: nothing to write, nor a file to start
                    continue
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
