"""TREC runs and qrels, BEIR corpus and queries: reading, errors, planning a rerank, resuming an output."""

from __future__ import annotations

import gzip

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrr import runs
from qrr.errors import InputError


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


class Collect(list):
    def __call__(self, error):
        self.append(str(error))


# --------------------------------------------------------------------------------------------------- runs


def test_trec_run_keeps_query_order_and_ignores_the_rank_column(tmp_path):
    path = write(tmp_path / "run.trec", "q2 Q0 d1 1 3.5 bm25\nq1 Q0 d9 1 2 bm25\nq2 Q0 d2 7 -1e-3 bm25\n\n")
    assert runs.read_run(path) == {"q2": {"d1": 3.5, "d2": -0.001}, "q1": {"d9": 2.0}}
    assert list(runs.read_run(path)) == ["q2", "q1"]


def test_jsonl_run_is_read_too(tmp_path):
    lines = [{"qid": "q1", "docid": "d1", "rank": 1, "score": 0.9}, {"qid": 7, "docid": 8, "rank": 2, "score": 1}]
    path = write(tmp_path / "run.jsonl", "".join(orjson.dumps(r).decode() + "\n" for r in lines))
    assert runs.read_run(path) == {"q1": {"d1": 0.9}, "7": {"8": 1.0}}


def test_gzipped_run(tmp_path):
    path = tmp_path / "run.trec.gz"
    path.write_bytes(gzip.compress(b"q1 Q0 d1 1 1.0 x\n"))
    assert runs.read_run(str(path)) == {"q1": {"d1": 1.0}}
    lines = "".join(f"q1 Q0 d{n} {n} 1.0 x\n" for n in range(100)).encode()
    (tmp_path / "cut.trec.gz").write_bytes(gzip.compress(lines)[:-10])
    with pytest.raises(InputError, match="not a complete gzip file"):
        runs.read_run(str(tmp_path / "cut.trec.gz"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q1 Q0 d1 1 0.5", r"run.trec:2: expected 'qid Q0 docid rank score tag', found 5 field\(s\)"),
        ("q1 Q0 d2 1 high x", r"run.trec:2: score 'high' is not a number"),
        ("q1 Q0 d2 1 nan x", r"run.trec:2: score 'nan' is not a number"),
        ("q1 Q0 d1 2 0.1 x", r"run.trec:2: document d1 is listed twice for query q1"),
    ],
)
def test_bad_run_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "run.trec", f"q1 Q0 d1 1 0.9 x\n{line}\nq1 Q0 d3 3 0.2 x\n")
    with pytest.raises(InputError, match=message):
        runs.read_run(path)
    skipped = Collect()
    run = runs.read_run(path, on_error=skipped)
    assert len(skipped) == 1 and "run.trec:2" in skipped[0]
    assert run["q1"]["d1"] == 0.9 and "d3" in run["q1"]  # the first listing is kept, the rest read


def test_bad_jsonl_run_line(tmp_path):
    path = write(tmp_path / "run.jsonl", '{"qid": "q1", "docid": "d1", "score": 1}\n{"qid": "q1", "docid": "d2"}\n')
    with pytest.raises(InputError, match='run.jsonl:2: field "score" must be a number, not null'):
        runs.read_run(path)


def test_ranking_follows_trec_eval_ties_by_docid_descending():
    assert runs.ranking({"a": 1.0, "c": 2.0, "b": 1.0, "d": 0.5}) == ["c", "b", "a", "d"]
    # trec_eval keeps scores as float32: these two tie, and the docid decides
    assert runs.ranking({"x": 1.0 + 1e-12, "y": 1.0}) == ["y", "x"]


# -------------------------------------------------------------------------------------------------- qrels


