"""What every command shares: the typer app, the stderr console, choices, option aliases, the plumbing that
turns the core's errors into one line and an exit code, and loading a model as the model options ask (or a
server's). Ray's options and start are ``onray``, signals ``signals``."""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import gc
import importlib.metadata
import inspect
import logging
import os
import platform
import stat
import sys
import traceback
from enum import Enum
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from qrr import __version__, formats
from qrr import device as devices
from qrr.cli.signals import heavy_imports, sigterm_stops
from qrr.errors import InputError, Interrupted, QrrError, Stopped, Terminated, debugging, innermost, qrr_cause
from qrr.family import QWEN3, run_settings
from qrr.formats.records import raise_or_hand
from qrr.models import MODEL_ENV
from qrr.server import SERVER_ENV

# COLUMNS of 0 made rich draw nothing (every error, table and --help blank), and of a few split scores over lines
MIN_COLUMNS = 20


def sane_columns() -> None:
    """Raise a ``COLUMNS`` below ``MIN_COLUMNS`` (``COLUMNS=0`` from a CI runner) to it, for every console after."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) < MIN_COLUMNS:
        os.environ["COLUMNS"] = str(MIN_COLUMNS)


sane_columns()


class _Stderr(Console):
    """The console of messages and progress. Where stderr's reader goes away (``2>&1 >out.tsv | head``, a log
    pipe closed), what it says is lost and the command goes on: rich's way pointed *stdout* at the null device and
    exited, so a run writing to a file stopped half done with exit 0 (and a failed command exited 0)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        to_devnull(sys.stderr)  # Python's own last words (its flush at exit) go nowhere too


# never markup: messages quote paths and texts ("runs[bm25].trec" was said as "runs.trec", "[/x]" raised)
stderr = _Stderr(stderr=True, soft_wrap=True, markup=False)


# what an option's value is called in --help, by its Python type (which it said: <str>, <int range>)
VALUE_WORDS = {"str": "TEXT", "list[str]": "TEXT", "int": "N", "float": "NUMBER"}


class _PlainTypes:
    """Help that says what a value is, not its Python type: flags show none (they take no value; it said
    ``<bool>``), arguments none beside their name (``FILE``, not ``<list[str]>``), other options a word (``TEXT``,
    ``N``) where they name no choices and no metavar of their own. (Set on typer's parameters, some of it through
    typer's own internals: where a typer release renames them, its own display comes back, and nothing fails.)"""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        with contextlib.suppress(AttributeError):
            self._plain(params)
        return params

    def parse_args(self, ctx, args):
        if args or not self.no_args_is_help or ctx.resilient_parsing:
            return super().parse_args(ctx, args)
        with contextlib.redirect_stdout(sys.stderr):  # the help of `qrr` given nothing, drawn as it is raised: on
            return super().parse_args(ctx, args)  # stderr, as its exit 2 is a usage error's (stdout is for data)

    @staticmethod
    def _plain(params) -> None:
        for param in params:
            if param.metavar is not None and param.param_type_name != "argument":
                continue
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif param.param_type_name == "argument":
                param.display_type_rich = lambda ctx: None  # the name is the metavar already
                if param.required:  # typer's usage line says {RUN}; man pages and click say RUN
                    param._usage_display_name = lambda p=param: p.display_name_raw + ("..." if p.nargs != 1 else "")
            elif not param.type_descriptor.is_choice:
                param.metavar = VALUE_WORDS.get(param.bare_type(), param.bare_type().upper())


# Options whose second value would silently replace the first (click's way) where it means another thing: two
# queries to qrr rank ranked the documents for the last one only, unsaid
ONCE = {
    "query": "only the last would count: one query a run (pairs carry their own: qrr score; a first-stage run of "
             "many queries: qrr rerank)",
}  # fmt: skip


class Command(_PlainTypes, TyperCommand):
    def make_parser(self, ctx):
        """Click's parser, whose reading is checked for an option of ``ONCE`` given twice."""
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_args(args):
            opts, rest, order = parse(args)
            completing = ctx.resilient_parsing  # the shell's completion reads a line being typed
            for param in {p for p in order if p.name in ONCE and not completing}:
                if (times := order.count(param)) > 1:
                    ctx.fail(f"{'/'.join(sorted(param.opts, key=len))} given {times} times: {ONCE[param.name]}")
            return opts, rest, order

        parser.parse_args = parse_args
        return parser


# typer checks values with pydantic, whose words read as a validator's ("Input should be greater than or equal to 1")
_PYDANTIC = (
    ("Value error, ", ""), (", unable to parse string as an integer", ""), (", unable to parse string as a number", ""),
    ("Input should be a valid integer", "must be a whole number"),
    ("Input should be a valid number", "must be a number"),
    ("Input should be greater than or equal to", "must be at least"),
    ("Input should be less than or equal to", "must be at most"),
    ("Input should be greater than", "must be more than"), ("Input should be less than", "must be less than"),
    ("Input should be", "must be"),
)  # fmt: skip


def plain_words(message: str) -> str:
    """A usage error of typer's in plain words: ``must be at least 1``."""
    for theirs, ours in _PYDANTIC:
        message = message.replace(theirs, ours)
    return message.rstrip(".")


# Options of the tools users come from (sentence-transformers, FlagEmbedding, TEI, vLLM) and what qrr says instead
PEER_OPTIONS = {
    "--return-documents": "--with-text", "--return-text": "--with-text", "--top-n": "--top-k",
    "--batch-size": "--batch-tokens (a budget of tokens a forward pass, pads included)",
    "--max-seq-length": "--max-length", "--max-model-len": "--max-length", "--use-fp16": "--dtype fp16",
    "--fp16": "--dtype fp16", "--bf16": "--dtype bf16", "--fp32": "--dtype fp32",
    "--normalize": None, "--raw-scores": None, "--activation": None,
    "--prompt": "--instruction",  # CrossEncoder's prompt is the task instruction
    # and of command-line tools at large
    "--json": "-f json", "--jsonl": "-f jsonl", "--tsv": "-f tsv", "--table": "-f table",
}  # fmt: skip


