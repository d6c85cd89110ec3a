"""qrr rerank: reranking a first-stage TREC run with a BEIR corpus and queries, resuming, errors. The fake model
scores (the command passes the core's scores through); one test runs the tiny transformer."""

from __future__ import annotations

import io as stdio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from rich.console import Console

import qrr.cli.render
from qrr import Reranker, formats, metrics

ROOT = Path(__file__).resolve().parent.parent


def ok(result):
    """stdout of a command that succeeded (stderr may hold notes: resuming, progress lines)."""
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def rerank_args(beir_dir):
    return [str(beir_dir / "bm25.trec"), "--corpus", str(beir_dir / "corpus.jsonl"),
            "--queries", str(beir_dir / "queries.jsonl")]  # fmt: skip


def failed(result, code=2):
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def expected_run(beir_dir, reranker, depth=5):
    """Each query's top ``depth`` of the run, scored by the core on title + " " + text, best first."""
    run = formats.read_run(str(beir_dir / "bm25.trec"))
    queries = formats.read_queries(str(beir_dir / "queries.jsonl"))
    corpus = {}
    for line in (beir_dir / "corpus.jsonl").read_text().splitlines():
        doc = orjson.loads(line)
        corpus[doc["_id"]] = f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]
    out = {}
    for qid, docs in run.items():
        top = sorted(docs, key=lambda d: -docs[d])[:depth]  # equal scores in the run's order
        scored = dict(zip(top, reranker.score([(queries[qid], corpus[d]) for d in top]), strict=True))
        out[qid] = sorted(scored.items(), key=lambda p: (p[1], p[0]), reverse=True)  # ties as trec_eval takes them
    return out


@pytest.fixture(scope="module")
def expected(beir_dir):
    return expected_run(beir_dir, Reranker("fake"))


def parse_trec(text: str):
    rows = [line.split() for line in text.splitlines()]
    assert all(len(r) == 6 and r[1] == "Q0" for r in rows)
    return rows


def same_run(a: str, b: str) -> None:
    """Two outputs hold the same results: the same queries in the same order, each with the same documents and
    scores (to 1e-6: a batch of other shapes may round differently in the last bits)."""
    run_a, run_b = (formats.read_run(path) for path in (a, b))
    assert list(run_a) == list(run_b)
    for qid, docs in run_a.items():
        assert docs == pytest.approx(run_b[qid], abs=1e-6)


def check_trec(text, expected, tag="qrr"):
    rows = parse_trec(text)
    by_query: dict[str, list] = {}
    for qid, _, docid, rank, score, row_tag in rows:
        assert row_tag == tag
        by_query.setdefault(qid, []).append((docid, int(rank), float(score)))
    assert list(by_query) == list(expected)  # the run's query order
    for qid, got in by_query.items():
        assert [d for d, _, _ in got] == [d for d, _ in expected[qid]]
        assert [r for _, r, _ in got] == list(range(1, len(got) + 1))
        assert [s for _, _, s in got] == pytest.approx([s for _, s in expected[qid]], abs=1e-6)


def test_rerank_a_run_from_a_file_and_from_stdin(cli, rerank_args, beir_dir, expected):
    check_trec(ok(cli("rerank", *rerank_args, "--depth", "5")), expected)
    stdin_args = ["-", *rerank_args[1:]]
    check_trec(ok(cli("rerank", *stdin_args, "--depth", "5", input=(beir_dir / "bm25.trec").read_text())), expected)


def test_a_beir_folder_names_corpus_and_queries(cli, beir_dir, rerank_args, expected):
    check_trec(ok(cli("rerank", str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "5")), expected)
    assert failed(cli("rerank", *rerank_args, "--beir", str(beir_dir))) == (
        "error: --corpus, --queries: not with --beir, which names the corpus and queries\n"
    )
    assert failed(cli("rerank", *rerank_args[:3], "--beir", str(beir_dir))) == (
        "error: --corpus: not with --beir, which names the corpus and queries\n"
    )


def test_a_beir_folder_without_qrels(cli, beir_dir, tmp_path, expected):
    copy = tmp_path / "beir"
    shutil.copytree(beir_dir, copy)
    shutil.rmtree(copy / "qrels")  # a rerank reads no judgments
    check_trec(ok(cli("rerank", str(copy / "bm25.trec"), "--beir", str(copy), "--depth", "5")), expected)


def test_the_real_model_end_to_end(cli, rerank_args, beir_dir, tiny_model, reranker):
    check_trec(ok(cli("rerank", *rerank_args, "--depth", "3", model=tiny_model)), expected_run(beir_dir, reranker, 3))


def test_jsonl_output_top_k_and_tag(cli, rerank_args, expected):
    rows = [orjson.loads(line) for line in ok(cli("rerank", *rerank_args, "--depth", "5", "-f", "jsonl")).splitlines()]
    assert set(rows[0]) == {"qid", "docid", "rank", "score"}
    assert [(r["qid"], r["docid"]) for r in rows] == [(q, d) for q, pairs in expected.items() for d, _ in pairs]
    top2 = {q: pairs[:2] for q, pairs in expected.items()}
    check_trec(ok(cli("rerank", *rerank_args, "--depth", "5", "-k", "2", "--tag", "mine")), top2, tag="mine")
    # -k past --depth: each query gets --depth results, as a note says
    result = cli("rerank", *rerank_args, "--depth", "5", "-k", "7")
    check_trec(ok(result), expected)
    assert (
        result.stderr.splitlines()[0]
        == "note: -k 7 is past --depth 5: each query gets at most 5 results (--depth 7 reranks 7)"
    )
    assert "note" not in cli("rerank", *rerank_args, "--depth", "5", "-k", "5").stderr


