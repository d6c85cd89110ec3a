"""qrr eval: nDCG@10, MRR@10, Recall@100 and MAP of runs against qrels; with --beir, rerank first."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from qrr import formats, metrics, pipelines
from qrr.cli.base import (
    MODEL_OPTIONS,
    RUN_PANEL,
    BatchTokensOpt,
    CompileOpt,
    DepthOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    FormatOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    OnError,
    OnErrorQueriesOpt,
    RecipeName,
    RecipeOpt,
    ResumeOpt,
    ServerOpt,
    TagOpt,
    VerboseOpt,
    check_given_texts,
    check_not_stdout,
    chosen_server,
    command,
    given,
    resume_settings,
    stderr,
    stdout_format,
)
from qrr.cli.render import skipping, write_rows
from qrr.cli.runs import read_run_inputs, rerank_showing_progress, reranking
from qrr.errors import InputError, plural
from qrr.family import DEFAULT_MAX_LENGTH, QWEN3
from qrr.formats import TAG
from qrr.pipelines import DEFAULT_DEPTH

HEADERS = {"ndcg": "nDCG", "mrr": "MRR", "recall": "R", "p": "P", "map": "MAP", "success": "Success",
           "judged": "Judged", "rprec": "R-prec", "bpref": "bpref"}  # fmt: skip


def header(measure: str) -> str:
    """A measure's column in the table: ``ndcg@10`` -> ``nDCG@10``."""
    kind, at, cut = measure.partition("@")
    return f"{HEADERS[kind]}{at}{cut}"


