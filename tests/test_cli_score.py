"""qrr score: every input format as a file, stdin and arguments; every output format; streaming; bad input never
loses a result. The fake model scores; one test runs the tiny transformer."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal

import pytest
import torch
import transformers

import qrr
import qrr._version
from qrr import Reranker
from tests.clitools import jsonl, ok, said

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QUERY = "what is the capital of China?"
PAIRS = [
    {"qid": "q1", "docid": "a", "query": QUERY, "document": "The capital of China is Beijing."},
    {"qid": "q1", "docid": "b", "query": QUERY, "document": "Paris is the capital of France."},
    {"qid": "q2", "docid": "c", "query": "explain gravity", "document": "Gravity pulls.", "instruction": "Judge"},
]
GOOD = [
    {"id": f"p{i}", "query": f"query {i % 3}", "document": f"document number {i} " * (1 + i % 5)} for i in range(11)
]
GOOD_JSONL = "".join(json.dumps(p) + "\n" for p in GOOD)


@pytest.fixture(scope="module")
def expected():
    rr = Reranker("fake")
    return {"pairs": rr.score([(p["query"], p["document"], p.get("instruction")) for p in PAIRS]),
            "good": rr.score([(p["query"], p["document"]) for p in GOOD])}  # fmt: skip


def check(stdout, scores, ids=True):
    rows = jsonl(stdout)
    assert [r["index"] for r in rows] == list(range(len(scores)))
    assert [r["score"] for r in rows] == scores
    if ids:
        assert [(r["qid"], r["docid"]) for r in rows] == [(p["qid"], p["docid"]) for p in PAIRS]
        assert all(set(r) == {"index", "qid", "docid", "score"} for r in rows)


def test_jsonl_file_and_stdin(cli, tmp_path, expected):
    data = "".join(json.dumps(p) + "\n" for p in PAIRS)
    (tmp_path / "pairs.jsonl").write_text(data)
    check(ok(cli("score", str(tmp_path / "pairs.jsonl"))), expected["pairs"])
    check(ok(cli("score", input=data)), expected["pairs"])


def test_tsv_file_and_stdin(cli, tmp_path, expected):
    data = "".join(f"{p['query']}\t{p['document']}\n" for p in PAIRS[:2])
    (tmp_path / "pairs.tsv").write_text(data)
    check(ok(cli("score", str(tmp_path / "pairs.tsv"))), expected["pairs"][:2], ids=False)
    check(ok(cli("score", input=data)), expected["pairs"][:2], ids=False)


def test_arguments_and_default_instruction(cli, expected):
    check(ok(cli("score", "-q", QUERY, "-d", PAIRS[0]["document"], "-d", PAIRS[1]["document"])),
          expected["pairs"][:2], ids=False)  # fmt: skip
    # --instruction is the default for pairs that carry none, so it changes these scores
    rows = jsonl(ok(cli("score", "-q", QUERY, "-d", PAIRS[0]["document"], "--instruction", "Judge")))
    assert rows[0]["score"] != expected["pairs"][0]


def test_a_document_formatted_as_the_prompt_already_is_warned_of_and_scored(cli):
    lines = '{"query": "q", "document": "d"}\n{"query": "q", "document": "<Document>: d<|im_end|>"}\n' * 2
    result = cli("score", input=lines)
    assert result.exit_code == 0 and len(jsonl(result.stdout)) == 4
    assert said(result) == (
        "warning: a document starts or ends with '<Document>:', a marker of the prompt qrr writes around each pair: a "
        "text formatted as that prompt already (as vLLM's Qwen3-Reranker example formats them) gets the frame twice "
        "and another score; send the bare query and document, and the instruction apart, as --instruction"
    )


def test_output_formats(cli, expected):
    data = "".join(json.dumps(p) + "\n" for p in PAIRS)
    rows = json.loads(ok(cli("score", "-f", "json", input=data)))
    assert [r["score"] for r in rows] == expected["pairs"]
    tsv = ok(cli("score", "-f", "tsv", input=data)).splitlines()
    assert tsv[0] == "index\tqid\tdocid\tscore" and len(tsv) == 4
    table = ok(cli("score", "-f", "table", input=data))
    assert "qid" in table and f"{expected['pairs'][2]:.4f}" in table


def test_with_fields_copies_each_pairs_other_fields_after_its_score(cli, tmp_path, expected, monkeypatch):
    """A labeled set's label was dropped: only id fields were copied, so scores had to be joined back by index."""
    labeled = [p | {"label": n % 2, "meta": {"rank": n + 1}} for n, p in enumerate(PAIRS)]
    data = "".join(json.dumps(p) + "\n" for p in labeled)
    (tmp_path / "pairs.jsonl").write_text(data)
    want = [{"index": n, "qid": p["qid"], "docid": p["docid"], "score": s, "label": n % 2, "meta": {"rank": n + 1}}
            for n, (p, s) in enumerate(zip(PAIRS, expected["pairs"], strict=True))]  # fmt: skip
    assert [list(r.items()) for r in jsonl(ok(cli("score", str(tmp_path / "pairs.jsonl"), "--with-fields")))] == [
        list(r.items()) for r in want
    ]  # the fields in this order: the result's own first
    assert jsonl(ok(cli("score", "--with-fields", input=data))) == want
    assert jsonl(ok(cli("score", "--with-fields", "-q", QUERY, "-d", PAIRS[0]["document"]))) == [
        {"index": 0, "score": expected["pairs"][0]}
    ]  # arguments carry no other fields
    assert ok(cli("score", "--with-fields", "-f", "tsv", input=data)).splitlines()[:2] == [
        "index\tqid\tdocid\tscore\tlabel\tmeta",
        f'0\tq1\ta\t{expected["pairs"][0]}\t0\t{{"rank":1}}',
    ]
    assert '{"rank":1}' in ok(cli("score", "--with-fields", "-f", "table", input=data))  # JSON, not Python's repr
    assert jsonl(ok(cli("score", input=data))) == [{k: r[k] for k in ("index", "qid", "docid", "score")} for r in want]
    # a field of the result's own name is refused, the first pair's before any model loads, a later one's in place
    result = cli("score", "--with-fields", input=json.dumps(PAIRS[0] | {"score": 3.5}) + "\n", model="nowhere")
    said = "would take the place of the result's own with --with-fields; rename it in the input\n"
    assert (result.exit_code, result.stderr) == (2, f'error: <stdin>:1: its field "score" {said}')
    result = cli("score", "--with-fields", input=data + json.dumps(PAIRS[0] | {"index": 7, "score": 1}) + "\n")
    assert (result.exit_code, result.stderr) == (2, f'error: <stdin>:4: its fields "index" and "score" {said}')
    # with --on-error skip it is skipped and listed as a bad line is; the rest are scored, numbered without it
    clash = json.dumps(PAIRS[0] | {"score": 1}) + "\n"
    result = cli("score", "--with-fields", "--on-error", "skip", input=clash + data + "{oops\n" + clash)
    assert result.exit_code == 0 and jsonl(result.stdout) == want
    assert result.stderr.splitlines()[:4] == ["skipped 3 bad lines:", f'  <stdin>:1: its field "score" {said[:-1]}',
                                              "  <stdin>:5: malformed JSON (unexpected character, expected a string "
                                              "key)", f'  <stdin>:6: its field "score" {said[:-1]}']  # fmt: skip
    # on a terminal, a field's escape sequence is written out, not sent to it; to a pipe the data are as they are
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from qrr.cli import render

    for fmt, shown in (
        ("tsv", "0\t0.5\t\\x1b]0;title\\x07\\u202e\n"),
        ("jsonl", '"t":"\\u001b]0;title\\u0007\\u202e"}\n'),
    ):
        terminal = Terminal()
        writer = render.writer(fmt)
        monkeypatch.setattr(sys, "stdout", terminal)
        writer.write([{"index": 0, "score": 0.5, "t": "\x1b]0;title\x07\u202e"}])
        monkeypatch.undo()
        assert terminal.getvalue().endswith(shown) and "\x1b" not in terminal.getvalue()


def test_the_real_model_end_to_end(cli, tiny_model, reranker):
    data = "".join(json.dumps(p) + "\n" for p in PAIRS)
    rows = jsonl(ok(cli("score", input=data, model=tiny_model)))
    want = reranker.score([(p["query"], p["document"], p.get("instruction")) for p in PAIRS])
    assert [r["score"] for r in rows] == pytest.approx(want, abs=1e-6)