def test_equal_scores_are_taken_in_the_runs_order_and_written_as_eval_reads_them(cli, tmp_path):
    from qrr import metrics

    # a run ranked by its rank column alone, and three documents of one text (so of one score)
    (tmp_path / "corpus.jsonl").write_bytes(b"".join(orjson.dumps({"_id": d, "text": "the same passage"}) + b"\n"
                                                     for d in ("d01", "d02", "d03", "d30", "d31")))  # fmt: skip
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "a passage"}\n')
    (tmp_path / "run.trec").write_text("".join(f"q Q0 {d} {n} 0 bm25\n" for n, d in
                                               enumerate(("d01", "d02", "d03", "d30", "d31"), 1)))  # fmt: skip
    args = [str(tmp_path / "run.trec"), "--corpus", str(tmp_path / "corpus.jsonl"), "--queries",
            str(tmp_path / "queries.jsonl"), "--depth", "3"]  # fmt: skip
    rows = parse_trec(ok(cli("rerank", *args)))
    # the run's first three (trec_eval's order took d31, d30, d03), written by docid, descending, as eval reads ties
    assert [(d, r) for _, _, d, r, _, _ in rows] == [("d03", "1"), ("d02", "2"), ("d01", "3")]
    (tmp_path / "out.trec").write_text(ok(cli("rerank", *args)))
    evaluated = metrics.evaluate({"q": {"d01": 1}}, formats.read_run(str(tmp_path / "out.trec")), "mrr")
    assert evaluated.means == {"mrr": 1 / 3}  # the rank the file gives d01


def test_depth_defaults_to_100(cli, rerank_args):
    rows = parse_trec(ok(cli("rerank", *rerank_args)))
    assert len(rows) == 5 * 8  # every document of the run (8 a query, fewer than 100)