def test_trec_and_beir_qrels(tmp_path):
    trec = write(tmp_path / "qrels.txt", "q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n")
    beir = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    headless = write(tmp_path / "plain.tsv", "q1\td1\t2\nq1\td2\t0\nq2\td3\t1.0\n")
    expected = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    assert runs.read_qrels(trec) == runs.read_qrels(beir) == runs.read_qrels(headless) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1 1\nq1 0 d2\n", r"qrels:2: expected 'qid 0 docid relevance', found 3"),
        ("q1 0 d1 1\nq1 0 d2 yes\n", r"qrels:2: relevance 'yes' is not a whole number"),
        ("q1 0 d1 1\nq1 0 d2 0.5\n", r"qrels:2: relevance '0.5' is not a whole number"),
        ("q1 0 d1 1\nq1 0 d1 2\n", r"qrels:2: document d1 is judged twice for query q1"),
        (
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n",
            r"qrels:3: expected query-id<TAB>corpus-id<TAB>score, found 2",
        ),
    ],
)
def test_bad_qrels(tmp_path, text, message):
    path = write(tmp_path / "qrels", text)
    with pytest.raises(InputError, match=message):
        runs.read_qrels(path)
    skipped = Collect()
    assert runs.read_qrels(path, on_error=skipped)["q1"]["d1"] == 1
    assert len(skipped) == 1


# ------------------------------------------------------------------------------------------ corpus, queries


CORPUS = [
    {"_id": "d1", "title": "Beijing", "text": "The capital of China."},
    {"_id": "d2", "title": "", "text": "Paris is in France."},
    {"_id": "d3", "text": "No title at all."},
    {"_id": 4, "title": None, "text": "A numeric id."},
]


def jsonl(records) -> str:
    return "".join(orjson.dumps(r).decode() + "\n" for r in records)


def test_corpus_joins_title_and_text_with_a_space(tmp_path):
    path = write(tmp_path / "corpus.jsonl", jsonl(CORPUS))
    assert runs.read_corpus(path) == {
        "d1": "Beijing The capital of China.",
        "d2": "Paris is in France.",
        "d3": "No title at all.",
        "4": "A numeric id.",
    }


def test_corpus_keeps_only_what_is_asked(tmp_path):
    path = write(tmp_path / "corpus.jsonl", jsonl(CORPUS) + "not json, but not needed either\n")
    with pytest.raises(InputError, match="corpus.jsonl:5: malformed JSON"):
        runs.read_corpus(path, keep={"d2"})
    path = write(tmp_path / "corpus.jsonl", jsonl([*CORPUS, {"_id": "d1", "text": "again"}]))
    assert runs.read_corpus(path, keep={"d2"}) == {"d2": "Paris is in France."}
    with pytest.raises(InputError, match="corpus.jsonl:5: document d1 appears twice in the corpus"):
        runs.read_corpus(path, keep={"d1"})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"title": "t", "text": "x"}, r'corpus.jsonl:2: missing field "_id"'),
        ({"_id": "d9", "title": "t"}, r'corpus.jsonl:2: missing field "text"'),
        ({"_id": "d9", "text": 5}, r'corpus.jsonl:2: field "text" must be a string, not a number'),
        (["d9", "x"], r"corpus.jsonl:2: expected an object, found an array"),
    ],
)
def test_bad_corpus_lines(tmp_path, record, message):
    path = write(tmp_path / "corpus.jsonl", jsonl([CORPUS[0], record, CORPUS[1]]))
    with pytest.raises(InputError, match=message):
        runs.read_corpus(path)
    skipped = Collect()
    assert set(runs.read_corpus(path, on_error=skipped)) == {"d1", "d2"}
    assert len(skipped) == 1


def test_queries_as_jsonl_or_tsv(tmp_path):
    beir = write(tmp_path / "queries.jsonl", jsonl([{"_id": "q1", "text": "capital?", "metadata": {}}]))
    tsv = write(tmp_path / "queries.tsv", "q1\tcapital?\n")
    assert runs.read_queries(beir) == runs.read_queries(tsv) == {"q1": "capital?"}
    with pytest.raises(InputError, match="queries.tsv:2: query q1 appears twice"):
        runs.read_queries(write(tmp_path / "queries.tsv", "q1\tcapital?\nq1\tagain\n"))
    with pytest.raises(InputError, match=r"queries.tsv:1: expected qid<TAB>text"):
        runs.read_queries(write(tmp_path / "queries.tsv", "just words\n"))


