"""What every command shares: one-line errors in the command line's words, exit codes, help, pipes, progress."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time

import pytest
import torch
import transformers
from typer.testing import CliRunner

import qrr.cli.base
from qrr.cli import app
from tests.clitools import said


def error(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_malformed_json_names_file_and_line(cli, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"query": "q", "document": "d"}\n{"query": \n')
    error(cli("score", str(tmp_path / "bad.jsonl")), 2, "bad.jsonl:2", "malformed JSON")
    # where the format was guessed, the error says how to read the input as plain text instead
    for data, where in (
        ('{oops} said the text\n{"text": "a"}\n', "<stdin>:1"),
        ('"Hello"\n{oops} said the text\n', "<stdin>:2"),  # a first line that is JSON, but no object
    ):
        error(cli("rank", "-q", "q", input=data), 2, where, "malformed JSON",
              "(if the input is plain text, use --input-format text)")  # fmt: skip
    assert "--input-format" not in error(cli("rank", "-q", "q", "--input-format", "jsonl", input="{oops}\n"), 2)
    # after a JSON object the input is JSON lines: a bad line is only a bad line
    said = error(cli("rank", "-q", "q", input='{"text": "a"}\n{oops}\n'), 2, "<stdin>:2", "malformed JSON")
    assert "--input-format" not in said


def test_missing_field_is_named(cli):
    error(cli("score", input='{"query": "q"}\n'), 2, '<stdin>:1: missing field "document"')
    assert error(cli("rank", "-q", "q", input='{"_id": "d1", "body": "x", "n": 1}\n'), 2) == (
        'error: <stdin>:1: missing field "text"; the object\'s text is in "body": name one with --text-field'
    )
    error(cli("rank", "-q", "q", input='{"id": 7}\n'), 2, '<stdin>:1: missing field "text"')
    # a character that shows as nothing is written out: the message named a field that looked like another
    assert error(cli("rank", "-q", "q", input='{"_id": "d1", "bo\u200bdy": "x"}\n'), 2) == (
        'error: <stdin>:1: missing field "text"; the object\'s text is in "bo\\u200bdy": name one with --text-field'
    )


def test_core_errors_name_the_flags(cli):
    assert error(cli("rank", "-q", "q" * 400, "-d", "x", "--max-length", "60"), 2) == (
        "error: the query and instruction take 226 tokens, but --max-length 60 leaves 12 for query, "
        "instruction and document together (the prompt frame takes 48); raise --max-length or shorten the query"
    )
    assert error(cli("rank", "-q", "q", "-d", "x", "--max-length", "40"), 2) == (
        "error: --max-length 40 leaves no room: the prompt frame alone takes 48 tokens"
    )
    error(cli("rank", "-q", "q", "-d", "x", "--device", "cuda:0"), 2, "--device cuda:0: ")  # the build or the machine
    error(cli("rank", "-q", "q", "-d", "x", "--device", "gpu"), 2, "--device 'gpu' is unknown: use auto")
    error(cli("rank", "-q", "q", "nope.jsonl"), 2, "nope.jsonl: no such file")


def test_compile_reaches_the_model_and_is_no_server_option(cli):
    result = cli("rank", "--compile", "-q", "q", "-d", "a")
    # in a log (a server's), a line says what the minute before the first result (or "ready") goes to
    assert (result.exit_code, result.stderr) == (2, "compiling fake (a minute or more, unless cached)\nerror: "
                                                    "--compile: this model cannot be compiled (only transformers "
                                                    "models can)\n")  # fmt: skip
    error(cli("rank", "--compile", "-q", "q", "-d", "a", "--server", "http://127.0.0.1:9", model=False), 2,
          "--compile: not with --server, whose model scores")  # fmt: skip


def test_choices_are_checked_and_listed(cli):
    for args, listed in ((("-f", "xml"), "'table', 'jsonl', 'json', 'tsv'"), (("--dtype", "int4"), "'auto', 'bf16'"),
                         (("--input-format", "csv"), "'auto', 'jsonl', 'json', 'text'")):  # fmt: skip
        result = cli("rank", "-q", "q", "-d", "x", *args)
        message = said(result)
        assert result.exit_code == 2 and result.stdout == "" and listed in message, message
        flag = {"-f": "'--format' / '-f'"}.get(args[0], f"'{args[0]}'")
        assert f"invalid value for {flag}" in message and f"'{args[1]}' is not one" in message
    # typer's usage errors are one line, as qrr's own are (typer drew a box of several lines under the usage)
    result = cli("rank", "-q", "q", "-d", "x", "-f", "xml")
    assert (result.exit_code, result.stderr) == (2, "error: invalid value for '--format' / '-f': 'xml' is not one of "
                                                    "'table', 'jsonl', 'json', 'tsv' (see qrr rank -h)\n")  # fmt: skip
    result = cli("rank", "-d", "x")
    assert (result.exit_code, result.stderr) == (2, "error: missing option '--query' / '-q' (see qrr rank -h)\n")
    # a value out of range or not a number, in plain words (typer's were pydantic's: "Input should be ...")
    for args, said_as in ((("-k", "0"), "'--top-k' / '-k': must be at least 1"),
                          (("--max-length", "abc"), "'--max-length': must be a whole number")):  # fmt: skip
        result = cli("rank", "-q", "q", "-d", "x", *args)
        assert (result.exit_code, result.stderr) == (2, f"error: invalid value for {said_as} (see qrr rank -h)\n")
    result = cli("serve", "--port", "70000", model=False)
    assert result.stderr == "error: invalid value for '--port': must be at most 65535 (see qrr serve -h)\n"
    result = CliRunner().invoke(app, ["rank", "-h"], env={"COLUMNS": "200"})
    for choices in ("<table|jsonl|json|tsv>", "<auto|bf16|fp16|fp32>", "<auto|jsonl|json|text|tsv>", "<fail|skip>",
                    "auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N."):  # fmt: skip
        assert choices in result.stdout
    assert "<bool>" not in result.stdout and "--with-text " in result.stdout


def test_a_second_query_is_refused_not_dropped(cli):
    """`qrr rank -q a -q b` ranked for b alone, unsaid (click keeps an option's last value)."""
    said = ("-q/--query given 2 times: only the last would count: one query a run (pairs carry their own: qrr score; a "
            "first-stage run of many queries: qrr rerank)")  # fmt: skip
    for command, args in (("rank", ("-q", "a", "-q", "b")), ("score", ("-q", "a", "--query=b"))):
        result = cli(command, *args, "-d", "x")
        assert (result.exit_code, result.stderr) == (2, f"error: {said} (see qrr {command} -h)\n")
    # a document "-q" is no second query
    assert cli("score", "-d", "-q", "-q", "a", "-f", "jsonl").stdout.count('"score"') == 1
    # other options keep the last value, as a shell alias that sets one and a command that overrides it rely on
    result = cli("rank", "-q", "a", "-d", "x", "-d", "y", "-k", "5", "-k", "1", "-f", "jsonl")
    assert result.exit_code == 0 and result.stdout.count('"rank"') == 1


def test_dtype_words_rename_nothing_else():
    """Click normalizes every choice value and option name by ``_dtype_words`` (so that --dtype takes torch's
    names): a choice or option of another name that is one of them would be renamed unseen."""
    import typer

    from qrr.cli.base import DTYPE_WORDS

    assert set(DTYPE_WORDS) == {"bfloat16", "float16", "half", "float32", "float"}
    seen = set()
    for name, command in typer.main.get_command(app).commands.items():
        for param in command.params:
            names = [opt.lstrip("-").casefold() for opt in param.opts]
            choices = getattr(getattr(param, "type_descriptor", None), "choices", None) or []
            values = [str(getattr(choice, "value", choice)).casefold() for choice in choices]
            assert not set(names + values) & set(DTYPE_WORDS), (name, param.opts)
            seen |= set(values)
    assert {"bf16", "tsv", "vllm"} <= seen  # the walk found the choices
    assert not set(typer.main.get_command(app).commands) & set(DTYPE_WORDS)


def test_another_rerankers_options_are_answered_with_qrrs(cli):
    for args, message in (
        (("rank", "-q", "q", "-d", "x", "--return-documents"),
         "no such option: --return-documents; qrr's is --with-text (see qrr rank -h)"),  # click offered --document
        (("score", "-q", "q", "-d", "x", "--use-fp16"), "no such option: --use-fp16; qrr's is --dtype fp16 (see qrr "
                                                        "score -h)"),
        # said as typed, though click has it as normalized (--half is --fp16 there: --dtype takes torch's names)
        (("score", "-q", "q", "-d", "x", "--half"), "no such option: --half; qrr's is --dtype fp16 (see qrr score -h)"),
        (("rank", "-q", "q", "-d", "x", "--BFloat16=1"), "no such option: --BFloat16; qrr's is --dtype bf16 (see qrr "
                                                         "rank -h)"),
        (("score", "-q", "q", "-d", "x", "--normalize"), "no such option: --normalize; scores are p(yes), from 0 to 1 "
                                                         "(their log-odds, the raw scores, are log(p / (1 - p))) (see "
                                                         "qrr score -h)"),
        # qrr's option lacking from the command: no guess (click's was --document), nor a word on scores where none
        (("score", "-q", "q", "-d", "x", "--return-documents"), "no such option: --return-documents (see qrr score "
                                                                "-h)"),
        (("download", "--normalize"), "no such option: --normalize (see qrr download -h)"),
        (("rank", "-q", "q", "-d", "x", "--json"), "no such option: --json; qrr's is -f json (see qrr rank -h)"),
        (("serve", "--json"), "no such option: --json (see qrr serve -h)"),  # it writes no results
        # the shell's way, where click guessed by spelling (--quiet: "Possible options: --query")
        (("rank", "-q", "q", "-d", "x", "--quiet"), "no such option: --quiet; stdout carries the results only; "
                                                    "2>/dev/null silences the progress and notes on stderr (see qrr "
                                                    "rank -h)"),
        (("rank", "-q", "q", "-d", "x", "-o", "out.jsonl"), "no such option: -o; results go to stdout: > FILE writes "
                                                            "them (see qrr rank -h)"),
        # a user whose scores differ from another implementation's (click guessed --input-format and --format)
        (("score", "-q", "q", "-d", "x", "--print-prompt"), "no such option: --print-prompt; Python shows the prompt "
                                                            "a pair becomes: Reranker(MODEL).prompt(query, "
                                                            "document).text (see qrr score -h)"),
        (("rank", "-q", "q", "-d", "x", "--show-prompt"), "no such option: --show-prompt; Python shows the prompt a "
                                                          "pair becomes: Reranker(MODEL).prompt(query, document).text "
                                                          "(see qrr rank -h)"),
        (("rank", "-q", "q", "-d", "x", "--prompt", "Judge"), "no such option: --prompt; qrr's is --instruction (see "
                                                              "qrr rank -h)"),
        # vLLM's and the hub's --revision, where click guessed --instruction
        (("rank", "-q", "q", "-d", "x", "--revision", "v1"), "no such option: --revision; a hub model's revision goes "
                                                             "with its name: -m 0.6b@REVISION (a commit, branch or "
                                                             "tag) (see qrr rank -h)"),
        (("rank", "-q", "q", "-d", "x", "--install-completion"), "no such option: --install-completion; it is qrr's "
                                                                 "own option, before any command: qrr "
                                                                 "--install-completion (see qrr rank -h)"),
    ):  # fmt: skip
        result = cli(*args, model=args[0] != "download")
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")


def test_help_says_values_not_python_types():
    # it said FILE <list[str]>, -d <list[str]>, -q <str>, --max-length <int range>, and qrr rerank [OPTIONS] {RUN}
    for command in ("rank", "score", "rerank", "eval", "serve", "download", "bench"):
        result = CliRunner().invoke(app, [command, "-h"], env={"COLUMNS": "200"})
        assert not re.search(r"<(str|int|float|list\[str\]|bool)\b", result.stdout), command
    rank = CliRunner().invoke(app, ["rank", "-h"], env={"COLUMNS": "200"}).stdout
    for shown in ("FILE   ", "--document  -d  TEXT", "--top-k  -k  K [x>=1]", "--max-length  N [x>=1]",
                 "--model  -m  NAME", "--server  URL", "--recipe  NAME", "--device  DEVICE"):  # fmt: skip
        assert re.search(shown.replace("  ", r"\s+").replace("[", r"\[").replace("]", r"\]"), rank), shown
    usage = CliRunner().invoke(app, ["rerank", "-h"], env={"COLUMNS": "200"}).stdout
    assert re.search(r"Usage: qrr rerank \[OPTIONS\] RUN +\n", usage)


def test_help_for_nothing_given_goes_to_stderr():
    # `qrr` alone (and `qrr rerank`) exit 2, a usage error's code: their help went to stdout, the data's stream
    for args in ([], ["rerank"]):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        assert (result.exit_code, result.stdout) == (2, ""), args
        assert re.search(rf"Usage: qrr {args[0] if args else ''} ?\[OPTIONS\]", result.stderr), args
    assert CliRunner().invoke(app, ["--help"]).stdout.lstrip().startswith("Usage: qrr [OPTIONS]")  # asked: stdout


def test_shells_complete_choices():
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_QRR_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}  # fmt: skip
        out = subprocess.run([sys.executable, "-c", "from qrr.cli import main; main()"], env=env, capture_output=True,
                             text=True)  # fmt: skip
        return out.stdout.split()

    assert complete("qrr rank --format j") == ["jsonl", "json"]
    assert complete("qrr score --device cu") == ["cuda", "cuda:0", "cuda:1"]
    assert complete("qrr rerank --on-error ") == ["fail", "skip"]