def test_streamed_in_chunks_equals_scoring_at_once(cli):
    """Pairs are scored and written a chunk (1024 pairs) at a time; 2,100 pairs make three chunks."""
    pairs = [{"id": n, "query": f"q{n % 4}", "document": f"doc {n}"} for n in range(2100)]
    rows = jsonl(ok(cli("score", input="".join(json.dumps(p) + "\n" for p in pairs))))
    assert [r["index"] for r in rows] == list(range(2100)) and [r["id"] for r in rows] == list(range(2100))
    scores = Reranker("fake").score([(p["query"], p["document"]) for p in pairs])
    assert [r["score"] for r in rows] == scores
    data = "".join(json.dumps(p) + "\n" for p in pairs)
    array = json.loads(ok(cli("score", "-f", "json", input=data)))  # one JSON document across chunks
    assert [r["score"] for r in array] == scores and [r["index"] for r in array] == list(range(2100))
    tsv = ok(cli("score", "-f", "tsv", input=data)).splitlines()
    assert tsv[0] == "index\tid\tscore" and len(tsv) == 2101
    assert [float(line.split("\t")[2]) for line in tsv[1:]] == pytest.approx(scores, rel=1e-15)


def test_a_tsv_output_says_which_field_it_leaves_out(cli):
    """TSV columns come from the first chunk of results: a field that first comes later is named on stderr."""
    pairs = [{"query": "q", "document": f"doc {n}", **({"qid": "Q"} if n >= 1050 else {})} for n in range(1100)]
    result = cli("score", "-f", "tsv", input="".join(json.dumps(p) + "\n" for p in pairs))
    assert result.exit_code == 0 and result.stdout.splitlines()[0] == "index\tscore"
    assert result.stderr == ("warning: the 1,051st result has a field the TSV header (from the first results) lacks: "
                             "qid; it is left out, here and after (--format jsonl keeps every field)\n")  # fmt: skip


def test_a_query_too_long_for_the_prompt_is_named_by_its_line(cli, tmp_path):
    pairs = [{"query": "q", "document": f"d{n} " + "x " * 100} for n in range(40)]
    pairs.append({"query": "long " * 200, "document": "d"})  # after several calls: its line in the whole input
    data = "".join(json.dumps(p) + "\n" for p in pairs)
    result = cli("score", "--max-length", "100", "--batch-tokens", "64", input=data)
    assert result.exit_code == 2 and result.stderr == (
        "error: <stdin>:41: the query and instruction take 225 tokens, but --max-length 100 leaves 52 for query, "
        "instruction and document together (the prompt frame takes 48); raise --max-length or shorten the query; the "
        "results of the first 31 pairs were written; leave such lines out with --on-error skip\n"  # of the calls before
    )
    (tmp_path / "pairs.tsv").write_text("q\td\n" + "long " * 200 + "\td\n")
    result = cli("score", "--max-length", "100", str(tmp_path / "pairs.tsv"))
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {tmp_path / 'pairs.tsv'}:2: the query and ")
    # -q's query is every pair's: too long, it is said of the flag, --on-error skip or not
    result = cli("score", "--max-length", "100", "--on-error", "skip", "-q", "long " * 200, "-d", "a", "-d", "b")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: --query: the query and instruction take 225 tokens, but ")


def test_on_error_skip_leaves_out_the_pairs_whose_query_is_too_long_and_a_resume_goes_on_past_them(cli, tmp_path):
    long = "long " * 200
    pairs = [{"id": n, "query": long if n in (1, 2) else "q", "document": f"d{n}"} for n in range(6)]
    lines = [json.dumps(p) + "\n" for p in pairs]
    said = cli("score", "--max-length", "100", input=lines[1]).stderr.removeprefix("error: <stdin>:1: ")
    result = cli("score", "--max-length", "100", "--on-error", "skip", input="".join(lines))
    assert result.exit_code == 0, result.stderr
    # each result keeps its pair's place in the input: the pairs left out leave a gap
    assert [(r["index"], r["id"]) for r in jsonl(result.stdout)] == [(0, 0), (3, 3), (4, 4), (5, 5)]
    alone = jsonl(ok(cli("score", "--max-length", "100", input="".join(lines[:1] + lines[3:]))))
    assert [r["score"] for r in jsonl(result.stdout)] == [r["score"] for r in alone]
    assert result.stderr == f"skipped 2 bad lines:\n  <stdin>:2: {said}  <stdin>:3: {said}"
    # a bad line is told as it is read, a query too long as it is scored: the list is in the input's order
    mixed = cli("score", "--max-length", "100", "--on-error", "skip", input=lines[1] + '{"query": \n' + lines[0])
    assert (
        mixed.stderr
        == f"skipped 2 bad lines:\n  <stdin>:1: {said}  <stdin>:2: malformed JSON (the line ends inside its value: "
        "cut short, or JSON spread over lines, pretty-printed, which jq -c . makes JSON lines)\n"
    )
    # a --resume file with such a gap goes on after its last result
    out = tmp_path / "out.jsonl"
    result = cli("score", "--max-length", "100", "--on-error", "skip", "--resume", str(out), input="".join(lines[:4]))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"skipped 2 bad lines:\n  <stdin>:2: {said}"
                                                                       f"  <stdin>:3: {said}")  # fmt: skip
    assert [r["index"] for r in jsonl(out.read_text())] == [0, 3]
    result = cli("score", "--max-length", "100", "--on-error", "skip", "--resume", str(out), input="".join(lines))
    assert (result.exit_code, result.stderr) == (0, f"resuming {out}: 4 pairs done\n")
    assert jsonl(out.read_text()) == jsonl(cli("score", "--max-length", "100", "--on-error", "skip",
                                               input="".join(lines)).stdout)  # fmt: skip
    # a run without --on-error skip would not leave those pairs out: it does not go on with such a file
    result = cli("score", "--max-length", "100", "--resume", str(out), input="".join(lines))
    assert (result.exit_code, result.stderr) == (2, f"error: {out}:2: result 3 comes after result 0: a run with "
                                                    "--on-error skip left pairs out; give it to go on, or give "
                                                    "--resume a new file\n")  # fmt: skip
    # a result lost from the file: its pair fits --max-length, so no run left it out
    written = out.read_text().splitlines(keepends=True)
    out.write_text("".join(written[:2] + written[3:]))  # index 4 gone
    more = "".join(lines) + json.dumps({"id": 6, "query": "q", "document": "d6"}) + "\n"  # something left to score
    result = cli("score", "--max-length", "100", "--on-error", "skip", "--resume", str(out), input=more)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, f"error: --resume {out} holds no result of pair 4 "
                                                                     "(<stdin>:5), though it fits --max-length: the "
                                                                     "file lost a line, or holds another input's "
                                                                     "scores; give --resume a new file")  # fmt: skip
    # every pair too long: no result, exit 2, as when every line is bad
    result = cli("score", "--max-length", "100", "--on-error", "skip", input="".join(lines[1:3]))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == "error: every line of the input was bad (2 skipped): no pair to score"
    # so with --resume: no file left, nor its record (an empty file was, and a record of settings beside it)
    none = tmp_path / "none.jsonl"
    result = cli("score", "--max-length", "100", "--on-error", "skip", "--resume", str(none), input="".join(lines[1:3]))
    assert result.stderr.splitlines()[-1] == "error: every line of the input was bad (2 skipped): no pair to score"
    assert (result.exit_code, sorted(p.name for p in tmp_path.iterdir())) == (2, [".out.jsonl.qrr.json", "out.jsonl"])


def test_three_tsv_columns_are_an_error(cli):
    result = cli("score", input="q\td\t1\n")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("error: <stdin>:1: 3 tab-separated fields; expected query<TAB>document (a first line "
                             "naming the columns reads more, as query<TAB>document<TAB>label; JSON lines carry "
                             "documents with tabs)\n")  # fmt: skip
    assert len(jsonl(ok(cli("score", input="query\tdocument\nq\td\n")))) == 1  # a header line is no pair
    # with a header naming it, the third column is a field of each pair's, as a labeled file's is
    labeled = "query\tdocument\tlabel\nq\td\t1\n"
    assert [r["label"] for r in jsonl(ok(cli("score", "--with-fields", input=labeled)))] == ["1"]


# each pair over 32 characters: with --batch-tokens 1 a call each (pipelines.call_room)
MANY = "".join(json.dumps({"query": "q", "document": f"d{n} " + "." * 30}) + "\n" for n in range(2100))


def test_results_are_flushed_before_an_interrupt(cli, fake, tmp_path):
    """A Ctrl-C mid-run: the results of the calls done are on stdout, in whole lines, and stderr says so."""
    name, _ = fake(interrupt_after=1030)  # --batch-tokens 1: a batch and a call per pair
    result = cli("score", "--batch-tokens", "1", input=MANY, model=name)
    assert result.exit_code == 130
    assert result.stderr == ("error: interrupted after writing the results of 1,030 pairs; --resume OUT writes "
                             "results that a later run goes on with\n")  # fmt: skip
    assert result.stdout.endswith("\n")
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == list(range(1030))
    name, _ = fake(interrupt_after=0)
    result = cli("score", input=MANY, model=name)
    assert (result.exit_code, result.stdout) == (130, "")
    assert result.stderr == "error: interrupted before any result was written\n"  # not "of 0 pairs"
    name, _ = fake(interrupt_after=0)
    out = tmp_path / "out.jsonl"
    result = cli("score", "--resume", str(out), input=MANY, model=name)  # no file started: none to go on with
    assert (result.exit_code, result.stderr) == (130, "error: interrupted before any result was written\n")
    assert not out.exists()
    name, _ = fake(interrupt_after=0)
    assert cli("score", "-f", "json", input=MANY, model=name).stdout == "[]\n"  # still a JSON array


