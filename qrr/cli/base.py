"""What every command shares: the typer app, the stderr console, option aliases, error and progress plumbing."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from qrr import __version__, io
from qrr.errors import InputError, QrrError
from qrr.prompt import DEFAULT_INSTRUCTION

app = typer.Typer(
    name="qrr",
    help="Exact, fast Qwen3-Reranker scores from the shell.\n\n"
    "Rank documents for a query with [bold]qrr rank[/], score query-document pairs with [bold]qrr score[/], "
    "rerank a first-stage run and measure it with [bold]qrr rank --run[/] and [bold]qrr eval[/]. "
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


def fail(message: str, code: int) -> typer.Exit:
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
            silence_stdout()
            raise typer.Exit(0) from None
        except (KeyboardInterrupt, Exception) as exc:
            if os.environ.get("QRR_DEBUG") == "1":
                raise
            raise fail(*describe(exc)) from None

    wrapper.__doc__ = reflow(command.__doc__ or "")
    return wrapper


def describe(exc: BaseException) -> tuple[str, int]:
    """The one line and exit code for an error."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, QrrError):
        return str(exc), exc.exit_code
    # anything unplanned still gets one line, and a way to see more
    return f"{type(exc).__name__}: {exc} (set QRR_DEBUG=1 for a traceback)", 1


def reflow(doc: str) -> str:
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


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def pick_output_format(fmt: str | None) -> str:
    if fmt is None:
        return "table" if sys.stdout.isatty() else "jsonl"
    fmt = fmt.lower()
    if fmt not in io.OUTPUT_FORMATS:
        raise InputError(f"--format {fmt}: use one of {', '.join(io.OUTPUT_FORMATS)}")
    return fmt


def pick_input_format(fmt: str, allowed: tuple[str, ...]) -> str:
    fmt = fmt.lower()
    if fmt not in allowed:
        raise InputError(f"--input-format {fmt}: use one of {', '.join(allowed)}")
    return fmt


def input_sources(files: list[str] | None, have_inline: bool) -> list[str]:
    """Files as given; stdin when none are given and stdin is not a terminal."""
    if files:
        return files
    if have_inline:
        return []
    if stdin_is_terminal():
        raise InputError("no input: give a FILE, pipe the input on stdin, or pass it with -q/-d")
    return [io.STDIN]


def stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()


def load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose):
    from qrr.reranker import Reranker

    prepare_logging(verbose)
    # No spinner here: a first-use download draws its own progress bars on stderr.
    reranker = Reranker(model, device=device, dtype=dtype, max_length=max_length, instruction=instruction,
                        batch_tokens=batch_tokens, offline=offline or None)  # fmt: skip
    if verbose:
        from qrr.device import dtype_name

        stderr.print(f"model {reranker.model_path} on {reranker.device} ({dtype_name(reranker.dtype)}), "
                     f"batch budget {reranker.batch_tokens} tokens", markup=False, highlight=False)  # fmt: skip
    return reranker


class WarningsToStderr(logging.Handler):
    """The core's warnings (a CUDA batch retried with a smaller budget) as one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        stderr.print(f"warning: {record.getMessage()}", style="yellow", highlight=False, markup=False)


def prepare_logging(verbose: bool) -> None:
    # stderr carries only our own progress, warnings and messages unless -v asks for transformers' too.
    import transformers

    core = logging.getLogger("qrr")
    if not any(isinstance(h, WarningsToStderr) for h in core.handlers):
        core.addHandler(WarningsToStderr())

    if not verbose:
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


@contextmanager
def progress(total: int | None, what: str):
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


class Skipped:
    """Collects what --on-error skip passes over (bad lines, by default), and reports it on stderr."""

    shown = 20

    def __init__(self, what: str = "bad line(s)"):
        self.what = what
        self.count = 0
        self.messages: list[str] = []

    def __call__(self, error: InputError) -> None:
        self.count += 1
        if len(self.messages) < self.shown:
            self.messages.append(str(error))

    def report(self) -> None:
        if not self.count:
            return
        stderr.print(f"skipped {self.count} {self.what}:", style="yellow", highlight=False)
        for message in self.messages:
            stderr.print(f"  {message}", highlight=False, markup=False)
        if self.count > len(self.messages):
            stderr.print(f"  … and {self.count - len(self.messages)} more", highlight=False)


def on_error_policy(policy: str, what: str = "bad line(s)") -> Skipped | None:
    policy = policy.lower()
    if policy not in ("fail", "skip"):
        raise InputError(f"--on-error {policy}: use fail or skip")
    return Skipped(what) if policy == "skip" else None


def report(stats, max_length: int, verbose: bool, skipped: Skipped | None) -> None:
    if skipped is not None:
        skipped.report()
    if stats.truncated:
        stderr.print(f"note: {stats.truncated} document(s) cut to --max-length {max_length}",
                     style="yellow", highlight=False)  # fmt: skip
    if verbose:
        rate = stats.pairs / stats.seconds if stats.seconds else 0.0
        stderr.print(f"scored {stats.pairs} pairs ({stats.tokens} tokens) in {stats.seconds:.2f} s, "
                     f"{rate:.1f} pairs/s", highlight=False)  # fmt: skip


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"
