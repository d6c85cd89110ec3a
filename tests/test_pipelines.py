"""The flows every front end runs: scoring a stream, ranking for a query, reranking a run and going on with it.
The fake model stands in where numbers do not matter; planning and resuming are checked on plain data."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from qrr import Reranker, formats, metrics, pipelines
from qrr.device import dtype_name
from qrr.errors import InputError, Interrupted, PairError, Stopped
from qrr.family import QWEN3
from qrr.pipelines import Job
from qrr.reranker import Results, Stats


class Collect(list):
    def __call__(self, error):
        self.append(str(error))


@pytest.fixture(scope="module")
def rr():
    return Reranker("fake")


# ------------------------------------------------------------------------------------------ pairs, documents


def test_score_records_in_chunks_equals_score_at_once(rr):
    records = [formats.PairRecord(f"query {n % 3}", f"document {n}", None, {"id": n}) for n in range(11)]
    whole = rr.score([(r.query, r.document) for r in records])
    chunks = list(pipelines.score_records(rr, iter(records), chunk=4))
    assert [c.start for c in chunks] == [0, 4, 8] and [len(c.records) for c in chunks] == [4, 4, 3]
    assert [s for c in chunks for s in c.scores] == whole
    assert sum(c.scores.stats.pairs for c in chunks) == 11
    assert [r for c in chunks for r in c.records] == records


def test_a_call_is_a_few_batches_of_text(rr):
    from types import SimpleNamespace

    assert pipelines.call_room(SimpleNamespace(batch_tokens=1024)) == 32768  # the CPU's default batch
    assert pipelines.call_room(SimpleNamespace(batch_tokens=32768)) == 1048576  # a GPU's
    # the fake model's batches hold 1,024 tokens: about 32,768 characters a call, results in between
    records = [formats.PairRecord("query", "x" * 995) for _ in range(70)]  # 1,000 characters a pair
    chunks = list(pipelines.score_records(rr, iter(records)))
    assert [len(c.records) for c in chunks] == [33, 33, 4] and [c.start for c in chunks] == [0, 33, 66]
    short = [formats.PairRecord("q", "d") for _ in range(1500)]  # at most 1,024 pairs a call however short
    assert [len(c.records) for c in pipelines.score_records(rr, iter(short))] == [1024, 476]


def test_rank_records_keeps_ids_and_texts(rr):
    docs = [formats.DocRecord("alpha", "a"), formats.DocRecord("beta"), formats.DocRecord("gamma", 7)]
    ranked = pipelines.rank_records(rr, "q", iter(docs), return_documents=True)
    expected = rr.rank("q", [d.text for d in docs])
    assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected]
    assert [(r["id"], r["text"]) for r in ranked] == [(docs[r["corpus_id"]].id, docs[r["corpus_id"]].text)
                                                      for r in ranked]  # fmt: skip
    assert ranked.stats.pairs == 3
    assert [set(r) for r in pipelines.rank_records(rr, "q", docs, top_k=1)] == [{"corpus_id", "score", "id"}]
    # with_fields: each kept result carries its record's other fields (texts carry none), which rank_rows copies
    docs = [formats.DocRecord("alpha", "a", {"url": "u"}), "beta"]
    ranked = pipelines.rank_records(rr, "q", docs, with_fields=True)
    assert {r["corpus_id"]: (r["id"], r["fields"]) for r in ranked} == {0: ("a", {"url": "u"}), 1: (None, {})}
    assert {r["index"]: r.get("url") for r in formats.rank_rows(ranked)} == {0: "u", 1: None}
    # without with_fields none are kept while ranking (a chunk file's embeddings took memory for every document)
    seen = []
    rank = rr.rank

    class Spy:
        def rank(self, query, documents, ids, **options):
            ids = list(ids)
            seen.extend(ids)
            return rank(query, documents, ids=ids, **options)

    ranked = pipelines.rank_records(Spy(), "q", docs)
    assert seen == [("a", None), (None, {})] and all("fields" not in r for r in ranked)


def test_a_query_too_long_for_max_length_raises_or_is_left_out_with_on_error():
    rr = Reranker("fake", max_length=100)
    long = "long " * 200
    pairs = [("q", "a"), (long, "b"), ("q", "c"), (long, "d"), ("q", "e")]
    with pytest.raises(PairError, match="^pair 1: the query and instruction take 225 tokens, but max_length 100 "):
        list(pipelines.score_records(rr, pairs))
    with pytest.raises(InputError, match="^pairs.jsonl:9: the query and instruction take 225 tokens, but "):
        list(pipelines.score_records(rr, [formats.PairRecord(long, "b", where="pairs.jsonl:9")]))
    errors = []
    chunks = list(pipelines.score_records(rr, pairs, chunk=3, on_error=errors.append))
    said = [str(e) for e in errors]
    assert [(c.start, c.indexes, c.records) for c in chunks] == [
        (0, [0, 2], [pairs[0], pairs[2]]),
        (3, [4], [pairs[4]]),
    ]
    assert [s for c in chunks for s in c.scores] == rr.score([pairs[0], pairs[2], pairs[4]])
    assert [str(e).split(":")[0] for e in errors] == ["pair 1", "pair 3"]
    assert all(e.params == ("max_length",) for e in errors)
    # the same query's other pairs of a chunk go in one step, and the progress counts them done
    seen, errors = [], []
    chunks = list(pipelines.score_records(rr, [(long, "x")] * 3 + [("q", "y")], progress=seen.append,
                                          on_error=errors.append))  # fmt: skip
    assert [c.indexes for c in chunks] == [[3]] and len(errors) == 3 and sum(seen) == 4

    class Told:  # a reranker that tells a query too long only as it scores (a server's)
        instruction, batch_tokens = None, rr.batch_tokens

        def score(self, pairs, progress=None):
            return rr.score(pairs, progress=progress)

    told = []
    chunks = list(pipelines.score_records(Told(), pairs, chunk=3, on_error=told.append))
    assert [(c.start, c.indexes) for c in chunks] == [(0, [0, 2]), (3, [4])]
    assert [str(e) for e in told] == said


def test_the_stream_functions_take_what_the_reranker_takes(rr):
    pairs = [("q", "alpha"), {"query": "q", "document": "beta", "id": 2}, ("q", "gamma", "Find it")]
    chunks = list(pipelines.score_records(rr, iter(pairs), chunk=2))
    assert [c.records for c in chunks] == [pairs[:2], pairs[2:]]  # the items as given, beside their scores
    assert [s for c in chunks for s in c.scores] == rr.score(pairs)
    ranked = pipelines.rank_records(rr, "q", ["alpha", formats.DocRecord("beta", "b")], return_documents=True)
    assert sorted((r["text"], r["id"]) for r in ranked) == [("alpha", None), ("beta", "b")]
    # a bad pair is named by its place in the whole stream
    with pytest.raises(PairError, match="^pair 3: document must be a string, not NoneType$") as caught:
        list(pipelines.score_records(rr, [("q", "d")] * 3 + [formats.PairRecord("q", None)], chunk=2))
    assert caught.value.pair == 3
    with pytest.raises(InputError, match="^records must be an iterable of pairs, not one pair: "):
        list(pipelines.score_records(rr, ("q", "d")))
    with pytest.raises(InputError, match="^records must be an iterable of strings, not one string"):
        pipelines.rank_records(rr, "q", "docs.jsonl")
    with pytest.raises(InputError, match=r"^records must be .*, not a mapping: pass its texts and keys \(\[DocRecord"):
        pipelines.rank_records(rr, "q", {"d1": "alpha"})
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame([{"query": "q", "document": "alpha"}, {"query": "q", "document": "beta"}])
    assert [s for c in pipelines.score_records(rr, frame) for s in c.scores] == rr.score(frame)


# ------------------------------------------------------------------------------------------------ planning

RUN = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0, "d4": 0.0}, "q2": {"d2": 1.0, "dX": 5.0}, "q3": {"d1": 1.0}}
QUERIES = {"q1": "first", "q2": "second"}
TEXTS = {"d1": "one", "d2": "two", "d3": "three", "d4": "four"}


def test_plan_takes_the_top_depth_in_trec_eval_order():
    jobs = pipelines.plan(pipelines.top({"q1": RUN["q1"]}, 3), QUERIES, TEXTS)
    assert jobs == [Job("q1", "first", ("d1", "d2", "d3"))]


def test_plan_names_missing_queries_and_documents():
    with pytest.raises(InputError, match=r"1 of the run's queries is not in the queries file \(first: query q3\); "
                       "to rerank without them, pass on_missing") as caught:  # fmt: skip
        pipelines.plan(pipelines.top(RUN, 2), QUERIES, TEXTS)
    assert caught.value.params == ("on_missing",)
    with pytest.raises(InputError, match=r"1 of the run's documents is not in the corpus \(first: document dX of "):
        pipelines.plan(pipelines.top(RUN, 2, only={"q1", "q2"}), QUERIES, TEXTS)
    skipped = Collect()
    jobs = pipelines.plan(pipelines.top(RUN, 2), QUERIES, TEXTS, on_missing=skipped)
    assert jobs == [Job("q1", "first", ("d1", "d2")), Job("q2", "second", ("d2",))]
    assert skipped == ["query q3: not in the queries file", "document dX of query q2: not in the corpus"]
    assert pipelines.plan(pipelines.top(RUN, 2, only={"q1"}), QUERIES, TEXTS) == jobs[:1]


def test_ranked_orders_equal_scores_as_trec_eval_reads_a_run():
    # the ranks written are the order qrr eval and trec_eval take (first-stage order: eval disagreed with them)
    assert pipelines.ranked(("a", "b", "c"), [0.5, 0.9, 0.5]) == [("b", 0.9), ("c", 0.5), ("a", 0.5)]
    # equal only in trec_eval's single precision (near 1.0): the scores' own order, as written
    assert pipelines.ranked(("a", "z"), [1 - 1e-9, 1 - 2e-9]) == [("a", 1 - 1e-9), ("z", 1 - 2e-9)]


def test_top_takes_equal_scores_in_the_runs_own_order():
    # a run ranked by its rank column alone: its first documents (trec_eval's docid order gave d31, d30, d03)
    constant = {"q": {"d01": 0.0, "d02": 0.0, "d03": 0.0, "d30": 0.0, "d31": 0.0}}
    assert pipelines.top(constant, 3) == {"q": ["d01", "d02", "d03"]}
    assert pipelines.top({"q": {"a": 1.0, "b": 2.0, "c": 1.0, "d": 0.5}}, 3) == {"q": ["b", "a", "c"]}


# ------------------------------------------------------------------------------------------------ resuming


@pytest.mark.parametrize("fmt", ["trec", "jsonl"])
def test_resume_point_at_every_byte(tmp_path, fmt):
    blocks = [formats.format_results(q, [(f"d{n}", 1 / (n + 1)) for n in range(k)], fmt) for q, k in
              (("q1", 3), ("q2", 2), ("q3", 3))]  # fmt: skip
    expected = {"q1": 3, "q2": 2, "q3": 3}
    full = "".join(blocks).encode()
    ends = [len("".join(blocks[: n + 1]).encode()) for n in range(3)]
    path = tmp_path / "out"
    for cut in range(len(full) + 1):
        path.write_bytes(full[:cut])
        if cut == 0:
            assert formats.output_format(path) is None
            continue
        assert formats.output_format(path) == fmt
        done, keep = pipelines.resume_point(path, fmt, expected)
        complete = [e for e in ends if e <= cut]
        assert keep == (complete[-1] if complete else 0)
        assert done == set(list(expected)[: len(complete)])


def test_resume_point_keeps_queries_left_alone(tmp_path):
    path = tmp_path / "out"
    path.write_text("q1 Q0 d1 1 0.5 qrr\nqX Q0 d1 1 0.5 qrr\nqX Q0 d2 2 0.4 qrr\nq2 Q0 d1 1 0.5 qrr\n")
    line = len("q1 Q0 d1 1 0.5 qrr\n")  # every line here is as long; q2 wants 2 results and has 1
    assert pipelines.resume_point(path, "trec", {"q1": 1, "q2": 2}, others={"qX": 2}) == ({"q1"}, 3 * line)
    # one left alone in the middle with fewer results than it could have (documents the corpus lacked) is kept
    assert pipelines.resume_point(path, "trec", {"q1": 1, "q2": 2}, others={"qX": 5}) == ({"q1"}, 3 * line)
    with pytest.raises(InputError, match="query qX is not among the queries to rerank"):
        pipelines.resume_point(path, "trec", {"q1": 1, "q2": 2})


def test_resume_point_takes_queries_left_alone_without_counts(tmp_path):
    path = tmp_path / "out"
    path.write_text("q1 Q0 d1 1 0.5 qrr\nqX Q0 d1 1 0.5 qrr\n")
    assert pipelines.resume_point(path, "trec", {"q1": 1}, others={"qX"}) == ({"q1"}, path.stat().st_size)


def test_a_result_scored_again_must_come_out_as_written(tmp_path):
    import math
    from types import SimpleNamespace

    def p(odds):
        return 1 / (1 + math.exp(-odds))

    def output(then):
        return SimpleNamespace(path="out", written=[pipelines.Written("out:1", "q1", "d1", "q", "d", p(then))])

    def reranker(now):
        return SimpleNamespace(score=lambda pairs: [p(now)] * len(pairs))

    pipelines.check_written(reranker(0.9), output(0.0))  # within 1 in log-odds
    pipelines.check_written(reranker(-16.5), output(-15.0))  # far out, a tenth of their size more
    with pytest.raises(InputError, match="^out:1: query q1's document d1 has score 0.5498 there but scores 0.2689 now"):
        pipelines.check_written(reranker(-1.0), output(0.2))
    with pytest.raises(InputError, match=r"has score 0\.999999998 there but scores 1\.000000000 now"):
        pipelines.check_written(reranker(25.0), output(20.0))  # told apart in as many digits as it takes


def test_resume_point_cuts_an_unfinished_query_left_alone_at_the_end(tmp_path):
    path = tmp_path / "out"
    line = len("q1 Q0 d1 1 0.5 qrr\n")
    path.write_text("q1 Q0 d1 1 0.5 qrr\nqX Q0 d1 1 0.5 qrr\n")
    assert pipelines.resume_point(path, "trec", {"q1": 1}, others={"qX": 2}) == ({"q1"}, line)
    path.write_text("q1 Q0 d1 1 0.5 qrr\nqX Q0 d1 1 0.5 qrr\nqX Q0 d2 2 0.4 qrr\n")
    assert pipelines.resume_point(path, "trec", {"q1": 1}, others={"qX": 2}) == ({"q1"}, 3 * line)


def test_resume_point_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "out"
    path.write_text("q1 Q0 d1 1 0.5 qrr\nq2 Q0 d1 1 0.5 qrr\n")
    said = "query q1 has 1 result.*other inputs or with another depth or top_k; go on with"
    with pytest.raises(InputError, match=said) as caught:
        pipelines.resume_point(path, "trec", {"q1": 2, "q2": 1})
    assert "with another --depth or --top-k; go on" in caught.value.naming({"depth": "--depth", "top_k": "--top-k"})
    with pytest.raises(InputError, match="query q2 is not among the queries to rerank"):
        pipelines.resume_point(path, "trec", {"q1": 1})
    path.write_text("q1 Q0 d1 1 0.5 qrr\nq1 Q0 d2 2 0.4 qrr\n")
    with pytest.raises(InputError, match="query q1 has more than 1 result;"):
        pipelines.resume_point(path, "trec", {"q1": 1})
    path.write_text("q1 Q0 d1 1 0.5 qrr\nq2 Q0 d1 1 0.5 qrr\nq1 Q0 d2 1 0.5 qrr\n")
    with pytest.raises(InputError, match="query q1 appears a second time"):
        pipelines.resume_point(path, "trec", {"q1": 1, "q2": 1})
    path.write_text("some notes\n")
    with pytest.raises(InputError, match="not a TREC run"):
        pipelines.resume_point(path, "trec", {"q1": 1})


def test_run_output_is_checked_before_any_input(tmp_path):
    assert pipelines.RunOutput.checked() == pipelines.RunOutput(None, "trec", "qrr")
    with pytest.raises(InputError, match="^fmt table: use trec or jsonl for a run$"):
        pipelines.RunOutput.checked(fmt="table")
    with pytest.raises(InputError, match="^tag 'two words': TREC run tags are one word$"):
        pipelines.RunOutput.checked(tag="two words")
    with pytest.raises(
        InputError,
        match="^output /no/such/folder/out: its folder /no/such/folder does not exist; make it "
        "\\(mkdir -p\\), or give a file in an existing folder$",
    ):
        pipelines.RunOutput.checked("/no/such/folder/out")
    (tmp_path / "out").write_text("q1 Q0 d1 1 0.5 qrr\n")
    assert pipelines.RunOutput.checked(str(tmp_path / "out")).fmt == "trec"  # an existing file keeps its format
    with pytest.raises(InputError, match="the file holds a trec run, not fmt jsonl") as caught:
        pipelines.RunOutput.checked(str(tmp_path / "out"), "jsonl")
    assert caught.value.naming({"output": "--resume", "fmt": "--format"}).startswith(f"--resume {tmp_path}")


# ----------------------------------------------------------------------------------------------- reranking


class CountingReranker:
    """Scores a document by its length; records how many pairs each call got."""

    def __init__(self, batch_tokens: int):
        self.batch_tokens = batch_tokens
        self.calls: list[int] = []

    def score(self, pairs, progress=None):
        pairs = list(pairs)
        self.calls.append(len(pairs))
        return Results([len(document) / 100 for _, document in pairs], Stats(pairs=len(pairs)))


@pytest.mark.parametrize(("batch_tokens", "calls"), [(10**6, [6]), (1, [2, 2, 2])])
def test_rerank_groups_queries_only_where_batches_are_large(batch_tokens, calls):
    texts = {"s": "x" * 20, "m": "x" * 30, "l": "x" * 50}  # with batch_tokens 1, any query fills a call
    jobs = [Job("q1", "?", ("s", "l")), Job("q2", "?", ("m", "s")), Job("q3", "?", ("l", "m"))]
    counting, stats = CountingReranker(batch_tokens), Stats()
    results = list(pipelines.rerank_jobs(counting, jobs, texts, top_k=1, stats=stats))
    assert counting.calls == calls
    assert [(job.qid, ranked) for job, ranked in results] == [("q1", [("l", 0.5)]), ("q2", [("m", 0.3)]),
                                                               ("q3", [("l", 0.5)])]  # fmt: skip
    assert stats.pairs == 6


def beir_inputs(beir_dir, depth=4, **kwargs):
    return pipelines.read_run_inputs(str(beir_dir / "bm25.trec"), str(beir_dir / "queries.jsonl"),
                                     str(beir_dir / "corpus.jsonl"), depth, **kwargs)  # fmt: skip


def test_read_run_inputs_keeps_only_the_documents_needed(beir_dir):
    inputs = beir_inputs(beir_dir, depth=2)
    assert [j.qid for j in inputs.jobs] == ["q0", "q1", "q2", "q3", "q4"]
    assert set(inputs.corpus) == {d for j in inputs.jobs for d in j.docids} and inputs.pairs == 10
    assert [j.qid for j in beir_inputs(beir_dir, only={"q1", "q3"}).jobs] == ["q1", "q3"]
    with pytest.raises(InputError, match="^depth must be at least 1, not 0$"):
        beir_inputs(beir_dir, depth=0)


def test_rerank_run_in_memory_equals_scoring_each_query(beir_dir, rr):
    inputs = beir_inputs(beir_dir)
    done = pipelines.rerank_run(rr, inputs)
    assert list(done.run) == [j.qid for j in inputs.jobs] and done.queries == 5 and done.stats.pairs == 20
    for job in inputs.jobs:
        scores = rr.score([(job.query, inputs.corpus[d]) for d in job.docids])
        assert done.run[job.qid] == dict(zip(job.docids, scores, strict=True))


def test_keep_rest_puts_the_first_stages_rest_below_in_its_order(beir_dir, rr):
    # the rest in trec_eval's order of the first stage (ties by docid, descending: b before a), so that measures
    # past the reranked ones are the first stage's
    assert pipelines.with_rest([("c", 0.9)], {"a": 3.0, "b": 3.0, "c": 2.0, "d": 1.0}) == [
        ("c", 0.9), ("b", -1.0), ("a", -2.0), ("d", -4.0)]  # fmt: skip
    inputs = pipelines.read_run_inputs(beir_dir / "bm25.trec", beir_dir / "queries.jsonl", beir_dir / "corpus.jsonl",
                                       depth=2, keep_rest=True)  # fmt: skip
    assert repr(inputs).endswith(", keep_rest=True)")
    done = pipelines.rerank_run(rr, inputs)
    for job in inputs.jobs:
        assert set(done.run[job.qid]) == set(inputs.run[job.qid])  # every document of the run
        rest = [d for d, score in done.run[job.qid].items() if score < 0]
        assert rest == [d for d in metrics.ranking(inputs.run[job.qid]) if d not in job.docids]
    with pytest.raises(InputError, match="^top_k: not with keep_rest, which writes every document of the run$"):
        pipelines.rerank_run(rr, inputs, top_k=3)


def test_a_python_user_goes_on_with_an_interrupted_run(beir_dir, rr, tmp_path):
    whole = tmp_path / "whole.trec"
    pipelines.rerank_run(rr, beir_inputs(beir_dir), pipelines.RunOutput.checked(str(whole)))
    out = tmp_path / "out.trec"
    lines = whole.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:9]) + lines[9][:7])  # two queries, a third begun, a line cut
    inputs, output = beir_inputs(beir_dir), pipelines.RunOutput.checked(str(out))
    assert output.prepare(inputs) is True  # the unfinished query was cut off
    assert output.done == 2 and [j.qid for j in inputs.jobs] == ["q2", "q3", "q4"]
    done = pipelines.rerank_run(rr, inputs, output)
    assert done.run == {} and (done.queries, done.resumed) == (3, 2)  # as score_run says what it went past
    assert out.read_bytes() == whole.read_bytes()
    # without prepare, rerank_run goes on from the file itself: nothing is written twice
    out.write_bytes(b"".join(lines[:9]) + lines[9][:7])
    inputs = beir_inputs(beir_dir)
    done = pipelines.rerank_run(rr, inputs, pipelines.RunOutput.checked(str(out)))
    assert (done.queries, done.resumed) == (3, 2) and out.read_bytes() == whole.read_bytes()
    assert pipelines.rerank_run(rr, beir_inputs(beir_dir), str(out)).resumed == 5  # all done: nothing reranked
    # and leaves the caller's inputs whole: a notebook's next call, without the file, found no query left
    assert len(inputs.jobs) == 5 and pipelines.rerank_run(rr, inputs).queries == 5
    # an output path that is one of the files read is refused as such (it was read as a run to go on with)
    run = beir_dir / "bm25.trec"
    before = run.read_bytes()
    with pytest.raises(InputError, match=f"^output {run}: {run} is read as an input; give a new file for the reranked "
                                         "run$"):  # fmt: skip
        pipelines.rerank_run(rr, inputs, str(run))
    with pytest.raises(InputError, match=f"^output {run}: {run} is read as an input"):  # prepared by the caller too
        pipelines.RunOutput.checked(run).prepare(inputs)
    assert run.read_bytes() == before


def test_a_python_run_keeps_its_settings_and_one_with_others_is_refused(beir_dir, rr, tmp_path):
    out = tmp_path / "out.trec"
    pipelines.rerank_run(rr, beir_inputs(beir_dir), pipelines.RunOutput.checked(out))
    kept = orjson.loads((tmp_path / ".out.trec.qrr.json").read_bytes())
    dtype = dtype_name(rr.dtype)  # auto's: bf16 or fp32, by the CPU
    assert (
        {k: kept[k] for k in ("model", "instruction", "max_length", "recipe", "dtype")}
        == rr.settings()
        == {
            "model": "fake",
            "instruction": QWEN3.default_instruction,
            "max_length": 8192,
            "recipe": "transformers",
            "dtype": dtype,
        }
    )
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:8]))  # two queries done
    other = Reranker("fake", instruction="Judge")
    said = (
        f'^output {out} was written with instruction "{QWEN3.default_instruction}", not "Judge" \\(as '
        f"{tmp_path / '.out.trec.qrr.json'} keeps\\); go on with that, or rerank into a new file$"
    )
    for prepared in (False, True):  # prepared by the caller or by rerank_run
        output, inputs = pipelines.RunOutput.checked(out), beir_inputs(beir_dir)
        if prepared:
            output.prepare(inputs)
        with pytest.raises(InputError, match=said):
            pipelines.rerank_run(other, inputs, output)
        assert output.claimed is None  # given up: the next run may take the file
    # one output used again: each call is checked with its own reranker's settings (the first one's stayed on it)
    reused = pipelines.RunOutput.checked(out)
    pipelines.rerank_run(rr, beir_inputs(beir_dir), reused)  # its own settings go on
    assert len(out.read_bytes().splitlines()) == len(lines) and reused.settings is None
    out.write_bytes(b"".join(lines[:8]))
    with pytest.raises(InputError, match=said):
        pipelines.rerank_run(other, beir_inputs(beir_dir), reused)
    # another dtype's scores differ in rounding: a file of one and another's were mixed, unsaid
    unlike = "fp32" if dtype == "bf16" else "bf16"
    with pytest.raises(InputError, match=f"^output {out} was written in {dtype} \\(as "
                                         f"{tmp_path / '.out.trec.qrr.json'} keeps\\), not {unlike}: one file holds "
                                         f"one dtype's scores; go on with it in {dtype}, or rerank into a new "
                                         "file$"):  # fmt: skip
        pipelines.rerank_run(Reranker("fake", dtype=unlike), beir_inputs(beir_dir), pipelines.RunOutput.checked(out))
    assert len(out.read_bytes().splitlines()) == 8
    # scored where the dtype is not known (Ray's actors, as they write; an older server): the file's is no longer one
    inputs = beir_inputs(beir_dir)
    unknown = pipelines.RunOutput.checked(out, settings=rr.settings() | {"keep_rest": False, "dtype": None})
    unknown.prepare(inputs)
    pipelines.write_reranked(pipelines.rerank_jobs(Reranker("fake", dtype=unlike), inputs.jobs, inputs.corpus),
                             inputs, unknown)  # fmt: skip
    kept = orjson.loads((tmp_path / ".out.trec.qrr.json").read_bytes())
    assert len(out.read_bytes().splitlines()) == len(lines) and "dtype" not in kept and kept["instruction"]


def test_top_k_is_checked_before_the_output_is_touched(beir_dir, rr, tmp_path):
    out = tmp_path / "out.trec"
    with pytest.raises(InputError, match="^top_k must be at least 1, not 0$"):
        pipelines.rerank_run(rr, beir_inputs(beir_dir), pipelines.RunOutput.checked(str(out)), top_k=0)
    assert not out.exists()


def test_an_interrupted_run_says_how_far_it_got(beir_dir, fake, tmp_path):
    name, _ = fake(interrupt_after=7)  # a Ctrl-C in the third query's batches
    stopping = Reranker(name, batch_tokens=1)  # a batch per document: each query is its own call
    out = tmp_path / "out.trec"
    with pytest.raises(Interrupted, match=f"^interrupted after 2 of 5 queries; rerank into {out} again") as caught:
        pipelines.rerank_run(stopping, beir_inputs(beir_dir, depth=3), pipelines.RunOutput.checked(str(out)))
    assert (caught.value.done, caught.value.total, caught.value.path) == (2, 5, str(out))
    assert caught.value.partial is None  # written, not kept
    assert [line.split()[0] for line in out.read_text().splitlines()] == ["q0"] * 3 + ["q1"] * 3


def test_an_interrupted_run_in_memory_keeps_the_finished_queries(beir_dir, fake, rr):
    name, _ = fake(interrupt_after=7)
    inputs = beir_inputs(beir_dir, depth=3)
    said = "interrupted after 2 of 5 queries; their results are the exception's .partial (in a notebook, " \
           "sys.last_value.partial)"  # fmt: skip
    with pytest.raises(Interrupted, match=f"^{re.escape(said)}$") as caught:
        pipelines.rerank_run(Reranker(name, batch_tokens=1), inputs)
    whole = pipelines.rerank_run(rr, beir_inputs(beir_dir, depth=3)).run
    assert caught.value.partial == {qid: whole[qid] for qid in ("q0", "q1")}


def test_a_rerank_shows_a_progress_bar_where_asked(beir_dir, rr, tmp_path, capsys):
    inputs = beir_inputs(beir_dir, depth=3)
    plain = pipelines.rerank_run(rr, inputs).run
    assert capsys.readouterr().err == ""
    assert pipelines.rerank_run(rr, inputs, show_progress_bar=True).run == plain
    err = capsys.readouterr().err  # a notebook had only the progress callback
    assert err.startswith("\rreranking:   0%|") and f"| {inputs.pairs}/{inputs.pairs} [" in err
    output = pipelines.RunOutput.checked(tmp_path / "out.trec")
    pipelines.rerank_run(rr, replace(inputs, jobs=inputs.jobs[:2]), output)
    pipelines.rerank_run(rr, inputs, output, show_progress_bar=True)  # goes on: the bar counts the pairs left
    left = sum(len(job.docids) for job in inputs.jobs[2:])
    assert f"| {left}/{left} [" in capsys.readouterr().err
    with pytest.raises(InputError, match="^show_progress_bar must be True or False, not 'yes'$"):
        pipelines.rerank_run(rr, inputs, show_progress_bar="yes")


def test_a_rerank_takes_its_output_as_a_path_and_checks_what_it_is_given(beir_dir, rr, tmp_path):
    pipelines.rerank_run(rr, beir_inputs(beir_dir), tmp_path / "out.trec")
    assert formats.read_run(tmp_path / "out.trec").keys() == {"q0", "q1", "q2", "q3", "q4"}
    with pytest.raises(InputError, match="^output must be a path or a RunOutput, not int$"):
        pipelines.rerank_run(rr, beir_inputs(beir_dir), 3)
    with pytest.raises(InputError, match="^on_error must be a function that takes each error"):
        pipelines.rerank_run(rr, beir_inputs(beir_dir), on_error="skip")


def test_paths_are_taken_as_pathlib_paths(beir_dir, rr, tmp_path):
    inputs = pipelines.read_run_inputs(beir_dir / "bm25.trec", beir_dir / "queries.jsonl", beir_dir / "corpus.jsonl",
                                       2)  # fmt: skip
    assert inputs == beir_inputs(beir_dir, depth=2)
    output = pipelines.RunOutput.checked(tmp_path / "out.trec", inputs=[beir_dir / "bm25.trec"])
    assert output.path == str(tmp_path / "out.trec")
    pipelines.rerank_run(rr, inputs, output)
    run = beir_dir / "bm25.trec"
    with pytest.raises(InputError, match=f"^output {run}: {run} is read as an input; give a new file"):
        pipelines.RunOutput.checked(run, inputs=[run])
    assert pipelines.ScoresOutput.checked(tmp_path / "scores.jsonl").path == str(tmp_path / "scores.jsonl")
    with pytest.raises(InputError, match=r"^- \(stdin\) is given twice"):
        pipelines.read_run_inputs("-", "-", beir_dir / "corpus.jsonl")
    with pytest.raises(InputError, match="^run must be a path, not int$"):
        pipelines.read_run_inputs(5, beir_dir / "queries.jsonl", beir_dir / "corpus.jsonl")


def test_a_second_run_into_one_output_adds_nothing(beir_dir, rr, tmp_path):
    # a notebook cell run twice: the output prepared for the first run is prepared again for the second
    output = pipelines.RunOutput.checked(tmp_path / "out.trec")
    assert pipelines.rerank_run(rr, beir_inputs(beir_dir), output).queries == 5
    first = (tmp_path / "out.trec").read_bytes()
    again = pipelines.rerank_run(rr, beir_inputs(beir_dir), output)
    assert again.queries == 0 and output.done == 5 and (tmp_path / "out.trec").read_bytes() == first


def test_a_new_output_named_jsonl_is_written_as_json_lines(beir_dir, rr, tmp_path):
    output = pipelines.RunOutput.checked(tmp_path / "out.jsonl")
    assert output.fmt == "jsonl" and pipelines.RunOutput.checked(tmp_path / "OUT.JSONL").fmt == "jsonl"
    assert pipelines.RunOutput.checked(tmp_path / "out.jsonl", "trec").fmt == "trec"  # as asked
    pipelines.rerank_run(rr, beir_inputs(beir_dir, depth=2), output)
    assert orjson.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["qid"] == "q0"
    with pytest.raises(InputError, match=r"^tag bm25: a jsonl run has no tag \(it is a TREC run's last column\)$"):
        pipelines.RunOutput.checked(tmp_path / "out.jsonl", tag="bm25")
    (tmp_path / "old.jsonl").write_text("q1 Q0 d1 1 0.5 qrr\n")
    assert pipelines.RunOutput.checked(tmp_path / "old.jsonl").fmt == "trec"  # what an existing file holds wins


def test_ids_a_trec_run_cannot_hold(tmp_path):
    inputs = pipelines.RunInputs({"q 1": {"d": 1.0}}, [Job("q 1", "?", ("d",))], {"d": "text"})
    with pytest.raises(
        InputError, match=r"^id 'q 1' holds a space, which a TREC run cannot hold; write a jsonl run \(fmt jsonl\)$"
    ):
        pipelines.RunOutput.checked().prepare(inputs)
    assert pipelines.RunOutput.checked(fmt="jsonl").prepare(inputs) is False


def test_jsonl_output_of_rerank_run(beir_dir, rr, tmp_path):
    out = tmp_path / "out.jsonl"
    pipelines.rerank_run(rr, beir_inputs(beir_dir, depth=2), pipelines.RunOutput.checked(str(out), "jsonl"), top_k=1)
    rows = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert [(r["qid"], r["rank"]) for r in rows] == [(q, 1) for q in ("q0", "q1", "q2", "q3", "q4")]


@pytest.mark.parametrize("kind", ["scores", "run"])
def test_one_run_at_a_time_writes_an_output(beir_dir, tmp_path, kind):
    import fcntl

    # a job restarted while the old one still ran: both went on from one place and wrote every result after it twice
    path = tmp_path / "out"
    lines = ['{"index": 0, "score": 0.5}\n', '{"index": 1, "score": 0.5}\n'] if kind == "scores" else \
        ["q0 Q0 d1 1 0.5 qrr\n", "q1 Q0 d1 1 0.5 qrr\n"]  # fmt: skip

    def prepared():
        if kind == "scores":
            output = pipelines.ScoresOutput.checked(path)
            output.prepare()
        else:
            output = pipelines.RunOutput.checked(path)
            jobs = [Job(q, "?", ("d1",)) for q in ("q0", "q1")]
            output.prepare(pipelines.RunInputs({"q0": {"d1": 1.0}, "q1": {"d1": 1.0}}, jobs, {"d1": "text"}))
        return output

    busy = f"^output {path}: another run is writing it \\(two would write each result twice\\); let it finish, or "
    early, first = prepared(), prepared()  # no file yet: nothing to hold while they score
    with first.open() as handle:  # the first result: the file, held
        with pytest.raises(pipelines.OutputBusy, match=busy + "stop it and try again$"):
            early.open()
        handle.write(lines[0])
    with pytest.raises(pipelines.OutputBusy, match=f"^output {path}: another run wrote to it since this one read it; "
                                                   "try again to go on from what it holds$"):  # fmt: skip
        early.open()
    going_on = prepared()  # a file to go on from: held from before it is read (or cut) to the end of the writing
    with pytest.raises(pipelines.OutputBusy, match=busy):
        prepared()
    with open(path) as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with going_on.open() as handle:
        handle.write(lines[1])
    prepared().release()  # given up by a run that ends before its first result
    assert path.read_text() == "".join(lines)


@pytest.mark.parametrize("number", ["ENOLCK", "ENOSYS", "EOPNOTSUPP", "ENOTSUP", "EINVAL"])
def test_a_file_system_without_locks_is_written_without_one(tmp_path, monkeypatch, number):
    """NFS without lockd, a share mounted nolocks: flock fails there (macOS says ENOTSUP, which is not EOPNOTSUPP's
    number there); the run goes on with the size check alone. Any other failure is said."""
    import errno

    from qrr.pipelines import files

    def refused(handle, how):
        raise OSError(getattr(errno, number), "no locks here")

    monkeypatch.setattr(files.fcntl, "flock", refused)
    path = tmp_path / "out.jsonl"
    with files.locked(open(path, "a"), str(path)) as handle:
        handle.write("kept\n")
    assert path.read_text() == "kept\n"

    def failing(handle, how):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.fcntl, "flock", failing)
    with pytest.raises(OSError, match="Input/output error"):
        files.locked(open(path, "a"), str(path))  # noqa: SIM115 (closed by locked where it fails)


def test_an_outputs_settings_are_kept_beside_it_and_checked_when_a_run_goes_on(tmp_path):
    out = tmp_path / "scores.jsonl"
    settings = {"model": "Qwen/Qwen3-Reranker-0.6B", "instruction": "Find it", "max_length": 100, "recipe": "vllm"}
    first = pipelines.ScoresOutput.checked(out, settings=settings)
    first.prepare()
    with first.open() as handle:
        handle.write('{"index":0,"score":0.5}\n')
    kept = pipelines.settings_path(out)
    assert kept == str(tmp_path / ".scores.jsonl.qrr.json")
    # with the file's first line, by which a later run tells the record is the file's
    record = settings | {"first": '{"index":0,"score":0.5}'}
    assert orjson.loads(Path(kept).read_bytes()) == record

    def going_on(**changed):
        output = pipelines.ScoresOutput.checked(out, settings=settings | changed)
        output.prepare()
        output.release()
        return output.settings_kept

    # a setting this run does not know (a server's) is not compared; another model name is left to the scores; an
    # unknown model or instruction leaves the file not checked (settings_kept says what a finished file's note may)
    assert going_on() and going_on(max_length=None, recipe=None)
    assert not going_on(model="/models/qwen3-0.6b") and not going_on(model=None) and not going_on(instruction=None)
    with pytest.raises(InputError, match=r"^output .* was written with max_length 100, not 512 \(as .*\.scores\.jsonl"):
        going_on(max_length=512)
    with pytest.raises(InputError, match='^output .* was written with instruction "Find it", not "Find them" '):
        going_on(instruction="Find them")
    # through a link to the file (a "current" link to a dated run): the same record, not none and no check
    link = tmp_path / "current.jsonl"
    link.symlink_to(out)
    assert pipelines.settings_path(link) == kept
    with pytest.raises(InputError, match='^output .*current.jsonl was written with instruction "Find it", not "Find'):
        pipelines.ScoresOutput.checked(link, settings=settings | {"instruction": "Find them"}).prepare()
    # a file written over by other means (a shell's >) is no longer the record's: the record is left alone
    out.write_text('{"index":0,"score":0.25}\n')
    assert not going_on(max_length=512)
    out.write_text('{"index":0,"score":0.5}\n')
    # a run that loses the race for the file leaves the record as it was
    held = pipelines.ScoresOutput.checked(out, settings=settings)
    held.prepare()
    other = pipelines.ScoresOutput.checked(tmp_path / "scores.jsonl", settings=settings | {"max_length": 512})
    out.write_text("")
    with pytest.raises(pipelines.OutputBusy):
        other.prepare()
        other.open()
    held.release()
    assert orjson.loads(Path(kept).read_bytes()) == record
    # a file that holds no result is this run's to start: the record is written anew as it opens it
    again = pipelines.ScoresOutput.checked(out, settings=settings | {"max_length": 512})
    again.prepare()
    with again.open() as handle:
        assert orjson.loads(Path(kept).read_bytes())["max_length"] == 512 and "first" not in Path(kept).read_text()
        handle.write('{"index":0,"score":0.5}\n')
    assert orjson.loads(Path(kept).read_bytes())["first"] == '{"index":0,"score":0.5}'


def test_a_pause_in_the_input_ends_a_chunk_where_idle_is_given(rr):
    import threading

    first_chunk = threading.Event()

    def producer(pause: float):  # two pairs, then a pause that lasts until their results are out, or ``pause``
        yield from [("q", "a"), ("q", "b")]
        first_chunk.wait(pause)
        yield from [("q", "c"), ("q", "d")]

    chunks = []
    for part in pipelines.score_records(rr, producer(10), idle=0.05):
        chunks.append(part)
        first_chunk.set()
    assert [c.indexes for c in chunks] == [[0, 1], [2, 3]]
    assert [s for c in chunks for s in c.scores] == rr.score([("q", "a"), ("q", "b"), ("q", "c"), ("q", "d")])
    first_chunk.clear()  # without idle, the pairs wait for a full call
    assert [c.indexes for c in pipelines.score_records(rr, producer(0.2))] == [[0, 1, 2, 3]]
    # an error reading the input comes out in its place
    with pytest.raises(PairError, match="^pair 1: expected"):
        list(pipelines.score_records(rr, [("q", "a"), ("q",)], idle=0.05))
    with pytest.raises(InputError, match="^idle must be a number of seconds above 0, not 0$"):
        next(pipelines.score_records(rr, [("q", "a")], idle=0))
    # a caller that stops (an error, Ctrl-C) closes the stream, and the thread reading ahead stops with it
    read = []

    def endless():
        while True:
            read.append(1)
            yield ("q", f"d{len(read)}")

    stream = pipelines.score_records(rr, endless(), idle=0.05)
    next(stream)
    stream.close()
    __import__("time").sleep(0.5)
    assert not any(t.name == pipelines.READER and t.is_alive() for t in threading.enumerate())
    settled = len(read)
    __import__("time").sleep(0.3)
    assert len(read) == settled  # nothing more read


def test_reprs_say_sizes_not_whole_corpora_and_no_internal_state():
    from qrr.reranker import Stats

    inputs = pipelines.RunInputs(
        {"q": {"d": 1.0, "e": 0.5}}, [pipelines.Job("q", "x", ("d", "e"))], {"d": "t", "e": "u"}
    )
    assert repr(inputs) == "RunInputs(run=<1 query>, jobs=<1 job, 2 pairs>, corpus=<2 texts>)"
    assert repr(pipelines.Reranked({}, Stats(), 0)).startswith("Reranked(run=<0 queries>, stats=Stats(pairs=0, ")
    assert repr(pipelines.RunOutput("x.trec")) == (
        "RunOutput(path='x.trec', fmt='trec', tag='qrr', done=0, prepared=False, cut_query=None)"
    )


def test_score_records_checks_its_chunk(fake_model):
    from qrr import Reranker

    reranker = Reranker("fake")
    for chunk, said in ((0, "chunk must be at least 1, not 0"), (-1, "chunk must be at least 1, not -1")):
        with pytest.raises(InputError, match=f"^{said}$"):  # 0 was the default's, and -1 islice's ValueError
            next(pipelines.score_records(reranker, [("q", "d")], chunk=chunk))
    assert [len(part.scores) for part in pipelines.score_records(reranker, [("q", "d")] * 3, chunk=2)] == [2, 1]


def test_an_output_the_file_system_refuses_is_said_before_any_work(tmp_path, monkeypatch):
    """As root, access() says yes where the file system says no (/sys, a read-only mount): the first write failed
    with a raw PermissionError, after the first chunk was scored."""
    import os

    out = tmp_path / "out.jsonl"
    pipelines.check_appendable(str(out), [], "results", "the results")
    assert not out.exists()  # found writable, and no empty file left behind
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(
        InputError,
        match=rf"^output {re.escape(str(out))}: not writable here; give a file you "
        "can write$",
    ):
        pipelines.check_appendable(str(out), [], "results", "the results")
    monkeypatch.undo()
    opened = os.open

    def refused(path, flags, *args, **kwargs):
        if os.path.dirname(str(path)) == str(tmp_path):  # its folder takes no new file
            raise PermissionError(13, "Permission denied")
        return opened(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(
        InputError,
        match=rf"^output {re.escape(str(out))}: not writable here "
        r"\(Permission denied\); give a file you can write$",
    ):
        pipelines.check_appendable(str(out), [], "results", "the results")
    monkeypatch.undo()
    # what the file system refuses of the name itself: found now too, not at the first result
    for bad, why in ((tmp_path / ("x" * 300), "File name too long"), (tmp_path / "loop.jsonl", "Too many levels")):
        if bad.name == "loop.jsonl":
            bad.symlink_to(bad)
        with pytest.raises(InputError, match=rf"^output {re.escape(str(bad))}: not writable here \({why}"):
            pipelines.check_appendable(str(bad), [], "results", "the results")
    assert [p.name for p in tmp_path.iterdir()] == ["loop.jsonl"]  # no probe left behind


def test_a_crashs_nuls_are_found_after_a_whole_line_and_never_read(tmp_path):
    from qrr.pipelines.files import lines_until, zero_tail

    path = tmp_path / "out"
    for data, said in ((b"", None), (b'{"a":1}\n', None), (b"a\nb" + b"\0" * 5, (2, 5)), (b"a\n" + b"\0" * 70_000,
                       (2, 70_000)), (b"ab" + b"\0" * 9, None), (b"\0" * 9, None), (b"a\n\0\0b\n", None),
                       (b"x" * (1 << 20) + b"\n" + b"y" * (1 << 20) + b"\0", None)):  # fmt: skip
        path.write_bytes(data)
        assert zero_tail(str(path)) == said, data[:20]
    path.write_bytes(b"a\nbc\nd" + b"\0" * 10)
    with open(path, "rb") as handle:
        assert list(lines_until(handle, 5)) == [b"a\n", b"bc\n"]
        handle.seek(0)
        assert list(lines_until(handle, None)) == [b"a\n", b"bc\n", b"d" + b"\0" * 10]


def test_the_check_that_a_new_output_can_be_written_never_makes_or_removes_the_output(tmp_path, monkeypatch):
    """Runs started at once on one new --resume file: the check made the file and removed it again, and a run that
    opened it in between wrote its results into a file that was gone."""
    import os

    out = tmp_path / "out.jsonl"
    touched = []
    for name in ("open", "unlink"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda path, *args, real=real, **kwargs: touched.append(str(path)) or
                            real(path, *args, **kwargs))  # fmt: skip
    pipelines.check_appendable(str(out), [], "results", "the results")
    monkeypatch.undo()
    assert len(touched) == 2 and str(out) not in touched  # a file of its own, made and removed
    assert {os.path.dirname(name) for name in touched} == {str(tmp_path)}  # in the output's folder
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ scoring into a file


def score_input(n: int = 6) -> list[formats.PairRecord]:
    return [formats.PairRecord(f"query {k % 2}", f"document number {k}", None, {"id": f"p{k}"}) for k in range(n)]


def test_a_python_user_scores_into_a_file_and_goes_on_after_an_interruption(fake, rr, tmp_path):
    whole = tmp_path / "whole.jsonl"
    done = pipelines.score_run(rr, score_input(), pipelines.ScoresOutput.checked(whole))
    scores = rr.score([(r.query, r.document) for r in score_input()])
    assert [orjson.loads(line) for line in whole.read_bytes().splitlines()] == [
        {"index": k, "id": f"p{k}", "score": s} for k, s in enumerate(scores)]  # fmt: skip
    assert (done.wrote, done.resumed, done.stats.pairs) == (6, 0, 6)
    name, _ = fake(interrupt_after=2)  # a Ctrl-C in the third pair's batch
    stopping = Reranker(name, batch_tokens=1)  # a batch a pair, a call (then a write) every two
    out = tmp_path / "out.jsonl"
    said = (
        f"interrupted after writing the results of 2 pairs to {out} (2 in all); call score_run again with the "
        "input from its first pair to go on"
    )
    with pytest.raises(Interrupted, match=f"^{re.escape(said)}$") as caught:
        pipelines.score_run(stopping, score_input(), pipelines.ScoresOutput.checked(out))
    assert (caught.value.done, caught.value.total, caught.value.path) == (2, 6, str(out))
    assert len(out.read_bytes().splitlines()) == 2
    # the same call again goes on from the file: its last result checked (by its ids and scored again), none twice
    done = pipelines.score_run(rr, score_input(), pipelines.ScoresOutput.checked(out))
    assert (done.wrote, done.resumed) == (4, 2) and out.read_bytes() == whole.read_bytes()
    assert pipelines.score_run(rr, iter(score_input()), pipelines.ScoresOutput.checked(out)).wrote == 0


def test_a_scoring_run_refuses_a_file_of_another_input_or_set_up(rr, tmp_path):
    out = tmp_path / "out.jsonl"
    pipelines.score_run(rr, score_input(3), pipelines.ScoresOutput.checked(out))
    written = out.read_bytes()
    with pytest.raises(InputError, match=r"^output .*out.jsonl holds results of the input's first 3 pairs, but the "
                                         "input has 2 pairs: it holds another input's scores; give output a new "
                                         "file$"):  # fmt: skip
        pipelines.score_run(rr, score_input(2), pipelines.ScoresOutput.checked(out))
    other = [replace(r, ids={"id": f"q{k}"}) for k, r in enumerate(score_input(4))]
    with pytest.raises(InputError, match=r'result 2 has ids {"id":"p2"}, but the input\'s pair 2 has {"id":"q2"}'):
        pipelines.score_run(rr, other, pipelines.ScoresOutput.checked(out))
    instructed = Reranker("fake", instruction="Find the answer")  # the settings kept beside the file say another
    with pytest.raises(InputError, match=r"was written with instruction \"Given a web search query"):
        pipelines.score_run(instructed, score_input(4), pipelines.ScoresOutput.checked(out))
    assert out.read_bytes() == written  # nothing written by a refused run


def test_a_scoring_run_leaves_out_queries_too_long_and_goes_on_so(tmp_path):
    short = Reranker("fake", max_length=120)
    pairs = [("q", "a"), ("q " * 80, "b"), ("q", "c")]
    out = tmp_path / "out.jsonl"
    errors = Collect()
    done = pipelines.score_run(short, pairs, pipelines.ScoresOutput.checked(out), on_error=errors)
    assert done.wrote == 2 and [orjson.loads(line)["index"] for line in out.read_bytes().splitlines()] == [0, 2]
    assert len(errors) == 1 and errors[0].startswith("pair 1: the query and instruction take 105 tokens, but max")
    with pytest.raises(InputError, match="result 2 comes after result 0: a run with on_error skip left pairs out"):
        pipelines.score_run(short, pairs, pipelines.ScoresOutput.checked(out))
    assert pipelines.score_run(short, pairs, pipelines.ScoresOutput.checked(out), on_error=errors).wrote == 0
    # every pair too long: no file started, nor a record beside it (an empty file was left, and its record)
    none = tmp_path / "none" / "out.jsonl"
    none.parent.mkdir()
    done = pipelines.score_run(short, pairs[1:2], pipelines.ScoresOutput.checked(none), on_error=errors)
    assert (done.wrote, list(none.parent.iterdir())) == (0, [])


def test_a_scoring_run_shows_a_progress_bar_of_the_pairs_left(rr, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    pipelines.score_run(rr, score_input(2), pipelines.ScoresOutput.checked(out))
    assert capsys.readouterr().err == ""
    pipelines.score_run(rr, score_input(6), pipelines.ScoresOutput.checked(out), show_progress_bar=True)
    err = capsys.readouterr().err
    assert err.startswith("\rscoring:   0%|") and "| 4/4 [" in err


def test_a_scoring_run_that_fails_after_writing_says_what_the_file_holds(fake, tmp_path):
    name, _ = fake(interrupt_after=2, raising=OSError(28, "No space left on device"))
    out = tmp_path / "out.jsonl"
    said = f"OSError: [Errno 28] No space left on device; the results written before are in {out}: score into it"
    with pytest.raises(Stopped, match=f"^{re.escape(said)} again to go on$"):
        pipelines.score_run(Reranker(name, batch_tokens=1), score_input(), pipelines.ScoresOutput.checked(out))
    assert len(out.read_bytes().splitlines()) == 2


def test_a_scoring_run_of_mappings_goes_on_with_their_ids_and_fields(rr, tmp_path):
    records = [{"query": "q", "document": f"d{k}", "id": f"p{k}", "label": k % 2} for k in range(4)]
    out = tmp_path / "out.jsonl"
    pipelines.score_run(rr, records[:2], pipelines.ScoresOutput.checked(out), with_fields=True)
    done = pipelines.score_run(rr, records, pipelines.ScoresOutput.checked(out), with_fields=True)
    assert (done.wrote, done.resumed) == (2, 2)
    assert [orjson.loads(line)["label"] for line in out.read_bytes().splitlines()] == [0, 1, 0, 1]
    other = [r | {"label": 5} for r in records]
    with pytest.raises(InputError, match=r'out.jsonl:4: result 3 has "label":1, but the input.s pair 3 has "label":5;'):
        pipelines.score_run(rr, other, pipelines.ScoresOutput.checked(out), with_fields=True)


def test_a_resumed_scoring_run_counts_what_it_leaves_out_from_the_inputs_first_pair(tmp_path):
    short = Reranker("fake", max_length=120)
    pairs = [("q", f"d{k}") for k in range(6)]
    pairs[4] = ("q " * 80, "d4")
    out = tmp_path / "out.jsonl"
    pipelines.score_run(short, pairs[:3], pipelines.ScoresOutput.checked(out))
    errors = Collect()
    assert pipelines.score_run(short, pairs, pipelines.ScoresOutput.checked(out), on_error=errors).wrote == 2
    assert len(errors) == 1 and errors[0].startswith("pair 4: the query and instruction take")
    out.unlink()
    pipelines.score_run(short, pairs[:3], pipelines.ScoresOutput.checked(out))
    with pytest.raises(PairError, match="^pair 4: the query and instruction take") as caught:
        pipelines.score_run(short, pairs, pipelines.ScoresOutput.checked(out))
    assert caught.value.pair == 4


def test_a_scoring_run_stopped_before_its_first_result_says_nothing_was_written(fake, tmp_path, monkeypatch):
    name, _ = fake(interrupt_after=0)
    out = tmp_path / "out.jsonl"
    said = "interrupted before any result was written; call score_run again with the input from its first pair to go on"
    with pytest.raises(Interrupted, match=f"^{said}$"):
        pipelines.score_run(Reranker(name), score_input(), pipelines.ScoresOutput.checked(out))
    assert not out.exists()

    def full(self, out, rows):  # a full disk at the first flush: the count rose, nothing reached the file
        self.count += len(rows)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(formats.RowWriter, "_write", full)
    with pytest.raises(OSError, match="No space left on device"):  # not "the results written before are in"
        pipelines.score_run(Reranker("fake"), score_input(), pipelines.ScoresOutput.checked(out))
    assert not out.exists() and not (tmp_path / ".out.jsonl.qrr.json").exists()  # no empty file left behind


def test_a_scoring_run_keeps_the_ids_and_fields_of_a_dataframe_and_named_records(rr, tmp_path):
    from collections import namedtuple
    from dataclasses import make_dataclass

    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"pair_id": [f"p{k}" for k in range(4)], "query": "q", "document": [f"d{k}" for k in range(4)],
                          "label": np.array([1, 0, 1, 0], dtype=np.int64),
                          "seen": pd.to_datetime(["2024-01-02"] * 4)})  # fmt: skip
    out = tmp_path / "out.jsonl"
    pipelines.score_run(rr, frame.iloc[:2], out, with_fields=True)  # a path will do
    output = pipelines.ScoresOutput.checked(out)
    assert pipelines.score_run(rr, frame, output, with_fields=True).resumed == 2  # its ids matched, so it went on
    assert output.done == 4  # as a run prepared now would find the file
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["index"], r["pair_id"], r["label"], r["seen"]) for r in rows] == [
        (k, f"p{k}", k % 2 ^ 1, "2024-01-02T00:00:00") for k in range(4)]  # fmt: skip
    assert pd.read_json(out, lines=True).merge(frame, on="pair_id").shape[0] == 4  # joined back on the ids
    Pair = namedtuple("Pair", "query document doc_id")
    Kept = make_dataclass("Kept", ["query", "document", "doc_id", "label"])
    for records in ([Pair("q", "a", "x1"), Pair("q", "b", "x2")], [Kept("q", "a", "x1", 1), Kept("q", "b", "x2", 0)]):
        named = tmp_path / f"{type(records[0]).__name__}.jsonl"
        pipelines.score_run(rr, records, named)
        assert [orjson.loads(line)["doc_id"] for line in named.read_bytes().splitlines()] == ["x1", "x2"]
    with pytest.raises(InputError, match=r"^output must be a path or a ScoresOutput, not int$"):
        pipelines.score_run(rr, records, 7)


def test_a_scoring_run_says_its_faults_in_python_terms(rr, tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"^on_error must be a function that takes each error \(a list's append, say\),"
                                         " not 'skip'$"):  # fmt: skip
        pipelines.score_run(rr, score_input(), out, on_error="skip")  # failed as a TypeError at the first bad pair
    # and so does every reader of the field's files that takes one, before it reads anything
    skip = "must be a function that takes each error (a list's append, say), not 'skip'"
    for call, param in ((lambda: formats.read_pairs("none.jsonl", on_error="skip"), "on_error"),
                        (lambda: formats.read_documents("none.jsonl", on_error="skip"), "on_error"),
                        (lambda: formats.read_run("none.trec", on_error="skip"), "on_error"),
                        (lambda: formats.read_qrels("none.tsv", on_error="skip"), "on_error"),
                        (lambda: formats.read_corpus("none.jsonl", on_error="skip"), "on_error"),
                        (lambda: formats.read_queries("none.jsonl", on_error="skip"), "on_error"),
                        (lambda: pipelines.read_run_inputs("a", "b", "c", on_error="skip"), "on_error"),
                        (lambda: pipelines.read_run_inputs("a", "b", "c", on_missing="skip"),
                         "on_missing")):  # fmt: skip
        with pytest.raises(InputError, match=f"^{param} {re.escape(skip)}$"):
            call()
    # a model's name in place of a reranker, a path in place of the inputs: said, not an AttributeError
    said = 'reranker must be a Reranker (Reranker("0.6b")) or a RemoteReranker, not str'
    for call in (lambda: pipelines.score_run("0.6b", score_input(), out), lambda: pipelines.score_records(
            "0.6b", score_input()), lambda: pipelines.rank_records("0.6b", "q", ["d"])):  # fmt: skip
        with pytest.raises(InputError, match=f"^{re.escape(said)}$"):  # at the call, before anything is read
            call()
    with pytest.raises(InputError, match="^on_error must be a function"):
        next(pipelines.rerank_jobs(rr, [], {}, on_error="skip"))
    from types import SimpleNamespace

    spy = SimpleNamespace(
        score=rr.score,
        batch_tokens=rr.batch_tokens,
        max_length=rr.max_length,
        instruction=rr.instruction,
        settings=rr.settings,
    )  # any object with what a call needs will do

    assert pipelines.score_run(spy, score_input(2), tmp_path / "spy.jsonl").wrote == 2
    with pytest.raises(InputError, match="^inputs must be a RunInputs \\(from read_run_inputs\\), not str$"):
        pipelines.rerank_run(rr, "bm25.trec", out)
    with pytest.raises(InputError, match="^idle: not with chunk, whose chunks are fixed; give one of them$"):
        pipelines.score_records(rr, score_input(), idle=1, chunk=2)  # it was taken, and played no part
    # a bad pair after results: where it is, and that the results before it stand
    records = [{"id": f"p{k}", "query": "q", "document": f"d{k}"} for k in range(6)]
    pipelines.score_run(rr, records[:3], out)
    records[4]["document"] = None
    said = (f"pair 4: document must be a string, not NoneType; the results of the first 3 pairs are in {out}: mend "
            "it, then call score_run again with the input from its first pair to go on")  # fmt: skip
    with pytest.raises(PairError, match=f"^{re.escape(said)}$") as caught:
        pipelines.score_run(rr, records, out)
    assert caught.value.pair == 4 and len(out.read_bytes().splitlines()) == 3  # pair 3 was in the call it stopped
    # a generator already read: the input is to be made again, not the file given up
    records[4]["document"] = "d4"
    pairs = iter(records)
    pipelines.score_run(rr, pairs, out)
    with pytest.raises(InputError, match=r"but the input has 0 pairs: it holds another input's scores; give output a "
                                         r"new file \(or, where the input is an iterator read from before, make it "
                                         r"again: it is read from its first pair\)$"):  # fmt: skip
        pipelines.score_run(rr, pairs, out)
    # fields not copied are not compared, whatever they hold (a set failed going on as a TypeError)
    held = [{"query": "q", "document": f"d{k}", "doc_id": k, "meta": {1, 2}} for k in range(4)]
    pipelines.score_run(rr, held[:2], tmp_path / "held.jsonl")
    assert pipelines.score_run(rr, held, tmp_path / "held.jsonl").resumed == 2
    # a field no JSON writes: named, and no empty file left
    bad = tmp_path / "bad.jsonl"
    with pytest.raises(
        InputError,
        match=r"^the 1st result cannot be written: Type is not JSON serializable: "
        r'object \(its field "thing": make it a string, number or list\)$',
    ):
        pipelines.score_run(rr, [{"query": "q", "document": "d", "thing": object()}], bad, with_fields=True)
    assert not bad.exists() and not (tmp_path / ".bad.jsonl.qrr.json").exists()
    (tmp_path / "real").mkdir()
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "real" / "out.jsonl")  # a link to a new file: the user's, kept
    with pytest.raises(InputError, match="cannot be written"):
        pipelines.score_run(rr, [{"query": "q", "document": "d", "thing": object()}], tmp_path / "link.jsonl",
                            with_fields=True)  # fmt: skip
    assert (tmp_path / "link.jsonl").is_symlink()