def test_ctrl_c_stops_the_shell_script_that_ran_the_command():
    """A Ctrl-C in a terminal reaches the shell and the command together: a shell goes on with its script where the
    command exited (130, as if it had dealt with the Ctrl-C itself) and stops only where it died by the signal; a
    loop over files took a Ctrl-C for each. qrr says how far it got, then ends by the signal."""
    import select
    import subprocess
    import sys
    import time
    from pathlib import Path

    command = f"{sys.executable} -m tests.fake_serve score --model fake --device cpu"
    process = subprocess.Popen(["bash", "-c", f'{command}; echo "went on: $?"'], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    try:
        process.stdin.write("q\tfirst\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 60)  # a test that fails, not one that hangs
        assert ready and json.loads(process.stdout.readline())["index"] == 0  # scored; the input pauses
        time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the shell and its command
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "went on" not in stdout and process.returncode == -signal.SIGINT, (stdout, stderr)
    assert stderr == "error: interrupted after writing the results of 1 pair; --resume OUT writes results that a " \
                     "later run goes on with\n"  # fmt: skip


def test_ctrl_c_with_results_in_a_file_says_how_resume_goes_on_with_it(tmp_path):
    """`qrr score pairs > out.jsonl` interrupted: --resume out.jsonl goes on with that very file; `> out.jsonl` again
    would have emptied it."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "tests.fake_serve", "score", "--model", "fake", "--device", "cpu"]
    with out.open("w") as stdout:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                   cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    try:
        process.stdin.write("q\tfirst\n")
        process.stdin.flush()
        deadline = time.monotonic() + 60  # a test that fails, not one that hangs
        while not out.read_text().endswith("\n") and time.monotonic() < deadline:
            time.sleep(0.1)  # scored and written; the input pauses
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert stderr == ("error: interrupted after writing the results of 1 pair; go on from them with --resume FILE in "
                      "place of > FILE\n")  # fmt: skip
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == [0]


def test_sigterm_flushes_results_and_exits_143(cli, fake):
    from qrr.errors import Terminated

    name, _ = fake(interrupt_after=1030, raising=Terminated)  # as the test above, by SIGTERM's handler
    result = cli("score", "--batch-tokens", "1", input=MANY, model=name)
    assert result.exit_code == 143
    assert result.stderr.startswith("error: terminated after writing the results of 1,030 pairs; --resume OUT ")
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == list(range(1030))


def test_a_run_stopped_by_a_failure_says_that_its_results_are_kept(cli, fake, tmp_path):
    """It said only the failure (a full disk, a server gone), though --resume OUT held every result before it."""
    from qrr.errors import OutOfMemoryError

    out = tmp_path / "out.jsonl"
    name, _ = fake(interrupt_after=1030, raising=OutOfMemoryError("out of memory"))
    result = cli("score", "--batch-tokens", "1", "--resume", str(out), input=MANY, model=name)
    assert (result.exit_code, result.stderr) == (1, f"error: out of memory; the results written before are in {out}: "
                                                    "run the same command to go on\n")  # fmt: skip
    kept = [r["index"] for r in jsonl(out.read_text())]
    assert kept == list(range(len(kept))) and len(kept) >= 1024  # the chunks finished before
    name, _ = fake(interrupt_after=0, raising=OutOfMemoryError("out of memory"))  # before any result: no file
    result = cli("score", "--batch-tokens", "1", "--resume", str(tmp_path / "none.jsonl"), input=MANY, model=name)
    assert (result.exit_code, result.stderr) == (1, "error: out of memory\n")
    # on stdout, -f json: the array is closed, as after a Ctrl-C (it was left open: not JSON)
    name, _ = fake(interrupt_after=1030, raising=OutOfMemoryError("out of memory"))
    result = cli("score", "--batch-tokens", "1", "-f", "json", input=MANY, model=name)
    assert (result.exit_code, result.stderr) == (1, "error: out of memory\n")
    assert [r["index"] for r in json.loads(result.stdout)] == list(range(1030))
    # before any result, nothing, as for a bad line: an empty array is no run's output
    name, _ = fake(interrupt_after=0, raising=OutOfMemoryError("out of memory"))
    result = cli("score", "--batch-tokens", "1", "-f", "json", input=MANY, model=name)
    assert (result.exit_code, result.stdout) == (1, "")
    bad = cli("score", "-f", "json", input="q\td1\nq\td2\nbadline\n")
    assert (bad.exit_code, bad.stdout) == (2, "")


def test_resume_goes_on_after_an_interrupt(cli, fake, tmp_path):
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text(MANY)
    whole = jsonl(ok(cli("score", str(pairs))))
    name, _ = fake(interrupt_after=1030)  # --batch-tokens 1: a batch and a call per pair
    result = cli("score", str(pairs), "--batch-tokens", "1", "--resume", str(out), model=name)
    assert (result.exit_code, result.stdout) == (130, "")
    assert result.stderr == (f"error: interrupted after writing the results of 1,030 pairs to {out} (1,030 in all); "
                             "run the same command to go on\n")  # fmt: skip
    assert jsonl(out.read_text()) == whole[:1030]
    with open(out, "a") as handle:
        handle.write('{"index": 1030, "sco')  # a half-written last line
    name, _ = fake(interrupt_after=500)  # its first pair scored is OUT's last, again: the check that it is the same
    result = cli("score", str(pairs), "--batch-tokens", "1", "--resume", str(out), model=name)
    assert result.stderr == (f"{out}: its last line was cut off mid-write and is dropped\nresuming {out}: 1,030 pairs "
                             "done\nerror: interrupted after writing the results of 499 pairs to "
                             f"{out} (1,529 in all); run the same command to go on\n")  # fmt: skip
    result = cli("score", "--resume", str(out), input=MANY)  # stdin, as the file was
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"resuming {out}: 1,529 pairs done\n")
    assert jsonl(out.read_text()) == whole  # each pair once, in order, as one run wrote them
    result = cli("score", str(pairs), "--resume", str(out))
    # its settings and its last pair are those the record beside it keeps: checked without a model
    assert result.stderr == f"resuming {out}: 2,100 pairs done\nnothing left to score\n"
    # a write cut within its first bytes (a full disk cuts a buffered write anywhere): refused as another file's
    full = out.read_text()
    for tail in ('{"', "{"):
        out.write_text(full + tail)
        result = cli("score", str(pairs), "--resume", str(out))
        assert result.exit_code == 0 and result.stderr.startswith(f"{out}: its last line was cut off mid-write")
        assert out.read_text() == full
    # a machine's crash: the file's length reached the disk and its last writes did not, NULs in their place, from
    # within a line (the note said to give a new file)
    lines = full.splitlines(keepends=True)
    out.write_bytes("".join(lines[:-3]).encode() + lines[-3][:7].encode() + b"\0" * 5000)
    result = cli("score", str(pairs), "--resume", str(out))
    assert result.exit_code == 0 and result.stderr.startswith(
        f"{out}: it ended in 5,000 zero bytes, what a machine's crash leaves of writes that never reached the disk; "
        f"they are dropped, with the line they cut, and what they held is scored again\nresuming {out}: 2,097 pairs "
        "done\n"
    )
    assert jsonl(out.read_text()) == whole
    # NULs end them, but they are no output of qrr's: refused, and left as they were
    for name, data in (("archive.tar", b"a tar header\n" + b"\0" * 1024), ("empty.db", b"SQLite format 3\0" + b"\0" *
                       4080), ("zeros.img", b"\0" * 70_000)):  # fmt: skip
        not_ours = tmp_path / name
        not_ours.write_bytes(data)
        result = cli("score", str(pairs), "--resume", str(not_ours))
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {not_ours}:1: "), result.stderr
        assert not_ours.read_bytes() == data
    fresh = tmp_path / "fresh.jsonl"
    assert ok(cli("score", "-q", "q", "-d", "a", "-d", "b", "--resume", str(fresh))) == ""
    assert [r["index"] for r in jsonl(fresh.read_text())] == [0, 1]  # -q/-d too


def test_resume_refuses_a_damaged_record_and_a_folder(cli, tmp_path):
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(3)))
    ok(cli("score", str(pairs), "--resume", str(out)))
    kept = tmp_path / ".out.jsonl.qrr.json"
    kept.write_text(kept.read_text()[:20])  # cut: it was read as no record, and another instruction went on unchecked
    result = cli("score", str(pairs), "--resume", str(out), "-i", "another instruction")
    assert (result.exit_code, result.stderr) == (2, f"error: --resume {out}: the record of its settings, {kept}, "
                                                    "cannot be read (not qrr's JSON); remove it to go on unchecked, or "
                                                    "score into a new file\n")  # fmt: skip
    result = cli("score", str(pairs), "--resume", str(tmp_path))
    assert (result.exit_code, result.stderr) == (2, f"error: --resume {tmp_path}: is a folder; give a file for the "
                                                    "scores\n")  # fmt: skip


def test_a_full_disk_at_a_new_resume_files_first_result_claims_no_results_before(cli, tmp_path, monkeypatch):
    import errno

    from qrr.pipelines import files

    opened = files.open_exclusive

    class Full:  # a disk that takes the file, then nothing
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(files, "open_exclusive", lambda *args: Full(opened(*args)))
    pairs, out = tmp_path / "pairs.tsv", tmp_path / "out.jsonl"
    pairs.write_text("q\td\n")
    result = cli("score", str(pairs), "--resume", str(out))
    # it said "the results written before are in out.jsonl: run the same command to go on" of an empty file
    assert (result.exit_code, result.stderr) == (1, "error: cannot write the output: No space left on device\n")


def _half_done(cli, tmp_path, *args):
    """OUT of six pairs with ids (scored with ``args``), cut back to its first three results: the file, the input and
    OUT's lines."""
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"id": f"p{n}", "query": "q", "document": f"d{n}"}) + "\n" for n in range(6)))
    ok(cli("score", str(pairs), *args, "--resume", str(out)))
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]))
    return out, pairs, lines


