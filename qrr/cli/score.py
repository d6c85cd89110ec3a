"""qrr score: p(yes) for query-document pairs, streamed in input order."""

from __future__ import annotations

import contextlib
import itertools
import os
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
    OnErrorQueriesOpt,
    RecipeName,
    RecipeOpt,
    ServerOpt,
    ShardFormat,
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
    resume_settings,
    stderr,
    stdout_format,
)
from qrr.cli.onray import (
    RAY_PANEL,
    GpusOpt,
    RayAddressOpt,
    RayOpt,
    WorkersOpt,
    ray_only,
    say_actors,
    start_ray,
    without_ray_advice,
)
from qrr.cli.render import (
    Blanks,
    LineCount,
    all_bad,
    crash_zeros,
    cut_to,
    no_input,
    progress,
    report,
    skipping,
    unrecorded,
    writer,
)
from qrr.errors import InputError, Interrupted, PairError, QrrError, SourceError, Stopped, plural, qrr_cause
from qrr.family import DEFAULT_MAX_LENGTH

BLANK_PAIRS = ("pair with a blank query or document", "pairs with a blank query or document", ("query", "document"))
CUT_SHOWN = 3  # the documents cut to --max-length that the note names
IDLE = 1.0  # seconds without a new line after which the pairs read so far are scored and written


