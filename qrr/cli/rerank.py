"""qrr rerank: rerank each query's top documents of a first-stage run (TREC, BEIR), with --resume."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from qrr.cli.base import (
    RUN_PANEL,
    BatchTokensOpt,
    CompileOpt,
    DepthOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnError,
    OnErrorQueriesOpt,
    RecipeName,
    RecipeOpt,
    ResumeOpt,
    RunFormat,
    ServerOpt,
    TagOpt,
    VerboseOpt,
    check_given_texts,
    chosen_server,
    command,
    given,
    model_options,
    resume_settings,
    status,
    stderr,
)
from qrr.cli.onray import (
    GpusOpt,
    RayAddressOpt,
    RayOpt,
    WorkersOpt,
    ray_only,
    say_actors,
    start_ray,
    without_ray_advice,
)
from qrr.cli.runs import read_run_inputs, rerank_showing_progress, reranking, too_long_queries
from qrr.errors import InputError, plural
from qrr.family import DEFAULT_MAX_LENGTH
from qrr.formats import TAG
from qrr.pipelines import DEFAULT_DEPTH


@command(no_args_is_help=True)
def rerank(
    ctx: typer.Context,
    run: Annotated[
        str,
        typer.Argument(
            metavar="RUN",
            show_default=False,
            help="The first-stage run: TREC (qid Q0 docid rank score tag), MS MARCO's (qid<TAB>docid<TAB>rank) "
            "or qrr's JSON lines; - reads stdin.",
        ),
    ],  # fmt: skip
    corpus: Annotated[
        str | None,
        typer.Option(
            "--corpus",
            metavar="CORPUS",
            rich_help_panel=RUN_PANEL,
            help="The corpus holding the run's documents: BEIR's JSONL (_id, title, text; or id, contents) or "
            "docid<TAB>text lines (MS MARCO's collection.tsv).",
        ),
    ] = None,  # fmt: skip
    queries: Annotated[
        str | None,
        typer.Option(
            "--queries",
            metavar="QUERIES",
            rich_help_panel=RUN_PANEL,
            help="The queries: BEIR's JSONL (_id, text) or qid<TAB>text lines.",
        ),
    ] = None,  # fmt: skip
    beir: Annotated[
        str | None,
        typer.Option(
            "--beir",
            metavar="DIR",
            rich_help_panel=RUN_PANEL,
            help="A BEIR dataset folder: its corpus.jsonl and queries.jsonl.",
        ),
    ] = None,  # fmt: skip
    depth: DepthOpt = DEFAULT_DEPTH,
    top_k: Annotated[
        int | None, typer.Option("--top-k", "-k", min=1, metavar="K", help="Write only each query's best K.")
    ] = None,
    keep_rest: Annotated[
        bool,
        typer.Option(
            "--keep-rest",
            rich_help_panel=RUN_PANEL,
            help="Below each query's reranked --depth documents, write the rest of its first-stage results in "
            "trec_eval's order of the first stage, each scored its rank there negated (-101 for the 101st), so that "
            "recall and MAP past --depth are the first stage's.",
        ),
    ] = False,
    resume: ResumeOpt = None,
    fmt: Annotated[
        RunFormat | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            rich_help_panel="Output",
            help="[dim]\\[default: an existing --resume file's format, else jsonl for *.jsonl, else trec][/]",
        ),
    ] = None,  # fmt: skip
    tag: TagOpt = TAG,
    on_error: OnErrorQueriesOpt = OnError.fail,
    instruction: InstructionOpt = None,
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
    workers: WorkersOpt = None,
    gpus_per_worker: GpusOpt = None,
    ray_address: RayAddressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Rerank a first-stage run (BM25, a dense retriever), query by query: each query's top --depth documents.

    The documents' texts come from a BEIR --corpus (title and text joined with a space), the queries from
    --queries, or both from a --beir folder. Out comes a TREC run, or JSON lines with qid, docid, rank and
    score, on stdout or into [bold]--resume OUT[/], which makes a long run survive an interruption: run the same
    command again to go on. Measure the result with [bold]qrr eval[/].

    [dim]Examples:[/]
      qrr rerank bm25.trec --beir scifact --resume qrr.trec
      qrr rerank run.trec --corpus corpus.jsonl --queries queries.tsv --depth 50
      qrr rerank bm25.trec --beir trec-covid --keep-rest > qrr.trec
      qrr rerank msmarco.trec --beir msmarco --ray --workers 8 --resume qrr.trec
      qrr rerank bm25.trec --beir scifact --server http://gpu:8000 > qrr.trec
    """
    from qrr import formats, pipelines

    ray_only(ctx, ray, "workers", "gpus_per_worker", "ray_address")
    if ray and given(ctx, "server"):
        raise InputError("--server: not with --ray, whose actors load the model")
    server = None if ray else chosen_server(ctx, server)
    check_given_texts(None, None, instruction)
    if beir is not None:
        clashing = given(ctx, "corpus", "queries")
        if clashing:
            raise InputError(f"{', '.join(clashing)}: not with --beir, which names the corpus and queries")
        folder = formats.BeirFolder.at(beir, split=None)  # no qrels needed
        corpus, queries = folder.corpus, folder.queries
    elif corpus is None or queries is None:
        lacking = [f"{name} ({what})" for name, what, value in (
            ("--corpus", "BEIR's corpus.jsonl, or docid<TAB>text lines", corpus),
            ("--queries", "BEIR's queries.jsonl, or qid<TAB>text lines", queries)) if value is None]  # fmt: skip
        raise InputError(f"give the run's {' and '.join(lacking)}, or --beir DIR")
    if keep_rest and top_k is not None:
        raise InputError("-k/--top-k: not with --keep-rest, which writes every document of the run")
    if top_k is not None and top_k > depth:
        stderr.print(f"note: -k {top_k} is past --depth {depth}: each query gets at most {depth} results (--depth "
                     f"{top_k} reranks {top_k})", style="yellow", highlight=False)  # fmt: skip
    settings = resume_settings(ctx, server, instruction) | {"depth": depth, "keep_rest": keep_rest} if resume else None
    output = pipelines.RunOutput.checked(resume, fmt.value if fmt else None, tag, inputs=(run, corpus, queries),
                                         settings=settings)  # fmt: skip
    output.rescored = not ray  # Ray's actors score no result of OUT again: another model's name is refused
    inputs = read_run_inputs(on_error, run, queries, corpus, depth, status=status, keep_rest=keep_rest)

    def on_ray(on_pairs, on_query):
        result = _rerank_on_ray(inputs, output, top_k, on_pairs, on_query, workers, gpus_per_worker, ray_address,
                                on_error, verbose, instruction=instruction, **model_options(ctx))  # fmt: skip
        return result, f"--max-length {max_length}"

    here = reranking(ctx, inputs, output, top_k, server, instruction, verbose, on_error)
    rerank_showing_progress(inputs, output, top_k, on_ray if ray else here, verbose)