def test_a_record_of_settings_that_cannot_be_written_is_said_at_once(cli, tmp_path):
    """A folder that takes the results and not the record (a pre-made file in a read-only folder): the run said
    nothing, and only the next one noted that there was no record."""
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "q", "document": "d"}\n')
    kept = tmp_path / ".out.jsonl.qrr.json"
    kept.mkdir()  # as a read-only folder would, the record's rename into place fails
    result = cli("score", str(pairs), "--resume", str(out))
    assert (result.exit_code, result.stderr) == (0, f"warning: {out}: the record of its settings ({kept}) cannot be "
                                                    "written beside it, so a run that goes on with it cannot check "
                                                    "them: go on only with the model, instruction, max length, "
                                                    "recipe and dtype it was written with\n")  # fmt: skip
    assert len(out.read_text().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.jsonl.qrr.json", "out.jsonl", "pairs.jsonl"]


def test_a_record_that_does_not_know_a_setting_is_said_and_never_filled_in(cli, tmp_path):
    """A run through a server whose card said no instruction kept a record without one; a later run with another
    -i went on silently and filled the record in with its own, which then vouched for the whole file (an upgrade
    tour)."""
    out, pairs, lines = _half_done(cli, tmp_path)
    kept = tmp_path / ".out.jsonl.qrr.json"
    record = json.loads(kept.read_text())
    record.update(instruction=None, recipe=None)  # as the server that did not say them left it
    kept.write_text(json.dumps(record))
    note = (f"note: the record of {out}'s settings ({kept}) does not say the --instruction and --recipe it was "
            "written with (a server that did not say it): go on only with that")  # fmt: skip
    # not vouched for by the record: the last result is scored again, which tells the fake model's other scores
    result = cli("score", str(pairs), "-i", "Find the opposite", "--resume", str(out))
    assert result.exit_code == 2 and result.stderr.splitlines()[1] == note
    assert result.stderr.splitlines()[2].startswith(f"error: {out}:3: result 2 has score ")
    result = cli("score", str(pairs), "--resume", str(out))
    assert result.exit_code == 0 and result.stderr.splitlines()[1] == note
    assert len(out.read_text().splitlines()) == 6
    after = json.loads(kept.read_text())
    assert after["instruction"] is None and after["recipe"] is None and after["max_length"] == 8192
    assert after["last"]["index"] == 5


def test_a_ctrl_c_held_back_by_a_write_leaves_the_record_at_the_last_result_written(cli, tmp_path, monkeypatch):
    """The signal, held back while a chunk was written, ended the run before the record noted that chunk: it named a
    pair one chunk back, and the check of another input as long went unmade (an upgrade tour)."""
    from qrr.formats import RowWriter

    written = RowWriter.write
    calls = []

    def write_then_stop(self, rows):
        written(self, rows)
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as the held-back Ctrl-C goes off when the write ends

    monkeypatch.setattr(RowWriter, "write", write_then_stop)
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(3000)))
    result = cli("score", str(pairs), "--resume", str(out))
    assert result.exit_code == 130 and len(calls) == 2
    rows = out.read_text().splitlines()
    assert len(rows) == sum(calls) < 3000
    last = json.loads((tmp_path / ".out.jsonl.qrr.json").read_text())["last"]
    assert last["index"] == json.loads(rows[-1])["index"] == len(rows) - 1


def test_a_chunk_that_failed_to_be_written_is_not_named_by_the_record(cli, tmp_path, monkeypatch):
    from qrr.formats import RowWriter

    written = RowWriter.write
    calls = []

    def full_disk_at_the_second(self, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        written(self, rows)

    monkeypatch.setattr(RowWriter, "write", full_disk_at_the_second)
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(3000)))
    result = cli("score", str(pairs), "--resume", str(out))
    assert result.exit_code == 1 and "No space left on device" in result.stderr
    rows = out.read_text().splitlines()
    last = json.loads((tmp_path / ".out.jsonl.qrr.json").read_text())["last"]
    assert last["index"] == json.loads(rows[-1])["index"] == calls[0] - 1


def test_a_record_that_does_not_say_the_recipe_does_not_vouch_for_a_finished_file(cli, tmp_path):
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(3)))
    ok(cli("score", str(pairs), "--resume", str(out)))
    kept = tmp_path / ".out.jsonl.qrr.json"
    kept.write_text(json.dumps(json.loads(kept.read_text()) | {"recipe": None}))
    said = cli("score", str(pairs), "--resume", str(out)).stderr.splitlines()
    assert said[1].startswith(f"note: the record of {out}'s settings ({kept}) does not say the --recipe it was ")
    assert said[2] == ("nothing left to score (no model was loaded, so its results were not checked against these "
                       "settings)")  # fmt: skip


def test_a_record_that_does_not_say_the_dtype_is_not_filled_in(cli, tmp_path):
    """An older qrr's record: its results' dtype is not known, so it goes on (a result scored again checks it, within
    a dtype's rounding) and the record never vouches for one."""
    out, pairs, lines = _half_done(cli, tmp_path)
    kept = tmp_path / ".out.jsonl.qrr.json"
    kept.write_text(json.dumps({k: v for k, v in json.loads(kept.read_text()).items() if k != "dtype"}))
    result = cli("score", str(pairs), "--dtype", "bf16", "--resume", str(out))
    assert (result.exit_code, result.stderr) == (0, f"resuming {out}: 3 pairs done\n")
    assert len(out.read_text().splitlines()) == 6 and "dtype" not in json.loads(kept.read_text())
    # its other settings were checked: a finished file is not said to be unchecked
    assert (
        cli("score", str(pairs), "--resume", str(out)).stderr
        == f"resuming {out}: 6 pairs done\nnothing left to score\n"
    )


def test_auto_dtype_is_checked_once_the_model_has_loaded(cli, tmp_path, monkeypatch):
    """``--dtype auto`` resolves by machine: a job requeued from a node whose auto is bf16 onto one whose auto is fp32
    appended fp32 scores to bf16 ones, unsaid. Known only once the model loads, it is checked then: a finished file,
    which loads no model, is not refused."""
    native = monkeypatch.setattr
    native("qrr.device.cpu_has_native_bf16", lambda: True)
    out, pairs, lines = _half_done(cli, tmp_path, "--dtype", "auto")
    kept = tmp_path / ".out.jsonl.qrr.json"
    assert json.loads(kept.read_text())["dtype"] == "bf16"
    native("qrr.device.cpu_has_native_bf16", lambda: False)
    result = cli("score", str(pairs), "--dtype", "auto", "--resume", str(out))
    said = (f"resuming {out}: 3 pairs done\nerror: --resume {out} was written in bf16 (as {kept} keeps), not fp32 "
            "(auto here): one file holds one dtype's scores; give --dtype bf16 to go on with it, or score into a new "
            "file\n")  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", said)
    assert out.read_text() == "".join(lines[:3])
    result = cli("score", str(pairs), "--dtype", "bf16", "--resume", str(out))  # as said: slow here, but its dtype
    assert result.exit_code == 0 and len(out.read_text().splitlines()) == 6
    assert "warning: --dtype bf16: this CPU has no AVX-512 BF16 or AMX and computes bf16 many times slower" in (
        result.stderr)  # fmt: skip
    result = cli("score", str(pairs), "--dtype", "auto", "--resume", str(out))
    assert (result.exit_code, result.stderr) == (0, f"resuming {out}: 6 pairs done\nnothing left to score\n")


