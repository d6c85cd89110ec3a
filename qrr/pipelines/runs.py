"""Rerank a first-stage run (TREC, BEIR): its queries' top documents read and planned, scored, and written into a
file that an interrupted run goes on with (``qrr rerank --resume``)."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from qrr import formats
from qrr.engine import Progress
from qrr.errors import InputError, Interrupted, Missing, PairError, Stopped, check_count, plural, qrr_cause
from qrr.formats import Run
from qrr.formats.records import ErrorSink
from qrr.pipelines.files import (
    _STDOUT,
    SAYS_WHAT_TO_DO,
    _check_rescored,
    _Claimed,
    _lent_settings,
    check_appendable,
    check_not_input,
    claim,
    lines_until,
    zero_tail,
)
from qrr.pipelines.streams import CountedOnce, call_groups, call_room, check_scorer, check_sink, no_room
from qrr.reranker import ProgressBar, Scorer, Stats, check_call, spans

DEFAULT_DEPTH = 100
# what a file written otherwise than this run asks can do: the tag's own message says it too
GO_ON = "; go on with the inputs and options that wrote it, or rerank into a new file"


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
    negated (below every p(yes)): recall and MAP past the depth are the first stage's. ``files``: the paths they
    were read from, which an output must not be."""

    run: Run
    jobs: list[Job]
    corpus: dict[str, str]
    keep_rest: bool = False
    files: tuple[str, ...] = ()

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
    check_sink(on_missing, "on_missing")
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
    run: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    depth: int = DEFAULT_DEPTH,
    only: Collection[str] | None = None,
    on_error: ErrorSink = None,
    on_missing: ErrorSink = None,
    status: Callable[[str], contextlib.AbstractContextManager[object]] | None = None,
    keep_rest: bool = False,
) -> RunInputs:
    """Read a first-stage run (TREC or qrr's JSON lines), its queries and, of the corpus, only the documents
    each query's top ``depth`` needs; ``only`` limits the queries. Bad lines raise, or go to ``on_error`` and
    are skipped; a query or document the run names but the files lack raises, or goes to ``on_missing``.
    ``status(message)`` gives a context to read the corpus in (a spinner); ``keep_rest``: see ``RunInputs``."""
    check_count(depth, "depth")
    check_sink(on_error)
    check_sink(on_missing, "on_missing")
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
    return RunInputs(table, plan(tops, texts, documents, on_missing, sources), documents, keep_rest,
                     (run, queries, corpus))  # fmt: skip


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
    def checked(cls, path: str | os.PathLike[str] | None = None, fmt: str | None = None, tag: str = formats.TAG,
                inputs: Iterable[str | os.PathLike[str] | None] = (), settings: dict | None = None,
                ) -> RunOutput:  # fmt: skip
        """The output the arguments ask for, checked before any input is read; ``inputs`` are the files the run
        reads, which it must not write over; ``settings`` the run's (``model``, ``instruction``, ``max_length``,
        ``recipe``: kept beside a file it starts, checked against those kept beside a file it goes on with; by
        default ``rerank_run`` takes the reranker's). An existing file keeps its format; ``fmt`` defaults to it,
        else to ``jsonl`` for a name ending in ``.jsonl``, else to ``trec``."""
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
        if self.path:  # the run it reads, read as a file to go on with (and cut where it looked unfinished)
            check_not_input(self.path, inputs.files, "the reranked run")
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
        end, self.zeroed = zero_tail(self.path) or (None, 0)
        done, keep = resume_point(self.path, self.fmt, expected, others, self.tag, documents, rest, end)
        cut = keep < os.path.getsize(self.path)
        if cut:
            if end is None or keep < end:  # not what the NULs cut alone
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