# Options that qrr has no need of, where another way does it: the shell, or Python
_QUIET = "stdout carries the results only; 2>/dev/null silences the progress and notes on stderr"
_TO_FILE = "results go to stdout: > FILE writes them"
_PROMPT = "Python shows the prompt a pair becomes: Reranker(MODEL).prompt(query, document).text"
_OWN = "it is qrr's own option, before any command: qrr {name}"
OTHER_WAYS = {"--quiet": _QUIET, "--silent": _QUIET, "-o": _TO_FILE, "--output": _TO_FILE, "--out": _TO_FILE,
              "--show-prompt": _PROMPT, "--print-prompt": _PROMPT, "--version": _OWN,
              "--install-completion": _OWN, "--show-completion": _OWN}  # fmt: skip
# Where the command takes --model: what it says instead (vLLM's and the hub's --revision)
WITH_MODEL = {"--revision": "a hub model's revision goes with its name: -m 0.6b@REVISION (a commit, branch or tag)"}


def _peer_option(exc, args) -> str | None:
    """The message for an unknown option that another reranker has, naming qrr's (click's guess is by spelling:
    --return-documents got --document). ``args``: the command line, where the name is as typed."""
    name = getattr(exc, "option_name", None)
    if type(exc).__name__ != "NoSuchOption":
        return None
    if name in OTHER_WAYS:  # click's guess by spelling: --quiet got --query, --print-prompt --format
        return f"no such option: {name}; {OTHER_WAYS[name].format(name=name)}"
    command = getattr(getattr(exc, "ctx", None), "command", None)
    have = {opt for param in getattr(command, "params", ()) for opt in param.opts}
    if name in WITH_MODEL and "--model" in have:  # click's guess: --revision got --instruction
        return f"no such option: {name}; {WITH_MODEL[name]}"
    if name not in PEER_OPTIONS:
        return None
    typed = _as_typed(name, args)
    ours = PEER_OPTIONS[name]
    if ours is None and "--dtype" in have:  # a command that scores
        return (f"no such option: {typed}; scores are p(yes), from 0 to 1 (their log-odds, the raw scores, are "
                "log(p / (1 - p)))")  # fmt: skip
    if ours is None or ours.split()[0] not in have:
        return f"no such option: {typed}"  # not click's guess by spelling
    return f"no such option: {typed}; qrr's is {ours}"


def _as_typed(name: str, args) -> str:
    """An unknown option's ``name`` as it was typed in ``args``: click names it as normalized (``_dtype_words``:
    --half is --fp16 there)."""
    for arg in args:
        option = arg.partition("=")[0]
        if option.startswith("--") and "--" + _dtype_words(option[2:]) == name:
            return option
    return name


def _unless_from_environment(exc, message: str) -> str:
    """``message`` without typer's "(env var: 'QRR_PORT')" where the bad value came from the command line, which
    it names whatever the source."""
    param, ctx = getattr(exc, "param", None), getattr(exc, "ctx", None)
    if param is None or ctx is None or not isinstance(getattr(param, "envvar", None), str):
        return message
    if getattr(ctx.get_parameter_source(param.name), "name", None) == "ENVIRONMENT":
        return message
    return message.replace(f" (env var: '{param.envvar}')", "", 1)


COMPLETION_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _completion_for(args: list[str]) -> None:
    """``qrr --show-completion zsh`` (or ``--install-completion zsh``): typer reads no shell's name where it can
    detect the shell, and printed or installed bash's (an agent's or a script's parent shell) whatever was named."""
    if len(args) == 1 and "=" in args[0]:  # --show-completion=zsh
        args = args[0].split("=", 1)
    if len(args) != 2 or args[0] not in ("--show-completion", "--install-completion"):
        return
    from typer._completion_shared import get_completion_script, install

    option, shell = args[0], args[1].lower()
    if shell not in COMPLETION_SHELLS:
        raise SystemExit(fail(f"{option} takes one of {', '.join(COMPLETION_SHELLS)}, not {shell!r}", 2).exit_code)
    if option == "--show-completion":
        print(get_completion_script(prog_name="qrr", complete_var="_QRR_COMPLETE", shell=shell))
    else:  # said as typer says it for the shell it detects
        shell, path = install(shell=shell, prog_name="qrr", complete_var="_QRR_COMPLETE")
        typer.secho(f"{shell} completion installed in {path}", fg="green")
        typer.echo("Completion will take effect once you restart the terminal")
    raise SystemExit(0)


COMPLETION_HELP = {
    "install_completion": "Install completion for the current shell, or the one named after it (zsh, fish, bash, "
    "powershell).",
    "show_completion": "Print completion for the current shell, or the one named after it, to copy it or customize "
    "the installation.",
}


