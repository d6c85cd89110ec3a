"""The run around ``qrr rerank`` and ``qrr eval``'s reranking: its inputs read under ``--on-error``, a --resume
file gone on with, blanks and too-long queries said, and the reranking shown on stderr
(``rerank_showing_progress``)."""

from __future__ import annotations

from contextlib import contextmanager

from qrr.cli.base import check_not_stdout, model_options, remote_or_local, stderr
from qrr.cli.render import (
    Blanks,
    Skipped,
    crash_zeros,
    cut_to,
    nothing_left,
    query_progress,
    report,
    skipping,
    unrecorded,
)
from qrr.errors import InputError


def read_run_inputs(on_error, run: str, queries: str, corpus: str, depth: int, **options):
    """``pipelines.read_run_inputs`` under ``--on-error``: what it skipped (bad lines, queries and documents missing
    from the inputs) is said at once, not after hours of reranking."""
    from qrr import pipelines

    check_not_stdout([run, queries, corpus])  # qrr rerank bm25.trec ... >> bm25.trec: each result twice
    bad_lines = skipping(on_error)
    lacking_queries = skipping(on_error, "of the run's queries", noun=False)
    lacking_documents = skipping(on_error, "of the run's documents", noun=False)

    def missing(error: pipelines.Missing) -> None:
        (lacking_queries if error.kind == "query" else lacking_documents)(error)

    try:
        return pipelines.read_run_inputs(run, queries, corpus, depth, on_error=bad_lines,
                                         on_missing=missing if bad_lines is not None else None, **options)  # fmt: skip
    finally:  # before an error too: "no results in the run" said nothing of the UTF-16 file skipped whole
        for skipped in (bad_lines, lacking_queries, lacking_documents):
            if skipped is not None:
                skipped.report()


def _warn_of_blanks(inputs) -> None:
    """Say before the work which of the queries and documents left to rerank are blank (a query of no words, a
    corpus entry with no title or text): each is scored as given, and its scores rank nothing by relevance."""
    queries = Blanks("blank query", "blank queries", ())
    documents = Blanks("blank document", "blank documents", ())
    seen = set()
    for job in inputs.jobs:
        if not job.query.strip():
            queries.see(job.qid)
        for docid in job.docids:
            if docid not in seen and not inputs.corpus[docid].strip():
                documents.see(docid)
            seen.add(docid)
    queries.report()
    documents.report()


@contextmanager
def too_long_queries(policy, jobs: int, before: int = 0, within: str = "--max-length"):
    """For ``pipelines.rerank_run``'s ``on_error`` under ``--on-error``: the run's queries too long for
    --max-length (``within``: the server's), said when the run ends (however it ends); ``None`` (stop at the first)
    for ``fail``. Where all ``jobs`` were, and the output held none before (``before``), the run is an error (exit
    2), as when every line is bad."""
    skipped = skipping(policy, "of the run's queries", noun=False)
    try:
        yield skipped
    finally:
        if skipped is not None:
            skipped.report()
    check_some_reranked(skipped, jobs, before, within)


def check_some_reranked(skipped: Skipped | None, jobs: int, before: int = 0, within: str = "--max-length") -> None:
    """``InputError`` where ``skipped`` holds every one of the ``jobs`` queries of a run whose output held none."""
    if skipped is not None and jobs and skipped.count >= jobs and not before:
        raise InputError(f"every query of the run leaves no room within {within} ({skipped.count:,} skipped): "
                         f"nothing was reranked; raise {within}, or shorten the instruction (-i)")  # fmt: skip


def reranking(ctx, inputs, output, top_k, server, instruction, verbose: bool, on_error):
    """The ``rerank`` that ``rerank_showing_progress`` calls, with a model loaded here or a server's (``server``)."""
    from qrr import pipelines

    def rerank(on_pairs, on_query):
        reranker = remote_or_local(server, instruction, verbose, **model_options(ctx))
        within = "the server's --max-length" if server else "--max-length"  # not this command's to raise there
        with too_long_queries(on_error, len(inputs.jobs), output.done if output else 0, within) as too_long:
            result = pipelines.rerank_run(reranker, inputs, output, top_k, on_pairs, on_query, too_long)
        return result, cut_to(reranker)

    return rerank


def rerank_showing_progress(inputs, output, top_k, rerank, verbose: bool, others=None):
    """Go on from a --resume file, then rerank what is left with progress on stderr, writing to ``output`` (a
    ``pipelines.RunOutput``) or, where it is ``None``, keeping the results, which it returns.
    ``rerank(on_pairs, on_query)`` does the work (and loads a model) only if there is something to rerank, and
    returns ``pipelines.rerank_run``'s result and the length documents were cut to (``cut_to``). ``others``: see
    ``RunOutput.prepare``."""
    done = 0
    if output is not None:
        cut = output.prepare(inputs, top_k, others)
        done = output.done
        if output.path and (cut or done):
            if output.zeroed:
                stderr.print(crash_zeros(output.path, output.zeroed), highlight=False)
            if cut and output.cut_query is None:
                if not output.zeroed:  # whose note says it
                    stderr.print(f"{output.path}: its last line was cut off mid-write and is dropped", highlight=False)
            elif cut and others and output.cut_query in others:  # eval: a query it does not rerank
                stderr.print(
                    f"{output.path}: the last query, {output.cut_query}, looked unfinished and is cut off; it "
                    f"has no qrels here (qrr rerank --resume {output.path} reranks it)",
                    highlight=False,
                )
            elif cut:
                stderr.print(f"{output.path}: the last query was unfinished; it is reranked again", highlight=False)
            stderr.print(f"resuming {output.path}: {done} of {done + len(inputs.jobs)} queries are done",
                         highlight=False)  # fmt: skip
            unrecorded(output)
    _warn_of_blanks(inputs)  # of the queries left: a finished --resume has none to warn of
    if not inputs.jobs:
        if output is not None:
            output.release()
        said = nothing_left("rerank", output) if done else "nothing to rerank"
        stderr.print(said, highlight=False)
        return {}
    try:
        with query_progress(len(inputs.jobs), inputs.pairs) as tracker:
            result, limit = rerank(tracker.pairs, tracker.query)
    finally:
        if output is not None:
            output.release()  # where the model failed to load, say: nothing wrote, the file is still claimed
    report(result.stats, limit, verbose)
    return result.run
