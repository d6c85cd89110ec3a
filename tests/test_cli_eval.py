"""qrr eval: runs against qrels side by side, and --beir's rerank-then-evaluate."""

from __future__ import annotations

import json
import shutil

import orjson
import pytest

from qrr import formats, metrics


@pytest.fixture
def qrr_eval(cli):
    """``qrr eval`` without the model options, which only --beir takes."""
    return lambda *args, **kwargs: cli("eval", *args, model=False, **kwargs)


def failed(result, code=2):
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    return result.stderr


QRELS = "q1 0 a 1\nq1 0 b 2\nq1 0 c 0\nq2 0 a 0\nq3 0 z 1\n"  # q2: nothing relevant; q3: absent from run A
RUN_A = "q1 Q0 a 1 0.9 A\nq1 Q0 b 2 0.9 A\nq1 Q0 c 3 0.1 A\nq2 Q0 a 1 1.0 A\nq4 Q0 a 1 1.0 A\n"  # q4: no qrels
RUN_B = "q1 Q0 c 1 3 B\nq1 Q0 b 2 2 B\nq3 Q0 z 1 1 B\nq2 Q0 a 1 1 B\n"


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in (("qrels.txt", QRELS), ("a.trec", RUN_A), ("b.trec", RUN_B)):
        (tmp_path / name).write_text(text)
        paths[name] = str(tmp_path / name)
    return paths