class Group(_PlainTypes, TyperGroup):
    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:  # typer's words, which knew no shell's name (_completion_for)
            param.help = COMPLETION_HELP.get(param.name or "", param.help)
        return params

    def parse_args(self, ctx, args):
        if not ctx.resilient_parsing:
            _completion_for(args)
        return super().parse_args(ctx, args)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Typer's own usage errors (a bad option value, a missing one) as one line on stderr and exit 2, as qrr's
        errors are (typer draws them in a box of several lines, under the usage)."""
        try:
            from typer._click.exceptions import ClickException, NoArgsIsHelpError
        except ImportError:  # a typer release that moved them: its own boxed errors
            return super().main(*args, standalone_mode=standalone_mode, **kwargs)
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as exc:  # a command given nothing shows its help, as typer draws it
            from typer import rich_utils

            rich_utils.rich_format_error(exc)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            typed = (args[0] if args else kwargs.get("args")) or sys.argv[1:]  # click's reading of them
            said = plain_words(_peer_option(exc, typed) or _unless_from_environment(exc, exc.format_message()))
            where = getattr(exc, "ctx", None)
            hint = f" (see {where.command_path} -h)" if where is not None else ""
            stderr.print(Text.assemble(("error: ", "bold red"), said[:1].lower() + said[1:] + hint), markup=False,
                         highlight=False)  # fmt: skip
            sys.exit(exc.exit_code)
        except typer.Abort:
            stderr.print("aborted", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


# torch's names of the dtypes, which the library takes (Reranker(dtype="bfloat16")), as qrr's: --dtype bfloat16 from
# vLLM's habits, QRR_DTYPE=float32 set for the library
DTYPE_WORDS = {word: short for word, name in devices.DTYPES.items() if (short := devices.dtype_name(name)) != word}


def _dtype_words(token: str) -> str:
    """Click's normalizing of every choice and option name: a dtype's other name to qrr's, all else as it is."""
    return DTYPE_WORDS.get(token.casefold(), token)


app = typer.Typer(
    name="qrr",
    cls=Group,
    help="Exact, fast Qwen3-Reranker scores from the shell.\n\n"
    "Rank documents for a query with [bold]qrr rank[/], score query-document pairs with [bold]qrr score[/], "
    "rerank a first-stage run with [bold]qrr rerank[/] and measure runs with [bold]qrr eval[/]; answer rerank "
    "requests over HTTP with [bold]qrr serve[/], fetch weights with [bold]qrr download[/] and compare the sizes on "
    "this machine with [bold]qrr bench[/]. Results are a table on a terminal and JSON lines in a pipe (-f picks "
    "another; qrr rerank writes a TREC run); progress, warnings and errors go to stderr.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "token_normalize_func": _dtype_words},
)


def command(name: str | None = None, flags: dict[str, str] | None = None, **kwargs):
    """``@app.command`` with qrr's command class and its errors turned into one line; ``flags`` says how this
    command names core parameters where ``FLAGS`` does not fit."""

    def register(function):
        return app.command(name, cls=Command, **kwargs)(errors_to_exit(function, flags))

    return register


# ------------------------------------------------------------------------------------------------- choices


def choices(name: str, values) -> type[Enum]:
    """A typed choice for typer (so --help lists it and shells complete it) from the core's tuple of names."""
    return Enum(name, {v: v for v in values}, type=str)


OutputFormat = choices("OutputFormat", ("table", *formats.ROW_FORMATS))
RunFormat = choices("RunFormat", formats.RUN_FORMATS)
DocFormat = choices("DocFormat", formats.DOC_FORMATS)
Dtype = choices("Dtype", ("auto", "bf16", "fp16", "fp32"))
RecipeName = choices("RecipeName", QWEN3.recipes)
OnError = choices("OnError", ("fail", "skip"))
ShardFormat = choices("ShardFormat", ("parquet", "jsonl"))

DEVICES = ("auto", "cpu", "mps", "cuda", "cuda:0", "cuda:1")


def _complete_device(incomplete: str) -> list[str]:
    return [d for d in DEVICES if d.startswith(incomplete)]


# ------------------------------------------------------------------------------------------- shared options

# a deployment's settings (a container's environment), as $QRR_MODEL names the model
DEVICE_ENV, DTYPE_ENV = "QRR_DEVICE", "QRR_DTYPE"


