"""qrr rank: documents for one query, best first."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from qrr.cli.base import (
    BatchTokensOpt,
    CompileOpt,
    DeviceOpt,
    DocFormat,
    Dtype,
    DtypeOpt,
    FilesArg,
    FormatOpt,
    IdFieldOpt,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnError,
    OnErrorOpt,
    RecipeName,
    RecipeOpt,
    ServerOpt,
    TextFieldOpt,
    VerboseOpt,
    WithFieldsOpt,
    check_given_texts,
    chosen_server,
    command,
    fields_checked,
    given,
    input_sources,
    model_options,
    remote_or_local,
    stderr,
    stdout_format,
)
from qrr.cli.render import Blanks, LineCount, cut_to, no_input, progress, report, skipping, writer
from qrr.errors import InputError, Interrupted, plural, qrr_cause
from qrr.family import DEFAULT_MAX_LENGTH

TABLE_ROWS = 100  # the best documents a table shows where -k does not say
# why an interrupted or failed rank leaves nothing, and what keeps results as they come
UNWRITTEN = ("a ranking is written once every document is scored (for a long one, qrr score -q QUERY FILE --resume "
             "OUT keeps the scores as they come)")  # fmt: skip


@command(no_args_is_help=False)
def rank(
    query: Annotated[str, typer.Option("--query", "-q", help="The query to rank the documents for.")],
    files: FilesArg = None,
    documents: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A document to rank (repeatable).")
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            "-k",
            min=1,
            metavar="K",
            help="Print only the best K. [dim]\\[default: all; a table, the best 100][/]",
        ),
    ] = None,  # fmt: skip
    with_text: Annotated[
        bool, typer.Option("--with-text", help="Include each document's text (JSON, TSV).", rich_help_panel="Output")
    ] = False,  # fmt: skip
    with_fields: WithFieldsOpt = False,
    input_format: Annotated[
        DocFormat,
        typer.Option(
            "--input-format",
            case_sensitive=False,
            rich_help_panel="Input",
            help='auto: JSON when the first line is JSON (an object, an array, a "string"), else text (a *.tsv '
            "file's id<TAB>text lines: tsv); tsv: id<TAB>text lines.",
        ),
    ] = DocFormat.auto,  # fmt: skip
    text_field: TextFieldOpt = "text",
    id_field: IdFieldOpt = "id",
    on_error: OnErrorOpt = OnError.fail,
    instruction: InstructionOpt = None,
    fmt: FormatOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    recipe: RecipeOpt = RecipeName.transformers,
    compile: CompileOpt = False,
    offline: OfflineOpt = False,
    server: ServerOpt = None,
    verbose: VerboseOpt = False,
    ctx: typer.Context = None,
) -> None:
    """Rank documents for one query, best first.

    Documents come as JSON lines (objects with [bold]text[/] and optional [bold]id[/], or JSON strings),
    a JSON array, plain text with one document per line, [bold]id<TAB>text[/] lines (*.tsv, --input-format tsv), or -d
    arguments. Each result has its [bold]rank[/] (1 is best), [bold]index[/] (the document's place in the input,
    from 0), [bold]score[/] (p(yes) in [0, 1]) and [bold]id[/] where the document has one. To rerank a first-stage
    run (TREC, BEIR), use [bold]qrr rerank[/].

    [dim]Examples:[/]
      qrr rank -q "what is gravity?" docs.jsonl -k 5
      qrr rank -q "gravity?" docs.jsonl | jq -r 'select(.score > 0.5) | .id'
      qrr rank -q "gravity?" pages.jsonl --with-fields -k 3 | jq -r .url
      grep -h gravity notes/*.txt | qrr rank -q "what is gravity?" --with-text
      qrr rank --server http://localhost:8000 -q "what is gravity?" docs.jsonl
    """
    from qrr import formats, pipelines

    fmt = stdout_format(fmt)
    server = chosen_server(ctx, server)
    skipped = skipping(on_error)
    check_given_texts(query, documents, instruction)
    inline = [formats.DocRecord(d) for d in documents or []]
    sources = input_sources(files, bool(inline), documents=True)
    docs = itertools.chain(inline, formats.read_documents(sources, input_format.value, text_field, id_field, skipped))
    if with_fields:  # a document with a field named as the result's own is bad input (the first's said early)
        docs = fields_checked(docs, with_text, skipped)
    blanks = Blanks("blank document", "blank documents", ("text",))
    docs = blanks.passing(docs)
    first = next(docs, None)
    if first is None:
        no_input(fmt, skipped, "document", "rank", verbose)
        return
    asked = with_text
    with_text = with_text or fmt == "table"  # a table shows the start of each text (its own "text" field gives way)
    # a table of 300,000 rows took 2 GB and a minute and a half of blank screen to draw; nobody reads past the top
    shown = top_k if top_k is not None or fmt != "table" else TABLE_ROWS
    reranker = remote_or_local(server, instruction, verbose, **model_options(ctx))
    scored = 0
    try:
        estimate = LineCount(sources if not inline else [])
        with progress(None, "ranking", estimate=estimate, unit="documents") as advance:

            def count(n: int) -> None:
                nonlocal scored
                scored += n
                advance(n)

            ranked = pipelines.rank_records(reranker, query, itertools.chain([first], docs), top_k=shown,
                                            return_documents=with_text, progress=count,
                                            with_fields=with_fields)  # fmt: skip
    except KeyboardInterrupt as exc:  # a ranking needs every document: nothing is written
        raise Interrupted.of(exc, f"after scoring {plural(scored, 'document')}; {UNWRITTEN}") from None
    except Exception as exc:  # a bad line or a server gone, minutes in: what was scored is lost, said so
        if scored:
            cause = qrr_cause(exc)
            skip = "; --on-error skip leaves such lines out" if skipped is None and isinstance(
                cause, InputError) and cause.skippable else ""  # fmt: skip
            stderr.print(f"note: nothing was written of the {plural(scored, 'document')} scored: {UNWRITTEN}{skip}",
                         highlight=False)  # fmt: skip
        raise
    out = writer(fmt, previews=("text",), asked=asked)
    try:
        out.write(formats.rank_rows(ranked, with_text))
    except KeyboardInterrupt as exc:  # while a slow reader held the writing: say the ranking is cut short
        if out.count or fmt == "json":
            out.close()  # a table drawn, a JSON array closed
        raise Interrupted.of(exc, f"after writing the best {out.count:,} of {plural(len(ranked), 'result')}") from None
    out.close()
    if shown != top_k and ranked.stats.pairs > shown:
        stderr.print(f"note: the table shows the best {shown} of {ranked.stats.pairs:,} documents; -k N shows N, -f "
                     "jsonl writes them all", highlight=False)  # fmt: skip
    if given(ctx, "id_field") and ranked and all(r.get("id") is None for r in ranked):
        stderr.print(f'warning: no result has an id; is "{id_field}" the field that holds them? (--id-field)',
                     style="yellow", highlight=False, markup=False)  # fmt: skip
    report(ranked.stats, cut_to(reranker), verbose, skipped)
    blanks.report()