def resume_point(
    path: str | os.PathLike[str],
    fmt: str,
    expected: dict[str, int],
    others: Mapping[str, int] | Collection[str] | None = None,
    tag: str | None = None,
    documents: Mapping[str, Collection[str]] | None = None,
    rest: Mapping[str, Collection[str]] | None = None,
    end: int | None = None,
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
    written with their first-stage rank negated, and the documents reranked with a p(yes). ``end``: where the file's
    lines end (``zero_tail``), what follows is not read."""
    if not isinstance(others, Mapping):
        others = dict.fromkeys(others or (), 0)
    done: set[str] = set()
    seen: set[str] = set()
    keep = offset = count = 0
    current = None
    label = str(path)
    with open(path, "rb") as handle:
        for number, raw in enumerate(lines_until(handle, end), 1):  # up to a crash's NULs
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                if b"\0" in raw or not _text(raw):  # no line of a run's: a database, say, which cutting would lose
                    raise InputError(f"{label}:{number}: not a line of a run qrr writes; the file is not a run qrr "
                                     f"wrote{GO_ON}")  # fmt: skip
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
                                     f"written from other inputs or with another {{depth}}{GO_ON}",
                                     "depth")  # fmt: skip
            elif documents is not None and qid in documents and docid not in documents[qid]:
                raise InputError(f"{where}: document {docid} is not among query {qid}'s top documents in the run; the "
                                 f"file was written from other inputs or with another {{depth}}{GO_ON}",
                                 "depth")  # fmt: skip
            if qid != current:
                if current in others:
                    keep = start  # a query left alone ends where the next one starts (it may have lost documents)
                if current in expected and current not in done:
                    said = ("another {depth}, or without {keep_rest}" if rest is not None else
                            "another {depth} or {top_k}")  # fmt: skip
                    raise InputError(f"{where}: query {current} has {plural(count, 'result')} before query {qid} "
                                     f"starts, not {expected[current]}; the file was written from other inputs or "
                                     f"with {said}{GO_ON}", "depth", "top_k", "keep_rest")  # fmt: skip
                if qid in seen:
                    raise InputError(f"{where}: query {qid} appears a second time; the file is not a run qrr wrote")
                if qid not in expected and qid not in others:
                    raise InputError(f"{where}: query {qid} is not among the queries to rerank; the file was "
                                     f"written from other inputs{GO_ON}")  # fmt: skip
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
                                 f"written with another {{depth}} or {{top_k}}{GO_ON}", "depth", "top_k")  # fmt: skip
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


def written_results(path: str | os.PathLike[str], fmt: str, done: Collection[str], inputs: RunInputs) -> list[Written]:
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


def _text(raw: bytes) -> bool:
    """Whether ``raw`` is UTF-8, but for a character its end may cut."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data"
    return True


def _query_at(path: str | os.PathLike[str], fmt: str, offset: int) -> str | None:
    """The query of the line at ``offset`` in the file, where that line is whole and one."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        raw = handle.readline()
    try:
        return formats.result_line(raw, fmt, "")[0] if raw.endswith(b"\n") else None
    except InputError:
        return None


def check_written(reranker: Scorer, output: RunOutput | None) -> None:
    """Before going on with a file: score ``output.written`` again and raise ``InputError`` where one comes out
    other than written (another model, instruction, max length or recipe wrote the file)."""
    if output is None or not output.written:
        return
    now = reranker.score([(w.query, w.document) for w in output.written])
    for w, score in zip(output.written, now, strict=True):
        _check_rescored(w.score, score, f"{w.where}: query {w.qid}'s document {w.docid}", output.path, "rerank")


def _checking(reranker: Scorer, output: RunOutput | None) -> Iterator:
    """``check_written``, run on the first ``next``; yields nothing."""
    check_written(reranker, output)
    yield from ()


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
    check_scorer(reranker)
    check_count(top_k, "top_k")
    check_sink(on_error)

    # Queries share a call, and so batches (see call_room): each query's results are written once its call is done.
    def weigh(job: Job) -> tuple[int, int]:
        return len(job.docids), sum(len(job.query) + len(corpus[d]) for d in job.docids)

    for group in call_groups(jobs, call_room(reranker), weigh):
        yield from _rerank_group(reranker, group, corpus, top_k, progress, stats, on_error)


def _rerank_group(reranker, group, corpus, top_k, progress, stats, on_error):
    if on_error is not None:  # each query checked before the call: not a call again for each one too long
        group = [job for job in group if not _skipped(job, no_room(reranker, job.query), on_error, progress)]
    counted = CountedOnce(progress)
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
    """What ``rerank_run`` did: the results (``run``, kept only where there was no output), the scoring ``stats``,
    the number of queries reranked, and as ``resumed`` those it went past (an earlier run's output held them)."""

    run: Run
    stats: Stats
    queries: int
    resumed: int = 0

    def __repr__(self) -> str:  # a notebook showed the whole run
        return (
            f"Reranked(run=<{plural(len(self.run), 'query', 'queries')}>, stats={self.stats!r}, "
            f"queries={self.queries}, resumed={self.resumed})"
        )


def rerank_run(
    reranker: Scorer,
    inputs: RunInputs,
    output: RunOutput | str | os.PathLike[str] | None = None,
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
    where a front end raises ``Terminated``) raises ``Interrupted`` saying how many queries are done; any other
    failure once an output holds results (an ``on_query`` of the caller's included) raises ``qrr.errors.Stopped``,
    whose ``cause`` it is, saying so too (``InputError`` and ``OutputBusy`` come as they are)."""
    check_scorer(reranker)
    if not isinstance(inputs, RunInputs):
        raise InputError(f"{{inputs}} must be a RunInputs (from read_run_inputs), not {type(inputs).__name__}",
                         "inputs")  # fmt: skip
    check_count(top_k, "top_k")
    check_call(show_progress_bar=show_progress_bar)
    check_sink(on_error)
    if isinstance(output, str | os.PathLike):
        output = RunOutput.checked(output)
    elif output is not None and not isinstance(output, RunOutput):
        raise InputError(f"{{output}} must be a path or a RunOutput, not {type(output).__name__}", "output")
    if top_k is not None and inputs.keep_rest:
        raise InputError("{top_k}: not with {keep_rest}, which writes every document of the run", "top_k", "keep_rest")
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
    return Reranked(kept, stats if stats is not None else Stats(), finished, before)