def _blank_is_unset(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """A blank ``$QRR_MODEL`` as an empty one (which click takes for unset), as the library reads it: ``QRR_MODEL=" "``
    was refused where ``QRR_MODEL=`` loaded the default. A blank ``-m`` stays an error (the model names it)."""
    source = getattr(ctx.get_parameter_source(param.name), "name", None)
    set_blank = os.environ.get(MODEL_ENV, "x").strip() == ""  # QRR_MODEL= reaches here as no value at all
    if source in ("ENVIRONMENT", "DEFAULT") and set_blank:
        if not ctx.resilient_parsing:  # said, as a deployment's variable that resolved to nothing is likely a slip
            stderr.print(f"note: {MODEL_ENV} is set but empty, so it is taken as unset", highlight=False)
        return None
    return value


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", envvar=MODEL_ENV, show_envvar=True, rich_help_panel="Model", metavar="NAME",
        callback=_blank_is_unset,
        help="Alias (0.6b, 4b, 8b: Qwen/Qwen3-Reranker-0.6B, -4B, -8B), hub repo id or local folder (a "
        "Qwen3-Reranker, or one converted to a sequence classifier); REPO@REVISION pins a hub commit, branch or tag. "
        "[dim]\\[default: 0.6b][/]",
    ),
]  # fmt: skip
DeviceOpt = Annotated[
    str,
    typer.Option("--device", metavar="DEVICE", autocompletion=_complete_device, rich_help_panel="Model",
                 envvar=DEVICE_ENV, show_envvar=True,
                 help="auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N."),
]  # fmt: skip
DtypeOpt = Annotated[
    Dtype, typer.Option("--dtype", case_sensitive=False, rich_help_panel="Model", envvar=DTYPE_ENV, show_envvar=True,
                        help="auto: bf16 on GPUs and on CPUs with native bf16, fp16 on mps, fp32 elsewhere (torch's "
                        "names, bfloat16, float16 and float32, are taken too)."),
]  # fmt: skip
MaxLengthOpt = Annotated[
    int, typer.Option("--max-length", min=1, rich_help_panel="Model",
                      help="Prompt length cap in tokens; only the document is cut (with --recipe vllm, the rendered "
                      "messages)."),
]  # fmt: skip
BatchTokensOpt = Annotated[
    int | None,
    typer.Option("--batch-tokens", min=1, rich_help_panel="Model",
                 help="Tokens per forward pass, pads included; lower it to use less memory (a longer prompt "
                 "runs alone). On a CPU the default ran fastest (4096 ran 1.3x and 16384 2.6x slower with the 0.6B; "
                 "a long document runs best alone); torch's CPU threads are $OMP_NUM_THREADS, else the CPUs this "
                 "process may use (a CPU quota's). "
                 "[dim]\\[default: 1024 cpu, 8192 mps, 32768 cuda][/]"),
]  # fmt: skip
RecipeOpt = Annotated[
    RecipeName,
    typer.Option("--recipe", case_sensitive=False, rich_help_panel="Model", metavar="NAME",
                 help="The prompt: the model card's transformers recipe (written by hand), its vllm recipe (the chat "
                 "template, as Qwen's published evaluation), or vllm-template (vLLM's qwen3_reranker.jinja); they "
                 "score differently."),
]  # fmt: skip
CompileOpt = Annotated[
    bool,
    typer.Option("--compile", rich_help_panel="Model",
                 help="Run the model's layers through torch.compile: for a server or long runs. The first start "
                 "compiles (a minute or more), a later one reads the code cached on disk; the same scores within "
                 "rounding. See BENCHMARKS.md for where it pays."),
]  # fmt: skip
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="Never download; use only local folders and the cache (also HF_HUB_OFFLINE=1).",
                 rich_help_panel="Model"),
]  # fmt: skip
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", envvar=SERVER_ENV, show_envvar=True, rich_help_panel="Model", metavar="URL",
                 help="Score on a running qrr serve at this URL instead of loading a model (API key: $QRR_API_KEY)."),
]  # fmt: skip
InstructionOpt = Annotated[
    str | None,
    typer.Option(
        "--instruction",
        "-i",
        help="Task instruction (with --server, the server's unless given). "
        f"[dim]\\[default: {QWEN3.default_instruction}][/]",
    ),
]
FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option("--format", "-f", case_sensitive=False, rich_help_panel="Output",
                 help="jsonl: an object a line; json: one array; tsv: a header, then a line a result. "
                 "[dim]\\[default: table on a terminal, jsonl otherwise][/]"),
]  # fmt: skip
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        rich_help_panel="Output",
        help="Say what was loaded and how fast it ran, on stderr (a terminal shows progress either way).",
    ),
]
OnErrorOpt = Annotated[
    OnError,
    typer.Option("--on-error", case_sensitive=False, rich_help_panel="Input",
                 help="fail: stop at the first bad line (exit 2). skip: skip bad lines, list them on stderr, go on."),
]  # fmt: skip
# where many queries are scored, one too long for --max-length is skipped as a bad line is
OnErrorQueriesOpt = Annotated[
    OnError,
    typer.Option("--on-error", case_sensitive=False, rich_help_panel="Input",
                 help="fail: stop at the first bad line (exit 2). skip: skip bad lines (and a query too long for "
                      "--max-length), list them on stderr, go on."),
]  # fmt: skip
FilesArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="FILE", help="Input files; - or none reads stdin.", show_default=False),
]

# reranking a first-stage run: qrr rerank and qrr eval --beir
RUN_PANEL = "First-stage run (TREC/BEIR)"
DepthOpt = Annotated[
    int, typer.Option("--depth", metavar="N", min=1, rich_help_panel=RUN_PANEL,
                      help="Rerank each query's top N documents of the run (by score; equal scores in the run's line "
                      "order); the output holds only those (a recall past N measures the first stage's top N), unless "
                      "--keep-rest."),
]  # fmt: skip
ResumeOpt = Annotated[
    str | None,
    typer.Option("--resume", metavar="OUT", rich_help_panel=RUN_PANEL,
                 help="Write the reranked run to OUT; where OUT exists, skip the queries it completes and append "
                 "the rest (an interrupted run goes on; a file of another instruction, max length, depth or recipe is "
                 "refused, as the settings are kept in .OUT.qrr.json beside it, and under another model name results "
                 "are scored again to tell)."),
]  # fmt: skip
TextFieldOpt = Annotated[
    str, typer.Option("--text-field", help="JSON field holding the document text.", rich_help_panel="Input")
]
IdFieldOpt = Annotated[
    str,
    typer.Option("--id-field", rich_help_panel="Input",
                 help="JSON field holding the document id (id: else BEIR's _id, else the one id field there is, such "
                 "as doc_id or pid)."),
]  # fmt: skip
WithFieldsOpt = Annotated[
    bool,
    typer.Option("--with-fields", rich_help_panel="Output",
                 help="Copy each record's other fields (JSON fields, or TSV columns a header names: a label, a URL) "
                 "into its result, after the score."),
]  # fmt: skip
TagOpt = Annotated[
    str,
    typer.Option(
        "--tag", metavar="TAG", rich_help_panel=RUN_PANEL, help="The run tag of TREC output (a jsonl run has none)."
    ),
]


def _version(value: bool) -> None:
    if value:
        # what a bug report needs, read from the installed metadata: importing torch would take seconds
        print(f"qrr {__version__} ({_installed_version('torch')}, {_installed_version('transformers')}, Python "
              f"{platform.python_version()})")  # fmt: skip
        raise typer.Exit()


def _installed_version(name: str) -> str:
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return f"no {name}"


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """Exact, fast Qwen3-Reranker scores from the shell."""


# ------------------------------------------------------------------------------------------------ plumbing

# The core names its parameters; these are the flags that set them, where the flag is not --param-name.
FLAGS = {"fmt": "--format", "output": "--resume", "on_missing": "--on-error skip", "url": "--server"}


def flag(param: str) -> str:
    """The command-line flag for a core parameter: ``top_k`` -> ``--top-k``."""
    return FLAGS.get(param) or "--" + param.replace("_", "-")