@command(no_args_is_help=False)
def score(
    files: FilesArg = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            "-q",
            help="Score this query against each -d document and each document of FILEs (as qrr rank reads "
            "them: JSON lines with text and id, or a line of text each).",
        ),
    ] = None,
    documents: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A document for -q (repeatable).")
    ] = None,
    input_format: Annotated[
        DocFormat,
        typer.Option(
            "--input-format",
            case_sensitive=False,
            rich_help_panel="Input",
            help="auto: JSON when the first line is JSON (an object, an array), else TSV (query<TAB>document). With "
            "-q and FILEs of documents, as qrr rank reads them: auto's else is text, a document a line (text "
            "forces it), and tsv is id<TAB>text.",
        ),
    ] = DocFormat.auto,  # fmt: skip
    text_field: TextFieldOpt = "text",
    id_field: IdFieldOpt = "id",
    on_error: OnErrorQueriesOpt = OnError.fail,
    instruction: InstructionOpt = None,
    fmt: FormatOpt = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="OUT",
            rich_help_panel="Output",
            help="Write JSON lines to OUT; where OUT exists, skip the pairs it holds results of and append the rest "
            "(an interrupted run goes on; a file of another input, instruction, max length or recipe is refused, "
            "as the settings are kept in .OUT.qrr.json beside it, and under another model name its last result is "
            "scored again to tell). With --ray, OUT is the shards' folder (in "
            "place of --output): the pairs its shards hold are skipped.",
        ),
    ] = None,
    with_fields: WithFieldsOpt = False,
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
    score_column: Annotated[
        str,
        typer.Option(
            "--score-column",
            metavar="NAME",
            rich_help_panel=RAY_PANEL,
            help="With --ray: the shards' column of scores (name another where the input has a score field).",
        ),
    ] = "score",
    workers: WorkersOpt = None,
    gpus_per_worker: GpusOpt = None,
    ray_address: RayAddressOpt = None,
    verbose: VerboseOpt = False,
    ctx: typer.Context = None,
) -> None:
    """Score query-document pairs: p(yes) in [0, 1], one result per pair, in input order.

    Pairs come as JSON lines with [bold]query[/] and [bold]document[/] (optional [bold]instruction[/]; id
    fields such as [bold]id[/], [bold]qid[/], [bold]docid[/] are copied to the output, and with --with-fields
    every other field), as TSV lines
    [bold]query<TAB>document[/] (a first line naming the columns, in any order, reads more: a label, ids), or from
    -q/-d; files may be gzipped (*.gz). With -q, FILEs (or stdin, without -d) hold documents as qrr rank reads them,
    each scored against -q's query (--text-field and --id-field name their fields): a ranking's scores, streamed and
    resumable. Results are written as each chunk
    (up to 1024 pairs or eight batches of text) is scored, on stdout or into [bold]--resume OUT[/], which makes
    a long run survive an interruption: run the same command again to go on.

    With [bold]--ray[/], the pairs (JSONL, TSV or Parquet files or folders, local or remote such as s3://) are
    scored on Ray Data actors, one model each, and written as shards to --output DIR, in no set order, with every
    input column and a score column (and, from JSONL or TSV, each pair's file and place: qrr_source, qrr_record;
    with --resume DIR in place of --output, a run goes on from the shards an interrupted one left).

    [dim]Examples:[/]
      qrr score pairs.jsonl
      cat pairs.tsv | qrr score
      qrr score pairs.jsonl -f tsv > scores.tsv
      qrr score labeled.jsonl --with-fields | jq -r '[.label, .score] | @tsv'
      qrr score pairs.jsonl.gz --resume scores.jsonl
      qrr score -q "capital of China?" -d "Beijing is the capital." -d "Paris."
      qrr score -q "capital of China?" docs.jsonl --resume scores.jsonl
      qrr score --server http://localhost:8000 pairs.jsonl
      qrr score --ray s3://bucket/pairs/ -o s3://bucket/scored/ --workers 8
    """
    from qrr import formats, pipelines
    from qrr.reranker import Stats

    ray_only(ctx, ray, "output", "output_format", "score_column", "workers", "gpus_per_worker", "ray_address")
    # FILEs of documents, each scored against it; too long for --max-length, it is every pair's, no line to skip
    one_query = query is not None
    misplaced = given(ctx, "text_field", "id_field") if not one_query else []
    if misplaced:
        raise InputError(f"{', '.join(misplaced)}: only with -q, where FILEs hold documents")
    if input_format.value == "text" and not one_query:
        raise InputError("--input-format text reads FILEs of documents, a line each, scored against -q's query; pairs "
                         "are JSON lines or TSV")  # fmt: skip
    if ray:
        if given(ctx, "with_fields"):
            raise InputError("--with-fields: not with --ray, whose shards carry every input column already")
        clashing = given(ctx, "fmt", "query", "documents", "server")
        if clashing:
            raise InputError(f"{', '.join(clashing)}: not with --ray, which reads FILEs and writes --output shards")
        if resume is not None and output is not None:
            raise InputError("--output and --resume: give one (with --ray, --resume DIR is the output folder, gone "
                             "on with where it holds shards)")  # fmt: skip
        check_given_texts(None, None, instruction)
        _score_on_ray(files, input_format, on_error, resume or output, output_format, workers, gpus_per_worker,
                      ray_address, resume is not None, verbose, instruction=instruction, score_column=score_column,
                      **model_options(ctx))  # fmt: skip
        return
    if resume is not None and fmt is not None and fmt.value != "jsonl":
        raise InputError("--resume writes JSON lines: leave out --format, or give -f jsonl")
    fmt = "jsonl" if resume is not None else stdout_format(fmt)
    server = chosen_server(ctx, server)
    skipped = skipping(on_error)
    if documents and query is None:
        raise InputError("-d/--document needs -q/--query")
    check_given_texts(query, documents, instruction)
    inline = [formats.PairRecord(query, d, where="--query") for d in documents or []]
    sources = input_sources(files, bool(inline), documents=one_query)
    saved = _resumed(resume, sources, resume_settings(ctx, server, instruction) if resume else None,
                     skipped is not None)  # fmt: skip
    try:
        if one_query:  # as qrr rank reads them: -d's documents, then FILEs'
            read = formats.read_documents(sources, input_format.value, text_field, id_field, skipped)
            records = itertools.chain(inline, _against(query, read))
        else:
            records = formats.read_pairs(sources, input_format.value, skipped)
        if with_fields:  # a pair with a field named as the result's own is bad input (the first's said early)
            records = fields_checked(records, skipped=skipped)
        last, left_out = saved.skip_done(records) if saved is not None else (None, [])
        if last is not None:  # its ids at least, before the model loads; then "resuming", not before a refusal
            saved.check_input(last, None, with_fields)
            stderr.print(f"resuming {saved.path}: {plural(saved.done, 'pair')} done", highlight=False)
        if saved is not None:
            unrecorded(saved)
        blanks = Blanks(*BLANK_PAIRS)
        records = blanks.passing(records)
        first = next(records, None)
        if first is None:
            no_input(fmt, skipped, "pair", "score", verbose, saved.done if saved else 0, saved)
            return
        reranker = remote_or_local(server, instruction, verbose, **model_options(ctx))
        if saved is not None:
            saved.scored_by(reranker)  # auto's dtype, known now
        if last is not None:
            saved.check_input(last, reranker, with_fields)
            saved.check_left_out(left_out, reranker)
        start = saved.done if saved else 0
        out = writer(fmt, previews=("query", "document"))
        total, cut = Stats(), []
        held = contextlib.ExitStack()
        try:
            estimate = LineCount(sources if not inline else [], start)  # no -q/-d: all pairs are in files
            with held, progress(None, "scoring", estimate=estimate) as advance:
                # a pause in the input (tail -f log | qrr score) writes what came so far: IDLE seconds of none
                chunks = pipelines.score_records(reranker, itertools.chain([first], records), progress=advance,
                                                 on_error=None if one_query else skipped,
                                                 idle=IDLE)  # fmt: skip
                # closed however the loop ends: its thread reading ahead stops before what it skipped is said
                held.callback(chunks.close)
                for chunk in chunks:
                    total += chunk.scores.stats
                    if not inline and len(cut) < CUT_SHOWN and chunk.scores.stats.truncated:
                        cut += [getattr(r, "where", None) or f"pair {start + n}" for r, n, was in zip(
                            chunk.records, chunk.indexes, chunk.scores.pair_cut, strict=False) if was]  # fmt: skip
                    rows = formats.score_rows(chunk.records, chunk.scores, [start + n for n in chunk.indexes],
                                              with_fields)  # fmt: skip
                    if fmt == "table":  # a table shows the start of each query and document
                        texts = [{"query": r.query, "document": r.document} for r in chunk.records]
                        rows = [row | text for row, text in zip(rows, texts, strict=True)]
                    if saved is not None and out.out is None and rows:  # at the first result: none before, no file
                        out.out = held.enter_context(saved.open())
                    if saved is not None and rows:  # a chunk of pairs all skipped has nothing to write, nor a file
                        saved.write(out, rows, chunk, start)
                    else:
                        out.write(rows)
        except PairError as exc:
            raise exc.shifted(start) from None
        except Exception as exc:  # a runtime failure (a full disk, a server gone): what OUT holds is kept, said so
            said = _failure(exc, out, saved, start, fmt, one_query, skipped)
            if said is None:
                raise
            raise said from (None if isinstance(said, InputError) else exc)
        except KeyboardInterrupt as exc:
            if out.count or fmt == "json":
                out.close()  # what is scored stays usable: a table drawn, a JSON array closed
            if skipped is not None:
                skipped.report()
            raise Interrupted.of(exc, _interrupted(out, saved, start, fmt)) from None
        out.close()
        report(total, cut_to(reranker), verbose, skipped, cut[:CUT_SHOWN])
        blanks.report()
        if skipped is not None and skipped.count and not out.count and not start:  # every query was too long
            raise all_bad(skipped, "pair", "score")
    finally:
        if saved is not None:
            saved.release()  # where the run ended before its first result, OUT is still claimed


