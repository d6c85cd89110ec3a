"""qrr rank --run: reranking a first-stage TREC run with a BEIR corpus and queries, resuming, errors."""

from __future__ import annotations

import io as stdio

import orjson
import pytest
from rich.console import Console

import qrr.cli.base
import qrr.cli.reranking
import qrr.reranker
from qrr import runs


@pytest.fixture
def rerank_args(beir_dir):
    return ["--run", str(beir_dir / "bm25.trec"), "--corpus", str(beir_dir / "corpus.jsonl"),
            "--queries", str(beir_dir / "queries.jsonl")]  # fmt: skip


def ok(result):
    assert result.exit_code == 0, result.output
    return result.stdout


def failed(result, code=2):
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def expected(beir_dir, reranker):
    """Each query's top 5 of the run, scored by the core on title + " " + text, best first."""
    run = runs.read_run(str(beir_dir / "bm25.trec"))
    queries = runs.read_queries(str(beir_dir / "queries.jsonl"))
    corpus = {}
    for line in (beir_dir / "corpus.jsonl").read_text().splitlines():
        doc = orjson.loads(line)
        corpus[doc["_id"]] = f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]
    out = {}
    for qid, docs in run.items():
        top = runs.ranking(docs)[:5]
        scores = reranker.score([(queries[qid], corpus[d]) for d in top])
        out[qid] = sorted(zip(top, scores, strict=True), key=lambda pair: -pair[1])
    return out


def parse_trec(text: str):
    rows = [line.split() for line in text.splitlines()]
    assert all(len(r) == 6 and r[1] == "Q0" for r in rows)
    return rows


def same_run(a: str, b: str) -> None:
    """Two outputs hold the same results: the same queries in the same order, each with the same documents and
    scores (to 1e-6: a batch of other shapes may round differently in the last bits)."""
    run_a, run_b = (runs.read_run(path) for path in (a, b))
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
    check_trec(ok(cli("rank", *rerank_args, "--depth", "5")), expected)
    stdin_args = [*rerank_args[:1], "-", *rerank_args[2:]]
    check_trec(ok(cli("rank", *stdin_args, "--depth", "5", input=(beir_dir / "bm25.trec").read_text())), expected)


def test_jsonl_output_top_k_and_tag(cli, rerank_args, expected):
    rows = [orjson.loads(line) for line in ok(cli("rank", *rerank_args, "--depth", "5", "-f", "jsonl")).splitlines()]
    assert set(rows[0]) == {"qid", "docid", "rank", "score"}
    assert [(r["qid"], r["docid"]) for r in rows] == [(q, d) for q, pairs in expected.items() for d, _ in pairs]
    top2 = {q: pairs[:2] for q, pairs in expected.items()}
    check_trec(ok(cli("rank", *rerank_args, "--depth", "5", "-k", "2", "--tag", "mine")), top2, tag="mine")


def test_depth_defaults_to_100(cli, rerank_args):
    rows = parse_trec(ok(cli("rank", *rerank_args)))
    assert len(rows) == 5 * 8  # every document of the run (8 a query, fewer than 100)