# Control characters (C0, DEL, C1) written out: a document's or id's escape sequences, printed raw, recoloured the
# terminal, retitled its window and swallowed table rows. Bidi overrides and isolates and the line separators too:
# they reorder what follows them on the line (an id shown reversed) or break it.
_CONTROLS = (
    {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
    | {c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]}
    | {9: "\\t", 10: "\\n", 13: "\\r"}
)


def visible(text: str) -> str:
    """``text`` with its control characters written out as escapes (``\\x1b``, ``\\n``), for a terminal."""
    return text.translate(_CONTROLS)


_DATA_CONTROLS = {c: said for c, said in _CONTROLS.items() if c not in (9, 10)}


def visible_data(text: str) -> str:
    """JSON lines or TSV shown on a terminal: as ``visible``, but for the tabs and newlines that shape them (a TSV
    cell's own are escaped already; JSON escapes C0, not DEL, C1 or the bidi controls)."""
    return text.translate(_DATA_CONTROLS)


class _Unseen(dict):
    """In a message, characters that show as nothing are written out too (format characters: a zero-width space, a
    soft hyphen, a left-to-right mark): an id holding one was said missing while the message showed the very id
    the corpus holds. Not ZWJ and ZWNJ, which shape emoji and scripts. Looked up as ``str.translate`` meets them."""

    def __missing__(self, code: int):
        import unicodedata

        unseen = unicodedata.category(chr(code)) == "Cf" and code not in (0x200C, 0x200D)
        self[code] = f"\\u{code:04x}" if unseen and code <= 0xFFFF else f"\\U{code:08x}" if unseen else code
        return self[code]


_UNSEEN = _Unseen(_CONTROLS)


def unseen(text: str) -> str:
    """``text`` with its control characters and those that show as nothing written out, for a message."""
    return text.translate(_UNSEEN)


def fail(message: str, code: int) -> typer.Exit:
    stderr.print(Text.assemble(("error: ", "bold red"), unseen(message)))
    return typer.Exit(code)


def text_streams() -> None:
    """stdout and stderr that never fail on a character: where their encoding is not UTF-8 (``LC_ALL=C`` with
    ``PYTHONUTF8=0``, a latin-1 locale, a Windows console), data sent to a pipe or file is UTF-8, as JSON lines,
    TSV and TREC files are read, and what a terminal shows has its unencodable characters replaced. A results
    table failed at its first bar or CJK text, after all the scoring. An encoding asked for with
    ``PYTHONIOENCODING`` stays, with its own error handler for data (strict unless it names one): replacing what it
    cannot say turned ids into ``?``, with exit 0."""
    for stream, is_stdout in ((sys.stdout, True), (sys.stderr, False)):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding in ("utf8", "utf8sig") or not hasattr(stream, "reconfigure"):
            continue
        with contextlib.suppress(Exception):  # a stream already written to may refuse a new encoding
            if is_stdout and not stream.isatty():
                if not os.environ.get("PYTHONIOENCODING", "").partition(":")[0]:  # ":replace" names no encoding
                    stream.reconfigure(encoding="utf-8")
            else:
                stream.reconfigure(errors="replace" if is_stdout else "backslashreplace")


def errors_to_exit(command, flags: dict[str, str] | None = None):
    """Turn ``QrrError`` into one line and its exit code; Ctrl-C into 130, SIGTERM into 143 (each after what is
    finished is written); a closed pipe into a quiet 0.

    ``QRR_DEBUG=1`` prints the traceback before that line; the line and the exit code stay, as a script reads them.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        core_warnings_to_stderr()  # from the start: reading the input may warn before any model loads
        text_streams()
        try:
            refuse_blank_options()
            with sigterm_stops():
                return command(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): point stdout at devnull so the exit flush stays quiet.
            silence_stdout()
            raise typer.Exit(0) from None
        except (KeyboardInterrupt, Exception) as exc:
            if debugging() and sys.stderr is not None:  # it replaced the line, and turned exit 2 into Python's 1
                with contextlib.suppress(Exception):  # a stderr gone (| head) leaves the line and its code to say
                    traceback.print_exception(exc, file=sys.stderr)
            raise fail(*describe(exc, {**(flags or {}), **from_environment()})) from None

    wrapper.__doc__ = reflow(command.__doc__ or "")
    return wrapper


# options whose blank value a command says in its own words (-q, -i), or reads as unset (an empty $QRR_MODEL)
_BLANK_SAID = {"query", "instruction", "model", "server", "api_key", "score_column", "served_model_name"}


def refuse_blank_options() -> None:
    """Refuse an option given a blank value on the command line (``--resume "$OUT"`` with ``OUT`` unset): ``--resume
    ''`` wrote to stdout and kept nothing to go on with, ``--host ''`` listened on every interface; or set blank in
    the environment (``QRR_HOST=" "``)."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.param_type_name != "option" or param.name in _BLANK_SAID or not isinstance(value, str):
            continue
        source = getattr(ctx.get_parameter_source(param.name), "name", None)
        if not value.strip() and source == "COMMANDLINE":
            flag = max(param.opts, key=len)
            raise InputError(f"{flag} is blank ({value!r}; an unset shell variable?): give it a value, or leave it out")
        if not value.strip() and source == "ENVIRONMENT":  # an empty one is unset (click's reading); spaces are not
            raise InputError(f"{param.envvar} is blank ({value!r}): give it a value, or unset it")