def _failure(exc: Exception, out, saved, start: int, fmt: str, one_query: bool, skipped) -> QrrError | None:
    """What a failure of the scoring loop is said as (``saved``: a --resume file that held ``start`` before): a bad
    line's after results, an ``InputError`` saying they stand and how to go on (and ``out`` is closed: a table
    drawn, a JSON array closed); a runtime failure's once a file holds results, ``Stopped``; else ``None``: the
    failure as it is."""
    from qrr import pipelines

    cause = qrr_cause(exc)
    if isinstance(cause, InputError) and out.count:  # a bad line after results: they stand, and it says so
        out.close()
        if saved is not None:
            then = f" to {saved.path}; mend it and run the same command to go on"
        else:  # a bad line at 900,000 of a million: the work done is not lost
            # a line's fault, which --on-error skip skips; -q's query too long is every pair's, not a line's
            line = cause.skippable and not (one_query and "max_length" in cause.params)
            then = f"; {'mend it and ' if line else ''}go on{ON_WITH_RESUME}" if _resumable(fmt) else ""
            if line and skipped is None:
                such = "files" if isinstance(cause, SourceError) else "lines"  # a UTF-16 file, say
                then += f"{', or' if then else ';'} leave such {such} out with --on-error skip"
        # the first ones: a bad line stops a call read ahead, whose pairs before it are not scored
        first = plural(start + out.count, "pair")  # --resume's file: those of earlier runs too
        return InputError(f"{cause.template}; the results of the first {first} were written{then}", *cause.params)
    if saved is None and out.count:  # on stdout: a JSON array closed (it was left open), a table drawn
        with contextlib.suppress(OSError):  # stdout's own failure (a full disk, a closed pipe) is the one said
            out.close()
    # a full disk at a new file's first result: no "results written before" there (its count rose unflushed)
    nothing = start == 0 and saved is not None and pipelines.file_size(saved.path) == 0
    if saved is None or out.out is None or nothing or isinstance(cause, pipelines.SAYS_WHAT_TO_DO):
        return None
    return Stopped(cause, 0, None, saved.path, kept="the results written before", verb="score")


