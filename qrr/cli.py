"""The ``qrr`` command: parse options, call the core, render. Nothing else lives here.

torch and transformers are imported only once a command runs, so ``qrr --help`` stays instant.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from qrr import __version__, io
from qrr.errors import InputError, QrrError
from qrr.prompt import DEFAULT_INSTRUCTION, DEFAULT_MAX_LENGTH
from qrr.reranker import CHUNK, Stats, chunks

app = typer.Typer(
    name="qrr",
    help="Exact, fast Qwen3-Reranker scores from the shell.\n\n"
    "Rank documents for a query with [bold]qrr rank[/], score query-document pairs with [bold]qrr score[/]. "
    "Output is a table on a terminal and JSON lines in a pipe.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
stderr = Console(stderr=True, soft_wrap=True)

# ------------------------------------------------------------------------------------------- shared options

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", envvar="QRR_MODEL", show_envvar=True, rich_help_panel="Model",
        help="Alias (0.6b, 4b, 8b), hub repo id or local folder. [dim]\\[default: 0.6b][/]",
    ),
]  # fmt: skip
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N.",
                      rich_help_panel="Model"),
]  # fmt: skip
DtypeOpt = Annotated[
    str, typer.Option("--dtype", help="auto, bf16, fp16 or fp32. auto: bf16 on GPUs and CPUs with native "
                      "bf16, fp16 on mps, fp32 elsewhere.", rich_help_panel="Model"),
]  # fmt: skip
MaxLengthOpt = Annotated[
    int, typer.Option("--max-length", min=1, help="Prompt length cap in tokens; only the document is cut.",
                      rich_help_panel="Model"),
]  # fmt: skip
BatchTokensOpt = Annotated[
    int | None,
    typer.Option("--batch-tokens", min=1, rich_help_panel="Model",
                 help="Padded tokens per forward pass; lower it to use less memory. "
                 "[dim]\\[default: 1024 cpu, 8192 mps, 32768 cuda][/]"),
]  # fmt: skip
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="Never download; use only local folders and the cache (also HF_HUB_OFFLINE=1).",
                 rich_help_panel="Model"),
]  # fmt: skip
InstructionOpt = Annotated[
    str | None,
    typer.Option("--instruction", "-i", help=f"Task instruction. [dim]\\[default: {DEFAULT_INSTRUCTION}][/]"),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="table, jsonl, json or tsv. [dim]\\[default: table on a terminal, "
                 "jsonl otherwise][/]", rich_help_panel="Output"),
]  # fmt: skip
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say what was loaded and done, on stderr.", rich_help_panel="Output")
]
OnErrorOpt = Annotated[
    str,
    typer.Option("--on-error", rich_help_panel="Input",
                 help="fail: stop at the first bad line (exit 2). skip: skip bad lines, list them on stderr, go on."),
]  # fmt: skip
FilesArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="FILE", help="Input files; - or none reads stdin.", show_default=False),
]


def _version(value: bool) -> None:
    if value:
        print(f"qrr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """Exact, fast Qwen3-Reranker scores from the shell."""


# ------------------------------------------------------------------------------------------------ plumbing


def _fail(message: str, code: int) -> typer.Exit:
    stderr.print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)


def errors_to_exit(command):
    """Turn ``QrrError`` into one line and its exit code; Ctrl-C into 130; a closed pipe into a quiet 0.

    ``QRR_DEBUG=1`` lets the traceback through instead.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): point stdout at devnull so the exit flush stays quiet.
            _silence_stdout()
            raise typer.Exit(0) from None
        except (KeyboardInterrupt, Exception) as exc:
            if os.environ.get("QRR_DEBUG") == "1":
                raise
            raise _fail(*_describe(exc)) from None

    wrapper.__doc__ = _reflow(command.__doc__ or "")
    return wrapper