def from_environment() -> dict[str, str]:
    """The running command's parameters that took their value from the environment, each said as its variable
    (``model`` -> ``$QRR_MODEL``): a message naming ``--model`` sends the user to a flag they never gave."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    sources = {p.name: getattr(ctx.get_parameter_source(p.name), "name", None) for p in ctx.command.params}
    # a blank one taken as unset (QRR_MODEL=" ") is not where the value came from
    return {p.name: f"${p.envvar}" for p in ctx.command.params if isinstance(p.envvar, str) and
            sources[p.name] == "ENVIRONMENT" and ctx.params.get(p.name) is not None}  # fmt: skip


# errors only a write raises: a full disk or quota, a file past its size limit
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _stdouts(encoding: str) -> bool:
    """Whether ``encoding`` is stdout's, as ``PYTHONIOENCODING`` names it (an encoding error elsewhere, an HTTP
    header's, is no output's)."""
    said = os.environ.get("PYTHONIOENCODING", "").partition(":")[0]
    return bool(said) and codecs.lookup(encoding).name == codecs.lookup(said).name


def describe(exc: BaseException, flags: dict[str, str] | None = None) -> tuple[str, int]:
    """The one line and exit code for an error, in the command line's words (``flags`` first, then ``FLAGS``)."""
    exc = qrr_cause(exc)
    if isinstance(exc, Interrupted) and exc.total:  # a KeyboardInterrupt that says what was finished
        then = (f"run the same command to go on from {exc.path}" if exc.path and exc.done
                else "nothing was written; run the same command to start again" if exc.path
                else "--resume OUT writes a run that a later command goes on with")  # fmt: skip
        return f"{exc.how} after {exc.done} of {exc.total} queries; {then}", exc.exit_code
    if isinstance(exc, Terminated):
        return "terminated", exc.exit_code
    if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
        return "interrupted", 130
    if isinstance(exc, Stopped):
        line, code = describe(exc.cause, flags)
        return f"{line}; {exc.kept} are in {exc.path}: run the same command to go on", code
    if isinstance(exc, QrrError | Interrupted):
        return exc.naming(lambda param: (flags or {}).get(param) or flag(param)), exc.exit_code
    if isinstance(exc, UnicodeEncodeError) and _stdouts(exc.encoding):
        said = exc.object[exc.start]
        return (
            f"cannot write {said!r} (U+{ord(said):04X}) in the output's encoding, {exc.encoding}: leave "
            f"PYTHONIOENCODING unset for UTF-8, or name an error handler ({exc.encoding}:backslashreplace)"
        ), 1
    if isinstance(exc, OSError) and exc.filename is None and exc.errno in WRITE_FAILURES:
        return f"cannot write the output: {exc.strerror}", 1  # not a bare `OSError: [Errno 28]` (> /dev/full)
    # a container's read-only root: torch's import asks for a temporary folder, huggingface_hub and torch.compile's
    # cache for a home (an arbitrary user id has none)
    if isinstance(exc, FileNotFoundError) and str(exc.strerror).startswith("No usable temporary directory"):
        return ("no writable temporary folder (tried $TMPDIR, /tmp, /var/tmp, /usr/tmp and here), which torch needs: "
                "set TMPDIR to a writable folder, or make /tmp one (a container's emptyDir)"), 1  # fmt: skip
    if isinstance(exc, RuntimeError) and str(exc) == "Could not determine home directory.":
        return ("no home folder: $HOME is not set and this user has none; set HOME to a writable folder (or HF_HOME "
                "and XDG_CACHE_HOME, where models and --compile's code are cached)"), 1  # fmt: skip
    if isinstance(exc, MemoryError):  # its message is empty: "MemoryError: " said nothing
        return ("out of memory (the machine's, or a limit such as ulimit -v): give a smaller model, a lower "
                "--batch-tokens, or more memory"), 1  # fmt: skip
    # anything unplanned still gets one line, and a way to see more
    exc = innermost(exc)  # not Ray's wrapper of a worker's error, whose message holds the worker's traceback
    return f"{type(exc).__name__}: {exc}" + ("" if debugging() else " (set QRR_DEBUG=1 for a traceback)"), 1


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
    to_devnull(sys.stdout)