def _interrupted(out, saved, start: int, fmt: str) -> str:
    """What an interrupted run has written, and how to go on from it."""
    said = f"after writing the results of {plural(out.count, 'pair')}"
    if not start + out.count:  # nothing to go on with (with --resume, no file was started)
        return "before any result was written"
    if saved is not None:
        return said + f" to {saved.path} ({start + out.count:,} in all); run the same command to go on"
    if out.count and _resumable(fmt):
        return said + f"; go on{ON_WITH_RESUME}"
    if out.count and fmt != "table":
        return said + "; --resume OUT writes results that a later run goes on with"
    return said


def _against(query: str, documents):
    """Each of ``documents`` (``DocRecord``s) as a pair of ``query``'s: its id as the result's ``id``, its other
    fields for --with-fields, its file and line for messages. Its other id fields (the ``doc_id`` its id was read
    from, a ``qid``) are ids too, as a pair's are: written always, and checked on going on."""
    from qrr import formats

    for doc in documents:
        ids = ({"id": doc.id} if doc.id is not None else {}) | {k: v for k, v in doc.other.items()
                                                                if formats.is_id_field(k)}  # fmt: skip
        other = {k: v for k, v in doc.other.items() if k not in ids}
        yield formats.PairRecord(query, doc.text, None, ids, other, doc.where)


# said where stdout is a file of JSON lines (`> out.jsonl`), which --resume goes on with; `>` again would empty it
ON_WITH_RESUME = " from them with --resume FILE in place of > FILE"


def _resumable(fmt: str) -> bool:
    """Whether stdout is a file of this run's JSON lines alone (``> out.jsonl``), which --resume goes on with: not a
    pipe or terminal, not appended to (``>>``: another run's lines before), not stderr's file too (``nohup``)."""
    import stat
    import sys

    try:
        import fcntl  # not on Windows

        out = os.fstat(sys.stdout.fileno())
        appended = fcntl.fcntl(sys.stdout.fileno(), fcntl.F_GETFL) & os.O_APPEND
        shared = os.path.samestat(out, os.fstat(sys.stderr.fileno()))
    except (OSError, ValueError, AttributeError, ImportError):  # no descriptor (a test's runner, a notebook's stream)
        return False
    return fmt == "jsonl" and stat.S_ISREG(out.st_mode) and not appended and not shared