@pytest.mark.parametrize("fmt", ["trec", "jsonl"])
def test_resume_goes_on_from_any_cut(cli, rerank_args, tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    ok(cli("rerank", *rerank_args, "--depth", "4", "-f", fmt, "--resume", str(out)))
    full = out.read_bytes()
    whole = tmp_path / f"whole.{fmt}"
    whole.write_bytes(full)
    lines = full.splitlines(keepends=True)
    cuts = {0, len(full) // 3, len(lines[0]), len(lines[0]) + 5, len(b"".join(lines[:4])), len(b"".join(lines[:4])) + 5,
            len(b"".join(lines[:6])) + 3, len(full)}  # fmt: skip
    for cut in sorted(cuts):
        out.write_bytes(full[:cut])
        result = cli("rerank", *rerank_args, "--depth", "4", "--resume", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout == ""  # results go to OUT
        same_run(str(out), str(whole))
        if cut:
            assert "resuming" in result.stderr
        # what is said of the cut: a query to rerank again, or only a half-written line after a finished one
        if cut == len(b"".join(lines[:4])) + 5:
            assert f"{out}: its last line was cut off mid-write and is dropped" in result.stderr
        elif cut == len(lines[0]) + 5:
            assert f"{out}: the last query was unfinished; it is reranked again" in result.stderr
    # a machine's crash: NULs where its last writes were, from within a line (said as a line cut mid-write)
    for cut in (len(b"".join(lines[:4])) + 5, len(full) - 3):
        out.write_bytes(full[:cut] + b"\0" * 5000)
        result = cli("rerank", *rerank_args, "--depth", "4", "--resume", str(out))
        assert result.exit_code == 0, result.output
        same_run(str(out), str(whole))
        assert result.stderr.startswith(f"{out}: it ended in 5,000 zero bytes, what a machine's crash leaves")
        assert "cut off mid-write" not in result.stderr
    not_ours = tmp_path / "empty.db"  # no run's, and NULs end it: refused, and left as it was
    not_ours.write_bytes(b"SQLite format 3\0" + b"\0" * 4080)
    result = cli("rerank", *rerank_args, "--depth", "4", "--resume", str(not_ours))
    assert result.exit_code == 2 and f"{not_ours}:1: not a line of a run qrr writes" in result.stderr, result.stderr
    assert not_ours.read_bytes() == b"SQLite format 3\0" + b"\0" * 4080


def with_the_rest(beir_dir, expected):
    """``expected`` with each query's other first-stage results below, scored their first-stage rank negated."""
    run = formats.read_run(str(beir_dir / "bm25.trec"))
    out = {}
    for qid, best in expected.items():
        order = metrics.ranking(run[qid])  # trec_eval's order of the first stage
        reranked = {d for d, _ in best}
        out[qid] = best + [(d, -float(n)) for n, d in enumerate(order, 1) if d not in reranked]
    return out


def test_keep_rest_writes_the_first_stages_rest_below_the_reranked(cli, rerank_args, beir_dir, tmp_path):
    expected = with_the_rest(beir_dir, expected_run(beir_dir, Reranker("fake"), 2))
    assert any(len(best) > 2 for best in expected.values())  # some query has a rest
    check_trec(ok(cli("rerank", *rerank_args, "--depth", "2", "--keep-rest")), expected)
    stdin_args = ["-", *rerank_args[1:]]
    run = (beir_dir / "bm25.trec").read_text()
    check_trec(ok(cli("rerank", *stdin_args, "--depth", "2", "--keep-rest", input=run)), expected)
    # every document of the run, so no -k
    assert failed(cli("rerank", *rerank_args, "--keep-rest", "-k", "3")) == (
        "error: -k/--top-k: not with --keep-rest, which writes every document of the run\n"
    )
    # a resumed file goes on with the rest too, from a cut in a query's rest; without --keep-rest it is refused
    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--depth", "2", "--keep-rest", "--resume", str(out)))
    whole = out.read_text()
    lines = whole.splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if float(line.split()[4]) < 0) + 1  # a query's first rest line
    out.write_text("".join(lines[:cut]))
    result = cli("rerank", *rerank_args, "--depth", "2", "--keep-rest", "--resume", str(out))
    assert result.exit_code == 0 and "the last query was unfinished; it is reranked again" in result.stderr
    check_trec(out.read_text(), expected)
    assert failed(cli("rerank", *rerank_args, "--depth", "2", "--resume", str(out))) == (
        f"error: --resume {out} was written with --keep-rest true, not false (as {tmp_path / '.out.trec.qrr.json'} "
        "keeps); go on with that, or rerank into a new file\n"
    )
    (tmp_path / ".out.trec.qrr.json").unlink()  # no record: the rest's scores tell
    assert "(a run written with --keep-rest?)" in failed(cli("rerank", *rerank_args, "--depth", "2", "--resume",
                                                             str(out)))  # fmt: skip
    # another --depth: the record keeps none, so what is written where tells (it mixed depths, or failed on a
    # document it had not read)
    deeper = failed(cli("rerank", *rerank_args, "--depth", "3", "--keep-rest", "--resume", str(out)))
    assert "is written with its first-stage rank, but it is among query" in deeper
    assert "or with another --depth; go on" in deeper
    shallower = failed(cli("rerank", *rerank_args, "--depth", "1", "--keep-rest", "--resume", str(out)))
    assert "is not among query" in shallower and "--depth" in shallower
    # a file written without the rest, gone on with it
    plain = tmp_path / "plain.trec"
    ok(cli("rerank", *rerank_args, "--depth", "2", "--resume", str(plain)))
    (tmp_path / ".plain.trec.qrr.json").unlink()
    said = "the file was written from other inputs or with another --depth, or without --keep-rest; go on with "
    assert said in failed(cli("rerank", *rerank_args, "--depth", "2", "--keep-rest", "--resume", str(plain)))


def test_a_query_too_long_for_the_prompt_is_named_by_its_id(cli, beir_dir, tmp_path):
    copy = tmp_path / "beir"
    shutil.copytree(beir_dir, copy)
    queries = (copy / "queries.jsonl").read_text().splitlines()
    queries[2] = orjson.dumps({"_id": "q2", "text": "long " * 200}).decode()
    (copy / "queries.jsonl").write_text("\n".join(queries) + "\n")
    for budget in ("64", "4096"):  # however the calls fall
        result = cli("rerank", str(copy / "bm25.trec"), "--beir", str(copy), "--max-length", "100",
                     "--batch-tokens", budget)  # fmt: skip
        assert result.exit_code == 2
        assert result.stderr.startswith("error: query q2: the query and instruction take "), result.stderr
    said = result.stderr.removeprefix("error: ")
    # --on-error skip leaves it out (said when the run ends) and reranks the rest, as a run without it would
    out = tmp_path / "out.trec"
    for budget in ("64", "4096"):
        result = cli("rerank", str(copy / "bm25.trec"), "--beir", str(copy), "--max-length", "100", "--batch-tokens",
                     budget, "--on-error", "skip", "--resume", str(out))  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stderr.endswith(f"skipped 1 of the run's queries:\n  {said}")
        # the second time the file is gone on with: q2 alone is tried again
        assert set(formats.read_run(str(out))) == set(formats.read_run(str(copy / "bm25.trec"))) - {"q2"}
    lines = (copy / "bm25.trec").read_text().splitlines()
    (copy / "others.trec").write_text("".join(line + "\n" for line in lines if not line.startswith("q2 ")))
    (tmp_path / "others.out").write_text(ok(cli("rerank", str(copy / "others.trec"), "--beir", str(copy),
                                                "--max-length", "100")))  # fmt: skip
    assert formats.read_run(str(out)) == formats.read_run(str(tmp_path / "others.out"))
    # every query too long: nothing reranked is an error, as every line bad is (it exited 0 with an empty run)
    (copy / "q2.trec").write_text("".join(line + "\n" for line in lines if line.startswith("q2 ")))
    for command in (["rerank", str(copy / "q2.trec")], ["eval", "--run", str(copy / "q2.trec")]):
        result = cli(*command, "--beir", str(copy), "--max-length", "100", "--on-error", "skip")
        assert (result.exit_code, result.stdout) == (2, ""), result.output
        assert result.stderr.endswith("error: every query of the run leaves no room within --max-length (1 skipped): "
                                      "nothing was reranked; raise --max-length, or shorten the instruction "
                                      "(-i)\n")  # fmt: skip


def test_a_finished_file_of_other_settings_is_refused_before_a_model_loads(cli, rerank_args, tmp_path, tiny_model,
                                                                             monkeypatch):  # fmt: skip
    out, kept = tmp_path / "out.trec", tmp_path / ".out.trec.qrr.json"
    ok(cli("rerank", *rerank_args, "--depth", "2", "--resume", str(out), model=tiny_model))
    assert orjson.loads(kept.read_bytes())["model"] == str(tiny_model)
    for args, said in (
        (
            ("-i", "Find the opposite"),
            '--instruction "Given a web search query, retrieve relevant '
            'passages that answer the query", not "Find the opposite"',
        ),
        (("--max-length", "512"), "--max-length 8192, not 512"),
        (("--recipe", "vllm"), '--recipe "transformers", not "vllm"'),
        (("--depth", "3"), "--depth 2, not 3"),
    ):  # fmt: skip  (--help said it was kept: it was not)
        result = cli("rerank", *rerank_args, "--depth", "2", "--resume", str(out), *args, model=tiny_model)
        assert (result.exit_code, result.stderr) == (
            2, f"error: --resume {out} was written with {said} (as {kept} keeps); go on with that, or rerank into a "
            "new file\n")  # fmt: skip
    # the same settings said otherwise (the default instruction given, the model's folder by a relative path): the
    # file was checked without scoring, and the note says so
    monkeypatch.chdir(tiny_model.parent)
    instruction = "Given a web search query, retrieve relevant passages that answer the query"
    result = cli("rerank", *rerank_args, "--depth", "2", "--resume", str(out), "-i", instruction, model=tiny_model.name)
    assert (result.exit_code, result.stderr) == (
        0,
        f"resuming {out}: 5 of 5 queries are done\nnothing left to rerank\n",
    )


def test_ray_with_auto_does_not_go_on_with_a_file_of_a_dtype(cli, rerank_args, tmp_path, tiny_model):
    """--ray's actors resolve auto each on its own machine, and none says its dtype before it writes: a file kept in
    one dtype is refused before Ray starts, unless the dtype is given."""
    out, kept = tmp_path / "out.trec", tmp_path / ".out.trec.qrr.json"
    ok(cli("rerank", *rerank_args, "--dtype", "fp32", "--resume", str(out), model=tiny_model))
    assert orjson.loads(kept.read_bytes())["dtype"] == "fp32"
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(line for line in lines if line.split()[0] == lines[0].split()[0]))  # one query done
    result = cli("rerank", *rerank_args, "--resume", str(out), "--ray", "--dtype", "auto", model=tiny_model)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, f"error: --resume {out} was written in fp32 (as its record keeps), and with --ray and --dtype auto each "
        "actor picks the dtype of the machine it runs on: give --dtype fp32 to go on with it, or rerank into a new "
        "file")  # fmt: skip