def test_beir_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        runs.BeirFolder.at(tmp_path / "nope")
    (tmp_path / "qrels").mkdir()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (tmp_path / name).write_text("")
    (tmp_path / "corpus.jsonl").unlink()
    (tmp_path / "corpus.jsonl.gz").write_bytes(gzip.compress(b""))
    folder = runs.BeirFolder.at(tmp_path)
    assert folder.corpus.endswith("corpus.jsonl.gz") and folder.qrels.endswith("qrels/test.tsv")
    with pytest.raises(InputError, match=r"qrels/dev.tsv: not found"):
        runs.BeirFolder.at(tmp_path, split="dev")


# ------------------------------------------------------------------------------------------------ planning

RUN = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0, "d4": 0.0}, "q2": {"d2": 1.0, "dX": 5.0}, "q3": {"d1": 1.0}}
QUERIES = {"q1": "first", "q2": "second"}
TEXTS = {"d1": "one", "d2": "two", "d3": "three", "d4": "four"}


def test_plan_takes_the_top_depth_in_trec_eval_order():
    jobs = runs.plan(runs.top({"q1": RUN["q1"]}, 3), QUERIES, TEXTS)
    assert jobs == [runs.Job("q1", "first", ("d1", "d2", "d3"))]


def test_plan_names_missing_queries_and_documents():
    with pytest.raises(InputError, match=r"1 of the run's queries are not in the queries file \(first: query q3\)"):
        runs.plan(runs.top(RUN, 2), QUERIES, TEXTS)
    with pytest.raises(InputError, match=r"1 of the run's documents are not in the corpus \(first: document dX of "):
        runs.plan(runs.top(RUN, 2, only={"q1", "q2"}), QUERIES, TEXTS)
    skipped = Collect()
    jobs = runs.plan(runs.top(RUN, 2), QUERIES, TEXTS, on_error=skipped)
    assert jobs == [runs.Job("q1", "first", ("d1", "d2")), runs.Job("q2", "second", ("d2",))]
    assert skipped == ["query q3: not in the queries file", "document dX of query q2: not in the corpus"]
    assert runs.plan(runs.top(RUN, 2, only={"q1"}), QUERIES, TEXTS) == jobs[:1]


# ------------------------------------------------------------------------------------------ writing, resuming


def test_format_results():
    results = [("d2", 0.75), ("d1", 0.1)]
    assert runs.format_results("q1", results, "trec") == "q1 Q0 d2 1 0.75 qrr\nq1 Q0 d1 2 0.1 qrr\n"
    assert runs.format_results("q1", results, "trec", tag="mine").endswith(" mine\n")
    lines = runs.format_results("q1", results, "jsonl").splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {"qid": "q1", "docid": "d2", "rank": 1, "score": 0.75},
        {"qid": "q1", "docid": "d1", "rank": 2, "score": 0.1},
    ]


def test_ranked_keeps_first_stage_order_for_equal_scores():
    assert runs.ranked(("a", "b", "c"), [0.5, 0.9, 0.5]) == [("b", 0.9), ("a", 0.5), ("c", 0.5)]


@pytest.mark.parametrize("fmt", ["trec", "jsonl"])
def test_resume_point_at_every_byte(tmp_path, fmt):
    blocks = [runs.format_results(q, [(f"d{n}", 1 / (n + 1)) for n in range(k)], fmt) for q, k in
              (("q1", 3), ("q2", 2), ("q3", 3))]  # fmt: skip
    expected = {"q1": 3, "q2": 2, "q3": 3}
    full = "".join(blocks).encode()
    ends = [len("".join(blocks[: n + 1]).encode()) for n in range(3)]
    path = tmp_path / "out"
    for cut in range(len(full) + 1):
        path.write_bytes(full[:cut])
        if cut == 0:
            assert runs.output_format(path) is None
            continue
        assert runs.output_format(path) == fmt
        done, keep = runs.resume_point(path, fmt, expected)
        complete = [e for e in ends if e <= cut]
        assert keep == (complete[-1] if complete else 0)
        assert done == set(list(expected)[: len(complete)])


def test_resume_point_keeps_queries_left_alone(tmp_path):
    path = tmp_path / "out"
    path.write_text("q1 Q0 d1 1 0.5 qrr\nqX Q0 d1 1 0.5 qrr\nqX Q0 d2 2 0.4 qrr\nq2 Q0 d1 1 0.5 qrr\n")
    line = len("q1 Q0 d1 1 0.5 qrr\n")  # every line here is as long; q2 wants 2 results and has 1
    assert runs.resume_point(path, "trec", {"q1": 1, "q2": 2}, others={"qX"}) == ({"q1"}, 3 * line)
    with pytest.raises(InputError, match="query qX is not among the queries to rerank"):
        runs.resume_point(path, "trec", {"q1": 1, "q2": 2})


