"""qrr score: p(yes) for query-document pairs, streamed in input order."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from qrr.cli.base import (
    BatchTokensOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    FilesArg,
    FormatOpt,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnError,
    OnErrorOpt,
    PairFormat,
    RecipeName,
    RecipeOpt,
    VerboseOpt,
    command,
    input_sources,
    load_reranker,
    output_format,
    stderr,
)
from qrr.cli.render import progress, report, skipping, writer
from qrr.errors import InputError
from qrr.family import DEFAULT_MAX_LENGTH


@command(no_args_is_help=False)
def score(
    files: FilesArg = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Score this query against each -d document.")
    ] = None,
    documents: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A document for -q (repeatable).")
    ] = None,
    input_format: Annotated[
        PairFormat,
        typer.Option(
            "--input-format",
            case_sensitive=False,
            rich_help_panel="Input",
            help="auto: JSON when the input starts with { or [, else TSV.",
        ),
    ] = PairFormat.auto,  # fmt: skip
    on_error: OnErrorOpt = OnError.fail,
    instruction: InstructionOpt = None,
    fmt: FormatOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    recipe: RecipeOpt = RecipeName.transformers,
    offline: OfflineOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Score query-document pairs: p(yes) in [0, 1], one result per pair, in input order.

    Pairs come as JSON lines with [bold]query[/] and [bold]document[/] (optional [bold]instruction[/]; id
    fields such as [bold]id[/], [bold]qid[/], [bold]docid[/] are copied to the output), as TSV lines
    [bold]query<TAB>document[/], or from -q/-d. Results are written as each chunk of 1024 pairs is scored.

    [dim]Examples:[/]
      qrr score pairs.jsonl
      cat pairs.tsv | qrr score --format tsv
      qrr score -q "capital of China?" -d "Beijing is the capital." -d "Paris is in France."
    """
    from qrr import formats, pipelines
    from qrr.reranker import Stats

    fmt = output_format(fmt)
    skipped = skipping(on_error)
    if documents and query is None:
        raise InputError("-d/--document needs -q/--query")
    if query is not None and not documents:
        raise InputError("-q/--query needs at least one -d/--document (or use qrr rank)")
    inline = [formats.PairRecord(query, d) for d in documents or []]
    sources = input_sources(files, bool(inline))
    records = itertools.chain(inline, formats.read_pairs(sources, input_format.value, skipped))
    first = next(records, None)
    if first is None:
        if fmt != "table":
            writer(fmt).close()  # `[]` for JSON
        report(Stats(), max_length, False, skipped)
        if verbose:
            stderr.print("no pairs in the input")
        return
    reranker = load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose, recipe)
    out = writer(fmt, previews=("query", "document"))
    total = Stats()
    with progress(None, "scoring") as advance:
        for chunk in pipelines.score_records(reranker, itertools.chain([first], records), progress=advance):
            total += chunk.scores.stats
            rows = formats.score_rows(chunk.records, chunk.scores, start=chunk.start)
            if fmt == "table":  # a table shows the start of each query and document
                texts = [{"query": r.query, "document": r.document} for r in chunk.records]
                rows = [row | text for row, text in zip(rows, texts, strict=True)]
            out.write(rows)
    out.close()
    report(total, reranker.max_length, verbose, skipped)