def test_no_input_on_a_terminal_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setattr(qrr.cli.base, "stdin_is_terminal", lambda: True)
    error(cli("rank", "-q", "q"), 2, "no documents: give a FILE, pipe them on stdin, or pass them with -d")
    error(cli("score", "-q", "q"), 2, "no documents: give a FILE, pipe them on stdin, or pass them with -d")
    error(cli("score"), 2, "no pairs: give a FILE, pipe them on stdin, or pass them with -q/-d")


def test_missing_model_is_a_runtime_error_and_a_wrong_name_bad_input(cli, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    error(
        cli("rank", "-q", "q", "-d", "x", "--model", "8b", model=False),
        1,
        "qrr download 8b",
        "or give --model a local copy's folder",
    )
    monkeypatch.setenv("QRR_MODEL", "4b")
    error(cli("rank", "-q", "q", "-d", "x", model=False), 1, "Qwen/Qwen3-Reranker-4B")
    # a name that is no folder, alias or repo id is bad input
    error(cli("rank", "-q", "q", "-d", "x", "-m", "./models/model", model=False), 2,
          "error: --model ./models/model: no such folder")  # fmt: skip
    # set in the environment, the name is said as the variable: the user gave no --model
    monkeypatch.setenv("QRR_MODEL", "./models/model")
    error(cli("rank", "-q", "q", "-d", "x", model=False), 2, "error: $QRR_MODEL ./models/model: no such folder")


def test_a_cpu_budget_that_cannot_fit_names_the_flag(cli, tiny_model, monkeypatch):
    import qrr.engine

    monkeypatch.setattr(qrr.engine, "available_memory", lambda device: 2**30)
    error(cli("rank", "-q", "q", "-d", "x", "--batch-tokens", "100000000", model=tiny_model), 2,
          "error: --batch-tokens 100000000 needs about", "lower --batch-tokens (default 1024 on cpu)")  # fmt: skip


def test_out_of_memory_is_a_runtime_error_naming_the_flag(cli, fake):
    name, _ = fake(fits_rows=1)
    error(cli("rank", "-q", "q", "-d", "x", "-d", "y", "--batch-tokens", "999", model=name), 1,
          "out of memory in a batch of 2 rows: lower --batch-tokens (now 999)")  # fmt: skip
    name, _ = fake(fits_rows=0)  # one prompt that runs alone past the budget: only a shorter one fits
    error(
        cli("rank", "-q", "q", "-d", "x", "--batch-tokens", "9", model=name),
        1,
        "out of memory in one prompt of ",
        " tokens, which runs alone past --batch-tokens 9: lower --max-length",
    )


def test_a_cuda_retry_warns_in_the_flags_words(cli, fake):
    name, _ = fake(device="cuda", fits_rows=2)  # a pretend GPU
    result = cli("score", input="".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(5)),
                 model=name)  # fmt: skip
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 5
    assert result.stderr.startswith("warning: out of memory in a batch of 5 rows; retrying with --batch-tokens ")