def _rerank_on_ray(inputs, output, top_k, on_pairs, on_query, workers, gpus_per_worker, address, on_error, verbose,
                   model, **options):  # fmt: skip
    import time

    from qrr import pipelines
    from qrr.reranker import Stats, warn_framed

    kept = (output.kept or {}).get("dtype") if output is not None else None
    if kept and options["dtype"] == "auto":  # each actor resolves auto on its own machine, known only as it runs
        raise InputError(f"{{output}} {output.path} was written in {kept} (as its record keeps), and with --ray and "
                         f"{{dtype}} auto each actor picks the dtype of the machine it runs on: give {{dtype}} {kept} "
                         "to go on with it, or rerank into a new file", "output", "dtype")  # fmt: skip
    raydata, placement, model = start_ray(address, workers, gpus_per_worker, model, options.get("offline"))
    import ray  # there, as start_ray found

    ray.data.DataContext.get_current().enable_progress_bars = False  # qrr's own shows queries and time left
    sizes = {job.qid: len(job.docids) for job in inputs.jobs}
    pairs = 0  # of the queries reranked: a skipped query's are not

    def finished(qid: str) -> None:  # the actors count no pairs here: a query's come at once, when it is done
        nonlocal pairs
        pairs += sizes[qid]
        on_pairs(sizes[qid])
        on_query(qid)

    began = time.perf_counter()
    stats, framed = Stats(), None  # the documents the actors cut, told as the run ends (as a run here says them)
    with too_long_queries(on_error, len(inputs.jobs), output.done if output else 0) as too_long:
        # where the actors tell what they skipped, cut and found formatted as the prompt, and for -v what they run
        errors = raydata.ErrorLog.remote()
        try:
            results = raydata.rerank(inputs, model, top_k=top_k, placement=placement, errors=errors,
                                     skip=too_long is not None, **options)  # fmt: skip
            with without_ray_advice():
                done = pipelines.write_reranked(results, inputs, output, finished, stats)
            stats.truncated = ray.get(errors.cut_count.remote())
            framed = ray.get(errors.framed_report.remote())
        finally:
            with contextlib.suppress(Exception):  # where Ray still answers
                if too_long is not None:  # the actors' count, in place of its own
                    too_long.took(ray.get(errors.report.remote()))
                if verbose:
                    say_actors(ray.get(errors.loaded_report.remote()))
            with contextlib.suppress(Exception):
                ray.kill(errors)
    if framed is not None:  # an actor's own warning stays in its log
        warn_framed(*framed)
    seconds = time.perf_counter() - began
    said = f"reranked {plural(done.queries, 'query', 'queries')} ({plural(pairs, 'pair')})"
    stderr.print(
        f"{said} in {seconds:.1f} s ({pairs / seconds:.1f} pairs/s) on {placement.describe()}", highlight=False
    )
    return done
