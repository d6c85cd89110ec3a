"""qrr score: p(yes) for query-document pairs, streamed in input order."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from qrr.cli.base import (
    RAY_PANEL,
    BatchTokensOpt,
    CompileOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    FilesArg,
    FormatOpt,
    GpusOpt,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnError,
    OnErrorOpt,
    PairFormat,
    RayAddressOpt,
    RayOpt,
    RecipeName,
    RecipeOpt,
    ServerOpt,
    ShardFormat,
    VerboseOpt,
    WorkersOpt,
    chosen_server,
    command,
    given,
    input_sources,
    ray_only,
    remote_or_local,
    start_ray,
    stderr,
)
from qrr.cli.base import output_format as output_format_of
from qrr.cli.render import Skipped, progress, report, skipping, writer
from qrr.errors import InputError, Interrupted
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
            help="auto: JSON when the first line is JSON (an object, an array), else TSV.",
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
    compile: CompileOpt = False,
    offline: OfflineOpt = False,
    server: ServerOpt = None,
    ray: RayOpt = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            rich_help_panel=RAY_PANEL,
            help="With --ray: the folder (local or remote) to write result shards to.",
        ),
    ] = None,  # fmt: skip
    output_format: Annotated[
        ShardFormat,
        typer.Option(
            "--output-format", case_sensitive=False, rich_help_panel=RAY_PANEL, help="With --ray: the shards' format."
        ),
    ] = ShardFormat.parquet,  # fmt: skip
    workers: WorkersOpt = None,
    gpus_per_worker: GpusOpt = None,
    ray_address: RayAddressOpt = None,
    verbose: VerboseOpt = False,
    ctx: typer.Context = None,
) -> None:
    """Score query-document pairs: p(yes) in [0, 1], one result per pair, in input order.

    Pairs come as JSON lines with [bold]query[/] and [bold]document[/] (optional [bold]instruction[/]; id
    fields such as [bold]id[/], [bold]qid[/], [bold]docid[/] are copied to the output), as TSV lines
    [bold]query<TAB>document[/], or from -q/-d. Results are written as each chunk (up to 1024 pairs or eight
    batches of text) is scored.

    With [bold]--ray[/], the pairs (JSONL, TSV or Parquet files or folders, local or remote such as s3://) are
    scored on Ray Data actors, one model each, and written as shards to --output DIR with every input column
    and a score column.

    [dim]Examples:[/]
      qrr score pairs.jsonl
      cat pairs.tsv | qrr score
      qrr score pairs.jsonl -f tsv > scores.tsv
      qrr score -q "capital of China?" -d "Beijing is the capital." -d "Paris."
      qrr score --server http://localhost:8000 pairs.jsonl
      qrr score --ray s3://bucket/pairs/ -o s3://bucket/scored/ --workers 8
    """
    from qrr import formats, pipelines
    from qrr.reranker import Stats

    ray_only(ctx, ray, "output", "output_format", "workers", "gpus_per_worker", "ray_address")
    if ray:
        clashing = given(ctx, "fmt", "query", "documents", "server")
        if clashing:
            raise InputError(f"{', '.join(clashing)}: not with --ray, which reads FILEs and writes --output shards")
        _score_on_ray(files, input_format, on_error, output, output_format, workers, gpus_per_worker, ray_address,
                      model=model, device=device, dtype=dtype.value, max_length=max_length, instruction=instruction,
                      batch_tokens=batch_tokens, recipe=recipe.value, compile=compile,
                      offline=offline or None)  # fmt: skip
        return
    fmt = output_format_of(fmt)
    server = chosen_server(ctx, server)
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
    reranker = remote_or_local(server, instruction, verbose, model=model, device=device, dtype=dtype,
                               max_length=max_length, batch_tokens=batch_tokens, offline=offline, recipe=recipe,
                               compile=compile)  # fmt: skip
    out = writer(fmt, previews=("query", "document"))
    total = Stats()
    try:
        with progress(None, "scoring") as advance:
            for chunk in pipelines.score_records(reranker, itertools.chain([first], records), progress=advance):
                total += chunk.scores.stats
                rows = formats.score_rows(chunk.records, chunk.scores, start=chunk.start)
                if fmt == "table":  # a table shows the start of each query and document
                    texts = [{"query": r.query, "document": r.document} for r in chunk.records]
                    rows = [row | text for row, text in zip(rows, texts, strict=True)]
                out.write(rows)
    except KeyboardInterrupt as exc:
        if out.count or fmt == "json":
            out.close()  # what is scored stays usable: a table drawn, a JSON array closed
        raise Interrupted.of(exc, f"after writing the results of {out.count:,} pairs") from None
    out.close()
    report(total, reranker.max_length, verbose, skipped)


def _score_on_ray(files, input_format, on_error, output, shard_format, workers, gpus_per_worker, address, model,
                  **options) -> None:  # fmt: skip
    import time

    import ray as ray_core

    if not files or files == ["-"]:
        raise InputError("--ray reads FILEs or folders (local or remote), not stdin")
    if output is None:
        raise InputError("--ray needs --output DIR, the folder for the result shards")
    raydata, placement, model = start_ray(address, workers, gpus_per_worker, model, options.get("offline"))
    if raydata.files_at(output):
        raise InputError(f"--output {output}: the folder holds files already; give a new or empty one")
    errors = raydata.ErrorLog.remote()
    skip = on_error.value == "skip"
    began = time.perf_counter()
    pairs = raydata.read_pairs(files, input_format.value, errors if skip else None)
    scored = raydata.score(pairs, model, placement=placement, errors=errors, skip=skip, **options)
    rows = raydata.write(scored, output, shard_format.value)
    seconds = time.perf_counter() - began
    if skip:
        skipped = Skipped()
        skipped.count, skipped.messages = ray_core.get(errors.report.remote())
        skipped.report()
    wrote = f"wrote {output}" if rows else "wrote nothing"
    stderr.print(f"scored {rows:,} pairs in {seconds:.1f} s ({rows / seconds:.1f} pairs/s) on "
                 f"{placement.describe()}; {wrote}", highlight=False)  # fmt: skip