@pytest.mark.parametrize("value", ["1", "true", "YES", " on"])
def test_debug_shows_the_traceback_then_the_line_and_its_exit_code(cli, monkeypatch, value):
    monkeypatch.setenv("QRR_DEBUG", value)
    result = cli("score", input="no tab here\n")
    lines = result.stderr.splitlines()
    # the traceback replaced the line, and exit 2 became Python's 1: a script's check of the code changed with it
    assert result.exit_code == 2 and lines[0] == "Traceback (most recent call last):", result.stderr
    message = lines[-2].removeprefix("qrr.errors.InputError: ")
    assert message.startswith("<stdin>:1: ") and lines[-1] == f"error: {message}"
    # an error qrr did not plan for no longer says to set what is set
    from qrr.cli.base import describe

    assert describe(RuntimeError("boom")) == ("RuntimeError: boom", 1)


@pytest.mark.parametrize("value", ["", "0", "false", "Off", "no"])
def test_debug_set_off_is_one_line(cli, monkeypatch, value):
    monkeypatch.setenv("QRR_DEBUG", value)
    result = cli("score", input="no tab here\n")
    assert result.exit_code == 2 and result.exception.__class__ is SystemExit
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_version_and_module_entry_point():
    result = CliRunner().invoke(app, ["--version"])
    # a bug report's versions, without importing torch (seconds)
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}"
    assert (result.exit_code, result.stdout) == (0, f"qrr {qrr.__version__} ({versions})\n")
    out = subprocess.run([sys.executable, "-m", "qrr", "--help"], capture_output=True, text=True, check=True)
    for name in ("rank", "score", "rerank", "eval", "serve", "download", "bench"):
        assert name in out.stdout


def test_help_does_not_import_torch():
    heavy = "{'torch', 'transformers', 'starlette', 'uvicorn', 'ray'} & set(sys.modules)"
    code = f"import sys; from qrr.cli import app; assert not {heavy}, sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    # --version reads torch's and transformers' versions from their metadata, not by importing them (seconds)
    code = f"import sys; from qrr.cli import app\ntry: app(['--version'])\nexcept SystemExit: pass\nassert not {heavy}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("qrr "), done.stderr