def test_a_complete_resume_loads_no_model(cli, rerank_args, tmp_path):
    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--resume", str(out)))
    record = orjson.loads((tmp_path / ".out.trec.qrr.json").read_bytes())
    assert [list(made) for made in record["made_with"]] == [["qrr", "torch", "transformers", "device"]]  # as score's
    result = cli("rerank", *rerank_args, "--resume", str(out), model=str(tmp_path / "no-such-model"))
    assert result.exit_code == 0, result.output
    # another model's name than the record's: said, though no model was loaded to tell
    assert "resuming" in result.stderr and f'nothing left to rerank (its record names --model "fake", not ' \
        f'"{tmp_path / "no-such-model"}"; no model was loaded to tell one model named two ways from two models)\n' \
        in result.stderr  # fmt: skip


def test_resume_refuses_another_format_or_a_foreign_file(cli, rerank_args, tmp_path):
    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--depth", "2", "--resume", str(out)))
    resume = ["--resume", str(out)]
    assert "holds a trec run, not --format jsonl" in failed(cli("rerank", *rerank_args, "-f", "jsonl", *resume))
    assert failed(cli("rerank", *rerank_args, "--depth", "3", *resume)).startswith(
        f"error: --resume {out} was written with --depth 2, not 3 (as {tmp_path / '.out.trec.qrr.json'} keeps)"
    )
    record = tmp_path / ".out.trec.qrr.json"
    kept = record.read_bytes()
    record.unlink()  # an older qrr's file, whose record kept no depth: its lines tell
    said = "other inputs or with another --depth or --top-k; go on with"
    assert said in failed(cli("rerank", *rerank_args, "--depth", "3", *resume))
    record.write_bytes(kept)
    assert failed(cli("rerank", *rerank_args, "--depth", "2", "--tag", "mine", *resume)) == (
        f"error: {out}:1: the run's tag is qrr, not --tag mine; give --tag qrr to go on, or rerank into a new file\n"
    )
    ok(cli("rerank", *rerank_args, "--depth", "2", "--tag", "qrr", *resume))  # the same tag, said: nothing to do
    out.write_text("my notes\n")
    assert "not a TREC run" in failed(cli("rerank", *rerank_args, "--resume", str(out)))
    assert failed(cli("rerank", *rerank_args, "--resume", str(tmp_path / "out.trec.gz"))) == (
        f"error: --resume {tmp_path / 'out.trec.gz'}: qrr writes runs uncompressed; name it without .gz (gzip it "
        "once it is complete)\n"
    )


