"""qrr bench: each size's speed and memory on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from qrr import io
from qrr.cli.base import (
    BatchTokensOpt,
    DeviceOpt,
    DtypeOpt,
    VerboseOpt,
    app,
    errors_to_exit,
    human_bytes,
    pick_output_format,
    prepare_logging,
    progress,
    stderr,
)
from qrr.errors import InputError


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} takes whole numbers separated by commas, not {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{option} takes positive whole numbers, not {text!r}")
    return values


@app.command(no_args_is_help=False)
@errors_to_exit
def bench(
    sizes: Annotated[str, typer.Option("--sizes", help="Sizes to measure, comma-separated.")] = "0.6b,4b,8b",
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
        bool, typer.Option("--baseline", help="Also run the model card's plain recipe and show the ratios.")
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="table, json or jsonl. [dim]\\[default: table on a terminal, jsonl otherwise][/]",
            rich_help_panel="Output",
        ),
    ] = None,  # fmt: skip
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    batch_tokens: BatchTokensOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Measure each size's speed and memory on this machine, before you download 16 GB.

    Each size runs with its real weights where they are cached, else with random weights built from its real
    shapes, which cost exactly the same (no network needed; the table says which). One query is ranked against
    --docs documents of each --doc-tokens length through the same path as qrr rank, after a warm-up. A size
    that would not fit in free memory is skipped with a line instead of being killed.

    [dim]Examples:[/]
      qrr bench --sizes 0.6b --doc-tokens 256
      qrr bench --baseline --format json | jq '.[] | {size, doc_tokens, pairs_per_s, speedup_vs_baseline}'
    """
    from dataclasses import asdict

    from qrr import bench as benchmark

    fmt = pick_output_format(fmt)
    if fmt == "tsv":
        raise InputError("--format tsv: use table, json or jsonl")
    size_list = [s.strip().lower() for s in sizes.split(",") if s.strip()]
    lengths = _int_list(doc_tokens, "--doc-tokens")
    prepare_logging(verbose)
    total = len(size_list) * len(lengths) * docs * (repeat + (1 if baseline else 0))
    rows = []
    writer = io.RowWriter(fmt) if fmt != "table" else None
    with progress(total, "benchmarking") as advance:
        for row in benchmark.run(
            size_list, lengths, docs=docs, query_tokens=query_tokens, repeat=repeat, device=device, dtype=dtype,
            batch_tokens=batch_tokens, random_weights=random_weights, baseline=baseline, progress=advance,
            note=lambda message: stderr.print(message, highlight=False, markup=False),
        ):  # fmt: skip
            rows.append(row)
            if writer is not None:
                writer.write([asdict(row)])
    if writer is not None:
        writer.close()
    else:
        _render_bench(rows, baseline)


def _render_bench(rows, baseline: bool) -> None:
    fastest = max((r.pairs_per_s for r in rows), default=0.0) or 1.0
    table = []
    for r in rows:
        line = {"size": r.size, "weights": r.weights or "-", "tokens": r.doc_tokens}
        if r.skipped:
            table.append({**line, "pairs/s": f"skipped: {r.skipped}"})
            continue
        line.update({
            "load s": f"{r.load_s:.1f}",
            "pairs/s": f"{r.pairs_per_s:.2f} {io.bar(r.pairs_per_s / fastest, 6)}",
            "tokens/s": f"{r.tokens_per_s:.0f}",
            "batch ms p50/p95": f"{r.batch_p50_ms:.0f}/{r.batch_p95_ms:.0f}",
            "peak mem": human_bytes(r.peak_memory_mb * 2**20),
            "TFLOP/s": f"{r.tflops:.2f} ({r.peak_fraction:.0%})",
        })  # fmt: skip
        if baseline and r.speedup_vs_baseline is None:
            line["vs recipe"] = "not run (memory)"
        elif baseline:
            line["vs recipe"] = f"{r.speedup_vs_baseline:.2f}× speed, {r.memory_ratio_vs_baseline:.2f}× mem"
        table.append(line)
    first = next((r for r in rows if not r.skipped), None)
    title = None
    if first is not None:
        title = (f"{first.device}, {first.dtype}, matmul peak {first.matmul_peak_tflops:.2f} TFLOP/s; "
                 f"{first.docs} documents per length, {first.query_tokens}-token query")  # fmt: skip
    io.write_rows(table, "table", title=title)
