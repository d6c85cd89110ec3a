"""qrr rank: documents for one query, best first."""

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
from qrr.prompt import DEFAULT_MAX_LENGTH
from qrr.reranker import Stats


@app.command(no_args_is_help=False)
@errors_to_exit
def rank(
    query: Annotated[str, typer.Option("--query", "-q", help="The query to rank the documents for.")],
    files: FilesArg = None,
    documents: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A document to rank (repeatable).")
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Print only the best K.")] = None,
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
    fmt: FormatOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    offline: OfflineOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Rank documents for one query, best first.

    Documents come as JSON lines (objects with [bold]text[/] and optional [bold]id[/], or JSON strings),
    a JSON array, plain text with one document per line, or -d arguments.

    [dim]Examples:[/]
      qrr rank -q "what is gravity?" docs.jsonl -k 5
      qrr rank -q "gravity?" docs.jsonl | jq -r 'select(.score > 0.5) | .id'
      grep -h gravity notes/*.txt | qrr rank -q "what is gravity?" --with-text
    """
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