def test_means_side_by_side_and_what_was_left_out(qrr_eval, files):
    result = qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    qrels = formats.read_qrels(files["qrels.txt"])
    for row, name in zip(rows, ("a.trec", "b.trec"), strict=True):
        expected = metrics.evaluate(qrels, formats.read_run(files[name]))
        assert row["run"] == files[name]
        assert row["queries"] == 3
        assert {m: row[m] for m in metrics.MEASURES} == pytest.approx(expected.means, abs=1e-12)
    assert rows[1]["mrr@10"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    # the table's change and p-values, on the second run's row: a script writing a paper's table had none of them
    evaluated = [metrics.evaluate(qrels, formats.read_run(files[name])) for name in ("a.trec", "b.trec")]
    assert list(rows[0]) == ["run", *metrics.MEASURES, "queries"]
    assert list(rows[1]) == ["run", *metrics.MEASURES, "queries", "change", "p_paired_t"]
    assert rows[1]["change"] == {m: rows[1][m] - rows[0][m] for m in metrics.MEASURES}
    assert rows[1]["p_paired_t"] == {m: metrics.paired_t(*evaluated, m) for m in metrics.MEASURES}
    # MRR per query, a then b: 1, 0, 0 and 1/2, 0, 1; changes -1/2, 0, +1: t = 0.378 on 2 degrees of freedom
    assert rows[1]["p_paired_t"]["mrr@10"] == pytest.approx(0.741801, abs=1e-6)
    # which queries, as a run's missing ones are named
    assert f"note: {files['a.trec']}: 1 query without qrels left out (q4)" in result.stderr
    assert f"{files['a.trec']}: no results for 1 of 3 judged queries (q3); they count 0" in result.stderr
    assert "note: 1 query in the qrels without a relevant document (q2): 0 in every run" in result.stderr
    assert files["b.trec"] + ":" not in result.stderr
    # runs alike (the same first stage, reranked otherwise) are said once together
    again = qrr_eval(files["qrels.txt"], files["a.trec"], files["a.trec"], files["b.trec"])
    assert again.stderr.startswith(f"note: {files['a.trec']}, {files['a.trec']}: 1 query without qrels left out (q4)\n"
                                   f"note: {files['a.trec']}, {files['a.trec']}: no results for 1 of 3 judged queries "
                                   "(q3); they count 0")  # fmt: skip


def test_qrels_or_a_run_from_stdin(qrr_eval, files):
    from_files = json.loads(qrr_eval(files["qrels.txt"], files["a.trec"], "-f", "json").stdout)
    qrels_in = json.loads(qrr_eval("-", files["a.trec"], "-f", "json", input=QRELS).stdout)
    run_in = json.loads(qrr_eval(files["qrels.txt"], "-", "-f", "json", input=RUN_A).stdout)
    assert [{k: v for k, v in r.items() if k != "run"} for r in (from_files[0], qrels_in[0], run_in[0])] == [
        {k: v for k, v in from_files[0].items() if k != "run"}
    ] * 3


def test_a_run_from_another_dataset_is_pointed_out(qrr_eval, files, tmp_path):
    other = tmp_path / "other.trec"
    other.write_text("x1 Q0 a 1 1.0 X\n")
    result = qrr_eval(files["qrels.txt"], str(other), "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["ndcg@10"] == 0.0
    assert "has results for none of the judged queries: is it from another dataset or split?" in result.stderr
    # a name that reads as markup is said as it is: "runs[bm25].trec" was said as "runs.trec"
    other = other.rename(tmp_path / "runs[bm25].trec")
    result = qrr_eval(files["qrels.txt"], str(other), "-f", "json")
    assert f"warning: {other} has results for none of the judged queries" in result.stderr


def test_docids_written_otherwise_than_the_qrels_are_pointed_out(qrr_eval, files, tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 00199 1\nq2 0 00007 1\n")
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 199 1 1.0 X\nq2 Q0 7 1 1.0 X\n")  # leading zeros dropped (a pipeline's tonumber)
    result = qrr_eval(str(qrels), str(run), "-f", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["ndcg@10"] == 0.0
    assert (f"warning: none of {run}'s documents for the judged queries is in the qrels (query q1: '199' in the "
            "run, '00199' in the qrels): are the ids written alike?") in result.stderr.replace("\n", " ")  # fmt: skip
    # one judged document found, one of its ids written otherwise still (it counts as unjudged: 0)
    run.write_text("q1 Q0 199 1 1.0 X\nq2 Q0 00007 1 1.0 X\n")
    assert (f"warning: some of {run}'s documents are judged only with leading zeros set aside (query q1: '199' in the "
            "run, '00199' in the qrels), and count as unjudged: are the ids written alike?"
            ) in qrr_eval(str(qrels), str(run)).stderr.replace("\n", " ")  # fmt: skip
    run.write_text("q1 Q0 00199 1 1.0 X\nq2 Q0 00007 1 1.0 X\nq2 Q0 8 2 0.5 X\n")  # unjudged, but no judged id's
    assert "warning" not in qrr_eval(str(qrels), str(run)).stderr
    # query ids so written: every judged query seems missing
    run.write_text("1 Q0 00199 1 1.0 X\n")
    qrels.write_text("01 0 00199 1\n")
    assert (f"warning: {run} has results for none of the judged queries: its query ids differ from the qrels' by "
            "leading zeros ('1' in the run, '01' in the qrels): are they written alike?"
            ) in qrr_eval(str(qrels), str(run)).stderr.replace("\n", " ")  # fmt: skip
    # some lost their zeros, some had none to lose
    run.write_text("1 Q0 00199 1 1.0 X\n2 Q0 00007 1 1.0 X\n")
    qrels.write_text("01 0 00199 1\n2 0 00007 1\n")
    assert (f"warning: {run}: some query ids differ from the qrels' by leading zeros ('1' in the run, '01' in the "
            "qrels): are they written alike?") in qrr_eval(str(qrels), str(run)).stderr.replace("\n", " ")  # fmt: skip


def test_stdin_is_read_once(qrr_eval, files):
    # the second - read an empty run, scored 0 with a warning only
    assert failed(qrr_eval(files["qrels.txt"], "-", files["a.trec"], "-", input=RUN_A)) == (
        "error: - (stdin) is given twice; it can be read once: give the others as files\n"
    )


def test_common_per_query_and_table(qrr_eval, files):
    result = qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], "--common", "--per-query", "-f",
                 "jsonl")  # fmt: skip
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["run"], r["qid"]) for r in rows] == [(f, q) for f in (files["a.trec"], files["b.trec"])
                                                    for q in ("q1", "q2")]  # fmt: skip
    assert "--common: 2 of 3 judged queries have results in every run" in result.stderr
    table = qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], "-f", "table").stdout
    for header in ("nDCG@10", "MRR@10", "R@100", "MAP", "queries", "change"):
        assert header in table
    # the change's paired t-test, per measure, over the judged queries (a query a run missed counts 0)
    pvalues = next(line for line in table.splitlines() if "p (paired t)" in line)
    evaluated = [metrics.evaluate(formats.read_qrels(files["qrels.txt"]), formats.read_run(files[name]))
                 for name in ("a.trec", "b.trec")]  # fmt: skip
    want = [metrics.paired_t(*evaluated, m) for m in metrics.MEASURES]
    assert [c.strip() for c in pvalues.split("│")[1:5]] == [
        "–" if p is None else f"{p:.3f}" if p >= 0.001 else "<0.001" for p in want]  # fmt: skip
    # a per-query table ends each run with its mean, as trec_eval -q does
    means = {r["run"]: r for r in json.loads(qrr_eval(files["qrels.txt"], files["a.trec"], "-f", "json").stdout)}
    lines = qrr_eval(files["qrels.txt"], files["a.trec"], "--per-query", "-f", "table").stdout.splitlines()
    cells = [[c.strip() for c in line.split("│")] for line in lines if "│" in line]
    assert [c[1] for c in cells if c[1]] == ["q1", "q2", "q3", "all"]
    assert next(c for c in cells if c[1] == "all")[2] == f"{means[files['a.trec']]['ndcg@10']:.4f}"
    twice = qrr_eval(files["qrels.txt"], files["a.trec"], files["a.trec"], "--per-query", "-f", "table").stdout
    cells = [[c.strip() for c in line.split("│")] for line in twice.splitlines() if "│" in line]
    assert [c[1] for c in cells if c[1]] == ["q1", "q2", "q3", "all"] * 2  # one run named twice: each once