def _describe(exc: BaseException) -> tuple[str, int]:
    """The one line and exit code for an error."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, QrrError):
        return str(exc), exc.exit_code
    # anything unplanned still gets one line, and a way to see more
    return f"{type(exc).__name__}: {exc} (set QRR_DEBUG=1 for a traceback)", 1


def _reflow(doc: str) -> str:
    """Join each docstring paragraph into one line (typer's rich help keeps line breaks); indented lines,
    the examples, stay as they are."""
    paragraphs = []
    for block in inspect.cleandoc(doc).split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith(" ") for line in lines):
            paragraphs.append(block)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _output_format(fmt: str | None) -> str:
    if fmt is None:
        return "table" if sys.stdout.isatty() else "jsonl"
    fmt = fmt.lower()
    if fmt not in io.OUTPUT_FORMATS:
        raise InputError(f"--format {fmt}: use one of {', '.join(io.OUTPUT_FORMATS)}")
    return fmt


def _input_format(fmt: str, allowed: tuple[str, ...]) -> str:
    fmt = fmt.lower()
    if fmt not in allowed:
        raise InputError(f"--input-format {fmt}: use one of {', '.join(allowed)}")
    return fmt


def _sources(files: list[str] | None, have_inline: bool) -> list[str]:
    """Files as given; stdin when none are given and stdin is not a terminal."""
    if files:
        return files
    if have_inline:
        return []
    if _stdin_is_terminal():
        raise InputError("no input: give a FILE, pipe the input on stdin, or pass it with -q/-d")
    return [io.STDIN]


def _stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()


def _load(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose):
    from qrr.reranker import Reranker

    _prepare_logging(verbose)
    # No spinner here: a first-use download draws its own progress bars on stderr.
    reranker = Reranker(model, device=device, dtype=dtype, max_length=max_length, instruction=instruction,
                        batch_tokens=batch_tokens, offline=offline or None)  # fmt: skip
    if verbose:
        from qrr.device import dtype_name

        stderr.print(f"model {reranker.model_path} on {reranker.device} ({dtype_name(reranker.dtype)}), "
                     f"batch budget {reranker.batch_tokens} tokens", markup=False, highlight=False)  # fmt: skip
    return reranker


class _WarningsToStderr(logging.Handler):
    """The core's warnings (a CUDA batch retried with a smaller budget) as one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        stderr.print(f"warning: {record.getMessage()}", style="yellow", highlight=False, markup=False)


def _prepare_logging(verbose: bool) -> None:
    # stderr carries only our own progress, warnings and messages unless -v asks for transformers' too.
    import transformers

    core = logging.getLogger("qrr")
    if not any(isinstance(h, _WarningsToStderr) for h in core.handlers):
        core.addHandler(_WarningsToStderr())

    if not verbose:
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


@contextmanager
def _progress(total: int | None, what: str):
    """A progress bar on stderr when stderr is a terminal; yields a callback taking finished counts.
    With ``total=None`` (streamed input, length unknown) it counts instead."""
    if not stderr.is_terminal or total == 0:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if total is None:
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} pairs"))
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # redirect_stdout=False: rich would otherwise send our data lines, printed while the bar is live, to stderr.
    with Progress(*columns, console=stderr, transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


class _Skipped:
    """Collects the bad lines that --on-error skip passes over, and reports them on stderr."""

    shown = 20

    def __init__(self):
        self.count = 0
        self.messages: list[str] = []

    def __call__(self, error: InputError) -> None:
        self.count += 1
        if len(self.messages) < self.shown:
            self.messages.append(str(error))

    def report(self) -> None:
        if not self.count:
            return
        stderr.print(f"skipped {self.count} bad line(s):", style="yellow", highlight=False)
        for message in self.messages:
            stderr.print(f"  {message}", highlight=False, markup=False)
        if self.count > len(self.messages):
            stderr.print(f"  … and {self.count - len(self.messages)} more", highlight=False)


def _on_error(policy: str) -> _Skipped | None:
    policy = policy.lower()
    if policy not in ("fail", "skip"):
        raise InputError(f"--on-error {policy}: use fail or skip")
    return _Skipped() if policy == "skip" else None


def _report(stats, max_length: int, verbose: bool, skipped: _Skipped | None) -> None:
    if skipped is not None:
        skipped.report()
    if stats.truncated:
        stderr.print(f"note: {stats.truncated} document(s) cut to --max-length {max_length}",
                     style="yellow", highlight=False)  # fmt: skip
    if verbose:
        rate = stats.pairs / stats.seconds if stats.seconds else 0.0
        stderr.print(f"scored {stats.pairs} pairs ({stats.tokens} tokens) in {stats.seconds:.2f} s, "
                     f"{rate:.1f} pairs/s", highlight=False)  # fmt: skip


# ------------------------------------------------------------------------------------------------ commands


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
    fmt = _output_format(fmt)
    input_format = _input_format(input_format, io.PAIR_FORMATS)
    skipped = _on_error(on_error)
    if documents and query is None:
        raise InputError("-d/--document needs -q/--query")
    if query is not None and not documents:
        raise InputError("-q/--query needs at least one -d/--document (or use qrr rank)")
    inline = [io.PairRecord(query, d) for d in documents or []]
    records = itertools.chain(inline, io.read_pairs(_sources(files, bool(inline)), input_format, skipped))
    first = next(records, None)
    if first is None:
        _report(Stats(), max_length, False, skipped)
        if verbose:
            stderr.print("no pairs in the input")
        return
    reranker = _load(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose)
    # Streamed: each chunk's results are written (and flushed) as soon as it is scored, in input order.
    writer = io.RowWriter(fmt)
    total, index = Stats(), 0
    with _progress(None, "scoring") as advance:
        for chunk in chunks(itertools.chain([first], records), CHUNK):
            scores = reranker.score([(r.query, r.document, r.instruction) for r in chunk], progress=advance)
            total += reranker.stats
            previews = [{"query": r.query, "document": r.document} for r in chunk] if fmt == "table" else None
            writer.write(io.score_rows(chunk, scores, start=index), previews)
            index += len(chunk)
    writer.close()
    _report(total, reranker.max_length, verbose, skipped)


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
    fmt = _output_format(fmt)
    input_format = _input_format(input_format, io.DOC_FORMATS)
    skipped = _on_error(on_error)
    inline = [io.DocRecord(d) for d in documents or []]
    sources = _sources(files, bool(inline))
    docs = itertools.chain(inline, io.read_documents(sources, input_format, text_field, id_field, skipped))
    first = next(docs, None)
    if first is None:
        _report(Stats(), max_length, False, skipped)
        if verbose:
            stderr.print("no documents in the input")
        return
    reranker = _load(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose)
    # Documents are read and scored a chunk at a time; only scores, ids and (where shown) texts are kept.
    texts, ids = itertools.tee(itertools.chain([first], docs))
    with _progress(None, "ranking") as advance:
        ranked = reranker.rank(query, (d.text for d in texts), top_k=top_k, ids=(d.id for d in ids),
                               progress=advance, keep_text=with_text or fmt == "table")  # fmt: skip
    writer = io.RowWriter(fmt)
    writer.write(io.rank_rows(ranked, with_text), [{"text": r.text} for r in ranked] if fmt == "table" else None)
    writer.close()
    _report(reranker.stats, reranker.max_length, verbose, skipped)


@app.command(no_args_is_help=False)
@errors_to_exit
def download(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="MODEL", help="Aliases (0.6b, 4b, 8b) or hub repo ids.", show_default=False),
    ] = None,  # fmt: skip
    all_sizes: Annotated[bool, typer.Option("--all", help="Download 0.6b, 4b and 8b.")] = False,
    revision: Annotated[str | None, typer.Option("--revision", help="A branch, tag or commit.")] = None,
    local_dir: Annotated[
        Path | None, typer.Option("--local-dir", help="Download into this folder instead of the Hugging Face cache.")
    ] = None,
    list_cached: Annotated[bool, typer.Option("--list", help="Show the Qwen3 models in the local cache.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Download model weights (default 0.6b) and check them; prints each local folder on stdout.

    Only what scoring needs is fetched (config, safetensors weights, tokenizer) into the Hugging Face cache
    (HF_HOME, HF_HUB_CACHE and HF_TOKEN apply) or --local-dir. An interrupted download resumes.

    [dim]Examples:[/]
      qrr download              [dim]# Qwen/Qwen3-Reranker-0.6B, about 1.2 GB[/]
      qrr download 4b 8b
      qrr download 0.6b --local-dir ./qwen3-reranker-0.6b
      qrr download --list
    """
    from qrr import models

    if list_cached:
        if names or all_sizes or local_dir:
            raise InputError("--list takes no models, --all or --local-dir")
        _render_cached(models.cached_models(), _output_format(fmt))
        return
    targets = list(models.ALIASES) if all_sizes else (names or [models.default_model()])
    if all_sizes and names:
        raise InputError("give models or --all, not both")
    if local_dir is not None and len(targets) > 1:
        raise InputError("--local-dir takes one model at a time")
    for name in targets:
        folder = models.download(name, revision=revision, local_dir=local_dir)
        print(folder, flush=True)


def _render_cached(cached, fmt: str) -> None:
    from qrr import models

    rows = [
        {"model": m.model, "alias": models.alias_of(m.model), "revision": m.revision, "refs": list(m.refs),
         "size_on_disk": m.size_on_disk, "path": str(m.path)}
        for m in cached
    ]  # fmt: skip
    if fmt != "table":
        io.write_rows(rows, fmt)
        return
    if not rows:
        stderr.print("no Qwen3 models in the local cache: try qrr download")
        return
    table_rows = [
        {"model": r["model"], "revision": r["revision"][:12] + (f" ({', '.join(r['refs'])})" if r["refs"] else ""),
         "size": _human_bytes(r["size_on_disk"]), "path": r["path"]}
        for r in rows
    ]  # fmt: skip
    io.write_rows(table_rows, "table")


def _human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


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

    fmt = _output_format(fmt)
    if fmt == "tsv":
        raise InputError("--format tsv: use table, json or jsonl")
    size_list = [s.strip().lower() for s in sizes.split(",") if s.strip()]
    lengths = _int_list(doc_tokens, "--doc-tokens")
    _prepare_logging(verbose)
    total = len(size_list) * len(lengths) * docs * (repeat + (1 if baseline else 0))
    rows = []
    writer = io.RowWriter(fmt) if fmt != "table" else None
    with _progress(total, "benchmarking") as advance:
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
            "peak mem": _human_bytes(r.peak_memory_mb * 2**20),
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="qrr")


if __name__ == "__main__":
    main()