def test_resume_refuses_a_file_of_other_scores_or_an_input(cli, rerank_args, beir_dir, tmp_path):
    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out)))
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:6]))  # two queries done
    # another instruction: refused before any scoring, as the record kept beside the file says it was written otherwise
    kept = tmp_path / ".out.trec.qrr.json"
    instruction = orjson.loads(kept.read_bytes())["instruction"]
    assert failed(cli("rerank", *rerank_args, "--depth", "3", "-i", "Find the opposite", "--resume", str(out))) == (
        f'error: --resume {out} was written with --instruction "{instruction}", not "Find the opposite" (as {kept} '
        "keeps); go on with that, or rerank into a new file\n")  # fmt: skip
    # without the record (an older qrr's file, or one copied alone), its first result scored again tells: the fake
    # model's scores follow the prompt
    kept.unlink()
    result = cli("rerank", *rerank_args, "--depth", "3", "-i", "Find the opposite", "--resume", str(out))
    assert (result.exit_code, result.stdout) == (2, "")
    resuming, note, message = result.stderr.splitlines()
    first = lines[0].split()
    assert resuming == f"resuming {out}: 2 of 5 queries are done"
    assert note == (f"note: {out} has no record of the settings it was written with ({kept}): go on only with the "
                    "model, --instruction, --max-length, --recipe and --dtype it was written with")  # fmt: skip
    assert message.startswith(f"error: {out}:1: query {first[0]}'s document {first[2]} has score {float(first[4]):.4f}")
    assert message.endswith(f"so {out} holds scores of another input or set-up (other texts, another --model, "
                            "--instruction, --max-length or --recipe, or a server running another); go on with the "
                            "input and set-up that wrote it, or rerank into a new file")  # fmt: skip
    assert out.read_text() == "".join(lines[:6])  # nothing written
    ok(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out)))  # the same set-up goes on
    assert out.read_text() == "".join(lines)
    # the first-stage run itself, or a file of its scores, is no file to go on with
    run = str(beir_dir / "bm25.trec")
    assert failed(cli("rerank", *rerank_args, "--resume", run, "--tag", "bm25")) == (
        f"error: --resume {run}: {run} is read as an input; give a new file for the reranked run\n"
    )
    out.write_text((beir_dir / "bm25.trec").read_text().replace(" bm25", " qrr"))
    assert failed(cli("rerank", *rerank_args, "--depth", "8", "--resume", str(out))) == (
        f"error: {out}:1: score 10.0 is not a p(yes); the file is not a run qrr wrote\n"
    )
    out.write_text("".join(lines[:3]).replace(f" {first[2]} ", " d999 "))
    assert failed(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out))) == (
        f"error: {out}:1: document d999 is not among query {first[0]}'s top documents in the run; the file was "
        "written from other inputs or with another --depth; go on with the inputs and options that wrote it, or rerank "
        "into a new file\n"
    )


def test_ctrl_c_says_how_to_go_on_and_resume_finishes(cli, rerank_args, tmp_path, fake):
    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(tmp_path / "whole.trec")))
    name, _ = fake(interrupt_after=7)  # --batch-tokens 1: a batch per document, a call per query; Ctrl-C in the third
    result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out), "--batch-tokens", "1", model=name)
    assert result.exit_code == 130
    assert result.stderr == f"error: interrupted after 2 of 5 queries; run the same command to go on from {out}\n"
    assert len(parse_trec(out.read_text())) == 2 * 3
    result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out))
    assert result.exit_code == 0 and "resuming" in result.stderr and "2 of 5 queries are done" in result.stderr
    same_run(str(out), str(tmp_path / "whole.trec"))
    # Ctrl-C before a first query was done: OUT was never written, so there is nothing to go on from
    name, _ = fake(interrupt_after=0)
    fresh = tmp_path / "fresh.trec"
    result = cli("rerank", *rerank_args, "--resume", str(fresh), model=name)
    assert result.exit_code == 130 and not fresh.exists()
    assert (
        result.stderr
        == "error: interrupted after 0 of 5 queries; nothing was written; run the same command to start again\n"
    )


def test_a_second_run_on_one_output_stops_before_it_loads_a_model(cli, rerank_args, tmp_path):
    import fcntl

    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out)))
    whole = out.read_text()
    out.write_text("".join(whole.splitlines(keepends=True)[:4]))  # a query and a half: one to cut, one to go on from
    with open(out, "a") as running:  # another run, writing
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out), model="/no/such/model")
    assert (result.exit_code, result.stderr) == (1, f"error: --resume {out}: another run is writing it (two would "
                                                    "write each result twice); let it finish, or stop it and try "
                                                    "again\n")  # fmt: skip
    assert len(out.read_text().splitlines()) == 4  # not cut under the other run
    ok(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out)))
    assert out.read_text() == whole


def test_sigterm_stops_as_ctrl_c_does(cli, rerank_args, tmp_path, fake):
    from qrr.errors import Terminated

    out = tmp_path / "out.trec"
    name, _ = fake(interrupt_after=7, raising=Terminated)  # as the handler raises it, in the third query
    before = signal.getsignal(signal.SIGTERM)
    result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out), "--batch-tokens", "1", model=name)
    assert result.exit_code == 143
    assert result.stderr == f"error: terminated after 2 of 5 queries; run the same command to go on from {out}\n"
    assert len(parse_trec(out.read_text())) == 2 * 3
    assert signal.getsignal(signal.SIGTERM) is before  # the command's handler lasted only while it ran


