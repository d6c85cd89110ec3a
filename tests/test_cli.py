"""The CLI through typer's CliRunner: every input format as a file, stdin and arguments; every output format."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from qrr.cli import app

QUERY = "what is the capital of China?"
DOCS = [
    {"id": "a", "text": "The capital of China is Beijing."},
    {"id": "b", "text": "Paris is the capital of France."},
    {"id": "c", "text": "Gravity pulls bodies together."},
]
PAIRS = [
    {"qid": "q1", "docid": "a", "query": QUERY, "document": DOCS[0]["text"]},
    {"qid": "q1", "docid": "b", "query": QUERY, "document": DOCS[1]["text"]},
    {"qid": "q2", "docid": "c", "query": "explain gravity", "document": DOCS[2]["text"], "instruction": "Judge"},
]


def jsonl(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def ranked(reranker):
    """The ranking the core gives, which every CLI input path must reproduce."""
    return reranker.rank(QUERY, [d["text"] for d in DOCS], ids=[d["id"] for d in DOCS])


@pytest.fixture(scope="module")
def pair_scores(reranker):
    return reranker.score([(p["query"], p["document"], p.get("instruction")) for p in PAIRS])


def ok(result):
    assert result.exit_code == 0, result.output
    assert result.stderr == "", result.stderr
    return result.stdout


# ------------------------------------------------------------------------------------------------- rank


def check_rank(stdout, ranked, with_ids=True):
    rows = jsonl(stdout)
    assert [r["rank"] for r in rows] == list(range(1, len(ranked) + 1))
    assert [r["index"] for r in rows] == [r.index for r in ranked]
    assert [r["score"] for r in rows] == pytest.approx([r.score for r in ranked], abs=1e-6)
    if with_ids:
        assert [r["id"] for r in rows] == [r.id for r in ranked]
    else:
        assert all("id" not in r for r in rows)
    assert all("text" not in r for r in rows)


def test_rank_jsonl_file_and_stdin(cli, tmp_path, ranked):
    data = "".join(orjson.dumps(d).decode() + "\n" for d in DOCS)
    (tmp_path / "docs.jsonl").write_text(data)
    check_rank(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.jsonl"))), ranked)
    check_rank(ok(cli("rank", "-q", QUERY, input=data)), ranked)
    check_rank(ok(cli("rank", "-q", QUERY, "-", input=data)), ranked)


def test_rank_text_file_stdin_and_arguments(cli, tmp_path, ranked):
    data = "\n".join(d["text"] for d in DOCS) + "\n"
    (tmp_path / "docs.txt").write_text(data)
    check_rank(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.txt"))), ranked, with_ids=False)
    check_rank(ok(cli("rank", "-q", QUERY, input=data)), ranked, with_ids=False)
    args = [a for d in DOCS for a in ("-d", d["text"])]
    check_rank(ok(cli("rank", "-q", QUERY, *args)), ranked, with_ids=False)


def test_rank_json_array_and_string_lines(cli, tmp_path, ranked):
    (tmp_path / "docs.json").write_text(json.dumps(DOCS))
    check_rank(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.json"))), ranked)
    check_rank(ok(cli("rank", "-q", QUERY, input=json.dumps(DOCS))), ranked)
    strings = "".join(json.dumps(d["text"]) + "\n" for d in DOCS)
    check_rank(ok(cli("rank", "-q", QUERY, input=strings)), ranked, with_ids=False)


def test_rank_field_mapping(cli, ranked):
    data = "".join(json.dumps({"_id": d["id"], "body": d["text"]}) + "\n" for d in DOCS)
    check_rank(ok(cli("rank", "-q", QUERY, "--text-field", "body", "--id-field", "_id", input=data)), ranked)


def test_rank_top_k_and_with_text(cli, ranked):
    data = json.dumps(DOCS)
    rows = jsonl(ok(cli("rank", "-q", QUERY, "-k", "2", "--with-text", input=data)))
    assert [r["index"] for r in rows] == [r.index for r in ranked[:2]]
    assert [r["text"] for r in rows] == [r.text for r in ranked[:2]]


def test_rank_output_formats(cli, ranked):
    data = json.dumps(DOCS)
    rows = json.loads(ok(cli("rank", "-q", QUERY, "--format", "json", input=data)))
    assert [r["id"] for r in rows] == [r.id for r in ranked]
    tsv = ok(cli("rank", "-q", QUERY, "-f", "tsv", "--with-text", input=data)).splitlines()
    assert tsv[0] == "rank\tindex\tscore\tid\ttext"
    assert tsv[1].split("\t")[3:] == [ranked[0].id, ranked[0].text]
    table = ok(cli("rank", "-q", QUERY, "-f", "table", input=data))
    assert "rank" in table and "score" in table and f"{ranked[0].score:.4f}" in table
    assert ranked[0].text[:20] in table


# ------------------------------------------------------------------------------------------------ score


def check_score(stdout, scores, ids=True):
    rows = jsonl(stdout)
    assert [r["index"] for r in rows] == list(range(len(scores)))
    assert [r["score"] for r in rows] == pytest.approx(scores, abs=1e-6)
    if ids:
        assert [(r["qid"], r["docid"]) for r in rows] == [(p["qid"], p["docid"]) for p in PAIRS]
        assert all(set(r) == {"index", "qid", "docid", "score"} for r in rows)


def test_score_jsonl_file_and_stdin(cli, tmp_path, pair_scores):
    data = "".join(json.dumps(p) + "\n" for p in PAIRS)
    (tmp_path / "pairs.jsonl").write_text(data)
    check_score(ok(cli("score", str(tmp_path / "pairs.jsonl"))), pair_scores)
    check_score(ok(cli("score", input=data)), pair_scores)


def test_score_tsv_file_and_stdin(cli, tmp_path, pair_scores):
    data = "".join(f"{p['query']}\t{p['document']}\n" for p in PAIRS[:2])
    (tmp_path / "pairs.tsv").write_text(data)
    check_score(ok(cli("score", str(tmp_path / "pairs.tsv"))), pair_scores[:2], ids=False)
    check_score(ok(cli("score", input=data)), pair_scores[:2], ids=False)


def test_score_arguments_and_default_instruction(cli, pair_scores):
    check_score(ok(cli("score", "-q", QUERY, "-d", DOCS[0]["text"], "-d", DOCS[1]["text"])), pair_scores[:2],
                ids=False)  # fmt: skip
    # --instruction is the default for pairs that carry none, so it changes these scores
    rows = jsonl(ok(cli("score", "-q", QUERY, "-d", DOCS[0]["text"], "--instruction", "Judge")))
    assert rows[0]["score"] != pytest.approx(pair_scores[0], abs=1e-6)


def test_score_output_formats(cli, pair_scores):
    data = "".join(json.dumps(p) + "\n" for p in PAIRS)
    rows = json.loads(ok(cli("score", "-f", "json", input=data)))
    assert [r["score"] for r in rows] == pytest.approx(pair_scores, abs=1e-6)
    tsv = ok(cli("score", "-f", "tsv", input=data)).splitlines()
    assert tsv[0] == "index\tqid\tdocid\tscore" and len(tsv) == 4
    table = ok(cli("score", "-f", "table", input=data))
    assert "qid" in table and f"{pair_scores[2]:.4f}" in table


def test_empty_input_prints_nothing(cli):
    assert ok(cli("score", input="")) == ""
    assert ok(cli("rank", "-q", "x", input="\n\n")) == ""


def test_verbose_reports_on_stderr_only(cli):
    result = cli("rank", "-q", QUERY, "-d", "doc", "-v")
    assert result.exit_code == 0
    assert "scored 1 pairs" in result.stderr and "on cpu (fp32)" in result.stderr
    assert len(jsonl(result.stdout)) == 1


def test_truncation_is_noted(cli):
    result = cli("rank", "-q", "q", "-d", "word " * 200, "--max-length", "100")
    assert result.exit_code == 0
    assert "1 document(s) cut to --max-length 100" in result.stderr


# ----------------------------------------------------------------------------------------------- errors


def error(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    for fragment in fragments:
        assert fragment in line, line


def test_malformed_json_names_file_and_line(cli, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"query": "q", "document": "d"}\n{"query": \n')
    error(cli("score", str(tmp_path / "bad.jsonl")), 2, "bad.jsonl:2", "malformed JSON")
    error(cli("rank", "-q", "q", input='{"text": "a"}\n{oops}\n'), 2, "<stdin>:2", "malformed JSON")


def test_missing_field_is_named(cli):
    error(cli("score", input='{"query": "q"}\n'), 2, '<stdin>:1: missing field "document"')
    error(cli("rank", "-q", "q", input='{"body": "x"}\n'), 2, 'missing field "text"')


def test_usage_errors(cli):
    error(cli("rank", "-q", "q", "-d", "x", "--format", "xml"), 2, "--format xml")
    error(cli("rank", "-q", "q", "-d", "x", "--input-format", "csv"), 2, "--input-format csv")
    error(cli("score", "-d", "x"), 2, "needs -q/--query")
    error(cli("score", "-q", "x"), 2, "needs at least one -d")
    error(cli("rank", "-q", "q", "-d", "x", "--device", "cuda:0"), 2, "no CUDA device")
    error(cli("rank", "-q", "q", "-d", "x", "--dtype", "int4"), 2, "unknown dtype")
    error(cli("rank", "-q", "q" * 400, "-d", "x", "--max-length", "60"), 2, "raise --max-length")
    error(cli("rank", "-q", "q", "nope.jsonl"), 2, "nope.jsonl: no such file")


def test_no_input_on_a_terminal_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setattr("qrr.cli.base.stdin_is_terminal", lambda: True)
    error(cli("rank", "-q", "q"), 2, "no input")


def test_missing_model_is_a_runtime_error(cli, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    error(cli("rank", "-q", "q", "-d", "x", "--model", "8b", model=False), 1, "qrr download 8b", "--model PATH")
    monkeypatch.setenv("QRR_MODEL", "4b")
    error(cli("rank", "-q", "q", "-d", "x", model=False), 1, "Qwen/Qwen3-Reranker-4B")


def test_debug_shows_the_traceback(cli, monkeypatch):
    from qrr.errors import InputError

    monkeypatch.setenv("QRR_DEBUG", "1")
    result = cli("score", input="no tab here\n")
    assert isinstance(result.exception, InputError)


def test_click_usage_errors_exit_2(cli):
    result = cli("rank", "-d", "x")  # no --query
    assert result.exit_code == 2 and "--query" in result.stderr


def test_version_and_module_entry_point():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("qrr ")
    out = subprocess.run([sys.executable, "-m", "qrr", "--help"], capture_output=True, text=True, check=True)
    assert "rank" in out.stdout and "score" in out.stdout


def test_help_does_not_import_torch():
    code = (
        "import sys; from qrr.cli import app; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_out_of_memory_is_a_runtime_error(cli, monkeypatch):
    import torch

    from qrr.engine import Engine

    def boom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Engine, "log_odds", boom)
    error(cli("rank", "-q", "q", "-d", "x", "--batch-tokens", "999"), 1, "out of memory", "lower --batch-tokens")