def test_head_closing_the_pipe_exits_quietly(tiny_model, tmp_path):
    # more than a pipe buffer of results, so the writes outlast the reader
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"document {i} about something {'long ' * 60}\n" for i in range(300)))
    args = [sys.executable, "-m", "qrr", "rank", "-q", "q", str(docs), "--with-text", "--model", str(tiny_model),
            "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(timeout=120) == 0
    assert json.loads(first)["rank"] == 1
    assert proc.stderr.read() == b""
    # the help and the version too (rich's help exited 1): a reader gone before they are written
    for args in (["rank", "--help"], ["--help"], ["--version"]):
        proc = subprocess.Popen([sys.executable, "-m", "qrr", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()
        assert (proc.wait(timeout=60), proc.stderr.read()) == (0, b""), args


def test_a_reader_of_stderr_that_goes_away_loses_the_messages_not_the_results(tiny_model, tmp_path):
    """`qrr score -v pairs > out 2>&1 | head -1`-like: rich pointed stdout at the null device once a message failed to
    reach stderr and exited 1, which was taken for a closed stdout's quiet exit 0: results cut short, errors 0."""
    pairs = tmp_path / "pairs.jsonl"
    # a field that comes late is warned of as the second call's results are written: a message in mid-run
    records = [{"query": "q", "document": f"document {i}", **({"url": "u"} if i >= 1050 else {})} for i in range(1100)]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in records))
    base = [sys.executable, "-m", "qrr", "--model", str(tiny_model), "--device", "cpu"]
    out = tmp_path / "out.tsv"
    with open(out, "wb") as stdout:
        proc = subprocess.Popen([*base[:3], "score", "-v", "--with-fields", "-f", "tsv", *base[3:], str(pairs)],
                                stdout=stdout, stderr=subprocess.PIPE)  # fmt: skip
        assert proc.stderr.readline().startswith(b"model ")  # -v's first line: it has begun saying things
        proc.stderr.close()
        assert proc.wait(timeout=120) == 0
    assert [line.split("\t")[0] for line in out.read_text().splitlines()[1:]] == [str(i) for i in range(1100)]
    # a failure keeps its exit code, said or not
    proc = subprocess.Popen([*base[:3], "rank", "-q", "q", "-d", "d", "--model", str(tmp_path / "none")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stderr.close()
    assert (proc.wait(timeout=120), proc.stdout.read()) == (2, b"")


def test_help_into_a_full_disk_is_one_line():
    for args in (["--version"], ["score", "--help"]):  # written before any command's own handling of errors
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "qrr", *args], stdout=full, stderr=subprocess.PIPE, text=True)
        assert (proc.returncode, proc.stderr) == (1, "error: cannot write the output: No space left on device\n")


def test_completion_for_a_shell_named(tmp_path):
    # typer took no shell's name where it detects the shell: bash's script was printed, or installed, for zsh
    shown = CliRunner().invoke(app, ["--show-completion", "zsh"])
    assert shown.exit_code == 0 and shown.stdout.startswith("#compdef qrr\n")
    assert "complete --command qrr" in CliRunner().invoke(app, ["--show-completion", "fish"]).stdout
    assert CliRunner().invoke(app, ["--show-completion=ZSH"]).stdout.startswith("#compdef qrr\n")  # any case, =
    refused = CliRunner().invoke(app, ["--show-completion", "tcsh"])
    assert (refused.exit_code, refused.stderr) == (2, "error: --show-completion takes one of bash, zsh, fish, "
                                                      "powershell, pwsh, not 'tcsh'\n")  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    proc = subprocess.run([sys.executable, "-m", "qrr", "--install-completion", "fish"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    written = tmp_path / ".config" / "fish" / "completions" / "qrr.fish"
    assert (proc.returncode, proc.stdout.splitlines()[0]) == (0, f"fish completion installed in {written}")
    assert "complete --command qrr" in written.read_text() and not (tmp_path / ".bashrc").exists()


def test_completion_installed_under_a_home_it_cannot_write_is_one_line():
    env = {**os.environ, "HOME": "/proc/no/home", "SHELL": "/bin/bash"}  # a container's HOME: a 50-line traceback
    proc = subprocess.run([sys.executable, "-m", "qrr", "--install-completion", "bash"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (1, "error: /proc/no: No such file or directory\n")  # its first folder


def test_stdin_closed_or_the_output_as_input(tiny_model, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("q\td\nq\te\n")
    base = [sys.executable, "-m", "qrr", "--model", str(tiny_model), "--device", "cpu"]
    for args in (["score", "-"], ["rank", "-q", "q", "-"]):  # `-` with stdin closed (<&-): was a TypeError, exit 1
        proc = subprocess.run([*base[:3], args[0], *base[3:], *args[1:]], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0))  # fmt: skip
        assert (proc.returncode, proc.stderr) == (2, "error: -: stdin is closed; give a FILE, or pipe the input on "
                                                     "stdin\n"), args  # fmt: skip
    # results appended to the very file read (>>), or written over it (>, which the shell emptied first): refused
    for mode in ("ab", "wb"):
        pairs.write_text("q\td\nq\te\n")
        with open(pairs, mode) as out:
            proc = subprocess.run([*base[:3], "score", *base[3:], str(pairs)], stdout=out, stderr=subprocess.PIPE,
                                  text=True)  # fmt: skip
        assert (proc.returncode, proc.stderr) == (2, f"error: {pairs}: the output (stdout) is this input file; write "
                                                     "the results to another file\n"), mode  # fmt: skip
    assert pairs.read_text() == ""  # the shell's doing, before qrr ran
    pairs.write_text("q\td\n")
    for args in (["-"], []):  # stdin read from the file stdout appends to: qrr score - < f >> f
        with open(pairs, "rb") as source, open(pairs, "ab") as out:
            proc = subprocess.run([*base[:3], "score", *base[3:], *args], stdin=source, stdout=out,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert (proc.returncode, proc.stderr) == (2, "error: -: the output (stdout) is the file stdin reads; write "
                                                     "the results to another file\n"), args  # fmt: skip
    pairs.write_text("q\td\n")
    with open(tmp_path / "other.jsonl", "wb") as out:  # another file is written as ever
        proc = subprocess.run([*base[:3], "score", *base[3:], str(pairs)], stdout=out, stderr=subprocess.PIPE)
    assert proc.returncode == 0 and json.loads((tmp_path / "other.jsonl").read_text())["index"] == 0


def test_a_ctrl_c_while_a_slow_reader_holds_the_writing_leaves_whole_rows(tiny_model, tmp_path):
    """The results outgrow the pipe, which nobody reads while the Ctrl-C comes: the write it blocked goes on to its
    end, so the JSON array is whole (a row was cut in two, and "]" written after it) and the count said is right."""
    import select
    import signal

    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"document {i} {'lorem ipsum dolor sit amet ' * 150}\n" for i in range(60)))
    args = [sys.executable, "-m", "qrr", "rank", "-q", "q", str(docs), "--with-text", "-f", "json", "--model",
            str(tiny_model), "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # the first rows are out: the pipe is full
        assert ready, proc.stderr.read() if proc.poll() is not None else "no output"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    rows = json.loads(stdout)  # one whole JSON document
    assert stderr == f"error: interrupted after writing the best {len(rows)} of 60 results\n"
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


def test_results_go_to_stdout_while_a_progress_bar_is_drawn(cli, monkeypatch):
    import io as stdio

    from rich.console import Console

    import qrr.cli.render

    drawn = stdio.StringIO()
    console = Console(file=drawn, force_terminal=True, width=100)
    monkeypatch.setattr(qrr.cli.render, "stderr", console)
    pairs = "".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(1500))
    # a run quicker than SHOW_AFTER draws no bar: its output, printed on the same terminal by `| jq`, stays clean
    monkeypatch.setattr(qrr.cli.render, "SHOW_AFTER", 60.0)
    result = cli("score", input=pairs)
    assert len(result.stdout.splitlines()) == 1500 and drawn.getvalue() == ""
    monkeypatch.setattr(qrr.cli.render, "SHOW_AFTER", 0.0)
    result = cli("score", input=pairs)
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == list(range(1500))
    assert "scoring" in drawn.getvalue() and '"score"' not in drawn.getvalue()  # the bar was drawn, not the data
    drawn.truncate(0)
    result = cli("rank", "-q", "q", input="\n".join(f"d{n}" for n in range(1500)))
    assert len(result.stdout.splitlines()) == 1500
    assert "ranking" in drawn.getvalue() and '"rank"' not in drawn.getvalue()


def test_data_for_the_terminal_a_bar_is_on_prints_above_the_bar(monkeypatch):
    import io as stdio
    import sys

    from rich.console import Console

    from qrr.cli import render

    class Terminal(stdio.StringIO):
        def isatty(self):
            return True

    screen, stdout = stdio.StringIO(), Terminal()
    monkeypatch.setattr(render, "stderr", Console(file=screen, force_terminal=True, width=100))
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(render, "_same_terminal", lambda: True)  # stdout and stderr: one terminal
    with render.progress(None, "scoring", after=0.3) as advance:
        assert isinstance(sys.stdout, render.AboveBar)
        print('[\n  {"text": "[bold]x[/]"}', end="")  # before the bar: whole lines pass; an element waits for its end
        assert stdout.getvalue() == "[\n"
        time.sleep(0.6)  # the bar shows: lines written past it mixed with it, and its redraws erased an unfinished one
        print(',\n  {"a": 2}', end="")
        advance(1)
    # the bar gone, the unfinished end goes where it was going
    assert sys.stdout is stdout and stdout.getvalue() == '[\n  {"a": 2}'
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert '  {"text": "[bold]x[/]"},' in re.split(r"[\r\n]+", shown) and "scoring" in shown  # never markup
    monkeypatch.setattr(render, "_same_terminal", lambda: False)  # stdout a pipe, a file or another terminal
    with render.progress(None, "scoring", after=0):
        assert sys.stdout is stdout


def test_stdout_and_stderr_are_one_terminal_only_where_they_are(monkeypatch):
    import os
    import sys

    from qrr.cli import render

    assert render._same_terminal() is False  # pytest's captures are no terminal, without a file
    ptys = [os.openpty() for _ in range(2)]
    one, other = (open(follower, "w") for _, follower in ptys)  # noqa: SIM115 (closed below)
    try:
        monkeypatch.setattr(sys, "stdout", one)
        monkeypatch.setattr(sys, "stderr", one)
        assert render._same_terminal() is True
        monkeypatch.setattr(sys, "stderr", other)  # a bar on another terminal: the data is not its business
        assert render._same_terminal() is False
    finally:
        monkeypatch.undo()
        one.close()
        other.close()
        for leader, _ in ptys:
            os.close(leader)


def test_bars_show_once_the_work_has_run_a_while_or_at_once_where_asked(monkeypatch):
    import io as stdio

    from rich.console import Console

    from qrr.cli import render

    def drawn(show_after, use):
        out = stdio.StringIO()
        monkeypatch.setattr(render, "stderr", Console(file=out, force_terminal=True, width=100))
        monkeypatch.setattr(render, "SHOW_AFTER", show_after)
        use()
        return out.getvalue()

    def rerank():
        with render.query_progress(2, 10) as tracker:
            tracker.pairs(5)
            tracker.query("q1")

    assert drawn(60.0, rerank) == "" and "reranking" in drawn(0.0, rerank)

    def one_long_batch():  # no progress reported until it ends: the bar shows on a timer meanwhile
        with render.progress(None, "ranking") as advance:
            time.sleep(0.5)
            advance(10)

    assert "ranking" in drawn(0.05, one_long_batch)

    def streamed():  # no total: the count, the mean rate and the time so far
        with render.progress(None, "scoring", after=0) as advance:
            time.sleep(0.2)
            advance(10)
            time.sleep(0.2)

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn(60.0, streamed))  # colours and cursor moves out
    assert re.search(r"scoring ━+ 10 pairs [0-9.]+ pairs/s 0:00:00", shown), shown

    def counted():  # a total (qrr bench): how many of how many pairs
        with render.progress(4, "benchmarking", after=0) as advance:
            advance(1)

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn(60.0, counted))
    assert re.search(r"benchmarking [━╺]+ 1/4 pairs", shown), shown

    def bench_starting():
        with render.progress(3, "benchmarking", after=0):
            pass  # nothing done yet

    assert "benchmarking" in drawn(60.0, bench_starting)  # qrr bench's steps are long: shown from the start


def test_loading_shows_a_spinner_on_a_terminal_and_nothing_in_a_log(cli, monkeypatch):
    import io as stdio

    from rich.console import Console

    drawn = stdio.StringIO()
    monkeypatch.setattr(qrr.cli.base, "stderr", Console(file=drawn, force_terminal=True, width=100))
    assert cli("rank", "-q", "q", "-d", "a").exit_code == 0
    assert "loading fake" in drawn.getvalue()
    result = cli("rank", "-q", "q", "-d", "a")  # CliRunner's stderr is no terminal
    assert result.exit_code == 0 and result.stderr == ""


def test_a_qrr_process_loads_with_collections_off_then_freezes_what_it_loaded(cli, fake, monkeypatch):
    import gc

    from qrr import models

    name, loader = fake()
    during = []

    def load(device, dtype):
        during.append(gc.isenabled())
        return loader(device, dtype)

    models.register(name, load)
    assert cli("rank", "-q", "q", "-d", "a", model=name).exit_code == 0
    assert during == [True] and gc.get_freeze_count() == 0  # in-process (tests), collections stay as they were
    monkeypatch.setattr(qrr.cli.base, "FREEZE_AFTER_LOAD", True)  # what `qrr` (the console script) sets
    try:
        assert cli("rank", "-q", "q", "-d", "a", model=name).exit_code == 0
        assert during == [True, False] and gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_the_console_script_freezes_after_loading(monkeypatch):
    import qrr.cli

    monkeypatch.setattr(qrr.cli, "app", lambda prog_name: None)
    monkeypatch.setattr(qrr.cli.base, "FREEZE_AFTER_LOAD", False)
    qrr.cli.main()
    assert qrr.cli.base.FREEZE_AFTER_LOAD is True


@pytest.mark.parametrize("command", ["rank", "score", "rerank", "eval", "serve", "download", "bench"])
def test_every_command_has_help_with_examples(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0 and "Examples:" in result.stdout and "<bool>" not in result.stdout
    # on an 80-column terminal every example stays one line, to paste as it is, and no help text is cut off
    narrow = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"}).stdout
    examples = result.stdout.split("Examples:")[1].split("╭")[0].strip().splitlines()
    assert all(line.strip() in narrow for line in examples), examples
    assert "…" not in narrow


def test_serve_refuses_a_model_folder_that_is_not_there_before_it_listens(cli, tmp_path):
    result = cli("serve", "-m", str(tmp_path / "nope"), "--port", "0", model=False)
    assert result.exit_code == 2 and "listening" not in result.stderr
    assert result.stderr.startswith(f"error: --model {tmp_path / 'nope'}: no such folder, and not an alias")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "myhost.example", "127.0.0.1", "::1", "localhost"])
def test_serve_warns_when_open_to_the_network_without_an_api_key(cli, tmp_path, host):
    # the missing model stops it before it listens: no test opens a port beyond loopback
    result = cli("serve", "-m", str(tmp_path / "nope"), "--host", host, model=False)
    warned = (f"warning: --host {host} opens the server to the network, and without --api-key anyone who reaches it "
              "may use it\n")  # fmt: skip
    assert result.exit_code == 2 and result.stderr.startswith(warned) == (host in ("0.0.0.0", "::", "myhost.example"))
    keyed = cli("serve", "-m", str(tmp_path / "nope"), "--host", host, "--api-key", "k", model=False)
    assert keyed.exit_code == 2 and "warning" not in keyed.stderr


def test_blank_options_and_urls_for_hosts_are_refused(cli, tmp_path):
    """An unset shell variable: ``--resume ''`` wrote to stdout and kept nothing to go on with (rerank) or failed
    with a FileNotFoundError (score), ``--host ''`` listened on every interface."""
    pairs = tmp_path / "p.jsonl"
    pairs.write_text('{"query": "q", "document": "d"}\n')
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 1.0 x\n")
    for args in (("score", str(pairs), "--resume", ""), ("rerank", str(run), "--beir", str(tmp_path), "--resume", " "),
                 ("serve", "--host", ""), ("eval", "--beir", str(tmp_path), "--split", ""),
                 ("download", "0.6b", "--local-dir", "")):  # fmt: skip
        result = cli(*args, model=False)
        flag, value = args[-2], args[-1]
        assert (result.exit_code, result.stdout, result.stderr) == (
            2, "", f"error: {flag} is blank ({value!r}; an unset shell variable?): give it a value, or leave it "
            "out\n")  # fmt: skip
    for host in ("http://127.0.0.1", "localhost:8000"):  # each failed as a name not found
        result = cli("serve", "--host", host, model=False)
        assert (result.exit_code, result.stderr) == (2, f"error: --host {host!r}: give an address or a host name "
                                                        "(127.0.0.1, 0.0.0.0), without a scheme, path or port (the "
                                                        "port is --port)\n")  # fmt: skip


def test_a_width_of_zero_columns_still_shows_errors_and_help(tmp_path):
    """COLUMNS=0 (a CI runner's) made rich draw nothing: every error, table and --help blank, exit 2 unsaid."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{bad\n")
    env = {**os.environ, "COLUMNS": "0"}
    said = (f"error: {bad}:1: malformed JSON (unexpected character, expected a string key) (if the input is "
            "query<TAB>document lines, use --input-format tsv)\n")  # fmt: skip
    for columns in ("0", "5"):  # 5: the table's blocks split "rank" and scores over lines
        env = {**os.environ, "COLUMNS": columns}
        out = subprocess.run([sys.executable, "-m", "qrr", "score", str(bad)], env=env, capture_output=True, text=True)
        assert (out.returncode, out.stderr) == (2, said)
    out = subprocess.run([sys.executable, "-m", "qrr", "--help"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "Usage:" in out.stdout and "rank" in out.stdout


def test_closed_stdin_with_stdout_to_a_file_is_said(tmp_path):
    """``qrr rank -q x - <&- > out`` failed with an AttributeError: the check of stdout against stdin met None."""
    with open(tmp_path / "out.jsonl", "w") as out:
        proc = subprocess.run([sys.executable, "-m", "qrr", "rank", "-q", "x", "-", "--model", "nope"], stdout=out,
                              stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(0))  # fmt: skip
    assert (proc.returncode, proc.stderr) == (2, "error: -: stdin is closed; give a FILE, or pipe the input on stdin\n")


def test_a_model_that_is_no_model_folder_is_bad_input(cli, tiny_model, tmp_path):
    result = cli("rank", "-q", "q", "-d", "x", "-m", str(tmp_path), model=False)
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path}: no config.json, so it is not a model folder\n")
    result = cli("rank", "-q", "q", "-d", "x", "-m", str(tiny_model / "config.json"), model=False)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: --model {tiny_model / 'config.json'}: a file, not a model folder; give the folder that holds it\n",
    )


@pytest.mark.parametrize("command", ["rank", "serve"])
def test_an_empty_model_name_is_an_error_not_the_default(cli, command):
    args = ["-q", "q"] if command == "rank" else ["--port", "0"]
    result = cli(command, "-m", "", *args, input="a document\n", model=False)
    assert result.exit_code == 2 and "listening" not in result.stderr
    assert result.stderr == ("error: --model is empty (''): give 0.6b, 4b, 8b, a hub repo id or a folder, or leave it "
                             "out for the default ($QRR_MODEL, else 0.6b)\n")  # fmt: skip


def test_empty_and_blank_variables(cli, monkeypatch, fake):
    name, _ = fake()
    # a blank $QRR_MODEL is no model, as an empty one is (and as the library reads it): it was refused, unlike ""
    # said, as a deployment's variable that resolved to nothing may be a slip; a message then names --model, not it
    monkeypatch.setattr("qrr.models.default_model", lambda: name)
    note = "note: QRR_MODEL is set but empty, so it is taken as unset\n"
    for blank in ("   ", ""):
        monkeypatch.setenv("QRR_MODEL", blank)
        result = cli("rank", "-q", "q", "-d", "a", "-f", "jsonl", model=False)
        assert (result.exit_code, result.stderr) == (0, note)
        monkeypatch.setattr("qrr.models.default_model", lambda: "./nowhere")
        result = cli("rank", "-q", "q", "-d", "a", model=False)
        # not $QRR_MODEL, whose blank was no model
        assert result.stderr == note + ("error: --model ./nowhere: no such folder, and not an alias (0.6b, 4b, 8b) "
                                        "or a hub repo id (owner/name)\n")  # fmt: skip
        monkeypatch.setattr("qrr.models.default_model", lambda: name)
    monkeypatch.delenv("QRR_MODEL")
    assert cli("rank", "-q", "q", "-d", "a", "-f", "jsonl", model=name).stderr == ""
    # an empty $QRR_SERVER (a CI secret that resolved to nothing) loaded the model here, unsaid
    monkeypatch.setenv("QRR_SERVER", "")
    result = cli("rank", "-q", "q", "-d", "a", model=False)
    assert (result.exit_code, result.stderr) == (2, "error: QRR_SERVER is set but empty: give the server's URL, or "
                                                    "unset it to load the model here\n")  # fmt: skip
    assert cli("rank", "-q", "q", "-d", "a", "-f", "jsonl", model=name).exit_code == 0  # a model named here: its
    monkeypatch.setenv("QRR_SERVER", " ")
    result = cli("rank", "-q", "q", "-d", "a", model=False)  # said as it was set (it said '')
    assert result.stderr == "error: $QRR_SERVER ' ': give the server's URL, such as http://localhost:8000\n"


def test_help_shows_the_extras_in_brackets():
    result = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    assert "Score on Ray Data actors (pip install 'qrr[ray]')." in result.stdout


def test_transformers_bars_only_on_a_terminal_even_with_v(monkeypatch):
    import io as stdio

    import transformers
    from rich.console import Console

    bars = transformers.utils.logging
    try:
        for terminal, verbose, shown in ((False, True, False), (True, True, True), (True, False, False)):
            bars.enable_progress_bar()
            console = Console(file=stdio.StringIO(), force_terminal=terminal)
            monkeypatch.setattr(qrr.cli.base, "stderr", console)
            qrr.cli.base.prepare_logging(verbose)
            assert bars.is_progress_bar_enabled() is shown, (terminal, verbose)
    finally:
        bars.enable_progress_bar()
        transformers.logging.set_verbosity_warning()


def test_serve_refuses_an_empty_api_key(cli, monkeypatch):
    result = cli("serve", "--api-key", " ", model=False)
    assert (result.exit_code, result.stderr) == (2, "error: --api-key: give a key that is not empty (or none, for a "
                                                    "server without one)\n")  # fmt: skip
    for empty in ("", "  "):  # an unresolved secret in a unit file or `docker -e QRR_API_KEY=`: auth was off
        monkeypatch.setenv("QRR_API_KEY", empty)
        result = cli("serve", model=False)
        assert (result.exit_code, result.stderr) == (2, "error: QRR_API_KEY is set but empty: give it a key, or unset "
                                                        "it for a server without one\n")  # fmt: skip


def test_the_cores_errors_are_said_as_errors(monkeypatch):
    import io as stdio
    import logging

    from rich.console import Console

    said = stdio.StringIO()
    monkeypatch.setattr(qrr.cli.base, "stderr", Console(file=said, width=200))
    handler = qrr.cli.base.WarningsToStderr()
    for level, text in ((logging.WARNING, "a batch retried"), (logging.ERROR, "/v1/rerank: RuntimeError: boom")):
        handler.emit(logging.LogRecord("qrr", level, __file__, 1, text, None, None))
    assert said.getvalue() == "warning: a batch retried\nerror: /v1/rerank: RuntimeError: boom\n"


def test_an_unplanned_error_is_one_line_the_workers_own_inside_ray():
    from qrr.cli.base import describe

    class TaskError(Exception):  # as Ray wraps a worker's error: its traceback in the message, the error as cause
        def __init__(self, cause):
            super().__init__("ray::ReadPairs()\n  File 'x.py', line 1\nFileNotFoundError: pairs.jsonl")
            self.cause = cause

    assert describe(TaskError(FileNotFoundError("pairs.jsonl"))) == (
        "FileNotFoundError: pairs.jsonl (set QRR_DEBUG=1 for a traceback)", 1)  # fmt: skip
    assert describe(TaskError(ValueError("bad value")))[0] == "ValueError: bad value (set QRR_DEBUG=1 for a traceback)"
    # an error of one's own keeps its whole message: its first line is what failed
    said = "We couldn't connect to the hub.\nCheck your internet connection."
    assert describe(OSError(said))[0] == f"OSError: {said} (set QRR_DEBUG=1 for a traceback)"
    # out of memory under ulimit -v: "MemoryError: " said nothing
    assert describe(MemoryError()) == ("out of memory (the machine's, or a limit such as ulimit -v): give a smaller "
                                       "model, a lower --batch-tokens, or more memory", 1)  # fmt: skip


def test_a_narrow_table_keeps_the_data_whole_and_leaves_out_the_previews(monkeypatch, capsys):
    from qrr.cli.render import write_table

    monkeypatch.setenv("COLUMNS", "80")
    rows = [{"index": 0, "qid": 1, "doc_id": 12345678901234567890, "pid": 9007199254740993, "score": 0.2518123456}]
    previews = [{"query": "capital of China?", "document": "Beijing is the capital."}]
    write_table(rows * 2, previews=previews * 2)
    drawn = capsys.readouterr().out
    # the previews took their width, and the score came out a digit a line
    assert "0.2518" in drawn and "12345678901234567890" in drawn and "capital" not in drawn
    write_table([{"index": 0, "score": 0.25}], previews=previews)  # room for both: both shown
    drawn = capsys.readouterr().out
    assert "capital of China?" in drawn and "0.2500" in drawn


def test_a_closed_stdout_is_said_before_any_work():
    """Under cron or a daemon, stdout may be closed: it was `AttributeError: 'NoneType' object has no attribute
    'isatty'`."""
    command = f"{sys.executable} -m qrr score -q q -d a >&-"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=root)
    assert (out.returncode, out.stderr) == (2, "error: stdout is closed: send it to a file (> FILE), or give --resume "
                                               "FILE where the command has it\n")  # fmt: skip


def test_a_full_output_is_said_as_such(tiny_model):
    """`> /dev/full` (a full disk) was `OSError: [Errno 28] No space left on device`."""
    command = f"{sys.executable} -m qrr score -q q -d a -m {tiny_model} > /dev/full"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=root)
    assert (out.returncode, out.stderr) == (1, "error: cannot write the output: No space left on device\n")


def test_a_slow_dtype_on_this_cpu_is_warned_of_in_flag_words(cli, tiny_model, monkeypatch):
    import torch

    for probe in ("_is_amx_fp16_supported", "_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    result = cli("rank", "-q", "q", "-d", "x", "--device", "cpu", "--dtype", "fp16", "-f", "jsonl", model=tiny_model)
    said = "warning: --dtype fp16: this CPU has no AMX-FP16 and computes fp16 many times slower than fp32; "
    assert (result.exit_code, result.stderr) == (0, said + "--dtype auto takes fp32 here\n")
    assert cli("rank", "-q", "q", "-d", "x", "--device", "cpu", "--dtype", "fp32", model=tiny_model).stderr == ""


def test_a_container_without_a_temporary_folder_or_a_home_is_told_what_to_set(tiny_model, tmp_path):
    """A read-only root: torch's import asks for a temporary folder; an arbitrary user id without $HOME has no home
    for the model cache. Each said as what to set, not as ``FileNotFoundError: [Errno 2] No usable temporary
    directory ...`` or ``RuntimeError: Could not determine home directory.``"""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "q", "document": "d"}\n')
    run = "import sys; sys.argv = ['qrr', *sys.argv[1:]]; from qrr.cli import main; main()"
    # as in such a container: tempfile finds no folder it can write, and the user id has no entry in /etc/passwd
    no_tmp = "import tempfile; tempfile._candidate_tempdir_list = lambda: ['/nonexistent'];"
    no_home = "import pwd; pwd.getpwuid = lambda uid: {}[uid];"
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "HF_HOME", "HF_HUB_CACHE", "QRR_DEBUG")}
    for patch, args, message in (
        (no_tmp, ["-m", str(tiny_model)], "error: no writable temporary folder (tried $TMPDIR, /tmp, /var/tmp, "
         "/usr/tmp and here), which torch needs: set TMPDIR to a writable folder, or make /tmp one (a container's "
         "emptyDir)\n"),
        (no_home, ["-m", "0.6b", "--offline"], "error: no home folder: $HOME is not set and this user has none; set "
         "HOME to a writable folder (or HF_HOME and XDG_CACHE_HOME, where models and --compile's code are cached)\n"),
    ):  # fmt: skip
        out = subprocess.run([sys.executable, "-c", patch + run, "score", *args, str(pairs)], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert (out.returncode, out.stdout, out.stderr) == (1, "", message)


def test_as_a_containers_first_process_a_sigterm_in_the_imports_ends_it():
    """PID 1 (a container's entry point): the kernel drops a signal that has no handler, so a SIGTERM before a
    command set its own was lost, and the supervisor waited out its grace period."""
    import shutil

    code = ("import os, signal, time; import qrr.cli; os.kill(os.getpid(), signal.SIGTERM); time.sleep(10); "
            "print('went on', os.getpid())")  # fmt: skip
    unshare = shutil.which("unshare")
    # as root, or as anyone where user namespaces are on
    ways = [[unshare, "--pid", "--fork"], [unshare, "--user", "--map-root-user", "--pid", "--fork"]] if unshare else []
    pid_1 = next((way for way in ways if subprocess.run([*way, "true"], capture_output=True).returncode == 0), None)
    if pid_1 is None:
        pytest.skip("no unshare --pid here (it needs root, or user namespaces)")
    out = subprocess.run([*pid_1, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (143, "")
    # elsewhere SIGTERM's default is left alone (it ends the process, as asked)
    left = "import signal, qrr.cli; print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)"
    out = subprocess.run([sys.executable, "-c", left], capture_output=True, text=True, timeout=60)
    assert out.stdout == "True\n"


def test_device_dtype_host_and_port_from_the_environment(cli, monkeypatch, tiny_model):
    """A container's settings as variables, as ``$QRR_MODEL``: the flag wins, and a bad value is said as the variable
    it came from (not a flag the user never gave)."""
    rank = ("rank", "-m", str(tiny_model), "-q", "q", "-d", "a", "-f", "jsonl", "-v")
    # one of them is not the machine's auto; torch's names as the library takes them (set for it, or for vLLM)
    for dtype, short in (("bf16", "bf16"), ("fp32", "fp32"), ("bfloat16", "bf16"), ("Float32", "fp32")):
        monkeypatch.setenv("QRR_DTYPE", dtype)
        result = cli(*rank, model=False)
        assert result.exit_code == 0 and f"on cpu ({short}, " in result.stderr, result.stderr
    assert "on cpu (fp32, " in cli(*rank, "--dtype", "fp32", model=False).stderr  # the flag wins
    assert "on cpu (fp32, " in cli(*rank, "--dtype=float32", model=False).stderr
    monkeypatch.setenv("QRR_DTYPE", "int8")
    result = cli(*rank, model=False)
    assert (result.exit_code, result.stderr) == (2, "error: invalid value for '--dtype' (env var: 'QRR_DTYPE'): "
                                                    "'int8' is not one of 'auto', 'bf16', 'fp16', 'fp32' (see qrr "
                                                    "rank -h)\n")  # fmt: skip
    monkeypatch.delenv("QRR_DTYPE")
    monkeypatch.setenv("QRR_DEVICE", "tpu")
    result = cli(*rank, model=False)
    assert (result.exit_code, result.stderr) == (2, "error: $QRR_DEVICE 'tpu' is unknown: use auto, cpu, mps, cuda or "
                                                    "cuda:N\n")  # fmt: skip
    assert cli(*rank, "--device", "cpu", model=False).exit_code == 0
    monkeypatch.setenv("QRR_DEVICE", "")  # unset, as click reads it
    assert cli(*rank, model=False).exit_code == 0
    monkeypatch.setenv("QRR_DEVICE", " ")  # it said "$QRR_DEVICE '' is unknown" after binding the port
    result = cli(*rank, model=False)
    assert (result.exit_code, result.stderr) == (2, "error: QRR_DEVICE is blank (' '): give it a value, or unset it\n")
    monkeypatch.delenv("QRR_DEVICE")

    from qrr.errors import QrrError
    from qrr.server import app as server

    bound = []

    def bind(host, port):
        bound.append((host, port))
        raise QrrError("bound")

    monkeypatch.setattr(server, "bind", bind)
    monkeypatch.setenv("QRR_HOST", "127.0.0.2")
    monkeypatch.setenv("QRR_PORT", "8123")
    serve = ("serve", "-m", str(tiny_model))
    result = cli(*serve, model=False)
    assert (result.exit_code, result.stderr, bound) == (1, "error: bound\n", [("127.0.0.2", 8123)])
    assert cli(*serve, "--host", "127.0.0.3", "--port", "9000", model=False).exit_code == 1
    assert bound[-1] == ("127.0.0.3", 9000)
    monkeypatch.setenv("QRR_HOST", "0.0.0.0")
    result = cli(*serve, model=False)
    assert result.stderr == ("warning: $QRR_HOST 0.0.0.0 opens the server to the network, and without --api-key anyone "
                             "who reaches it may use it\nerror: bound\n")  # fmt: skip
    monkeypatch.setenv("QRR_HOST", "http://127.0.0.1")
    result = cli(*serve, model=False)
    assert (result.exit_code, result.stderr) == (2, "error: $QRR_HOST 'http://127.0.0.1': give an address or a host "
                                                    "name (127.0.0.1, 0.0.0.0), without a scheme, path or port (the "
                                                    "port is $QRR_PORT)\n")  # fmt: skip
    monkeypatch.setenv("QRR_HOST", "\t")
    result = cli(*serve, model=False)
    assert (result.exit_code, result.stderr) == (2, "error: QRR_HOST is blank ('\\t'): give it a value, or unset it\n")
    monkeypatch.delenv("QRR_HOST")
    monkeypatch.setenv("QRR_PORT", "70000")
    result = cli(*serve, model=False)
    assert (result.exit_code, result.stderr) == (2, "error: invalid value for '--port' (env var: 'QRR_PORT'): must be "
                                                    "at most 65535 (see qrr serve -h)\n")  # fmt: skip
    assert len(bound) == 3