def to_devnull(stream) -> bool:
    """Point ``stream``'s descriptor at the null device, so that what it still holds (and the exit's flush) goes
    there too; False where it has none to point."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        return False
    return True


def given(ctx: typer.Context, *names: str) -> list[str]:
    """Of the parameters ``names``, the flags the user gave on the command line (not defaults, not the
    environment)."""
    params = {p.name: p for p in ctx.command.params}
    found = []
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            opts = params[name].opts
            found.append(next((o for o in opts if o.startswith("--")), opts[0]))
    return found


def stdout_format(fmt: OutputFormat | None) -> str:
    """The asked format, else a table on a terminal and JSON lines in a pipe."""
    if sys.stdout is None:  # closed (`>&-`, a daemon's): what would the results go to?
        raise InputError("stdout is closed: send it to a file (> FILE), or give --resume FILE where the command has it")
    if fmt is None:
        return "table" if sys.stdout.isatty() else "jsonl"
    return fmt.value


def check_given_texts(query: str | None, documents: list[str] | None = None, instruction: str | None = None) -> None:
    """Refuse a blank -q, -d or -i: ``-q "$Q"`` with ``Q`` unset ranked documents for nothing, plausibly, exit 0;
    and one of bytes that are not UTF-8, said of its option (the core said "pair 0", "document 0")."""
    if query is not None and not query.strip():
        raise InputError(f"-q/--query is blank ({query!r}; an unset shell variable?): give the query")
    if instruction is not None and not instruction.strip():
        raise InputError(f"-i/--instruction is blank ({instruction!r}; an unset shell variable?): give the "
                         "instruction, or leave -i out for the default")  # fmt: skip
    for n, document in enumerate(documents or [], 1):
        if not document.strip():
            raise InputError(f"-d/--document {n} is blank ({document!r}; an unset shell variable?): give its text")
    named = [("-q/--query", query), ("-i/--instruction", instruction)]
    named += [(f"-d/--document {n}", d) for n, d in enumerate(documents or [], 1)]
    for option, text in named:
        if text is not None and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # Python keeps an argument's bytes that are not UTF-8 as surrogates
                try:
                    os.fsencode(text).decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"{option} is not UTF-8 text (at character {exc.start + 1}): the shell passed it "
                                     "in another encoding (a GBK or Shift-JIS terminal, or a file's bytes in $(...)?); "
                                     "give it in UTF-8") from None  # fmt: skip
                raise InputError(f"{option} is UTF-8, but this locale is not (LC_ALL=C?), so Python read it as bytes: "
                                 "set PYTHONUTF8=1, or a UTF-8 locale (LC_ALL=C.UTF-8)") from None  # fmt: skip
            try:  # an 8-bit locale (ISO-8859-1) reads any bytes: UTF-8's as other letters, scored so, unsaid
                bytes_said = os.fsencode(text).decode("utf-8")
            except UnicodeError:
                bytes_said = text
            if bytes_said != text:
                raise InputError(f"{option} is UTF-8, but this locale is {sys.getfilesystemencoding()}, so Python read "
                                 f"it as other letters ({text[:20]!r}): set PYTHONUTF8=1, or a UTF-8 locale "
                                 "(LC_ALL=C.UTF-8)")  # fmt: skip


def input_sources(files: list[str] | None, have_inline: bool, documents: bool = False) -> list[str]:
    """Files as given; stdin when none are given and stdin is not a terminal (else an error saying how to give the
    input: pairs, or with ``documents`` documents)."""
    from qrr.formats import STDIN

    if files:
        check_not_stdout(files)
        return files
    if have_inline:
        return []
    if stdin_is_terminal():
        what, flags = ("documents", "-d") if documents else ("pairs", "-q/-d")
        raise InputError(f"no {what}: give a FILE, pipe them on stdin, or pass them with {flags}")
    check_not_stdout([STDIN])
    return [STDIN]


def check_not_stdout(files: list[str]) -> None:
    """Refuse an input file that stdout writes to (``qrr score in.jsonl >> in.jsonl``, as ``cat`` refuses): its
    results went on the end of what it read, and with ``>`` the shell had emptied it first (no result, exit 0)."""
    from qrr.formats import STDIN

    try:
        out = os.fstat(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no file underneath (a test's capture) or closed
        return
    if not stat.S_ISREG(out.st_mode):
        return
    for path in files:
        try:
            same = os.path.samestat(os.fstat(sys.stdin.fileno()) if path == STDIN else os.stat(path), out)
        except (AttributeError, OSError, TypeError, ValueError):  # stdin closed (<&-): None
            continue
        if same and path == STDIN:  # qrr score - < f >> f
            raise InputError("-: the output (stdout) is the file stdin reads; write the results to another file")
        if same:
            raise InputError(f"{path}: the output (stdout) is this input file; write the results to another file")


def animated(console: Console | None = None) -> bool:
    """Whether stderr (or ``console``) shows bars and spinners: a terminal's. ``FORCE_COLOR`` (a CI log in colour)
    makes rich take any file for a terminal, which filled logs with spinner frames: it colours, and only a real
    terminal animates (``TTY_INTERACTIVE=1`` animates anyway, ``0`` never, as in rich)."""
    if os.environ.get("TTY_INTERACTIVE") in ("0", "1"):
        return os.environ["TTY_INTERACTIVE"] == "1"
    console = console or stderr
    if not console.is_interactive:
        return False
    if "FORCE_COLOR" in os.environ or os.environ.get("TTY_COMPATIBLE") == "1":
        isatty = getattr(console.file, "isatty", None)
        return bool(isatty and isatty())
    return True


def stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()


# The options that say how to load a model, which a --server's model makes moot
MODEL_OPTIONS = ("model", "device", "dtype", "max_length", "batch_tokens", "recipe", "compile", "offline")


def model_options(ctx: typer.Context) -> dict:
    """The command's ``MODEL_OPTIONS`` as plain values (choices as their strings, no offline flag as ``None``), for
    ``load_reranker`` and Ray's stages."""
    options = {name: ctx.params[name] for name in MODEL_OPTIONS}
    options["offline"] = options["offline"] or None
    return {name: value.value if isinstance(value, Enum) else value for name, value in options.items()}


def resume_settings(ctx: typer.Context, server: str | None, instruction: str | None) -> dict:
    """What a --resume file is written with, kept beside it and checked when a run goes on with it: the model, the
    instruction (the default said as its text, so that giving it changes nothing), max length, recipe and dtype (where
    given); with a server, its set-up as it says (its model is not compared: ``None``)."""
    from qrr import models

    if server is not None:
        from qrr.server.client import RemoteReranker

        return RemoteReranker(server, instruction=instruction).settings()  # without -i: the server's instruction
    options = model_options(ctx)
    # auto's is known once the model has loaded (``pipelines`` learn it then; only where results are left to score),
    # on Ray's actors not at all
    dtype = None if options["dtype"] == "auto" else options["dtype"]
    return run_settings(models.model_key(options["model"]), instruction, options["max_length"], options["recipe"],
                        dtype)  # fmt: skip


def chosen_server(ctx: typer.Context, server: str | None) -> str | None:
    """The server to score on (``--server`` or ``$QRR_SERVER``), or ``None`` for a model loaded here. Model options
    on the command line win over ``$QRR_SERVER``; beside ``--server`` itself they are an error."""
    if server is None and os.environ.get(SERVER_ENV) == "" and not given(ctx, *MODEL_OPTIONS):
        # an unresolved CI secret, which click takes for none: the model was loaded here instead, unsaid
        raise InputError("QRR_SERVER is set but empty: give the server's URL, or unset it to load the model here")
    if server is not None and not given(ctx, "server"):  # from the environment: checked before model options
        from qrr.server.client import checked_url

        checked_url(server, "server")
    clashing = given(ctx, *MODEL_OPTIONS) if server is not None else []
    if clashing and given(ctx, "server"):
        raise InputError(f"{', '.join(clashing)}: not with --server, whose model scores")
    if clashing:
        said = ", ".join(clashing)
        stderr.print(f"note: {said} given: the model is loaded here, not asked of $QRR_SERVER ({server})",
                     highlight=False, markup=False)  # fmt: skip
        return None
    return server


