"""qrr rank: documents for one query, best first."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from qrr import io, runs
from qrr.cli.base import (
    BatchTokensOpt,
    DeviceOpt,
    DtypeOpt,
    FilesArg,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnErrorOpt,
    VerboseOpt,
    app,
    errors_to_exit,
    input_sources,
    load_reranker,
    on_error_policy,
    pick_input_format,
    pick_output_format,
    progress,
    report,
    stderr,
)
from qrr.cli.reranking import (
    DEFAULT_DEPTH,
    PANEL,
    DepthOpt,
    Output,
    ResumeOpt,
    TagOpt,
    read_inputs,
    rerank_into,
)
from qrr.errors import InputError
from qrr.prompt import DEFAULT_MAX_LENGTH
from qrr.reranker import Stats


@app.command(no_args_is_help=False)
@errors_to_exit
def rank(
    query: Annotated[str | None, typer.Option("--query", "-q", help="The query to rank the documents for.")] = None,
    files: FilesArg = None,
    documents: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A document to rank (repeatable).")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", "-k", min=1, help="Print only the best K (of each query, with --run).")
    ] = None,
    with_text: Annotated[
        bool, typer.Option("--with-text", help="Include each document's text in JSON output.", rich_help_panel="Output")
    ] = False,  # fmt: skip
    input_format: Annotated[
        str, typer.Option("--input-format", help="auto, jsonl, json or text.", rich_help_panel="Input")
    ] = "auto",
    text_field: Annotated[
        str, typer.Option("--text-field", help="JSON field holding the document text.", rich_help_panel="Input")
    ] = "text",
    id_field: Annotated[
        str, typer.Option("--id-field", help="JSON field holding the document id.", rich_help_panel="Input")
    ] = "id",
    on_error: OnErrorOpt = "fail",
    instruction: InstructionOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            rich_help_panel="Output",
            help="table, jsonl, json or tsv; with --run, trec or jsonl. [dim]\\[default: table on a "
            "terminal, jsonl otherwise; trec with --run][/]",
        ),
    ] = None,  # fmt: skip
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="RUN",
            rich_help_panel=PANEL,
            help="A TREC run (qid Q0 docid rank score tag) to rerank, query by query.",
        ),
    ] = None,  # fmt: skip
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
    depth: DepthOpt = None,
    resume: ResumeOpt = None,
    tag: TagOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    offline: OfflineOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Rank documents for one query, best first; or rerank a first-stage run, query by query.

    Documents come as JSON lines (objects with [bold]text[/] and optional [bold]id[/], or JSON strings),
    a JSON array, plain text with one document per line, or -d arguments.

    With [bold]--run[/], each query's top --depth documents of a TREC run (BM25, a dense retriever) are
    reranked, their texts taken from a BEIR --corpus and the queries from --queries, and a TREC run comes out
    (or JSON lines with qid, docid, rank, score). --resume OUT makes a long run survive an interruption.

    [dim]Examples:[/]
      qrr rank -q "what is gravity?" docs.jsonl -k 5
      qrr rank -q "gravity?" docs.jsonl | jq -r 'select(.score > 0.5) | .id'
      grep -h gravity notes/*.txt | qrr rank -q "what is gravity?" --with-text
      qrr rank --run bm25.trec --corpus scifact/corpus.jsonl --queries scifact/queries.jsonl --resume qrr.trec
    """
    run_options = {"--corpus": corpus, "--queries": queries, "--depth": depth, "--resume": resume, "--tag": tag}
    if run is not None:
        given = {"-q/--query": query, "-d/--document": documents, "FILE": files, "--with-text": with_text or None,
                 "--input-format": None if input_format == "auto" else input_format,
                 "--text-field": None if text_field == "text" else text_field,
                 "--id-field": None if id_field == "id" else id_field}  # fmt: skip
        clashing = [name for name, value in given.items() if value]
        if clashing:
            raise InputError(f"{', '.join(clashing)}: not with --run (the run names the queries and documents)")
        if corpus is None or queries is None:
            raise InputError("--run needs --corpus and --queries (BEIR's corpus.jsonl and queries.jsonl)")
        output = Output.checked(resume, fmt, tag or runs.TAG)
        inputs = read_inputs(run, queries, corpus, depth or DEFAULT_DEPTH, on_error)
        output.pick_up(inputs, top_k)
        if not inputs.jobs:
            stderr.print("nothing left to rerank" if output.done else "nothing to rerank", highlight=False)
            return
        reranker = load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose)
        rerank_into(reranker, inputs, output, top_k)
        report(reranker.stats, reranker.max_length, verbose, None)
        return
    misplaced = [name for name, value in run_options.items() if value is not None]
    if fmt is not None and fmt.lower() == "trec":
        misplaced.append("--format trec")
    if misplaced:
        raise InputError(f"{', '.join(misplaced)}: only with --run")
    if query is None:
        raise InputError("give the query with -q/--query (or a first-stage run with --run)")
    fmt = pick_output_format(fmt)
    input_format = pick_input_format(input_format, io.DOC_FORMATS)
    skipped = on_error_policy(on_error)
    inline = [io.DocRecord(d) for d in documents or []]
    sources = input_sources(files, bool(inline))
    docs = itertools.chain(inline, io.read_documents(sources, input_format, text_field, id_field, skipped))
    first = next(docs, None)
    if first is None:
        report(Stats(), max_length, False, skipped)
        if verbose:
            stderr.print("no documents in the input")
        return
    reranker = load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose)
    # Documents are read and scored a chunk at a time; only scores, ids and (where shown) texts are kept.
    texts, ids = itertools.tee(itertools.chain([first], docs))
    with progress(None, "ranking") as advance:
        ranked = reranker.rank(query, (d.text for d in texts), top_k=top_k, ids=(d.id for d in ids),
                               progress=advance, keep_text=with_text or fmt == "table")  # fmt: skip
    writer = io.RowWriter(fmt)
    writer.write(io.rank_rows(ranked, with_text), [{"text": r.text} for r in ranked] if fmt == "table" else None)
    writer.close()
    report(reranker.stats, reranker.max_length, verbose, skipped)