def test_a_change_alike_on_every_query_has_no_p_value(qrr_eval, tmp_path):
    (tmp_path / "qrels").write_text("q1 0 d1 1\nq2 0 d2 1\n")
    (tmp_path / "none.trec").write_text("q1 Q0 x 1 1 a\nq2 Q0 y 1 1 a\n")
    (tmp_path / "all.trec").write_text("q1 Q0 d1 1 1 a\nq2 Q0 d2 1 1 a\n")
    args = [str(tmp_path / name) for name in ("qrels", "none.trec", "all.trec")]
    table = qrr_eval(*args, "-M", "mrr,recall@100", "-f", "table").stdout
    pvalues = next(line for line in table.splitlines() if "p (paired t)" in line)
    # +1 on both queries: no spread, and a t-test no answer (it said "<0.001", a certainty)
    assert [c.strip() for c in pvalues.split("│")[1:3]] == ["–", "–"]
    (tmp_path / "one").write_text("q1 0 d1 1\n")
    table = qrr_eval(str(tmp_path / "one"), args[1], "-f", "table").stdout
    lines = table.splitlines()
    title = " ".join(line.strip() for line in lines[: next(n for n, x in enumerate(lines) if "┃" in x)])  # folded
    assert title.endswith(": 1 judged query"), title  # it said "1 judged queries"
    # one query in both runs: no test, said as null in JSON (the key was left out)
    rows = json.loads(qrr_eval(str(tmp_path / "one"), *args[1:], "-M", "mrr", "-f", "json").stdout)
    assert (rows[1]["change"], rows[1]["p_paired_t"]) == ({"mrr": 1.0}, {"mrr": None})
    assert "p (paired t)" not in qrr_eval(str(tmp_path / "one"), *args[1:], "-M", "mrr", "-f", "table").stdout


def test_metrics_asked_for(qrr_eval, files):
    asked = [
        "--metrics",
        "nDCG@5,R@1000, p@2",
        "-M",
        "mrr",
        "-M",
        "map@1",
        "-M",
        "success@1,judged@2",
        "-M",
        "Rprec,bpref",
    ]  # commas, and the option repeated
    rows = json.loads(qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], *asked, "-f", "json").stdout)
    qrels = formats.read_qrels(files["qrels.txt"])
    names = ["ndcg@5", "recall@1000", "p@2", "mrr", "map@1", "success@1", "judged@2", "rprec", "bpref"]
    for row, name in zip(rows, ("a.trec", "b.trec"), strict=True):
        assert list(row)[: len(names) + 2] == ["run", *names, "queries"]
        expected = metrics.evaluate(qrels, formats.read_run(files[name]), measures=names).means
        assert {m: row[m] for m in names} == pytest.approx(expected, abs=1e-12)
    assert rows[1]["p@2"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)  # b: q1 c, b (b relevant); q2 none; q3 z
    table = qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], *asked[:-4], "-f", "table").stdout
    heading = next(line for line in table.splitlines() if "┃" in line)
    columns = ["run", "nDCG@5", "R@1000", "P@2", "MRR", "MAP@1", "queries"]
    from qrr.cli.evaluate import header

    # past 80 columns here
    assert [header(m) for m in ("success@1", "judged@2", "rprec", "bpref")] == ["Success@1", "Judged@2", "R-prec",
                                                                                 "bpref"]  # fmt: skip
    assert [cell.strip() for cell in heading.split("┃")] == columns
    for bad, message in (("bleu", "--metrics 'bleu': use ndcg, mrr, recall, p, map, success or judged, each with "
                                  "an optional @k cut-off (ndcg@10), or rprec or bpref"),
                         ("p", "--metrics 'p': precision needs a cut-off (p@10)"),
                         (" , ", "--metrics: name at least one measure (ndcg@10, say)")):  # fmt: skip
        assert failed(qrr_eval(files["qrels.txt"], files["a.trec"], "--metrics", bad)) == f"error: {message}\n"


