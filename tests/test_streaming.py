"""Never lose a result: streaming, bad input, pipes, interrupts and memory limits."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest
import torch

import qrr.cli.base
import qrr.cli.score
import qrr.reranker
from qrr import Reranker
from qrr.engine import Engine
from qrr.errors import InputError, OutOfMemoryError

GOOD = [
    {"id": f"p{i}", "query": f"query {i % 3}", "document": f"document number {i} " * (1 + i % 5)} for i in range(11)
]
GOOD_JSONL = "".join(json.dumps(p) + "\n" for p in GOOD)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(qrr.reranker, "CHUNK", 3)
    monkeypatch.setattr(qrr.cli.score, "CHUNK", 3)


@pytest.fixture(scope="module")
def expected(reranker):
    return reranker.score([(p["query"], p["document"]) for p in GOOD])


def lines(result):
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines()]


# ---------------------------------------------------------------------------------------------- streaming


def test_score_in_chunks_equals_score_at_once(cli, small_chunks, expected):
    rows = lines(cli("score", input=GOOD_JSONL))
    assert [r["index"] for r in rows] == list(range(len(GOOD)))
    assert [r["id"] for r in rows] == [p["id"] for p in GOOD]
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-6)
    array = json.loads(cli("score", "-f", "json", input=GOOD_JSONL).stdout)
    assert [r["score"] for r in array] == pytest.approx(expected, abs=1e-6)
    tsv = cli("score", "-f", "tsv", input=GOOD_JSONL).stdout.splitlines()
    assert tsv[0] == "index\tid\tscore" and len(tsv) == len(GOOD) + 1


def test_rank_in_chunks_equals_rank_at_once(reranker, small_chunks):
    docs = [p["document"] for p in GOOD] + [GOOD[0]["document"]]  # a tie with document 0
    ids = [f"d{i}" for i in range(len(docs))]
    whole = reranker.rank("query 1", docs, ids=ids)
    assert reranker.rank("query 1", iter(docs), ids=iter(ids)) == whole
    for k in (1, 3, len(docs)):
        assert reranker.rank("query 1", iter(docs), top_k=k, ids=iter(ids)) == whole[:k]
    assert [r.text for r in reranker.rank("query 1", docs, keep_text=False)] == [None] * len(docs)
    with pytest.raises(InputError, match="fewer ids"):
        reranker.rank("q", docs, ids=ids[:-4])


def test_results_are_flushed_before_an_interrupt(cli, small_chunks, monkeypatch):
    calls = []
    score = Reranker.score

    def interrupted_on_the_third_chunk(self, pairs, progress=None):
        calls.append(len(pairs))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return score(self, pairs, progress)

    monkeypatch.setattr(Reranker, "score", interrupted_on_the_third_chunk)
    result = cli("score", input=GOOD_JSONL)
    assert result.exit_code == 130
    assert result.stderr.strip() == "error: interrupted"
    assert result.stdout.endswith("\n")
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == list(range(6))


def test_head_closing_the_pipe_exits_quietly(tiny_model, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"document {i} about something\n" for i in range(3000)))
    args = [sys.executable, "-m", "qrr", "rank", "-q", "q", str(docs), "--model", str(tiny_model), "--device", "cpu"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(timeout=120) == 0
    assert json.loads(first)["rank"] == 1
    assert proc.stderr.read() == b""


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"query": "q", "document": "d"}\n{"query": "q", "document": \n', "<stdin>:2: malformed JSON"),
        (b'{"query": "q"}\n', '<stdin>:1: missing field "document"'),
        (b'{"query": "q", "document": 7}\n', 'field "document" must be a string, not a number'),
        (
            b'{"query": "q", "document": "d"}\n{"query": "q", "document": "\xe9t\xe9"}\n',
            "<stdin>:2: invalid UTF-8 at byte 28",
        ),
        (b"q\td\nq\tnul\x00here\n", "<stdin>:2: NUL byte at byte 5"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, data, message):
    result = cli("score", input=data)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: {message}" or message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bom_crlf_and_blank_lines_are_accepted(cli, expected):
    data = ("\ufeff" + GOOD_JSONL.replace("\n", "\r\n\r\n")).encode()
    rows = lines(cli("score", input=data))
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-6)


def test_empty_input_is_no_output_and_a_note_with_v(cli):
    for data in ("", "\n\n  \n"):
        result = cli("score", input=data)
        assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    result = cli("rank", "-q", "q", "-v", input="")
    assert result.exit_code == 0 and result.stdout == "" and "no documents in the input" in result.stderr


def test_on_error_skip_scores_the_rest_and_lists_the_bad_lines(cli, expected):
    bad = [b"{oops\n", b'{"query": "q"}\n', b"\xff\xfe\n", b'{"query": "q", "document": "a\x00b"}\n']
    good = [json.dumps(p).encode() + b"\n" for p in GOOD]
    data = b"".join(good[:4] + bad[:2] + good[4:8] + bad[2:] + good[8:])
    result = cli("score", "--on-error", "skip", input=data)
    rows = lines(result)
    assert [r["id"] for r in rows] == [p["id"] for p in GOOD]
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-6)
    assert "skipped 4 bad line(s):" in result.stderr
    for where in ("<stdin>:5: malformed JSON", '<stdin>:6: missing field "document"', "<stdin>:11: invalid UTF-8",
                  "<stdin>:12: NUL byte"):  # fmt: skip
        assert where in result.stderr
    result = cli("rank", "-q", "q", "--on-error", "skip", input=b'{"text": "a"}\n{"text": 3}\n"b"\n')
    assert [r["index"] for r in lines(result)] != [] and "skipped 1 bad line(s)" in result.stderr
    result = cli("score", "--on-error", "maybe", input=GOOD_JSONL)
    assert result.exit_code == 2 and "--on-error maybe: use fail or skip" in result.stderr


def test_a_10_mb_document_is_truncated_and_counted(cli):
    big = "lorem ipsum dolor sit amet " * (10 * 2**20 // 27)
    data = json.dumps({"query": "q", "document": big}) + "\n" + json.dumps({"query": "q", "document": "short"}) + "\n"
    result = cli("score", "--max-length", "512", input=data)
    assert len(lines(result)) == 2
    assert "note: 1 document(s) cut to --max-length 512" in result.stderr


# ------------------------------------------------------------------------------------------------- memory


def test_cuda_out_of_memory_halves_the_budget_and_retries(reranker, monkeypatch, caplog):
    engine = reranker.engine
    real = Engine.log_odds
    seen = []

    def log_odds(self, rows, prefix=None, prefix_len=0):
        seen.append(len(rows))
        if len(rows) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        device, self.device = self.device, torch.device("cpu")  # the "GPU" computes on the CPU
        try:
            return real(self, rows, prefix, prefix_len)
        finally:
            self.device = device

    monkeypatch.setattr(Engine, "log_odds", log_odds)
    monkeypatch.setattr(engine, "device", torch.device("cuda"))  # only its type is read on this path
    monkeypatch.setattr(engine, "budget_cap", 2**62)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    sequences = [e.ids for e in reranker.prompter.encode([("q", f"doc {i}", None) for i in range(8)])]
    with caplog.at_level("WARNING", logger="qrr"):
        scores = engine.score(sequences, batch_tokens=10_000)
    assert "retrying with --batch-tokens" in caplog.text
    # every row scored exactly once, in the batches that fit after halving
    assert sum(n for n in seen if n <= 2) == 8 and engine.budget_cap < 10_000
    assert [n for n in seen if n > 2] == sorted((n for n in seen if n > 2), reverse=True)
    monkeypatch.setattr(engine, "device", torch.device("cpu"))
    expected = engine.score(sequences, batch_tokens=64)
    assert scores == pytest.approx(expected, abs=1e-6)


def test_out_of_memory_on_cpu_is_an_error(reranker, monkeypatch):
    def boom(self, rows, prefix=None, prefix_len=0):
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(Engine, "log_odds", boom)
    with pytest.raises(OutOfMemoryError, match="lower --batch-tokens"):
        reranker.score([("q", "d")])


def test_a_cpu_budget_that_cannot_fit_is_refused_before_starting(tiny_model, monkeypatch):
    import qrr.engine

    monkeypatch.setattr(qrr.engine, "available_memory", lambda device: 2**30)
    Reranker(str(tiny_model), device="cpu", batch_tokens=4096)
    with pytest.raises(InputError, match=r"--batch-tokens 100000000 needs about .* GiB for activations"):
        Reranker(str(tiny_model), device="cpu", batch_tokens=100_000_000)


def test_results_go_to_stdout_while_a_progress_bar_is_drawn(cli, small_chunks, monkeypatch):
    import io as stdio

    from rich.console import Console

    drawn = stdio.StringIO()
    monkeypatch.setattr(qrr.cli.base, "stderr", Console(file=drawn, force_terminal=True, width=100))
    result = cli("score", input=GOOD_JSONL)
    assert [r["index"] for r in lines(result)] == list(range(len(GOOD)))
    assert '"score"' not in drawn.getvalue()
    result = cli("rank", "-q", "q", input=GOOD_JSONL.replace('"document"', '"text"'))
    assert len(lines(result)) == len(GOOD) and '"rank"' not in drawn.getvalue()