def _resumed(path: str | None, sources: list[str], settings: dict | None, skips: bool):
    """The --resume file, read: how many results it holds (said once the input is checked against them), a
    half-written last line cut off."""
    from qrr import pipelines

    if path is None:
        return None
    saved = pipelines.ScoresOutput.checked(path, inputs=sources, settings=settings)
    saved.prepare(skips)
    if saved.zeroed:
        stderr.print(crash_zeros(path, saved.zeroed), highlight=False)
    elif saved.cut:
        stderr.print(f"{path}: its last line was cut off mid-write and is dropped", highlight=False)
    return saved


def _score_on_ray(files, input_format, on_error, output, shard_format, workers, gpus_per_worker, address, resume,
                  verbose, model, **options) -> None:  # fmt: skip
    if not files or files == ["-"]:
        raise InputError("--ray reads FILEs or folders (local or remote), not stdin")
    if output is None:
        raise InputError("--ray needs --output DIR, the folder for the result shards")
    column = options["score_column"]
    if not column.strip() or column in ("query", "document", "instruction", "qrr_source", "qrr_record"):
        raise InputError(f"--score-column {column!r}: name a column that is not empty and not one qrr reads or "
                         "writes (query, document, instruction, qrr_source, qrr_record)")  # fmt: skip

    with contextlib.ExitStack() as held:
        done, listed, made = None, list(files), False  # made: new_folder's answer once this run holds the output

        def check_output(raydata) -> None:
            nonlocal done, listed, made
            raydata.check_paths(files, output)
            # found before the actors load a model, where the first record has it
            if column in raydata.first_fields(files, input_format.value, skip=on_error == OnError.skip):
                raise raydata.clash(column)
            from qrr.pipelines import OutputBusy

            fresh = raydata.new_folder(output)
            try:
                claimed = raydata.claim_output(output)
            except OutputBusy as exc:  # another run's: its files are not this one's to take back
                raise OutputBusy(exc.naming({"output": "--resume" if resume else "--output"})) from None
            made = fresh
            if claimed is not None:
                held.callback(claimed.close)
            from qrr import models
            from qrr.family import run_settings

            # what changes the scores or the columns: a folder's shards written otherwise are not gone on with; the
            # instruction as its text, as every --resume keeps it (-i giving the default's text changes nothing)
            settings = run_settings(models.model_key(model), options["instruction"], options["max_length"],
                                    options["recipe"])  # fmt: skip
            settings |= {key: options[key] for key in ("dtype", "score_column")}

            # on this machine alone (no cluster joined), what auto means here: going on where it means another (bf16
            # for fp32) mixed two dtypes' scores in one folder
            if settings["dtype"] == "auto" and raydata.cluster_address(address) is None:
                from qrr import device as devices

                chosen = devices.resolve_dtype("auto", devices.resolve_device(options["device"]))
                settings["dtype"] = devices.dtype_name(chosen)

            run = raydata.run_record(files, input_format=input_format.value, **settings)
            listed = list(run["files"])  # a folder's files, whose lines the progress counts for its time left
            done, held_rows, removed = raydata.prepare_output(output, run, resume, shard_format.value)
            for path in removed:
                stderr.print(f"{path}: a shard cut off mid-write, removed (its rows are scored again)", highlight=False)
            if held_rows:
                stderr.print(f"resuming {output}: {plural(held_rows, 'pair')} done", highlight=False)

        try:
            raydata, placement, model = start_ray(address, workers, gpus_per_worker, model, options.get("offline"),
                                                  before=check_output)  # fmt: skip
            _write_shards(raydata, placement, model, files, input_format, on_error, output, shard_format, done,
                          listed, verbose, **options)  # fmt: skip
        except BaseException:
            if made is not False:  # a run stopped before its first shard leaves no folder of its record alone
                from qrr import raydata

                raydata.discard_output(output, made)
            raise


TALLY_EVERY = 1.0  # seconds between two reads of the rows the actors scored