def test_a_relevance_level(qrr_eval, files):
    # q1 judges b 2 and a 1: at -l 2, run B (c, b) finds its one relevant document second, run A (a, b tied at 0.9:
    # b first by docid, descending) first; q2 and q3 have none judged 2 or more
    result = qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], "-l", "2", "-M", "mrr,ndcg@10", "-f",
                      "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["mrr"] for row in rows] == pytest.approx([1 / 3, 1 / 2 / 3])  # the mean over 3 judged queries
    plain = json.loads(qrr_eval(files["qrels.txt"], files["a.trec"], files["b.trec"], "-M", "ndcg@10",
                                "-f", "json").stdout)  # fmt: skip
    assert [row["ndcg@10"] for row in rows] == [row["ndcg@10"] for row in plain]  # nDCG gains every judgment still
    assert "2 queries in the qrels without a document judged 2 or more (q2, q3): 0 in every run (nDCG still gains " \
           "their lower positive judgments)\n" in result.stderr  # fmt: skip
    # the level in the table's title: the table looked as the default's
    table = qrr_eval(files["qrels.txt"], files["a.trec"], "-l", "2", "-M", "mrr", "-f", "table").stdout
    lines = table.splitlines()
    title = " ".join(line.strip() for line in lines[: next(n for n, x in enumerate(lines) if "┃" in x)])  # folded
    assert title.endswith(": 3 judged queries (relevant: judged 2 or more)"), title
    assert failed(qrr_eval(files["qrels.txt"], files["a.trec"], "-l", "0")) == (
        "error: invalid value for '--relevance-level' / '-l': must be at least 1 (see qrr eval -h)\n"
    )


def test_judgments_in_beir_tsv_and_runs_in_jsonl(qrr_eval, files, tmp_path):
    tsv, jsonl = tmp_path / "test.tsv", tmp_path / "a.jsonl"
    judgments = [line.split() for line in QRELS.splitlines()]
    tsv.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, _, d, r in judgments))
    rows = [{"qid": q, "docid": d, "rank": int(n), "score": float(s)}
            for q, _, d, n, s, _ in (line.split() for line in RUN_A.splitlines())]  # fmt: skip
    jsonl.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    one = json.loads(qrr_eval(files["qrels.txt"], files["a.trec"], "-f", "json").stdout)[0]
    other = json.loads(qrr_eval(str(tsv), str(jsonl), "-f", "json").stdout)[0]
    assert {m: one[m] for m in metrics.MEASURES} == {m: other[m] for m in metrics.MEASURES}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["QRELS"], "give QRELS and at least one RUN"),
        (["QRELS", "A", "--depth", "5"], "--depth: only with --beir"),
        (["QRELS", "A", "-i", "Judge"], "--instruction: only with --beir"),
        (["QRELS", "A", "--recipe", "vllm"], "--recipe: only with --beir"),
        (["QRELS", "A", "--compile"], "--compile: only with --beir"),
        (["QRELS", "A", "--keep-rest"], "--keep-rest: only with --beir"),
        (["--beir", "DIR"], "--beir needs --run RUN"),
        (["QRELS", "--beir", "DIR", "--run", "A"], "not both"),
    ],
)
def test_usage_errors(qrr_eval, files, args, message):
    args = [files["qrels.txt"] if a == "QRELS" else files["a.trec"] if a == "A" else a for a in args]
    assert message in failed(qrr_eval(*args))