def test_a_real_sigterm_keeps_what_is_done(rerank_args, tmp_path):
    """A scheduler's SIGTERM to a running rerank (a process held mid-run by the fake model's gate): the finished
    queries are in OUT, the command says so and exits 143; the same command then finishes the run."""
    out, gate = tmp_path / "out.trec", tmp_path / "gate"
    gate.write_text("6")  # --batch-tokens 1: a batch per document; queries of 3 documents: two queries, then wait
    command = [sys.executable, "-m", "tests.fake_serve", "rerank", "--model", "fake", *rerank_args, "--depth", "3",
               "--batch-tokens", "1", "--resume", str(out)]  # fmt: skip
    env = {**os.environ, "QRR_FAKE_GATE": str(gate)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and len(parse_trec(out.read_text())) == 2 * 3):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    said = f"error: terminated after 2 of 5 queries; run the same command to go on from {out}"
    assert stderr.splitlines()[-1] == said
    assert len(parse_trec(out.read_text())) == 2 * 3
    gate.write_text("1000")
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "2 of 5 queries are done" in finished.stderr and len(parse_trec(out.read_text())) == 5 * 3


def test_a_failure_mid_run_says_what_is_kept_and_resume_finishes(cli, rerank_args, tmp_path, fake):
    from qrr.errors import OutOfMemoryError, QrrError

    class RayWrapped(Exception):  # as Ray hands the driver an actor's error: the QrrError is its ``cause``
        cause = OutOfMemoryError("out of memory")

    out = tmp_path / "out.trec"
    ok(cli("rerank", *rerank_args, "--depth", "3", "--resume", str(tmp_path / "whole.trec")))
    gone = QrrError("cannot reach the server at http://127.0.0.1:9: Connection refused")
    name, _ = fake(interrupt_after=7, raising=gone)  # as the Ctrl-C above: in the third query
    result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out), "--batch-tokens", "1", model=name)
    assert result.exit_code == 1
    assert result.stderr == ("error: cannot reach the server at http://127.0.0.1:9: Connection refused; 2 of 5 "
                             f"queries are in {out}: run the same command to go on\n")  # fmt: skip
    assert len(parse_trec(out.read_text())) == 2 * 3
    # going on, it fails again before another query is done: the two are still there; so for a wrapped error and
    # for one qrr did not plan
    for error, message in ((RayWrapped(), "out of memory"),
                           (RuntimeError("boom"), "RuntimeError: boom (set QRR_DEBUG=1 for a traceback)")):  # fmt: skip
        name, _ = fake(interrupt_after=0, raising=error)
        result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out), model=name)
        assert result.exit_code == 1
        kept = f"2 of 5 queries are in {out}: run the same command to go on"
        assert result.stderr.splitlines()[-1] == f"error: {message}; {kept}"
    # nothing written yet, or nowhere to go on from: the error as it is
    name, _ = fake(interrupt_after=0, raising=OutOfMemoryError("out of memory"))
    fresh = tmp_path / "fresh.trec"
    assert cli("rerank", *rerank_args, "--resume", str(fresh), model=name).stderr == "error: out of memory\n"
    assert not fresh.exists()  # no empty file left behind
    name, _ = fake(interrupt_after=7, raising=OutOfMemoryError("out of memory"))
    result = cli("rerank", *rerank_args, "--depth", "3", "--batch-tokens", "1", model=name)
    assert result.stderr == "error: out of memory\n"
    result = cli("rerank", *rerank_args, "--depth", "3", "--resume", str(out))
    assert result.exit_code == 0 and "2 of 5 queries are done" in result.stderr
    same_run(str(out), str(tmp_path / "whole.trec"))


def test_a_stopped_run_in_python_says_so_in_the_librarys_words(tiny_model, beir_dir, tmp_path, fake):
    from qrr import pipelines
    from qrr.errors import OutOfMemoryError, Stopped

    name, _ = fake(interrupt_after=3, raising=OutOfMemoryError("out of memory"))
    inputs = pipelines.read_run_inputs(str(beir_dir / "bm25.trec"), str(beir_dir / "queries.jsonl"),
                                       str(beir_dir / "corpus.jsonl"), depth=3)  # fmt: skip
    output = pipelines.RunOutput.checked(str(tmp_path / "out.trec"))
    output.prepare(inputs)
    with pytest.raises(Stopped) as caught:
        pipelines.rerank_run(Reranker(name, batch_tokens=1), inputs, output)
    assert str(caught.value) == f"out of memory; 1 of 5 queries are in {output.path}: rerank into it again to go on"
    assert (caught.value.done, caught.value.total, caught.value.exit_code) == (1, 5, 1)


def test_ctrl_c_without_resume_points_to_it(cli, rerank_args, fake):
    name, _ = fake(interrupt_after=0)
    result = cli("rerank", *rerank_args, model=name)
    assert result.exit_code == 130
    assert result.stderr == ("error: interrupted after 0 of 5 queries; --resume OUT writes a run that a later command "
                             "goes on with\n")  # fmt: skip


def test_progress_lines_when_stderr_is_a_log(cli, rerank_args, monkeypatch):
    quiet = cli("rerank", *rerank_args, "--depth", "2")
    assert (quiet.exit_code, quiet.stderr) == (0, "")  # a short run's log: no line
    monkeypatch.setattr(qrr.cli.render._Lines, "interval", 0.0)
    result = cli("rerank", *rerank_args, "--depth", "2")
    lines = result.stderr.splitlines()
    assert lines[0].startswith("reranked 1/5 queries in 0:0") and "left" in lines[0]
    assert len(lines) == 5  # not after the last query, but a last line saying the run is done
    assert re.fullmatch(r"reranked 5/5 queries in 0:0\d; done", lines[-1])  # it ended at 4/5, as if the run had died