@contextlib.contextmanager
def _tally(errors, advance):
    """While the body runs, a thread hands ``advance`` the rows the actors report scored to ``errors`` (an
    ``ErrorLog``), every ``TALLY_EVERY`` seconds and once the body is done."""
    import threading

    import ray

    stop, seen = threading.Event(), 0

    def poll() -> None:
        nonlocal seen
        with contextlib.suppress(Exception):  # a slow or gone actor: the progress waits, the run goes on
            now = ray.get(errors.scored_count.remote(), timeout=5)
            if now > seen:
                advance(now - seen)
                seen = now

    def run() -> None:
        while not stop.wait(TALLY_EVERY):
            poll()

    thread = threading.Thread(target=run, name="qrr-tally", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    poll()  # the last rows, where the run finished


def _write_shards(raydata, placement, model, files, input_format, on_error, output, shard_format, done, listed,
                  verbose, **options) -> None:  # fmt: skip
    import time

    import ray as ray_core  # there, as start_ray found

    from qrr.reranker import Stats, warn_framed

    errors = raydata.ErrorLog.remote()
    unit = "row" if all(str(name).endswith(".parquet") for name in listed) else "line"  # Parquet has no lines
    skipped = skipping(on_error, f"bad {unit}")
    began = time.perf_counter()
    # qrr's own progress, in rows (Ray's counts blocks: `0/1` for hours, and every 10 s a block of lines in a log)
    ray_core.data.DataContext.get_current().enable_progress_bars = False
    before = sum(len(records) for records in done.values()) if done else 0
    try:
        with (progress(None, "scoring", estimate=LineCount(listed, before)) as advance, _tally(errors, advance),
              without_ray_advice()):  # fmt: skip
            pairs = raydata.read_pairs(files, input_format.value, errors if skipped else None, done)
            scored = raydata.score(pairs, model, placement=placement, errors=errors, skip=bool(skipped), **options)
            note = lambda message: stderr.print(f"note: {message}", style="yellow", highlight=False)  # noqa: E731
            rows = raydata.write(scored, output, shard_format.value, note=note)
        cut = ray_core.get(errors.cut_count.remote())
        blanks = Blanks(*BLANK_PAIRS)
        blanks.saw(*ray_core.get(errors.blank_report.remote()))
        framed = ray_core.get(errors.framed_report.remote())
    except KeyboardInterrupt as exc:
        kept = raydata.rows_at(output, shard_format.value)
        said = (f"with {kept:,} scored rows in {output}; --resume {output} goes on with them (from JSONL or TSV "
                "input)" if kept else "before any row was written")  # fmt: skip
        raise Interrupted.of(exc, said) from None
    except Exception as exc:
        said = raydata.said_plainly(exc, files)
        if said is not exc and raydata.rows_at(output, shard_format.value):
            # the input is to mend, so the shards are not this run's to go on with
            said = InputError(f"{said}; {output} holds shards of the rows before: give a new or empty --output next")
        raise said from None
    finally:
        # where Ray still answers: a dead one's error is not the run's, whose shards are written
        if skipped is not None:
            with contextlib.suppress(Exception):
                skipped.took(ray_core.get(errors.report.remote()))
        if verbose:
            with contextlib.suppress(Exception):
                say_actors(ray_core.get(errors.loaded_report.remote()))
        if skipped is not None:  # what was passed over is said however the run ends
            skipped.report()
        # its process ends with the run, not with the Ray instance: in a process that runs several (a notebook's,
        # the tests'), earlier runs' logs piled up
        with contextlib.suppress(Exception):
            ray_core.kill(errors)
    seconds = time.perf_counter() - began
    report(Stats(truncated=cut), f"--max-length {options['max_length']}", False)
    blanks.report()
    if framed is not None:  # an actor's own warning stays in its log
        warn_framed(*framed)
    wrote = f"wrote {output}" if rows else "wrote nothing"
    stderr.print(f"scored {plural(rows, 'pair')} in {seconds:.1f} s ({rows / seconds:.1f} pairs/s) on "
                 f"{placement.describe()}; {wrote}", highlight=False)  # fmt: skip
    if skipped is not None and skipped.count and not rows and not before:  # a script should not take it for a run
        raise all_bad(skipped, "pair", "score", unit)