# eval writes --resume in the format of the file, or TREC, and keeps every result: a jsonl run or another top k
# comes from qrr rerank
@command("eval", flags={"fmt": "qrr rerank --format", "top_k": "qrr rerank --top-k", "measures": "--metrics"})
def evaluate(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="QRELS RUN",  # typer adds the "..."
            show_default=False,
            help="Relevance judgments (TREC qrels or BEIR's qrels TSV), then one or more runs (TREC, MS MARCO's "
            "qid<TAB>docid<TAB>rank, or qrr's JSON lines); - reads one of them from stdin, .gz files are read "
            "compressed.",
        ),
    ] = None,  # fmt: skip
    beir: Annotated[
        str | None,
        typer.Option(
            "--beir",
            metavar="DIR",
            rich_help_panel=RUN_PANEL,
            help="A BEIR dataset folder: rerank --run with its corpus and queries, then "
            "evaluate the first stage and the reranked run on qrels/SPLIT.tsv.",
        ),
    ] = None,  # fmt: skip
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="RUN",
            rich_help_panel=RUN_PANEL,
            help="With --beir: the first-stage run (TREC, MS MARCO's, or qrr's JSON lines).",
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            metavar="SPLIT",
            rich_help_panel=RUN_PANEL,
            help="With --beir: the qrels split (qrels/SPLIT.tsv).",
        ),
    ] = "test",  # fmt: skip
    depth: DepthOpt = DEFAULT_DEPTH,
    keep_rest: Annotated[
        bool,
        typer.Option(
            "--keep-rest",
            rich_help_panel=RUN_PANEL,
            help="With --beir: keep each query's other first-stage results below its reranked --depth documents "
            "(see qrr rerank --keep-rest), so that measures past --depth count them.",
        ),
    ] = False,
    resume: ResumeOpt = None,
    tag: TagOpt = TAG,
    measures: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-M",
            metavar="LIST",
            help="The measures, comma-separated or the option repeated: ndcg, mrr, recall, p (precision), map, "
            "success (a relevant document in the top k) and judged (the share of the top k judged at all: unjudged "
            "documents a reranker brings up score 0 in the rest), each with an optional @k cut-off (p and judged "
            "need one); and rprec and bpref (trec_eval's Rprec and bpref, no cut-off: bpref passes unjudged "
            f"documents over). Default: {','.join(metrics.MEASURES)}.",
            rich_help_panel="Output",
        ),
    ] = None,  # fmt: skip
    common: Annotated[
        bool, typer.Option("--common", help="Evaluate only the judged queries that every run has results for.")
    ] = False,
    level: Annotated[
        int,
        typer.Option(
            "--relevance-level",
            "-l",
            metavar="N",
            min=1,
            help="A document is relevant from judgment N up (trec_eval's -l; TREC DL's passage tasks take "
            "2). nDCG gains every positive judgment whatever N.",
        ),
    ] = 1,  # fmt: skip
    per_query: Annotated[
        bool,
        typer.Option("--per-query", help="One row per run and query instead of the means.", rich_help_panel="Output"),
    ] = False,  # fmt: skip
    on_error: OnErrorQueriesOpt = OnError.fail,
    fmt: FormatOpt = None,
    instruction: Annotated[
        str | None,
        typer.Option(
            "--instruction",
            "-i",
            rich_help_panel=RUN_PANEL,
            help="With --beir: the task instruction (with --server, the server's unless given). "
            f"[dim]\\[default: {QWEN3.default_instruction}][/]",
        ),
    ] = None,  # fmt: skip
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
) -> None:
    """Measure runs against relevance judgments, side by side: nDCG@10, MRR@10, Recall@100 and MAP, or the
    [bold]--metrics[/] asked for.

    Scores follow trec_eval: documents ordered by score (ties by docid, descending), relevant means a
    judgment of 1 or more (--relevance-level), nDCG's gain is the judgment. Means are over the judged
    queries: a judged query that a run has no results for counts 0 (as trec_eval -c), queries without qrels
    are left out, and stderr says how many there were where there are any (and which).

    Two runs are compared: the change of each mean and a paired t-test's p-value, rows of the table, and in
    JSON the second run's change and p_paired_t.

    With [bold]--beir DIR --run RUN[/], the run's judged queries are reranked first (--depth, --resume and the
    model options as in qrr rerank) and the first stage and the reranked run are shown side by side; without
    --resume OUT the reranked run is not kept.

    [dim]Examples:[/]
      qrr eval scifact/qrels/test.tsv bm25.trec qrr.trec
      qrr eval qrels.txt a.trec b.trec -f json | jq '.[] | {run, "ndcg@10"}'
      qrr eval qrels.txt bm25.trec qrr.trec -f json | jq '.[1].p_paired_t'
      qrr eval qrels.txt a.trec --metrics ndcg@10,recall@1000,p@5
      qrr eval --beir scifact --run bm25.trec --resume qrr.trec
    """
    fmt = stdout_format(fmt)
    asked = [m for given in measures or metrics.MEASURES for m in given.split(",")]
    measures = tuple(dict.fromkeys(metrics.measure(m) for m in asked if m.strip()))
    if not measures:
        raise InputError("--metrics: name at least one measure (ndcg@10, say)")
    if beir is None:
        misplaced = given(
            ctx, "run", "depth", "keep_rest", "resume", "tag", "split", "instruction", *MODEL_OPTIONS, "server"
        )
        if misplaced:
            raise InputError(f"{', '.join(misplaced)}: only with --beir")
        if not files or len(files) < 2:
            raise InputError("give QRELS and at least one RUN (or --beir DIR --run RUN)")
        formats.stdin_once(files)  # a second read found stdin empty: a run of no results, scored 0
        check_not_stdout(files)  # qrr eval qrels run -f jsonl >> run: the summary went on the end of the run
        source = files[0]
    else:
        if files:
            raise InputError("give QRELS RUN... or --beir DIR --run RUN, not both")
        if run is None:
            raise InputError("--beir needs --run RUN, the first-stage run to rerank")
        server = chosen_server(ctx, server)  # a clash is said before the corpus is read
        check_given_texts(None, None, instruction)
        folder = formats.BeirFolder.at(beir, split)
        check_not_stdout([folder.qrels])  # the run, corpus and queries as they are read
        inputs = (run, folder.corpus, folder.queries, folder.qrels)
        output = pipelines.RunOutput.checked(resume, None, tag, inputs=inputs, settings=resume_settings(
            ctx, server, instruction) | {"depth": depth, "keep_rest": keep_rest}) if resume else None  # fmt: skip
        source = folder.qrels
    bad_lines = skipping(on_error)
    try:
        qrels = formats.read_qrels(source, bad_lines)
        named = [(path, formats.read_run(path, bad_lines)) for path in (files or [])[1:]] if qrels else []
    finally:  # before an error too: "no judgments" said nothing of the UTF-16 file skipped whole
        if bad_lines is not None:
            bad_lines.report()
    if not qrels:
        raise InputError(f"{source}: no judgments")
    if beir is not None:
        # Only judged queries are reranked: the others could not be measured.
        inputs = read_run_inputs(on_error, run, folder.queries, folder.corpus, depth, only=set(qrels),
                                 keep_rest=keep_rest)  # fmt: skip
        rerank = reranking(ctx, inputs, output, None, server, instruction, verbose, on_error)

        # OUT may come from qrr rerank, with the queries that have no qrels too: they are kept as they are.
        others = {q: len(docs) if keep_rest else min(len(docs), depth) for q, docs in inputs.run.items()
                  if q not in qrels}  # fmt: skip
        if output is None and inputs.jobs:  # said before the hours of reranking, when it can still be done
            stderr.print("note: the reranked run will not be kept; --resume OUT writes it (and evaluates it again "
                         "later without scoring)", style="yellow", highlight=False)  # fmt: skip
        reranked = rerank_showing_progress(inputs, output, None, rerank, verbose, others=others)
        if resume and os.path.exists(resume):  # absent where there was nothing to rerank
            reranked = formats.read_run(resume)
        from qrr import models

        name = f"qrr at {server}" if server else f"qrr {models.named(model)}"
        named = [(run, inputs.run), (resume or name, reranked)]
        cut = not keep_rest and any(len(docs) > depth for q, docs in inputs.run.items() if q in qrels)
        past = [header(m) for m in measures if not m.partition("@")[2] or int(m.partition("@")[2]) > depth]
        if past and cut:  # the change row would show the cut as reranking's loss
            said = past[0] if len(past) == 1 else f"{', '.join(past[:-1])} and {past[-1]}"
            stderr.print(f"note: the reranked run holds each query's top {depth} (--depth), so its {said} count"
                         f"{'s' if len(past) == 1 else ''} no document below them: a change there is the cut's as "
                         "well as the reranking's", highlight=False)  # fmt: skip
    _render(qrels, named, source, common, per_query, fmt, measures, level)