def test_the_record_lists_what_scored_the_file_and_the_revision_of_a_model_from_the_hubs_cache(
    cli, tmp_path, tiny_model, monkeypatch
):
    """A paper's methods: the record named the model as given (a repo id), not which of its revisions, nor the
    releases that scored it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / commit
    shutil.copytree(tiny_model, snapshot)
    out = tmp_path / "out.jsonl"
    assert cli("score", "--resume", str(out), input="q\td1\n", model=snapshot).exit_code == 0
    made = {"qrr": qrr.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "device": "cpu", "revision": commit}  # fmt: skip
    record = json.loads((tmp_path / ".out.jsonl.qrr.json").read_text())
    assert record["made_with"] == [made]
    assert cli("score", "--resume", str(out), input="q\td1\nq\td2\n", model=snapshot).exit_code == 0
    assert json.loads((tmp_path / ".out.jsonl.qrr.json").read_text())["made_with"] == [made]  # the same: once
    monkeypatch.setattr(
        qrr._version, "__version__", "9.9"
    )  # an upgrade between two runs: each set-up listed, never compared
    assert cli("score", "--resume", str(out), input="q\td1\nq\td2\nq\td3\n", model=snapshot).exit_code == 0
    assert json.loads((tmp_path / ".out.jsonl.qrr.json").read_text())["made_with"] == [made, made | {"qrr": "9.9"}]


def test_resume_refuses_a_file_of_another_input_or_set_up(cli, tmp_path):
    def failed(*args):
        result = cli("score", *args)
        assert (result.exit_code, result.stdout) == (2, ""), result.output
        return result.stderr.splitlines()[-1]

    out, pairs, lines = _half_done(cli, tmp_path)
    # another instruction: refused before any scoring, as the record kept beside OUT says it was written otherwise
    kept = tmp_path / ".out.jsonl.qrr.json"
    record = json.loads(kept.read_text())
    assert record.pop("last")["index"] == 5  # the last pair written, by its place and a digest of its texts
    made = {
        "qrr": qrr.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": "cpu",
    }
    assert record == {"model": "fake", "instruction": DEFAULT_INSTRUCTION, "max_length": 8192,
                      "recipe": "transformers", "dtype": "fp32", "made_with": [made],
                      "first": lines[0].rstrip("\n")}  # fmt: skip
    assert failed(str(pairs), "-i", "Find the opposite", "--resume", str(out)) == (
        f'error: --resume {out} was written with --instruction "{DEFAULT_INSTRUCTION}", not "Find the opposite" (as '
        f"{kept} keeps); go on with that, or score into a new file")  # fmt: skip
    assert failed(str(pairs), "--max-length", "512", "--resume", str(out)) == (
        f"error: --resume {out} was written with --max-length 8192, not 512 (as {kept} keeps); go on with that, or "
        "score into a new file")  # fmt: skip
    # a job requeued on a machine whose auto is bf16 appended bf16 scores to fp32 ones, unsaid
    assert failed(str(pairs), "--dtype", "bf16", "--resume", str(out)) == (
        f"error: --resume {out} was written in fp32 (as {kept} keeps), not bf16: one file holds one dtype's scores; "
        "go on with it in fp32, or score into a new file")  # fmt: skip
    # without the record (an older qrr's file, or one copied alone), its last result scored again tells: the fake
    # model's scores follow the prompt
    kept.unlink()
    message = failed(str(pairs), "-i", "Find the opposite", "--resume", str(out))
    assert message.startswith(f"error: {out}:3: result 2 has score ")
    said = cli("score", str(pairs), "-i", "Find the opposite", "--resume", str(out)).stderr.splitlines()
    assert said[1] == (f"note: {out} has no record of the settings it was written with ({kept}): go on only with the "
                       "model, --instruction, --max-length, --recipe and --dtype it was written with")  # fmt: skip
    assert message.endswith(f"so {out} holds scores of another input or set-up (other texts, another --model, "
                            "--instruction, --max-length or --recipe, or a server running another); go on with the "
                            "input and set-up that wrote it, or score into a new file")  # fmt: skip
    assert out.read_text() == "".join(lines[:3])  # nothing written
    other = tmp_path / "other.jsonl"
    other.write_text(pairs.read_text().replace('"p2"', '"x2"'))
    assert failed(str(other), "--resume", str(out)) == (
        f'error: {out}:3: result 2 has ids {{"id":"p2"}}, but the input\'s pair 2 has {{"id":"x2"}}; --resume holds '
        "another input's scores")  # fmt: skip
    assert failed("--resume", str(out), "-q", "q", "-d", "a") == (
        f"error: --resume {out} holds results of the input's first 3 pairs, but the input has 1 pair: it holds "
        "another input's scores; give --resume a new file")  # fmt: skip
    # refused before the model loads, with no "resuming OUT: 3 pairs done" said first, as if it went on
    for refused in (("--resume", str(out), "-q", "q", "-d", "a"), (str(other), "--resume", str(out))):
        assert cli("score", *refused).stderr.startswith("error: ")
    assert cli("score", str(pairs), "--resume", str(out)).stderr.startswith(f"resuming {out}: 3 pairs done\n")
    # another input as long as the one OUT was written from: its last ids, even with nothing left to score
    other.write_text(pairs.read_text().replace('"p5"', '"x5"'))
    (tmp_path / "full.jsonl").write_text("".join(lines))
    assert failed(str(other), "--resume", str(tmp_path / "full.jsonl")) == (
        f'error: {tmp_path / "full.jsonl"}:6: result 5 has ids {{"id":"p5"}}, but the input\'s pair 5 has '
        '{"id":"x5"}; --resume holds another input\'s scores')  # fmt: skip
    # without ids, another input as many pairs long: the record beside OUT keeps the last pair's digest (a run with
    # nothing left to score loads no model, and kept another input's scores)
    first, second = tmp_path / "first.tsv", tmp_path / "second.tsv"
    first.write_text("".join(f"q\td{n}\n" for n in range(4)))
    second.write_text("".join(f"q\te{n}\n" for n in range(4)))
    ok(cli("score", str(first), "--resume", str(tmp_path / "tsv.jsonl")))
    assert failed(str(second), "--resume", str(tmp_path / "tsv.jsonl")) == (
        f"error: {tmp_path / 'tsv.jsonl'}:4: result 3 is of another pair than the input's pair 3 (as "
        f"{tmp_path / '.tsv.jsonl.qrr.json'} keeps); --resume holds another input's scores: give it a new file"
    )
    # results with their fields copied (--with-fields): a field unlike the input's is another input, as an id is
    labeled, fields = tmp_path / "labeled.jsonl", tmp_path / "fields.jsonl"
    labeled.write_text(
        "".join(json.dumps({"query": "q", "document": f"d{n}", "label": n % 2}) + "\n" for n in range(4))
    )
    longer = tmp_path / "longer.jsonl"  # two more pairs to go on with
    longer.write_text(labeled.read_text() + "".join(json.dumps({"query": "q", "document": f"e{n}", "label": 1}) + "\n"
                                                    for n in range(2)))  # fmt: skip
    plain = tmp_path / "plain.jsonl"
    ok(cli("score", str(labeled), "--with-fields", "--resume", str(fields)))
    ok(cli("score", str(labeled), "--resume", str(plain)))
    # a run goes on as OUT was written, with the fields or without: its lines would mix two shapes
    assert failed(str(longer), "--resume", str(fields)) == (
        f'error: --resume {fields}: its results have "label": it was written with --with-fields; give it to go on, '
        "or score into a new file")  # fmt: skip
    sparse = tmp_path / "sparse.jsonl"  # a label only some pairs have: OUT's last result has none, its first has
    sparse.write_text("".join(json.dumps({"query": "q", "document": f"d{n}"} | ({"label": 1} if n < 2 else {}))
                              + "\n" for n in range(6)))  # fmt: skip
    (tmp_path / "sparse-out.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in jsonl(ok(cli("score", str(sparse), "--with-fields")))[:4])
    )
    assert failed(str(sparse), "--resume", str(tmp_path / "sparse-out.jsonl")).startswith(
        f'error: --resume {tmp_path / "sparse-out.jsonl"}: its results have "label": it was written with'
    )
    assert failed(str(longer), "--with-fields", "--resume", str(plain)) == (
        f"error: {plain}:4: result 3 has no copied fields: --resume was written without --with-fields; leave it out "
        "to go on, or score into a new file")  # fmt: skip
    assert cli("score", str(longer), "--with-fields", "--resume", str(fields)).exit_code == 0
    assert [r.get("label") for r in jsonl(fields.read_text())] == [0, 1, 0, 1, 1, 1]
    other.write_text(labeled.read_text().replace('"d3", "label": 1', '"d3", "label": 0'))
    assert failed(str(other), "--with-fields", "--resume", str(tmp_path / "plain.jsonl")).endswith(
        "written without --with-fields; leave it out to go on, or score into a new file"
    )
    (tmp_path / "four.jsonl").write_text("".join(fields.read_text().splitlines(keepends=True)[:4]))
    assert failed(str(other), "--with-fields", "--resume", str(tmp_path / "four.jsonl")) == (
        f'error: {tmp_path / "four.jsonl"}:4: result 3 has "label":1, but the input\'s pair 3 has "label":0; --resume '
        "holds another input's scores")  # fmt: skip
    other.write_text(labeled.read_text().replace('"d3", "label": 1', '"d3"'))
    assert failed(str(other), "--with-fields", "--resume", str(tmp_path / "four.jsonl")).startswith(
        f'error: {tmp_path / "four.jsonl"}:4: result 3 has "label":1, but the input\'s pair 3 has no "label"; --resume'
    )
    # a device is read to go on from forever (/dev/zero filled the memory); a link to nothing failed after scoring
    assert failed(str(pairs), "--resume", "/dev/full") == "error: --resume /dev/full: not a regular file"
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "gone" / "x.jsonl")
    assert failed(str(pairs), "--resume", str(tmp_path / "dangling.jsonl")) == (
        f"error: --resume {tmp_path / 'dangling.jsonl'}: a link into {tmp_path / 'gone'}, which is no folder"
    )
    (tmp_path / "linked.jsonl").symlink_to(tmp_path / "later.jsonl")  # a link to a file yet to come: written there
    assert ok(cli("score", str(pairs), "--resume", str(tmp_path / "linked.jsonl"))) == ""
    assert len(jsonl((tmp_path / "later.jsonl").read_text())) == 6
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, no newline")  # no half-written result: refused, never cut (it was emptied)
    assert failed(str(pairs), "--resume", str(notes)) == (
        f"error: {notes}:1: expected a result of index 0 or later as qrr score writes it (JSON lines of index, ids "
        "and score, in input order); give --resume a new file")  # fmt: skip
    assert notes.read_text() == "my notes, no newline"
    out.write_text(lines[1] + lines[0])  # indexes rise (by more than one past pairs --on-error skip left out)
    assert failed(str(pairs), "--resume", str(out)) == (
        f"error: {out}:1: result 1 comes first: a run with --on-error skip left pairs out; give it to go on, or give "
        "--resume a new file")  # fmt: skip
    assert failed(str(pairs), "--on-error", "skip", "--resume", str(out)) == (
        f"error: {out}:2: expected a result of index 2 or later as qrr score writes it (JSON lines of index, ids "
        "and score, in input order); give --resume a new file")  # fmt: skip
    assert failed(str(pairs), "--resume", str(pairs)) == (
        f"error: --resume {pairs}: {pairs} is read as an input; give a new file for the scores"
    )
    assert failed(str(pairs), "--resume", str(tmp_path / "o.jsonl.gz")).startswith(
        "error: --resume " + str(tmp_path / "o.jsonl.gz") + ": qrr writes scores uncompressed"
    )
    assert failed(str(pairs), "--resume", str(tmp_path / "o.tsv"), "-f", "tsv") == (
        "error: --resume writes JSON lines: leave out --format, or give -f jsonl"
    )
    assert ok(cli("score", str(pairs), "--resume", str(tmp_path / "new.jsonl"), "-f", "jsonl")) == ""


def test_a_bad_pair_after_a_resume_is_named_by_its_place_in_the_input(cli, tmp_path):
    out = tmp_path / "out.jsonl"
    pairs = [{"query": "q", "document": f"d{n}"} for n in range(5)] + [{"query": "long " * 200, "document": "d"}]
    data = "".join(json.dumps(p) + "\n" for p in pairs)
    ok(cli("score", "--resume", str(out), "--max-length", "100", "-q", "q", "-d", "d0", "-d", "d1", "-d", "d2"))
    result = cli("score", "--resume", str(out), "--max-length", "100", input=data)
    assert result.exit_code == 2 and result.stderr.splitlines()[-1].startswith(
        "error: <stdin>:6: the query and instruction take ")  # fmt: skip


def test_gzip_on_stdin_is_named(cli):
    import gzip

    result = cli("score", input=gzip.compress(b'{"query": "q", "document": "d"}\n'))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: <stdin>: gzip-compressed data; name the file *.gz, or decompress it first (zcat)\n",
    )


def test_an_interrupt_still_lists_the_skipped_lines(cli, fake):
    name, _ = fake(interrupt_after=1030)
    result = cli("score", "--batch-tokens", "1", "--on-error", "skip", input="{oops\n" + MANY, model=name)
    assert result.exit_code == 130
    assert result.stderr.startswith("skipped 1 bad line:\n  <stdin>:1: malformed JSON")
    assert result.stderr.splitlines()[-1].startswith("error: interrupted after writing the results of 1,030 pairs")


def test_progress_lines_when_stderr_is_a_log(cli, monkeypatch):
    import qrr.cli.render

    pairs = "".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(3))
    assert cli("score", "--batch-tokens", "1", input=pairs).stderr == ""  # a quick run: no line
    monkeypatch.setattr(qrr.cli.render._CountLines, "interval", 0.0)
    result = cli("score", "--batch-tokens", "1", input=pairs)  # a batch a pair: a line after each
    *lines, last = result.stderr.splitlines()
    assert len(lines) == 3 and len(jsonl(result.stdout)) == 3
    assert [line.split(" in ")[0] for line in lines] == ["scoring: 1 pair", "scoring: 2 pairs", "scoring: 3 pairs"]
    assert all(re.fullmatch(r"scoring: \d pairs? in 0:00, [\d,.]+ pairs/s", line) for line in lines), lines
    # a log that said progress says the end too (an overnight run's ended with its last minute's count)
    assert re.fullmatch(r"scoring: 3 pairs in 0:00, [\d,.]+ pairs/s; done", last), last
    long = MANY.splitlines(keepends=True)[:3]  # a call each: scored before the bad line is read
    *lines, last = cli("score", "--batch-tokens", "1", input="".join(long) + "{oops\n").stderr.splitlines()
    assert len(lines) == 3 and last.startswith("error: <stdin>:4: malformed JSON")  # not done: the error says so
    # rank counts documents, as its other messages do (its bar said pairs, its Ctrl-C message documents)
    *lines, last = cli("rank", "-q", "q", "--batch-tokens", "1", "-f", "jsonl", input="a\nb\n").stderr.splitlines()
    assert last.startswith("ranking: 2 documents in ") and last.endswith(" documents/s; done")
    assert len(lines) == 2 and all(re.fullmatch(r"ranking: \d documents? in 0:00, [\d,.]+ documents/s", line)
                                   for line in lines), lines  # fmt: skip
    assert lines[0].startswith("ranking: 1 document in ")  # it said "1 documents"


def test_progress_says_the_time_left_of_files(cli, monkeypatch, tmp_path):
    from qrr.cli import render

    counted = render.LineCount.__init__

    def counted_now(self, *args):  # the count, made in a thread, is there before the first line
        counted(self, *args)
        if self.thread is not None:
            self.thread.join()

    monkeypatch.setattr(render.LineCount, "__init__", counted_now)
    monkeypatch.setattr(render._CountLines, "interval", 0.0)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"query": "q", "document": f"d{n}"}) + "\n" for n in range(4)))
    lines = cli("score", str(path), "--batch-tokens", "1").stderr.splitlines()
    assert all(re.fullmatch(r"scoring: \d pairs? in 0:00, [\d,.]+ pairs/s; of about 4, 0:00 left", line)
               for line in lines[:3]), lines  # fmt: skip
    assert lines[3].startswith("scoring: 4 pairs in ") and lines[3].endswith("pairs/s")  # none left to guess
    assert lines[4].startswith("scoring: 4 pairs in ") and lines[4].endswith("pairs/s; done") and len(lines) == 5


def test_the_input_is_counted_where_its_lines_are_its_pairs(tmp_path):
    import gzip

    from qrr.cli.render import LineCount

    def count(*sources, done=0):
        estimate = LineCount([str(tmp_path / s) for s in sources], done)
        if estimate.thread is not None:
            estimate.thread.join()
        return estimate.value

    (tmp_path / "a.jsonl").write_text('{"query": "q", "document": "d"}\n' * 5)
    (tmp_path / "b.tsv").write_text("q\td\nq\td")  # no newline at its end
    (tmp_path / "c.json").write_text('[{"query": "q", "document": "d"}]')
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(b"x\n" * 3))
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b"x\n" * 3)[:-12])
    assert count("a.jsonl", "b.tsv") == 7
    assert count("a.jsonl", done=3) == 2  # a resumed run skips what OUT holds
    assert count("a.jsonl", "d.jsonl.gz") == 8  # decompressed to count: a gzipped run had no time left
    assert count("c.json") is count("a.jsonl", "cut.jsonl.gz") is count("missing") is None
    (tmp_path / "e.parquet").write_bytes(b"PAR1\n\n\n" + b"\x00" * 10 + b"PAR1")  # score --ray's: bytes, no lines
    assert count("a.jsonl", "e.parquet") is None
    assert LineCount(["-"]).value is None and LineCount([]).thread is None


def test_an_interrupt_keeps_a_table_and_a_json_array_whole(cli, fake):
    """Ctrl-C mid-run: the table of the results so far is drawn, the JSON array of them closed."""
    name, _ = fake(interrupt_after=1030)  # a call per pair, as above
    result = cli("score", "--batch-tokens", "1", "-f", "json", input=MANY, model=name)
    assert result.exit_code == 130
    assert [row["index"] for row in json.loads(result.stdout)] == list(range(1030))
    name, _ = fake(interrupt_after=1030)
    result = cli("score", "--batch-tokens", "1", "-f", "table", input=MANY, model=name)
    assert result.exit_code == 130 and result.stderr == "error: interrupted after writing the results of 1,030 pairs\n"
    lines = result.stdout.splitlines()
    assert any(" 1029 " in line and " d1029 " in line for line in lines)  # the last row scored
    assert not any(" 1030 " in line for line in lines)


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"query": "q", "document": "d"}\n{"query": "q", "document": \n', "<stdin>:2: malformed JSON"),
        (b'{"query": "q"}\n', '<stdin>:1: missing field "document"'),
        (b'{"query": "q", "document": 7}\n', '<stdin>:1: field "document" must be a string, not a number'),
        (
            b'{"query": "q", "document": "d"}\n{"query": "q", "document": "\xe9t\xe9"}\n',
            "<stdin>:2: invalid UTF-8 at byte 29 of the line (qrr reads UTF-8; it may be Western European "
            "(Windows) text: convert it with iconv -f cp1252 -t utf-8, and look at the result)",
        ),
        (b"q\td\nq\tnul\x00here\n", "<stdin>:2: NUL byte at byte 6 of the line"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, data, message):
    result = cli("score", input=data)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1


def test_bom_crlf_and_blank_lines_are_accepted(cli, expected):
    data = ("\ufeff" + GOOD_JSONL.replace("\n", "\r\n\r\n")).encode()
    assert [r["score"] for r in jsonl(ok(cli("score", input=data)))] == expected["good"]
    # files with a BOM each, joined (cat a.jsonl b.jsonl): the second BOM opens a line, not JSON (nor a query's text)
    head, tail = GOOD_JSONL.splitlines(keepends=True)[:4], GOOD_JSONL.splitlines(keepends=True)[4:]
    joined = ("\ufeff" + "".join(head) + "\ufeff" + "".join(tail)).encode()
    assert [r["score"] for r in jsonl(ok(cli("score", input=joined)))] == expected["good"]
    tsv = "\ufeffq\td\n\ufeffq\td\n".encode()
    assert len(set(r["score"] for r in jsonl(ok(cli("score", input=tsv))))) == 1  # the same pair twice


def test_json_lines_of_pair_arrays_file_and_stdin(cli, tmp_path, expected):
    # CrossEncoder's pairs, the third with its instruction
    data = "".join(json.dumps([p["query"], p["document"], *([p["instruction"]] if "instruction" in p else [])]) + "\n"
                   for p in PAIRS)  # fmt: skip
    (tmp_path / "pairs.jsonl").write_text(data)
    check(ok(cli("score", str(tmp_path / "pairs.jsonl"))), expected["pairs"], ids=False)
    check(ok(cli("score", input=data)), expected["pairs"], ids=False)


def test_blank_queries_and_documents_are_scored_and_warned_of(cli, tmp_path):
    data = "q\td\nq\t\n \td\n" + "q\t \n" * 2  # a blank document (a tab, then nothing), a blank query
    (tmp_path / "pairs.tsv").write_text(data)
    for args, kwargs, where in (([str(tmp_path / "pairs.tsv")], {}, f"{tmp_path / 'pairs.tsv'}"),
                                ([], {"input": data}, "<stdin>")):  # fmt: skip
        result = cli("score", *args, **kwargs)
        assert [r["index"] for r in jsonl(result.stdout)] == [0, 1, 2, 3, 4]  # each scored still
        assert result.stderr == (f"warning: 4 pairs with a blank query or document ({where}:2, {where}:3, {where}:4, "
                                 "…) scored as given: such a score says nothing of relevance\n")  # fmt: skip
    assert cli("score", input="q\td\n").stderr == ""  # none blank: no warning


def test_empty_input_is_no_output_and_a_note_with_v(cli):
    for data in ("", "\n\n  \n"):
        result = cli("score", input=data)
        assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert ok(cli("score", "-f", "json", input="")) == "[]\n"  # still one JSON document
    assert ok(cli("score", "-f", "tsv", input="")) == "index\tscore\n"  # a table of no rows, not an empty file
    result = cli("score", "-v", input="")
    assert result.exit_code == 0 and result.stdout == "" and "no pairs in the input" in result.stderr


def test_on_error_skip_scores_the_rest_and_lists_the_bad_lines(cli, expected):
    bad = [b"{oops\n", b'{"query": "q"}\n', b"\xff\xfe\n", b'{"query": "q", "document": "a\x00b"}\n']
    good = [json.dumps(p).encode() + b"\n" for p in GOOD]
    data = b"".join(good[:4] + bad[:2] + good[4:8] + bad[2:] + good[8:])
    result = cli("score", "--on-error", "skip", input=data)
    rows = jsonl(result.stdout)
    assert [r["id"] for r in rows] == [p["id"] for p in GOOD]
    assert [r["score"] for r in rows] == expected["good"]
    assert "skipped 4 bad lines:" in result.stderr
    for where in ("<stdin>:5: malformed JSON", '<stdin>:6: missing field "document"', "<stdin>:11: invalid UTF-8",
                  "<stdin>:12: NUL byte"):  # fmt: skip
        assert where in result.stderr
    # after JSON objects a bad line gets no hint; on the first line, the hint names the flag, as when it stops
    assert "--input-format" not in result.stderr
    result = cli("score", "--on-error", "skip", input=b"".join(bad[:1] + good))
    assert [r["id"] for r in jsonl(result.stdout)] == [p["id"] for p in GOOD]
    assert "<stdin>:1: malformed JSON" in result.stderr
    assert "(if the input is query<TAB>document lines, use --input-format tsv)" in result.stderr
    result = cli("score", "--on-error", "skip", input=b"".join(bad))  # nothing good: it exited 0, as if all went well
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("skipped 4 bad lines:")
    assert result.stderr.splitlines()[-1] == "error: every line of the input was bad (4 skipped): no pair to score"
    result = cli("score", "--on-error", "maybe", input=GOOD_JSONL)
    assert result.exit_code == 2 and result.stderr == (
        "error: invalid value for '--on-error': 'maybe' is not one of 'fail', 'skip' (see qrr score -h)\n"
    )


def test_a_bad_line_after_results_says_they_stand(cli, tmp_path):
    # long enough that each pair is its own call (--batch-tokens 1): two results written before the bad line
    data = "".join(json.dumps({"query": "q", "document": c * 40}) + "\n" for c in "ab") + "{oops\n"
    result = cli("score", "--batch-tokens", "1", "-f", "json", input=data)
    assert result.exit_code == 2 and [r["index"] for r in json.loads(result.stdout)] == [0, 1]  # the array closed
    assert result.stderr == ("error: <stdin>:3: malformed JSON (unexpected character, expected a string key); the "
                             "results of the first 2 pairs were written; leave such lines out with --on-error "
                             "skip\n")  # fmt: skip
    out = tmp_path / "out.jsonl"
    result = cli("score", "--batch-tokens", "1", "--resume", str(out), input=data)
    assert result.stderr.endswith(f"the results of the first 2 pairs were written to {out}; mend it and run the "
                                  "same command to go on\n")  # fmt: skip
    assert len(jsonl(out.read_text())) == 2
    # mended, the run goes on from them, and a later bad line counts the pairs of both runs
    result = cli("score", "--batch-tokens", "1", "--resume", str(out), input=data.replace("{oops", json.dumps(
        {"query": "q", "document": "c" * 40})) + "{oops\n")  # fmt: skip
    assert result.stderr.endswith(f"the results of the first 3 pairs were written to {out}; mend it and run the "
                                  "same command to go on\n")  # fmt: skip
    assert [r["index"] for r in jsonl(out.read_text())] == [0, 1, 2]
    # a whole file that is no text after another's results: skipping leaves files out
    (tmp_path / "a.jsonl").write_text(data.replace("{oops\n", ""))
    (tmp_path / "b.jsonl").write_text(data, encoding="utf-16")
    result = cli("score", "--batch-tokens", "1", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert result.exit_code == 2 and len(jsonl(result.stdout)) == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'b.jsonl'}: ") and result.stderr.endswith(
        "the results of the first 2 pairs were written; leave such files out with --on-error skip\n")  # fmt: skip
    # to a file of JSON lines (`> FILE`): --resume goes on with it
    import subprocess
    import sys
    from pathlib import Path

    redirected = tmp_path / "redirected.jsonl"
    with redirected.open("w") as stdout:
        done = subprocess.run([sys.executable, "-m", "tests.fake_serve", "score", "--model", "fake", "--batch-tokens",
                               "1"], input=data, stdout=stdout, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert done.stderr.endswith(
        "the results of the first 2 pairs were written; mend it and go on from them with "
        "--resume FILE in place of > FILE, or leave such lines out with --on-error skip\n"
    )
    assert len(jsonl(redirected.read_text())) == 2
    # appended to (`>>`: another run's lines before them), --resume would refuse the file: not said
    with redirected.open("a") as stdout:
        done = subprocess.run([sys.executable, "-m", "tests.fake_serve", "score", "--model", "fake", "--batch-tokens",
                               "1"], input=data, stdout=stdout, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert done.stderr.endswith("the results of the first 2 pairs were written; leave such lines out with --on-error "
                                "skip\n")  # fmt: skip


def test_a_10_mb_document_is_truncated_and_counted(cli):
    big = "lorem ipsum dolor sit amet " * (10 * 2**20 // 27)
    data = json.dumps({"query": "q", "document": big}) + "\n" + json.dumps({"query": "q", "document": "short"}) + "\n"
    result = cli("score", "--max-length", "512", input=data)
    assert len(jsonl(result.stdout)) == 2
    assert result.stderr == "note: 1 document cut to --max-length 512 (<stdin>:1)\n"
    # the first three cut are named by their lines (-d documents are not: their query is -q's)
    many = "".join(json.dumps({"query": "q", "document": "word " * (300 if n % 2 else 5)}) + "\n" for n in range(10))
    result = cli("score", "--max-length", "100", input=many)
    assert result.stderr == "note: 5 documents cut to --max-length 100 (<stdin>:2, <stdin>:4, <stdin>:6, …)\n"
    result = cli("score", "--max-length", "100", "-q", "q", "-d", "word " * 300, "-d", "short")
    assert result.stderr == "note: 1 document cut to --max-length 100\n"


def test_inline_usage_errors(cli):
    for args, message in ((("-d", "x"), "-d/--document needs -q/--query"),
                          (("-q", "", "-d", "x"), "-q/--query is blank (''; an unset shell variable?): give the query"),
                          (("-q", "x", "-d", " "), "-d/--document 1 is blank (' '; an unset shell variable?): give its "
                           "text")):  # fmt: skip
        result = cli("score", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {message}\n")


def test_the_vllm_recipe(cli, tiny_model, tiny):
    data = "".join(json.dumps(p) + "\n" for p in PAIRS)
    rows = jsonl(ok(cli("score", "--recipe", "vllm", input=data)))
    want = Reranker("fake", recipe="vllm").score([(p["query"], p["document"], p.get("instruction")) for p in PAIRS])
    assert [r["score"] for r in rows] == want
    assert want != Reranker("fake").score([(p["query"], p["document"], p.get("instruction")) for p in PAIRS])
    rows = jsonl(ok(cli("score", "--recipe", "VLLM", input=data, model=tiny_model)))
    real = tiny(recipe="vllm").score([(p["query"], p["document"], p.get("instruction")) for p in PAIRS])
    assert [r["score"] for r in rows] == pytest.approx(real, abs=1e-6)
    assert "'sglang' is not one of 'transformers', 'vllm', 'vllm-template'" in said(
        cli("score", "--recipe", "sglang", input=data)
    )


# SIGHUP: a terminal or SSH session closed (unless nohup); SIGUSR1, SIGUSR2: Slurm's --signal before a job's time is up
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"])
def test_a_pause_in_the_input_writes_the_results_so_far(stop):
    """tail -f log | qrr score printed nothing until 1,024 lines had come, or the input's end."""
    import select
    import subprocess
    import sys
    from pathlib import Path

    command = [sys.executable, "-m", "tests.fake_serve", "score", "--model", "fake", "--device", "cpu"]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        process.stdin.write("q\tfirst\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 60)  # a test that fails, not one that hangs
        assert ready, process.stderr.read() if process.poll() is not None else "no result while the input paused"
        assert json.loads(process.stdout.readline())["index"] == 0  # before the input goes on, or ends
        process.stdin.write("q\tsecond\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["index"] == 1
        # stopped while the input pauses, its reading thread waiting on stdin: Python's shutdown aborted there
        process.send_signal(getattr(signal, stop))  # SIGHUP, SIGUSR1 ended it at once, without a word (129, 138)
        assert process.wait(60) == 143
        assert process.stderr.read() == ("error: terminated after writing the results of 2 pairs; --resume OUT writes "
                                         "results that a later run goes on with\n")  # fmt: skip
    finally:
        process.kill()


def test_one_query_against_a_file_of_documents_scores_as_rank_does_and_goes_on(cli, fake, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{n}", "text": f"document {n} " + "x " * n, "url": f"u{n}"}) + "\n"
                            for n in range(40)))  # fmt: skip
    scored = jsonl(ok(cli("score", "-q", "the query", str(docs))))
    ranked = jsonl(ok(cli("rank", "-q", "the query", str(docs), "-f", "jsonl")))
    assert [r["index"] for r in scored] == list(range(40)) and [r["id"] for r in scored] == [f"d{n}" for n in range(40)]
    assert {r["index"]: r["score"] for r in scored} == {r["index"]: r["score"] for r in ranked}  # a ranking's scores
    assert jsonl(ok(cli("score", "-q", "the query", "--with-fields", str(docs))))[3]["url"] == "u3"
    # from stdin, plain text lines (blank ones are no documents, as qrr rank reads them)
    rows = jsonl(ok(cli("score", "-q", "q", input="alpha\nbeta\n\ngamma\n")))
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["score"] for r in rows] == Reranker("fake").score([("q", "alpha"), ("q", "beta"), ("q", "gamma")])
    # interrupted, then gone on with: the same results as one run
    name, _ = fake(interrupt_after=20)
    out = tmp_path / "out.jsonl"
    result = cli("score", "-q", "the query", str(docs), "--batch-tokens", "1", "--resume", str(out), model=name)
    assert result.exit_code == 130 and 0 < len(out.read_text().splitlines()) < 40
    result = cli("score", "-q", "the query", str(docs), "--resume", str(out))
    assert (result.exit_code, result.stderr) == (0, f"resuming {out}: 20 pairs done\n")
    assert jsonl(out.read_text()) == scored
    # its query too long for --max-length is every pair's fault, not a line's to skip
    result = cli("score", "-q", "word " * 200, str(docs), "--max-length", "128", "--on-error", "skip")
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {docs}:1: the query and instruction take "), (
        result.stderr
    )