def test_resume_point_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "out"
    path.write_text("q1 Q0 d1 1 0.5 qrr\nq2 Q0 d1 1 0.5 qrr\n")
    with pytest.raises(InputError, match="query q1 has 1 result"):
        runs.resume_point(path, "trec", {"q1": 2, "q2": 1})
    with pytest.raises(InputError, match="query q2 is not among the queries to rerank"):
        runs.resume_point(path, "trec", {"q1": 1})
    path.write_text("q1 Q0 d1 1 0.5 qrr\nq1 Q0 d2 2 0.4 qrr\n")
    with pytest.raises(InputError, match="query q1 has more than 1 results"):
        runs.resume_point(path, "trec", {"q1": 1})
    path.write_text("q1 Q0 d1 1 0.5 qrr\nq2 Q0 d1 1 0.5 qrr\nq1 Q0 d2 1 0.5 qrr\n")
    with pytest.raises(InputError, match="query q1 appears a second time"):
        runs.resume_point(path, "trec", {"q1": 1, "q2": 1})
    path.write_text("some notes\n")
    with pytest.raises(InputError, match="not a TREC run"):
        runs.resume_point(path, "trec", {"q1": 1})


class FakeReranker:
    """Scores a document by its length; records how many pairs each call got."""

    def __init__(self, batch_tokens: int):
        self.batch_tokens = batch_tokens
        self.calls: list[int] = []

    def score(self, pairs, progress=None):
        from qrr.reranker import Stats

        pairs = list(pairs)
        self.calls.append(len(pairs))
        self.stats = Stats(pairs=len(pairs))
        return [len(document) / 100 for _, document in pairs]


@pytest.mark.parametrize(("batch_tokens", "calls"), [(10**6, [6]), (1, [2, 2, 2])])
def test_rerank_groups_queries_only_where_batches_are_large(batch_tokens, calls):
    from qrr.reranker import Stats

    texts = {"s": "x" * 20, "m": "x" * 30, "l": "x" * 50}  # with batch_tokens 1, any query fills a call
    jobs = [runs.Job("q1", "?", ("s", "l")), runs.Job("q2", "?", ("m", "s")), runs.Job("q3", "?", ("l", "m"))]
    fake, stats = FakeReranker(batch_tokens), Stats()
    results = list(runs.rerank(fake, jobs, texts, top_k=1, stats=stats))
    assert fake.calls == calls
    assert [(job.qid, ranked) for job, ranked in results] == [("q1", [("l", 0.5)]), ("q2", [("m", 0.3)]),
                                                               ("q3", [("l", 0.5)])]  # fmt: skip
    assert stats.pairs == 6


# ------------------------------------------------------------------------------------------------ any bytes

READERS = (runs.read_run, runs.read_qrels, runs.read_corpus, runs.read_queries)
# Lines that look almost right, so that the readers get past their first checks, mixed with any bytes.
NEAR = st.sampled_from([b"q1 Q0 d1 1 0.5 x", b"q1 0 d1 1", b"q1\td1\t2", b'{"_id": "d1", "text": "t"}',
                        b'{"qid": "q1", "docid": "d1", "score": 1}', b"query-id\tcorpus-id\tscore", b"q1\ttext",
                        b"\xff\xfe", b"\x00", b"nan", b"{"])  # fmt: skip
DATA = st.lists(st.one_of(NEAR, st.binary(max_size=30)), max_size=8).map(b"\n".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=DATA)
def test_any_bytes_give_a_table_or_one_clean_error(tmp_path, data):
    path = tmp_path / "input"
    path.write_bytes(data)
    for reader in READERS:
        try:
            table = reader(str(path))
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert all(isinstance(k, str) for k in table)
        skipped = Collect()
        reader(str(path), on_error=skipped)  # never raises on a line once told to skip
        assert all("\n" not in message for message in skipped)