def _render(qrels, named, source: str, common: bool, per_query: bool, fmt: str, measures, level: int) -> None:
    queries = None
    if common:
        queries = set(qrels).intersection(*({q for q, docs in r.items() if docs} for _, r in named))
        stderr.print(f"--common: {len(queries)} of {len(qrels)} judged queries have results in every run",
                     highlight=False)  # fmt: skip
        if not queries:
            raise InputError("--common: no judged query has results in every run")
    results = [metrics.evaluate(qrels, r, measures, name=name, queries=queries, level=level) for name, r in named]
    _notes(qrels, results, queries, named, level)
    if per_query:
        rows = []
        for e in results:
            rows += [{"run": e.name, "qid": q, **values} for q, values in e.per_query.items()]
            if fmt == "table":  # the run's means after its queries, as trec_eval -q ends with "all"
                rows.append({"run": e.name, "qid": "all", **e.means})
    else:
        rows = [{"run": e.name, **e.means, "queries": e.queries} for e in results]
    compared = _compared(results, measures) if len(results) == 2 and not per_query else None
    if fmt != "table":
        if compared and fmt in ("json", "jsonl"):  # the table's change and p-values: a paper's table lost them
            rows[1] |= {"change": compared[0], "p_paired_t": compared[1]}
        write_rows(rows, fmt)
        return
    table = []
    for row in rows:
        line = {"run": row["run"]} | ({"qid": row["qid"]} if per_query else {})
        table.append(line | {header(m): f"{row[m]:.4f}" for m in measures})
        if not per_query:
            table[-1]["queries"] = str(row["queries"])
    if compared:
        change, tested, paired = compared
        table.append({"run": "change"} | {header(m): f"{v:+.4f}" for m, v in change.items()})
        if paired >= 2:  # "–" where the test has no answer (every query changed alike)
            table.append({"run": "p (paired t)"} | {header(m): "–" if p is None else f"{p:.3f}" if p >= 0.001
                                                   else "<0.001" for m, p in tested.items()})  # fmt: skip
    count = len(queries) if queries is not None else len(qrels)
    level = "" if level == 1 else f" (relevant: judged {level} or more)"
    write_rows(table, "table", title=f"{source}: {plural(count, 'judged query', 'judged queries')}{level}")