def test_bad_qrels_line(qrr_eval, files, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(QRELS + "q5 0 y\n")
    assert f"{bad}:6: expected 'qid 0 docid relevance', found 3 fields" in failed(qrr_eval(str(bad),
                                                                                       files["a.trec"]))  # fmt: skip
    result = qrr_eval(str(bad), files["a.trec"], "--on-error", "skip", "-f", "json")
    assert result.exit_code == 0 and "skipped 1 bad line:" in result.stderr
    # the run and the qrels swapped: the message says what the first line looks like
    assert failed(qrr_eval(files["a.trec"], files["qrels.txt"])) == (
        f"error: {files['a.trec']}:1: expected 'qid 0 docid relevance', found 6 fields (a run's line, not a "
        "judgment: is this the qrels file?)\n"
    )


# ---------------------------------------------------------------------------------------------------- --beir


def test_beir_reranks_judged_queries_and_compares(cli, beir_dir, tmp_path):
    result = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "--depth", "5", "-f", "json")
    assert result.exit_code == 0, result.output
    first, reranked = json.loads(result.stdout)
    assert (
        "note: the reranked run holds each query's top 5 (--depth), so its nDCG@10, MRR@10, R@100 and MAP count "
        "no document below them: a change there is the cut's as well as the reranking's\n"
    ) in result.stderr
    some = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "--depth", "5", "-M",
               "ndcg@5,map", "-f", "json")  # fmt: skip
    assert "so its MAP counts no document below them" in some.stderr and "nDCG@5" not in some.stderr
    # --depth 100 cuts no query of this run (it said so all the same)
    whole = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "-M", "map", "-f", "json")
    assert whole.exit_code == 0 and "note: the reranked run holds" not in whole.stderr
    qrels = formats.read_qrels(str(beir_dir / "qrels" / "test.tsv"))
    bm25 = formats.read_run(str(beir_dir / "bm25.trec"))
    assert {m: first[m] for m in metrics.MEASURES} == pytest.approx(metrics.evaluate(qrels, bm25).means)
    assert reranked["run"].startswith("qrr ") and reranked["queries"] == first["queries"] == 4
    # the same as reranking with qrr rerank and evaluating its output
    out = tmp_path / "qrr.trec"
    args = [str(beir_dir / "bm25.trec"), "--corpus", str(beir_dir / "corpus.jsonl"), "--queries",
            str(beir_dir / "queries.jsonl"), "--depth", "5"]  # fmt: skip
    rerank = cli("rerank", *args)
    assert rerank.exit_code == 0, rerank.output
    out.write_text(rerank.stdout)
    separate = metrics.evaluate(qrels, formats.read_run(str(out)))
    assert {m: reranked[m] for m in metrics.MEASURES} == pytest.approx(separate.means, abs=1e-9)
    assert "1 query without qrels left out" in result.stderr  # q4, which is not reranked either
    # said first, before the reranking, when it can still be done
    assert result.stderr.startswith("note: the reranked run will not be kept; --resume OUT writes it")


def test_beir_resume_keeps_the_reranked_run(cli, beir_dir, tmp_path):
    out = tmp_path / "qrr.trec"
    args = ["eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "--depth", "3", "-f", "json",
            "--resume", str(out)]  # fmt: skip
    result = cli(*args)
    first = json.loads(result.stdout)
    assert len(formats.read_run(str(out))) == 4  # the judged queries
    assert "not kept" not in result.stderr
    again = cli(*args, model="/no/such/model")  # nothing left to rerank: no model is loaded
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == first
    assert first[1]["run"] == str(out)
    # another instruction is refused, not evaluated as the old one's results under the new name (no model loads)
    other = cli(*args, "-i", "Find the opposite", model="/no/such/model")
    assert (other.exit_code, other.stdout) == (2, "")
    assert other.stderr.splitlines()[-1].startswith(f"error: --resume {out} was written with --instruction ")


def test_beir_resumes_the_output_of_rerank(cli, beir_dir, tmp_path):
    out = tmp_path / "qrr.trec"
    args = ["--depth", "3", "--resume", str(out)]
    ok = cli("rerank", str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), *args)
    assert ok.exit_code == 0, ok.output
    assert len(formats.read_run(str(out))) == 5  # the query without qrels too
    result = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), *args, "-f", "json",
                 model="/no/such/model")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "resuming" in result.stderr and json.loads(result.stdout)[1]["queries"] == 4


