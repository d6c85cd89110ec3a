"""Reranking a first-stage run, shared by ``qrr rank --run`` and ``qrr eval --beir``: read the inputs, pick up an
interrupted output, show progress over queries, write each query's results as soon as they are done."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Collection
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer

from qrr import runs
from qrr.cli.base import on_error_policy, stderr
from qrr.errors import InputError, Interrupted
from qrr.reranker import Stats

DEFAULT_DEPTH = 100
PANEL = "First-stage run (TREC/BEIR)"

DepthOpt = Annotated[
    int | None,
    typer.Option("--depth", metavar="N", min=1, rich_help_panel=PANEL,
                 help=f"Rerank each query's top N documents of the run. [dim]\\[default: {DEFAULT_DEPTH}][/]"),
]  # fmt: skip
ResumeOpt = Annotated[
    str | None,
    typer.Option("--resume", metavar="OUT", rich_help_panel=PANEL,
                 help="Write the reranked run to OUT; where OUT exists, skip the queries it completes and append "
                 "the rest (an interrupted run goes on)."),
]  # fmt: skip
TagOpt = Annotated[
    str | None,
    typer.Option("--tag", metavar="TAG", rich_help_panel=PANEL,
                 help=f"The run tag of TREC output. [dim]\\[default: {runs.TAG}][/]"),
]  # fmt: skip


@dataclass
class Inputs:
    """A run and what reranking it needs: the jobs (queries with their top documents) and their texts."""

    run: runs.Run
    jobs: list[runs.Job]
    corpus: dict[str, str]


def read_inputs(run_path, queries_path, corpus_path, depth, policy, only=None) -> Inputs:
    """Read the run, the queries and, of the corpus, only the documents the run's top ``depth`` needs.
    ``policy`` is the --on-error setting (``fail`` or ``skip``); ``only`` limits the queries."""
    bad_lines = on_error_policy(policy)
    missing = on_error_policy(policy, "run entries missing from the inputs")
    run = runs.read_run(run_path, bad_lines)
    if not run:
        raise InputError(f"{run_path}: no results in the run")
    queries = runs.read_queries(queries_path, bad_lines)
    tops = runs.top(run, depth, only)
    needed = {d for docids in tops.values() for d in docids}
    with _status(f"reading {corpus_path} for {len(needed):,} documents"):
        corpus = runs.read_corpus(corpus_path, keep=needed, on_error=bad_lines)
    jobs = runs.plan(tops, queries, corpus, missing)
    # said now, not after hours of reranking
    for skipped in (bad_lines, missing):
        if skipped is not None:
            skipped.report()
    return Inputs(run, jobs, corpus)


def _status(message: str):
    return stderr.status(message) if stderr.is_terminal else contextlib.nullcontext()


@dataclass
class Output:
    """Where reranked results go: stdout, or the --resume file (appended), in ``fmt`` with ``tag``."""

    fmt: str
    tag: str
    path: str | None = None
    done: int = 0  # queries the --resume file already completes

    @classmethod
    def checked(cls, resume: str | None, fmt: str | None, tag: str) -> Output:
        """The output the options ask for, checked before any input is read; the format of an existing --resume
        file is kept."""
        if fmt is not None and fmt.lower() not in runs.RUN_FORMATS:
            raise InputError(f"--format {fmt}: use trec or jsonl with --run")
        if any(c.isspace() for c in tag) or not tag:
            raise InputError(f"--tag {tag!r}: a TREC run tag is one word")
        fmt = fmt.lower() if fmt else None
        if resume and (os.path.isdir(resume) or not os.path.isdir(os.path.dirname(os.path.abspath(resume)))):
            raise InputError(f"--resume {resume}: not a file in an existing folder")
        existing = runs.output_format(resume) if resume else None
        if fmt and existing and fmt != existing:
            raise InputError(f"--resume {resume}: the file holds a {existing} run, not --format {fmt}")
        return cls(fmt or existing or "trec", tag, resume)

    def open(self):
        return open(self.path, "a", encoding="utf-8") if self.path else contextlib.nullcontext(sys.stdout)

    def pick_up(self, inputs: Inputs, top_k: int | None, others: Collection[str] = ()) -> None:
        """With --resume, drop the queries its file completes from ``inputs.jobs`` and cut off an unfinished query
        at its end, to be written again. ``others``: queries of the run not reranked here, whose results the
        file may hold already (see ``runs.resume_point``)."""
        if self.fmt == "trec":
            spaced = next((i for j in inputs.jobs for i in (j.qid, *j.docids) if any(c.isspace() for c in i)), None)
            if spaced is not None:
                raise InputError(f"id {spaced!r} holds a space, which a TREC run cannot; use --format jsonl")
        if not self.path or runs.output_format(self.path) is None:
            return
        expected = {j.qid: min(len(j.docids), top_k or len(j.docids)) for j in inputs.jobs}
        done, keep = runs.resume_point(self.path, self.fmt, expected, others)
        if keep < os.path.getsize(self.path):
            os.truncate(self.path, keep)
            stderr.print(f"{self.path}: the last query was unfinished; it is reranked again", highlight=False)
        inputs.jobs = [j for j in inputs.jobs if j.qid not in done]
        self.done = len(done)
        stderr.print(f"resuming {self.path}: {len(done)} of {len(done) + len(inputs.jobs)} queries are done",
                     highlight=False)  # fmt: skip


def rerank_into(reranker, inputs: Inputs, output: Output | None, top_k: int | None = None) -> runs.Run:
    """Rerank every job, writing each query's results to ``output`` as it is done; returns the results (when
    there is no output to read them back from). Ctrl-C stops with a line saying how to go on."""
    results: runs.Run = {}
    jobs = inputs.jobs
    stats = Stats()
    finished = 0
    try:
        with _query_progress(len(jobs), sum(len(j.docids) for j in jobs)) as tracker, (
            output.open() if output else contextlib.nullcontext()
        ) as out:  # fmt: skip
            for job, ranked in runs.rerank(reranker, jobs, inputs.corpus, top_k, tracker.pairs, stats):
                if out is not None:
                    out.write(runs.format_results(job.qid, ranked, output.fmt, output.tag))
                    out.flush()
                else:
                    results[job.qid] = dict(ranked)
                finished += 1
                tracker.query()
    except KeyboardInterrupt:
        before = output.done if output else 0
        how = (f"run the same command to go on from {output.path}" if output and output.path
               else "--resume OUT writes a run that a later command goes on with")  # fmt: skip
        raise Interrupted(f"interrupted after {before + finished} of {before + len(jobs)} queries; {how}") from None
    reranker.stats = stats
    return results


class _Lines:
    """Progress where stderr is not a terminal (a log of a long run): a line at most every ``interval`` s."""

    interval = 60.0

    def __init__(self, queries: int, pairs: int):
        self.queries, self.total = queries, pairs
        self.done_queries = self.done_pairs = 0
        self.start = self.last = time.monotonic()

    def pairs(self, n: int) -> None:
        self.done_pairs += n

    def query(self) -> None:
        self.done_queries += 1
        now = time.monotonic()
        if now - self.last < self.interval or self.done_queries == self.queries:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed * (self.total - self.done_pairs) / self.done_pairs if self.done_pairs else 0.0
        stderr.print(f"reranked {self.done_queries}/{self.queries} queries in {_clock(elapsed)}, "
                     f"about {_clock(left)} left", highlight=False)  # fmt: skip


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class _Bar:
    def __init__(self, bar, task):
        self.bar, self.task, self.done = bar, task, 0

    def pairs(self, n: int) -> None:
        self.bar.advance(self.task, n)

    def query(self) -> None:
        self.done += 1
        self.bar.update(self.task, queries=self.done)


@contextmanager
def _query_progress(queries: int, pairs: int):
    """Progress over queries on stderr: a bar (moved by each batch of pairs, so it moves inside long queries)
    on a terminal, else a line now and then."""
    if not stderr.is_terminal:
        yield _Lines(queries, pairs)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("reranking"), BarColumn(), TextColumn(f"{{task.fields[queries]}}/{queries} queries"),
               TimeElapsedColumn(), TextColumn("·"), TimeRemainingColumn(), TextColumn("left"))  # fmt: skip
    with Progress(*columns, console=stderr, transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        yield _Bar(bar, bar.add_task("reranking", total=pairs, queries=0))
