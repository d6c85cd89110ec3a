"""qrr rerank: rerank each query's top documents of a first-stage run (TREC, BEIR), with --resume."""

from __future__ import annotations

from typing import Annotated

import typer

from qrr.cli.base import (
    BatchTokensOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnError,
    OnErrorOpt,
    RunFormat,
    VerboseOpt,
    command,
    given,
    load_reranker,
    stderr,
)
from qrr.cli.render import query_progress, report, skipping, status
from qrr.errors import InputError
from qrr.family import DEFAULT_MAX_LENGTH
from qrr.formats import TAG
from qrr.pipelines import DEFAULT_DEPTH

PANEL = "First-stage run (TREC/BEIR)"

DepthOpt = Annotated[
    int, typer.Option("--depth", metavar="N", min=1, rich_help_panel=PANEL,
                      help="Rerank each query's top N documents of the run."),
]  # fmt: skip
ResumeOpt = Annotated[
    str | None,
    typer.Option("--resume", metavar="OUT", rich_help_panel=PANEL,
                 help="Write the reranked run to OUT; where OUT exists, skip the queries it completes and append "
                 "the rest (an interrupted run goes on)."),
]  # fmt: skip
TagOpt = Annotated[str, typer.Option("--tag", metavar="TAG", rich_help_panel=PANEL, help="The run tag of TREC output.")]


@command(no_args_is_help=True)
def rerank(
    ctx: typer.Context,
    run: Annotated[
        str,
        typer.Argument(
            metavar="RUN",
            show_default=False,
            help="The first-stage run: TREC (qid Q0 docid rank score tag) or qrr's JSON lines; - reads stdin.",
        ),
    ],  # fmt: skip
    corpus: Annotated[
        str | None,
        typer.Option(
            "--corpus",
            metavar="CORPUS",
            rich_help_panel=PANEL,
            help="BEIR corpus JSONL (_id, title, text) holding the run's documents.",
        ),
    ] = None,  # fmt: skip
    queries: Annotated[
        str | None,
        typer.Option(
            "--queries",
            metavar="QUERIES",
            rich_help_panel=PANEL,
            help="BEIR queries JSONL (_id, text) or qid<TAB>text lines.",
        ),
    ] = None,  # fmt: skip
    beir: Annotated[
        str | None,
        typer.Option(
            "--beir",
            metavar="DIR",
            rich_help_panel=PANEL,
            help="A BEIR dataset folder: its corpus.jsonl and queries.jsonl.",
        ),
    ] = None,  # fmt: skip
    depth: DepthOpt = DEFAULT_DEPTH,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Write only each query's best K.")] = None,
    resume: ResumeOpt = None,
    fmt: Annotated[
        RunFormat | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            rich_help_panel="Output",
            help="[dim]\\[default: trec, or the format of an existing --resume file][/]",
        ),
    ] = None,  # fmt: skip
    tag: TagOpt = TAG,
    on_error: OnErrorOpt = OnError.fail,
    instruction: InstructionOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    offline: OfflineOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Rerank a first-stage run (BM25, a dense retriever), query by query: each query's top --depth documents.

    The documents' texts come from a BEIR --corpus (title and text joined with a space), the queries from
    --queries, or both from a --beir folder. Out comes a TREC run on stdout, or JSON lines with qid, docid,
    rank and score. [bold]--resume OUT[/] makes a long run survive an interruption: run the same command again
    to go on. Measure the result with [bold]qrr eval[/].

    [dim]Examples:[/]
      qrr rerank bm25.trec --beir scifact --resume qrr.trec
      qrr rerank run.trec --corpus corpus.jsonl --queries queries.tsv --depth 50 -f jsonl
    """
    from qrr import formats, pipelines

    if beir is not None:
        clashing = given(ctx, "corpus", "queries")
        if clashing:
            raise InputError(f"{', '.join(clashing)}: not with --beir, which names the corpus and queries")
        folder = formats.BeirFolder.at(beir)
        corpus, queries = folder.corpus, folder.queries
    elif corpus is None or queries is None:
        raise InputError("give the run's --corpus and --queries (BEIR's corpus.jsonl and queries.jsonl), or --beir DIR")
    output = pipelines.RunOutput.checked(resume, fmt.value if fmt else None, tag)
    bad_lines = skipping(on_error)
    missing = skipping(on_error, "run entries missing from the inputs")
    inputs = pipelines.read_run_inputs(run, queries, corpus, depth, on_error=bad_lines, on_missing=missing,
                                       status=status)  # fmt: skip
    # said now, not after hours of reranking
    for skipped in (bad_lines, missing):
        if skipped is not None:
            skipped.report()
    rerank_with_progress(
        inputs,
        output,
        top_k,
        lambda: load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose),
        verbose,
    )


def rerank_with_progress(inputs, output, top_k, load, verbose: bool, others=()):
    """Go on from a --resume file, then rerank what is left with progress on stderr, writing to ``output`` (a
    ``pipelines.RunOutput``) or, where it is ``None``, keeping the results, which it returns. The model loads
    (``load()``) only if there is something to rerank. ``others``: see ``RunOutput.prepare``."""
    from qrr import pipelines

    done = 0
    if output is not None:
        cut = output.prepare(inputs, top_k, others)
        done = output.done
        if output.path and (cut or done):
            if cut:
                stderr.print(f"{output.path}: the last query was unfinished; it is reranked again", highlight=False)
            stderr.print(f"resuming {output.path}: {done} of {done + len(inputs.jobs)} queries are done",
                         highlight=False)  # fmt: skip
    if not inputs.jobs:
        stderr.print("nothing left to rerank" if done else "nothing to rerank", highlight=False)
        return {}
    reranker = load()
    with query_progress(len(inputs.jobs), inputs.pairs) as tracker:
        result = pipelines.rerank_run(reranker, inputs, output, top_k, progress=tracker.pairs, on_query=tracker.query)
    report(result.stats, reranker.max_length, verbose)
    return result.run