def fields_checked(records, with_text: bool = False, skipped=None):
    """``records`` (pairs or documents, from the input's first) as they are read, each checked for a field that its
    result names itself (``--with-fields``): bad input, said in its place, or handed to ``skipped`` (``--on-error
    skip``) and left out, as a bad line is."""
    n = 0
    for record in records:
        try:
            if isinstance(record, formats.DocRecord):
                formats.check_fields(record, n, formats.rank_fields(record, with_text))
            else:
                formats.check_fields(record, n)
        except InputError as exc:
            raise_or_hand(exc, skipped)
            continue
        n += 1
        yield record


def remote_or_local(server: str | None, instruction: str | None, verbose: bool, **options):
    """A ``RemoteReranker`` on ``server`` (from ``chosen_server``), or where it is ``None`` a model loaded here
    (``options``: the rest of ``load_reranker``'s parameters)."""
    if server is not None:
        from qrr.server.client import RemoteReranker

        remote = RemoteReranker(server, instruction=instruction)
        if verbose:  # as a model loaded here is said: what scores, and how (an older qrr's server says less)
            said = remote.settings()
            how = [f"{said['recipe']} recipe"] * (said["recipe"] is not None) + [
                f"max length {said['max_length']}"] * (said["max_length"] is not None)  # fmt: skip
            stderr.print(", ".join([f"model {remote.model_path}", *how]), markup=False, highlight=False)
        return remote
    return load_reranker(instruction=instruction, verbose=verbose, **options)


def load_reranker(model, device, dtype, max_length, instruction, batch_tokens, offline, verbose, recipe,
                  compile=False):  # fmt: skip
    """The ``Reranker`` the model options (``model_options``) ask for, loaded with a spinner on a terminal."""
    from qrr import models
    from qrr.reranker import Reranker

    name = models.named(model)
    with quiet_gc():
        heavy_imports()
        # the device and dtype are checked before a first-use download, whose bars come before the spinner
        devices.resolve_dtype(dtype, devices.resolve_device(device))
        where = name if models.registered(name) else str(models.resolve(model, offline=offline))
        with status(f"loading {name}") if not verbose else contextlib.nullcontext():
            prepare_logging(verbose)
            reranker = Reranker(where, device=device, dtype=dtype, max_length=max_length, instruction=instruction,
                                batch_tokens=batch_tokens, offline=offline, recipe=recipe)  # fmt: skip
    if compile:  # with collections on: what compiling leaves behind is not frozen for good
        said = f"compiling {name} (a minute or more, unless cached)"
        if verbose or not animated():  # a log (a server's): a line, not a minute of nothing before it is ready
            stderr.print(said, markup=False, highlight=False)
        with status(said) if not verbose else contextlib.nullcontext():
            reranker.engine.compile()
    if verbose:
        stderr.print(reranker.description(), markup=False, highlight=False)
    return reranker


def status(message: str) -> contextlib.AbstractContextManager:
    """A spinner with ``message`` on a terminal; nothing in a log."""
    from rich.text import Text

    return stderr.status(Text(message)) if animated() else contextlib.nullcontext()  # a str is read as markup


# Set by the console script (a process of its own), not by tests that run the app in theirs.
FREEZE_AFTER_LOAD = False


@contextlib.contextmanager
def quiet_gc():
    """While a ``qrr`` process loads its model: no garbage collections, then everything that exists frozen.

    Importing torch and transformers makes millions of objects and none of them is garbage; collecting while they
    are made cost 0.8 s of a 5 s start on the machines here, and Python walks them all again at exit (1 s more
    before the shell gets its prompt back). Frozen, later collections and the exit skip them.
    """
    if not FREEZE_AFTER_LOAD or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


class WarningsToStderr(logging.Handler):
    """The core's warnings (a CUDA batch retried with a smaller budget) and errors (a server's failed request) as
    one line each on stderr, ``warning:`` or ``error:`` as their level is (``note:`` for a record marked ``note``).
    ``names``: a parameter said otherwise than as its flag (a server's log says a request's field)."""

    def __init__(self):
        super().__init__()
        self.names: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        template = getattr(record, "template", None)
        named = lambda param: self.names.get(param) or flag(param)  # noqa: E731
        message = QrrError(template, *record.params).naming(named) if template else record.getMessage()
        level, style = ("error", "red") if record.levelno >= logging.ERROR else ("warning", "yellow")
        if getattr(record, "note", False):  # not amiss: said so the user knows what happens
            level, style = "note", None
        stderr.print(f"{level}: {visible(message)}", style=style, highlight=False, markup=False)
        if record.exc_info:  # asked for (the server's QRR_DEBUG=1): the traceback after its line
            stderr.print(logging.Formatter().formatException(record.exc_info), highlight=False, markup=False)


def core_warnings_to_stderr(names: dict[str, str] | None = None) -> None:
    """The core's warnings as qrr's one-line warnings on stderr, in the command line's words (``names``: a
    parameter's words where they are not its flag's, until the next command starts: every one calls this)."""
    core = logging.getLogger("qrr")
    handler = next((h for h in core.handlers if isinstance(h, WarningsToStderr)), None)
    if handler is None:
        handler = WarningsToStderr()
        core.addHandler(handler)
    handler.names = dict(names or {})


def prepare_logging(verbose: bool) -> None:
    # stderr carries only our own progress, warnings and messages unless -v asks for transformers' too.
    import transformers

    core_warnings_to_stderr()

    if not verbose:
        transformers.logging.set_verbosity_error()
    if not verbose or not animated():  # bars only on a terminal, as qrr's own
        transformers.logging.disable_progress_bar()