def _compared(results: list, measures) -> tuple[dict, dict, int]:
    """An A/B comparison of two runs (--beir's first stage and reranked), as IR papers report it: the change of each
    measure's mean, its paired t-test's p-value (``None`` where the test has no answer: every query changed alike, or
    fewer than two queries in both runs), and how many queries both runs have."""
    (a, b), paired = (e.means for e in results), sum(1 for q in results[0].per_query if q in results[1].per_query)
    return {m: b[m] - a[m] for m in measures}, {m: metrics.paired_t(*results, m) for m in measures}, paired


def _some(ids: list[str], shown: int = 3) -> str:
    """The first few of ``ids``, for a note."""
    return ", ".join(ids[:shown]) + (", …" if len(ids) > shown else "")


def _notes(qrels, results, queries, runs, level: int = 1) -> None:
    """How many queries each run left out or missed, and why; on stderr, once for the runs of which it is the
    same (five runs of one first stage said each twice)."""
    notes: dict[str, list[str]] = {}
    for e, (_, run) in zip(results, runs, strict=True):
        if e.unjudged:
            unjudged = _some([q for q in run if q not in qrels])
            notes.setdefault(f"{_queries(e.unjudged)} without qrels left out ({unjudged})", []).append(e.name)
        found = metrics.padded(run, qrels) if e.missing else None
        zeros = (f"query ids differ from the qrels' by leading zeros ({found[0]!r} in the run, {found[1]!r} in the "
                 "qrels): are they written alike?") if found else ""  # fmt: skip
        if e.missing and len(e.missing) == e.queries:
            why = f"its {zeros}" if found else "is it from another dataset or split?"
            stderr.print(f"warning: {e.name} has results for none of the judged queries: {why}", style="yellow",
                         highlight=False)  # fmt: skip
            continue
        if found:  # some lost their zeros (01-09), some had none to lose (10 on)
            stderr.print(f"warning: {formats.label(e.name)}: some {zeros}", style="yellow", highlight=False)
        if e.missing and queries is None:
            notes.setdefault(
                f"no results for {len(e.missing)} of {e.queries} judged queries ({_some(e.missing)}); "
                "they count 0 (--common evaluates only the queries every run has)",
                [],
            ).append(e.name)
    for note, names in notes.items():
        stderr.print(f"note: {', '.join(names)}: {note}", style="yellow", highlight=False)
    for name, run in runs:
        unlike = metrics.ids_unlike(qrels, run, queries)
        if unlike is not None:
            stderr.print(f"warning: none of {formats.label(name)}'s documents for the judged queries is in the qrels "
                         f"(query {unlike[0]}: {unlike[1]!r} in the run, {unlike[2]!r} in the qrels): are the ids "
                         "written alike?", style="yellow", highlight=False)  # fmt: skip
            continue
        unlike = metrics.padded_ids(qrels, run, queries)
        if unlike is not None:
            stderr.print(f"warning: some of {formats.label(name)}'s documents are judged only with leading zeros set "
                         f"aside (query {unlike[0]}: {unlike[1]!r} in the run, {unlike[2]!r} in the qrels), and count "
                         "as unjudged: are the ids written alike?", style="yellow", highlight=False)  # fmt: skip
    empty = [q for q in metrics.without_relevant(qrels, level) if queries is None or q in queries]
    if empty:
        said = "a relevant document" if level == 1 else f"a document judged {level} or more"
        but = "" if level == 1 else " (nDCG still gains their lower positive judgments)"
        stderr.print(f"note: {_queries(len(empty))} in the qrels without {said} ({_some(empty)}): 0 in every run{but}",
                     style="yellow", highlight=False)  # fmt: skip


def _queries(n: int) -> str:
    return plural(n, "query", "queries")