def test_documents_of_other_fields_are_scored_against_a_query_and_gone_on_with(cli, fake, tmp_path):
    docs = tmp_path / "docs.jsonl"  # ids in doc_id, texts in contents: as a corpus dump may have them
    docs.write_text("".join(json.dumps({"doc_id": f"d{n}", "contents": f"document {n}", "url": f"u{n}"}) + "\n"
                            for n in range(30)))  # fmt: skip
    result = cli("score", "-q", "q", str(docs))
    assert result.exit_code == 2 and result.stderr == (
        f'error: {docs}:1: missing field "text"; the object\'s text is '
        'in "contents", "url": name one with --text-field\n'  # its id is no text to name
    )
    whole = jsonl(ok(cli("score", "-q", "q", str(docs), "--text-field", "contents", "--with-fields")))
    assert whole[0] == {"index": 0, "id": "d0", "doc_id": "d0", "score": whole[0]["score"], "url": "u0"}
    name, _ = fake(interrupt_after=10)
    out = tmp_path / "out.jsonl"
    args = ("score", "-q", "q", str(docs), "--text-field", "contents", "--with-fields", "--resume", str(out))
    assert cli(*args, "--batch-tokens", "1", model=name).exit_code == 130
    result = cli(*args)  # its doc_id is an id of the results, as a pair's is: it was taken for another input's
    assert result.exit_code == 0 and re.fullmatch(rf"resuming {re.escape(str(out))}: \d pairs done\n", result.stderr)
    assert jsonl(out.read_text()) == whole
    result = cli("score", "pairs.jsonl", "--text-field", "contents")
    assert (result.exit_code, result.stderr) == (2, "error: --text-field: only with -q, where FILEs hold documents\n")