@pytest.mark.parametrize("fmt", ["trec", "jsonl"])
def test_resume_goes_on_from_any_cut(cli, rerank_args, tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    ok(cli("rank", *rerank_args, "--depth", "4", "-f", fmt, "--resume", str(out)))
    full = out.read_bytes()
    whole = tmp_path / f"whole.{fmt}"
    whole.write_bytes(full)
    lines = full.splitlines(keepends=True)
    cuts = {0, len(full) // 3, len(lines[0]), len(b"".join(lines[:4])), len(b"".join(lines[:6])) + 3, len(full)}
    for cut in sorted(cuts):
        out.write_bytes(full[:cut])
        result = cli("rank", *rerank_args, "--depth", "4", "--resume", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout == ""  # results go to OUT
        same_run(str(out), str(whole))
        if cut:
            assert "resuming" in result.stderr


def test_a_complete_resume_loads_no_model(cli, rerank_args, tmp_path):
    out = tmp_path / "out.trec"
    ok(cli("rank", *rerank_args, "--resume", str(out)))
    result = cli("rank", *rerank_args, "--resume", str(out), model=str(tmp_path / "no-such-model"))
    assert result.exit_code == 0, result.output
    assert "resuming" in result.stderr and "nothing left to rerank" in result.stderr


def test_resume_refuses_another_format_or_a_foreign_file(cli, rerank_args, tmp_path):
    out = tmp_path / "out.trec"
    ok(cli("rank", *rerank_args, "--depth", "2", "--resume", str(out)))
    resume = ["--resume", str(out)]
    assert "holds a trec run, not --format jsonl" in failed(cli("rank", *rerank_args, "-f", "jsonl", *resume))
    assert "other inputs, --depth or --top-k" in failed(cli("rank", *rerank_args, "--depth", "3", *resume))
    out.write_text("my notes\n")
    assert "not a TREC run" in failed(cli("rank", *rerank_args, "--resume", str(out)))


def test_ctrl_c_says_how_to_go_on_and_resume_finishes(cli, rerank_args, tmp_path, monkeypatch):
    out = tmp_path / "out.trec"
    ok(cli("rank", *rerank_args, "--depth", "3", "--resume", str(tmp_path / "whole.trec")))
    monkeypatch.setattr(qrr.reranker, "CHUNK", 1)  # a query per call
    calls = {"n": 0}
    score = qrr.reranker.Reranker.score

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return score(self, *args, **kwargs)

    monkeypatch.setattr(qrr.reranker.Reranker, "score", interrupted)
    result = cli("rank", *rerank_args, "--depth", "3", "--resume", str(out))
    assert result.exit_code == 130
    assert f"interrupted after 2 of 5 queries; run the same command to go on from {out}" in result.stderr
    assert len(parse_trec(out.read_text())) == 2 * 3
    monkeypatch.setattr(qrr.reranker.Reranker, "score", score)
    ok(cli("rank", *rerank_args, "--depth", "3", "--resume", str(out)))
    same_run(str(out), str(tmp_path / "whole.trec"))


def test_ctrl_c_without_resume_points_to_it(cli, rerank_args, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(qrr.reranker.Reranker, "score", interrupted)
    result = cli("rank", *rerank_args)
    assert result.exit_code == 130 and "--resume OUT" in result.stderr


def test_progress_lines_when_stderr_is_a_log(cli, rerank_args, monkeypatch):
    monkeypatch.setattr(qrr.cli.reranking._Lines, "interval", 0.0)
    result = cli("rank", *rerank_args, "--depth", "2")
    lines = result.stderr.splitlines()
    assert lines[0].startswith("reranked 1/5 queries in 0:0") and "left" in lines[0]
    assert len(lines) == 4  # not after the last query


def test_progress_bar_on_a_terminal_keeps_results_on_stdout(cli, rerank_args, monkeypatch, expected):
    drawn = stdio.StringIO()
    console = Console(file=drawn, force_terminal=True, width=100)
    monkeypatch.setattr(qrr.cli.base, "stderr", console)
    monkeypatch.setattr(qrr.cli.reranking, "stderr", console)
    check_trec(ok(cli("rank", *rerank_args, "--depth", "5")), expected)
    assert " Q0 " not in drawn.getvalue()


# -------------------------------------------------------------------------------------------------- errors


def test_missing_documents_fail_or_are_counted(cli, rerank_args, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text((beir_dir / "bm25.trec").read_text() + "q0 Q0 gone 9 99.0 bm25\nq1 Q0 lost 9 98.0 bm25\n")
    args = ["--run", str(run), *rerank_args[2:]]
    message = failed(cli("rank", *args))
    assert "2 of the run's documents are not in the corpus (first: document gone of query q0)" in message
    assert "--on-error skip" in message
    result = cli("rank", *args, "--on-error", "skip", "--depth", "2")
    assert result.exit_code == 0
    assert "skipped 2 run entries missing from the inputs" in result.stderr
    assert "document lost of query q1: not in the corpus" in result.stderr
    rows = parse_trec(result.stdout)
    assert {r[2] for r in rows}.isdisjoint({"gone", "lost"})
    assert [r[0] for r in rows].count("q0") == 1  # the top 2 held a missing document: one is left


def test_missing_queries_and_malformed_lines(cli, rerank_args, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q0 Q0 d1 1 1.0 x\nq9 Q0 d1 1 1.0 x\n")
    assert "1 of the run's queries are not in the queries file (first: query q9)" in failed(
        cli("rank", "--run", str(run), *rerank_args[2:])
    )
    run.write_text("q0 Q0 d1 1 1.0 x\nq0 Q0 d2 1\nq0 Q0 d1 3 0.5 x\n")
    assert f"{run}:2: expected 'qid Q0 docid rank score tag', found 4 field(s)" in failed(
        cli("rank", "--run", str(run), *rerank_args[2:])
    )
    result = cli("rank", "--run", str(run), *rerank_args[2:], "--on-error", "skip")
    assert result.exit_code == 0
    assert "skipped 2 bad line(s)" in result.stderr and "listed twice for query q0" in result.stderr
    assert len(parse_trec(result.stdout)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-q", "x"], "-q/--query: not with --run"),
        (["--with-text"], "--with-text: not with --run"),
        (["-f", "table"], "--format table: use trec or jsonl with --run"),
        (["--tag", "two words"], "a TREC run tag is one word"),
        (["--resume", "/no/such/folder/out.trec"], "not a file in an existing folder"),
    ],
)
def test_options_that_do_not_go_with_run(cli, rerank_args, args, message):
    assert message in failed(cli("rank", *rerank_args, *args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-q", "x", "--corpus", "c.jsonl", "-d", "doc"], "--corpus: only with --run"),
        (["-q", "x", "--depth", "5", "-d", "doc"], "--depth: only with --run"),
        (["-q", "x", "-f", "trec", "-d", "doc"], "--format trec: only with --run"),
        (["--run", "r.trec", "--corpus", "c.jsonl"], "--run needs --corpus and --queries"),
        (["-d", "doc"], "give the query with -q/--query (or a first-stage run with --run)"),
    ],
)
def test_run_options_without_run(cli, args, message):
    assert message in failed(cli("rank", *args))


def test_ids_with_spaces_need_jsonl_output(cli, tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d 1", "text": "Beijing is the capital."}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "capital of China?"}\n')
    (tmp_path / "run.jsonl").write_text('{"qid": "q1", "docid": "d 1", "score": 1.0}\n')
    args = ["--run", str(tmp_path / "run.jsonl"), "--corpus", str(tmp_path / "corpus.jsonl"), "--queries",
            str(tmp_path / "queries.jsonl")]  # fmt: skip
    assert "id 'd 1' holds a space, which a TREC run cannot; use --format jsonl" in failed(cli("rank", *args))
    rows = [orjson.loads(line) for line in ok(cli("rank", *args, "-f", "jsonl")).splitlines()]
    assert [(r["qid"], r["docid"], r["rank"]) for r in rows] == [("q1", "d 1", 1)]
