"""qrr score: p(yes) for query-document pairs, streamed in input order."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from qrr import io
from qrr.cli.base import (
    BatchTokensOpt,
    DeviceOpt,
    DtypeOpt,
    FilesArg,
    FormatOpt,
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
from qrr.errors import InputError
from qrr.prompt import DEFAULT_MAX_LENGTH
from qrr.reranker import CHUNK, Stats, chunks


@app.command(no_args_is_help=False)
@errors_to_exit
def score(
    files: FilesArg = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Score this query against each -d document.")
    ] = None,
    documents: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A document for -q (repeatable).")
    ] = None,
    input_format: Annotated[
        str, typer.Option("--input-format", help="auto, jsonl, json or tsv.", rich_help_panel="Input")
    ] = "auto",
    on_error: OnErrorOpt = "fail",
    instruction: InstructionOpt = None,
    fmt: FormatOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    offline: OfflineOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Score query-document pairs: p(yes) in [0, 1], one result per pair, in input order.

    Pairs come as JSON lines with [bold]query[/] and [bold]document[/] (optional [bold]instruction[/]; id
    fields such as [bold]id[/], [bold]qid[/], [bold]docid[/] are copied to the output), as TSV lines
    [bold]query<TAB>document[/], or from -q/-d.

    [dim]Examples:[/]
      qrr score pairs.jsonl
      cat pairs.tsv | qrr score --format tsv
      qrr score -q "capital of China?" -d "Beijing is the capital." -d "Paris is in France."
    """
    fmt = pick_output_format(fmt)
    input_format = pick_input_format(input_format, io.PAIR_FORMATS)
    skipped = on_error_policy(on_error)
    if documents and query is None:
        raise InputError("-d/--document needs -q/--query")
    if query is not None and not documents:
        raise InputError("-q/--query needs at least one -d/--document (or use qrr rank)")
    inline = [io.PairRecord(query, d) for d in documents or []]
    records = itertools.chain(inline, io.read_pairs(input_sources(files, bool(inline)), input_format, skipped))
    first = next(records, None)
    if first is None:
        report(Stats(), max_length, False, skipped)
        if verbose:
            stderr.print("no pairs in the input")
        return
    reranker = load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose)
    # Streamed: each chunk's results are written (and flushed) as soon as it is scored, in input order.
    writer = io.RowWriter(fmt)
    total, index = Stats(), 0
    with progress(None, "scoring") as advance:
        for chunk in chunks(itertools.chain([first], records), CHUNK):
            scores = reranker.score([(r.query, r.document, r.instruction) for r in chunk], progress=advance)
            total += reranker.stats
            previews = [{"query": r.query, "document": r.document} for r in chunk] if fmt == "table" else None
            writer.write(io.score_rows(chunk, scores, start=index), previews)
            index += len(chunk)
    writer.close()
    report(total, reranker.max_length, verbose, skipped)