def test_documents_forced_to_text_against_a_query_from_a_file_and_stdin(cli, tmp_path):
    prose = '["a list", "written as prose"]\nplain words\n'  # its first line parses as JSON: auto reads JSON
    docs = tmp_path / "notes.txt"
    docs.write_text(prose)
    result = cli("score", "-q", "q", str(docs))
    assert result.exit_code == 2 and result.stderr.endswith("(if the input is plain text, use --input-format text)\n")
    expected = Reranker("fake").score([("q", '["a list", "written as prose"]'), ("q", "plain words")])
    for args, given in (((str(docs),), None), ((), prose), (("-",), prose)):
        rows = jsonl(ok(cli("score", "-q", "q", "--input-format", "text", *args, input=given)))
        assert [(r["index"], r["score"]) for r in rows] == [(0, expected[0]), (1, expected[1])]
    result = cli("score", "--input-format", "text", str(docs))  # pairs are never lines of text
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --input-format text reads FILEs of documents, a line each, "
        "scored against -q's query; pairs are JSON lines or TSV\n",
    )
    # -d's documents come first, then FILE's, as qrr rank reads them
    rows = jsonl(ok(cli("score", "-q", "q", "-d", "first", "--input-format", "text", str(docs))))
    assert [r["score"] for r in rows] == Reranker("fake").score([("q", "first")]) + expected