def test_beir_keep_rest_measures_past_the_depth_and_goes_on_with_reranks_file(cli, beir_dir, tmp_path):
    out = tmp_path / "qrr.trec"
    rerank = cli("rerank", str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "2", "--keep-rest",
                 "--resume", str(out))  # fmt: skip
    assert rerank.exit_code == 0, rerank.output
    args = ["eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "--depth", "2", "-M", "recall@100",
            "-f", "json"]  # fmt: skip
    result = cli(*args, "--keep-rest", "--resume", str(out), model="/no/such/model")  # nothing left: no model
    assert result.exit_code == 0, result.output
    first, reranked = json.loads(result.stdout)
    assert reranked["recall@100"] == first["recall@100"]  # every document kept: the first stage's recall
    assert "note: the reranked run holds" not in result.stderr
    without = cli(*args)
    assert without.exit_code == 0, without.output
    cut = json.loads(without.stdout)[1]  # without the rest, recall past the depth falls
    assert cut["recall@100"] < first["recall@100"]
    # eval reranking on its own with the rest: every document of the judged queries, recall the first stage's
    own = tmp_path / "own.trec"
    fresh = cli(*args, "--keep-rest", "--resume", str(own))
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.stdout)[1]["recall@100"] == first["recall@100"]
    bm25 = formats.read_run(str(beir_dir / "bm25.trec"))
    assert {q: set(docs) for q, docs in formats.read_run(str(own)).items()} == {
        q: set(bm25[q]) for q in formats.read_qrels(str(beir_dir / "qrels" / "test.tsv"))}  # fmt: skip
    refused = cli(*args, "--resume", str(out), model="/no/such/model")
    assert refused.stderr.splitlines()[-1].startswith(f"error: --resume {out} was written with --keep-rest true, not "
                                                      "false")  # fmt: skip


def test_beir_resume_cuts_an_unfinished_query_without_qrels(cli, beir_dir, tmp_path):
    # rerank was stopped in the last query, which has no qrels: eval must not write after its half
    full, out = tmp_path / "full.trec", tmp_path / "qrr.trec"
    args = ["--depth", "3", "--resume"]
    assert cli("rerank", str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), *args, str(full)).exit_code == 0
    lines = full.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[3:-1]))  # the first query to come, the last one unfinished
    result = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), *args, str(out))
    assert result.exit_code == 0, result.output
    said = (f"{out}: the last query, q4, looked unfinished and is cut off; it has no qrels here (qrr rerank --resume "
            f"{out} reranks it)")  # fmt: skip
    assert said in " ".join(result.stderr.split())
    again = cli("rerank", str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), *args, str(out))
    assert again.exit_code == 0, again.output
    assert formats.read_run(str(out)) == formats.read_run(str(full))


def test_beir_resume_with_nothing_to_rerank(cli, beir_dir, tmp_path):
    run = tmp_path / "other.trec"
    run.write_text("x1 Q0 d1 1 1.0 bm25\n")  # no query the qrels judge: nothing to rerank, nothing written
    result = cli("eval", "--beir", str(beir_dir), "--run", str(run), "--resume", str(tmp_path / "qrr.trec"))
    assert result.exit_code == 0, result.output
    assert "nothing to rerank" in result.stderr and "has results for none of the judged queries" in result.stderr
    assert not (tmp_path / "qrr.trec").exists()


def test_beir_folder_errors(cli, beir_dir, tmp_path):
    copy = tmp_path / "beir"
    shutil.copytree(beir_dir, copy)
    (copy / "qrels" / "train.tsv.gz").write_bytes(b"")
    (copy / "qrels" / "dev.small.tsv").write_bytes(b"")
    assert failed(cli("eval", "--beir", str(copy), "--run", str(copy / "bm25.trec"), "--split", "dev")) == (
        f"error: {copy / 'qrels' / 'dev.tsv'}: no such file (the folder's splits: dev.small, test, train)\n"
    )
    (copy / "corpus.jsonl").write_text('{"_id": "d0", "text": "only one"}\n')
    message = failed(cli("eval", "--beir", str(copy), "--run", str(copy / "bm25.trec")))
    assert f"of the run's documents are not in {copy / 'corpus.jsonl'}" in message


def test_model_options_from_the_environment_are_no_clash(qrr_eval, files, monkeypatch):
    monkeypatch.setenv("QRR_MODEL", "8b")  # a user's default model; plain eval loads none
    result = qrr_eval(files["qrels.txt"], files["a.trec"], "-f", "json")
    assert result.exit_code == 0, result.output
    assert "--model: only with --beir" in failed(qrr_eval(files["qrels.txt"], files["a.trec"], "-m", "8b"))


def test_the_real_model_end_to_end(cli, beir_dir, tiny_model, tmp_path):
    out = tmp_path / "qrr.trec"
    result = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "--depth", "3", "-f", "json",
                 "--resume", str(out), model=tiny_model)  # fmt: skip
    assert result.exit_code == 0, result.output
    reranked = json.loads(result.stdout)[1]
    qrels = formats.read_qrels(str(beir_dir / "qrels" / "test.tsv"))
    assert {m: reranked[m] for m in metrics.MEASURES} == pytest.approx(
        metrics.evaluate(qrels, formats.read_run(str(out))).means, abs=1e-12
    )