def test_progress_bar_on_a_terminal_keeps_results_on_stdout(cli, rerank_args, monkeypatch, expected):
    drawn = stdio.StringIO()
    console = Console(file=drawn, force_terminal=True, width=100)
    monkeypatch.setattr(qrr.cli.render, "stderr", console)
    monkeypatch.setattr(qrr.cli.render, "SHOW_AFTER", 0.0)  # the fake model's run is quicker than the default
    check_trec(ok(cli("rerank", *rerank_args, "--depth", "5")), expected)
    assert "5/5 queries" in drawn.getvalue() and " Q0 " not in drawn.getvalue()


# -------------------------------------------------------------------------------------------------- errors


def test_missing_documents_fail_or_are_counted(cli, rerank_args, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text((beir_dir / "bm25.trec").read_text() + "q0 Q0 gone 9 99.0 bm25\nq1 Q0 lost 9 98.0 bm25\n")
    args = [str(run), *rerank_args[1:]]
    message = failed(cli("rerank", *args))
    corpus = beir_dir / "corpus.jsonl"
    assert message == (f"error: 2 of the run's documents are not in {corpus} (first: document gone of query q0); to "
                       "rerank without them, pass --on-error skip\n")  # fmt: skip
    assert message.endswith("; to rerank without them, pass --on-error skip\n")
    result = cli("rerank", *args, "--on-error", "skip", "--depth", "2")
    assert result.exit_code == 0
    assert f"skipped 2 of the run's documents:\n  document gone of query q0: not in {corpus}\n" \
           f"  document lost of query q1: not in {corpus}\n" in result.stderr  # fmt: skip
    assert "of the run's queries" not in result.stderr
    rows = parse_trec(result.stdout)
    assert {r[2] for r in rows}.isdisjoint({"gone", "lost"})
    assert [r[0] for r in rows].count("q0") == 1  # the top 2 held a missing document: one is left


def test_blank_queries_and_documents_are_scored_and_warned_of_before_any_scoring(cli, tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": ""}\n{"_id": "d2", "text": "x"}\n'
                                           '{"_id": "d3", "title": " ", "text": "\\t"}\n')  # fmt: skip
    (tmp_path / "queries.tsv").write_text("q1\t \nq2\thello\n")
    run = "q1 Q0 d1 1 9 bm25\nq1 Q0 d2 2 8 bm25\nq2 Q0 d3 1 9 bm25\nq2 Q0 d1 2 8 bm25\n"
    for args, kwargs in (([str(tmp_path / "run.trec")], {}), (["-"], {"input": run})):
        (tmp_path / "run.trec").write_text(run)
        result = cli("rerank", *args, "--corpus", str(tmp_path / "corpus.jsonl"), "--queries",
                     str(tmp_path / "queries.tsv"), **kwargs)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert len(parse_trec(result.stdout)) == 4  # each scored still
        assert result.stderr == ("warning: 1 blank query (q1) scored as given: such a score says nothing of relevance\n"
                                 "warning: 2 blank documents (d1, d3) scored as given: such a score says nothing of "
                                 "relevance\n")  # fmt: skip
    # said before a model loads: a run of hours warns at its start
    args = [str(tmp_path / "run.trec"), "--corpus", str(tmp_path / "corpus.jsonl"), "--queries",
            str(tmp_path / "queries.tsv")]  # fmt: skip
    result = cli("rerank", *args, "--device", "nowhere")
    assert result.exit_code == 2 and result.stderr.startswith("warning: 1 blank query (q1)")
    # gone on with, of the queries left only: q1 done, q2 (with d3 and d1) left
    out = tmp_path / "out.trec"
    assert cli("rerank", *args, "--resume", str(out)).exit_code == 0
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:2]))
    result = cli("rerank", *args, "--resume", str(out))
    assert result.stderr.startswith(f"resuming {out}: 1 of 2 queries are done\nwarning: 2 blank documents (d3, d1) "
                                    "scored as given")  # fmt: skip
    assert "blank query" not in result.stderr
    result = cli("rerank", *args, "--resume", str(out))  # finished: nothing to warn of
    assert "warning" not in result.stderr and result.stderr.endswith("nothing left to rerank\n")


def test_missing_queries_and_malformed_lines(cli, rerank_args, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q0 Q0 d1 1 1.0 x\nq9 Q0 d1 1 1.0 x\n")
    assert f"1 of the run's queries is not in {beir_dir / 'queries.jsonl'} (first: query q9)" in failed(
        cli("rerank", str(run), *rerank_args[1:])
    )
    queries = beir_dir / "queries.jsonl"
    said = cli("rerank", str(run), *rerank_args[1:], "--on-error", "skip").stderr
    assert f"skipped 1 of the run's queries:\n  query q9: not in {queries}\n" in said
    run.write_text("q0 Q0 d1 1 1.0 x\nq0 Q0 d2 1\nq0 Q0 d1 3 0.5 x\n")
    assert f"{run}:2: expected 'qid Q0 docid rank score tag', found 4 fields" in failed(
        cli("rerank", str(run), *rerank_args[1:])
    )
    result = cli("rerank", str(run), *rerank_args[1:], "--on-error", "skip")
    assert result.exit_code == 0
    assert "skipped 2 bad lines" in result.stderr and "listed twice for query q0" in result.stderr
    assert len(parse_trec(result.stdout)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", "two words"], "--tag 'two words': TREC run tags are one word"),
        (["--tag", "bm25", "-f", "jsonl"], "--tag bm25: a jsonl run has no tag (it is a TREC run's last column)"),
        (
            ["--resume", "/no/such/folder/out.trec"],
            "--resume /no/such/folder/out.trec: its folder /no/such/folder does not exist; make it (mkdir -p), or "
            "give a file in an existing folder",
        ),
        (
            ["--depth", "0"],
            "invalid value for '--depth': must be at least 1 (see qrr rerank -h)",
        ),
        (
            ["-f", "table"],
            "invalid value for '--format' / '-f': 'table' is not one of 'trec', 'jsonl' (see qrr rerank -h)",
        ),
    ],
)
def test_bad_options(cli, rerank_args, args, message):
    result = cli("rerank", *rerank_args, *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: {message}\n"  # typer's usage errors too are one line, as qrr's own


def test_corpus_and_queries_are_needed(cli, beir_dir):
    run = str(beir_dir / "bm25.trec")
    assert failed(cli("rerank", run, "--corpus", str(beir_dir / "corpus.jsonl"))) == (
        "error: give the run's --queries (BEIR's queries.jsonl, or qid<TAB>text lines), or --beir DIR\n"
    )
    assert failed(cli("rerank", run)) == (
        "error: give the run's --corpus (BEIR's corpus.jsonl, or docid<TAB>text lines) and --queries (BEIR's "
        "queries.jsonl, or qid<TAB>text lines), or --beir DIR\n"
    )


def test_a_corpus_as_msmarco_tsv(cli, rerank_args, beir_dir, tmp_path, expected):
    collection = tmp_path / "collection.tsv"
    for line in (beir_dir / "corpus.jsonl").read_text().splitlines():
        doc = orjson.loads(line)
        text = f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]
        collection.write_text((collection.read_text() if collection.exists() else "") + f"{doc['_id']}\t{text}\n")
    args = [rerank_args[0], "--corpus", str(collection), "--queries", rerank_args[4]]
    assert ok(cli("rerank", *args)) == ok(cli("rerank", *rerank_args))


def test_ids_with_spaces_need_jsonl_output(cli, tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d 1", "text": "Beijing is the capital."}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "capital of China?"}\n')
    (tmp_path / "run.jsonl").write_text('{"qid": "q1", "docid": "d 1", "score": 1.0}\n')
    args = [str(tmp_path / "run.jsonl"), "--corpus", str(tmp_path / "corpus.jsonl"), "--queries",
            str(tmp_path / "queries.jsonl")]  # fmt: skip
    assert failed(cli("rerank", *args)) == (
        "error: id 'd 1' holds a space, which a TREC run cannot hold; write a jsonl run (--format jsonl)\n"
    )
    rows = [orjson.loads(line) for line in ok(cli("rerank", *args, "-f", "jsonl")).splitlines()]
    assert [(r["qid"], r["docid"], r["rank"]) for r in rows] == [("q1", "d 1", 1)]


def test_the_vllm_recipe(cli, rerank_args, beir_dir):
    check_trec(ok(cli("rerank", *rerank_args, "--depth", "5", "--recipe", "vllm")),
               expected_run(beir_dir, Reranker("fake", recipe="vllm")))  # fmt: skip


def test_stdout_appending_to_an_input_is_refused(beir_dir, tiny_model, tmp_path):
    """`qrr rerank b.trec ... >> b.trec` wrote each result on the end of the run it read (exit 0), and `qrr eval qrels
    run -f jsonl >> run` its summary on the end of the run, as `qrr score in >> in` is refused."""
    run = tmp_path / "b.trec"
    shutil.copy(beir_dir / "bm25.trec", run)
    before = run.read_bytes()
    base = [sys.executable, "-m", "qrr"]
    model = ["--model", str(tiny_model), "--device", "cpu"]
    commands = [[*base, "rerank", *model, str(run), "--beir", str(beir_dir)],
                [*base, "eval", str(beir_dir / "qrels" / "test.tsv"), str(run), "-f", "jsonl"]]  # fmt: skip
    for command in commands:
        with open(run, "ab") as out:
            proc = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
        assert (proc.returncode, proc.stderr) == (2, f"error: {run}: the output (stdout) is this input file; write "
                                                     "the results to another file\n"), command  # fmt: skip
        assert run.read_bytes() == before


def test_a_run_skipped_whole_is_said_before_the_error_it_leads_to(cli, beir_dir, tmp_path):
    """Under --on-error skip, a UTF-16 run was skipped unsaid: only "no results in the run" was said."""
    run = tmp_path / "u16.trec"
    run.write_text((beir_dir / "bm25.trec").read_text(), encoding="utf-16")
    result = cli("rerank", str(run), "--beir", str(beir_dir), "--on-error", "skip")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "skipped 1 whole file:" and lines[1].startswith(f"  {run}: UTF-16 text")
    assert lines[-1] == f"error: {run}: no results in the run"
    qrels = tmp_path / "u16.qrels"
    qrels.write_text((beir_dir / "qrels" / "test.tsv").read_text(), encoding="utf-16")
    result = cli("eval", str(qrels), str(beir_dir / "bm25.trec"), "--on-error", "skip", model=False)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"skipped 1 whole file:\n  {qrels}: UTF-16 text") and result.stderr.endswith(
        f"error: {qrels}: no judgments\n"
    )
