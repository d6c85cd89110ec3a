"""TREC runs and qrels, BEIR corpus and queries: reading, errors, writing a reranked run."""

from __future__ import annotations

import gzip
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrr import formats
from qrr.errors import InputError
from qrr.metrics import ranking


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


class Collect(list):
    def __call__(self, error):
        self.append(str(error))


# --------------------------------------------------------------------------------------------------- runs


def test_trec_run_keeps_query_order_and_ignores_the_rank_column(tmp_path):
    path = write(tmp_path / "run.trec", "q2 Q0 d1 1 3.5 bm25\nq1 Q0 d9 1 2 bm25\nq2 Q0 d2 7 -1e-3 bm25\n\n")
    assert formats.read_run(path) == {"q2": {"d1": 3.5, "d2": -0.001}, "q1": {"d9": 2.0}}
    assert list(formats.read_run(path)) == ["q2", "q1"]


def test_jsonl_run_is_read_too(tmp_path):
    lines = [{"qid": "q1", "docid": "d1", "rank": 1, "score": 0.9}, {"qid": 7, "docid": 8, "rank": 2, "score": 1}]
    path = write(tmp_path / "run.jsonl", "".join(orjson.dumps(r).decode() + "\n" for r in lines))
    assert formats.read_run(path) == {"q1": {"d1": 0.9}, "7": {"8": 1.0}}


def test_json_arrays_are_read_as_their_lines_are(tmp_path):
    """A corpus, queries or run written as one JSON array (json.dump of the records) is read as qrr rank reads one;
    it was read as TSV ("expected docid<TAB>text")."""
    corpus = [{"_id": "d1", "title": "Beijing", "text": "is the capital."}, {"_id": "d2", "text": "Paris."}]
    queries = [{"_id": "q1", "text": "capital of China?"}]
    run = [{"qid": "q1", "docid": "d1", "score": 2.5}, {"qid": "q1", "docid": "d2", "score": 1.0}]
    for name, records in (("corpus", corpus), ("queries", queries), ("run", run)):
        (tmp_path / f"{name}.json").write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))
        (tmp_path / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    for read, name in ((formats.read_corpus, "corpus"), (formats.read_queries, "queries"), (formats.read_run, "run")):
        assert read(str(tmp_path / f"{name}.json")) == read(str(tmp_path / f"{name}.jsonl")), name
    assert formats.read_corpus(str(tmp_path / "corpus.json")) == {"d1": "Beijing is the capital.", "d2": "Paris."}
    # an id's spaces are no part of it, as in a TREC run and a TSV line
    (tmp_path / "spaced.jsonl").write_text('{"_id": " q1 ", "text": "capital?"}\n')
    assert formats.read_queries(str(tmp_path / "spaced.jsonl")) == {"q1": "capital?"}
    (tmp_path / "blank.jsonl").write_text('{"_id": " ", "text": "capital?"}\n')  # no id: a run would lose a field
    with pytest.raises(InputError, match=r"/blank.jsonl:1: field \"_id\" is blank \(' '\): give the id$"):
        formats.read_queries(str(tmp_path / "blank.jsonl"))


def test_readers_take_pathlib_paths(tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 1.0 x\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "Beijing"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "capital?"}\n')
    assert formats.read_run(tmp_path / "run.trec") == {"q1": {"d1": 1.0}}
    assert formats.read_qrels(tmp_path / "qrels.tsv") == {"q1": {"d1": 1}}
    assert formats.read_corpus(tmp_path / "corpus.jsonl") == {"d1": "Beijing"}
    assert formats.read_queries(tmp_path / "queries.jsonl") == {"q1": "capital?"}
    with open(tmp_path / "run.trec") as handle, pytest.raises(InputError, match="^source must be a path, not Text"):
        formats.read_run(handle)


def test_gzipped_run(tmp_path):
    path = tmp_path / "run.trec.gz"
    path.write_bytes(gzip.compress(b"q1 Q0 d1 1 1.0 x\n"))
    assert formats.read_run(str(path)) == {"q1": {"d1": 1.0}}
    lines = "".join(f"q1 Q0 d{n} {n} 1.0 x\n" for n in range(100)).encode()
    (tmp_path / "cut.trec.gz").write_bytes(gzip.compress(lines)[:-10])
    with pytest.raises(InputError, match="not a complete gzip file"):
        formats.read_run(str(tmp_path / "cut.trec.gz"))
    data = bytearray(gzip.compress(lines))
    data[10:18] = b"\xff" * 8  # a corrupt deflate stream: zlib's own error, not gzip's
    (tmp_path / "bad.trec.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad.trec.gz: not a complete gzip file \(Error -3"):
        formats.read_run(str(tmp_path / "bad.trec.gz"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q1 Q0 d1 1 0.5", r"run.trec:2: expected 'qid Q0 docid rank score tag', found 5 fields"),
        ("q1 Q0 d2 1 high x", r"run.trec:2: score 'high' is not a number"),
        ("q1 Q0 d2 1 nan x", r"run.trec:2: score 'nan' is not a number"),
        ("q1 Q0 d2 1 1_0 x", r"run.trec:2: score '1_0' is not a number"),  # Python's float read it as 10
        ("q1 Q0 d2 1 1e400 x", r"run.trec:2: score '1e400' is out of a float's range"),
        # a field of megabytes is quoted by its head (the whole field made a 10 MB "one line")
        (f"q1 Q0 d2 1 {'9' * 500}x x", rf"run.trec:2: score '{'9' * 40}'\.\.\. \(501 characters\) is not a number$"),
        ("q1 Q0 d1 2 0.1 x", r"run.trec:2: document d1 is listed twice for query q1"),
        # a space that looks like none splits as one does: said, as the line seems to hold six fields
        (
            "q1 Q0 d\u30002 2 0.1 x",
            r"run.trec:2: expected 'qid Q0 docid rank score tag', found 7 fields \(it holds "
            r"U\+3000 IDEOGRAPHIC SPACE, which separates fields as a space does: an id cannot "
            r"hold it\)$",
        ),
    ],
)
def test_bad_run_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "run.trec", f"q1 Q0 d1 1 0.9 x\n{line}\nq1 Q0 d3 3 0.2 x\n")
    with pytest.raises(InputError, match=message):
        formats.read_run(path)
    skipped = Collect()
    run = formats.read_run(path, on_error=skipped)
    assert len(skipped) == 1 and "run.trec:2" in skipped[0]
    assert run["q1"]["d1"] == 0.9 and "d3" in run["q1"]  # the first listing is kept, the rest read


def test_an_msmarco_run_is_ranks_without_scores(tmp_path):
    path = write(tmp_path / "run.tsv", "1048585\t7187158\t1\n1048585\t7187157\t2\n2\t00\t1\n1048585\t7\t3\n")
    run = formats.read_run(path)
    assert run == {"1048585": {"7187158": -1.0, "7187157": -2.0, "7": -3.0}, "2": {"00": -1.0}}
    assert ranking(run["1048585"]) == ["7187158", "7187157", "7"]  # in rank order, as an evaluation takes it
    for line, message in [("q1\td2\tfirst", "2: rank 'first' is not a whole number from 1"),
                          ("q1\td2\t0", "2: rank '0' is not a whole number from 1"),
                          ("q1 Q0 d2 2 0.5 x", "2: expected 'qid<TAB>docid<TAB>rank' \\(MS MARCO's run\\), "
                                               "found 6 fields")]:  # fmt: skip
        write(tmp_path / "run.tsv", f"q1\td1\t1\n{line}\n")
        with pytest.raises(InputError, match=f"^{re.escape(path)}:{message}$"):
            formats.read_run(path)


def test_bad_jsonl_run_line(tmp_path):
    path = write(tmp_path / "run.jsonl", '{"qid": "q1", "docid": "d1", "score": 1}\n{"qid": "q1", "docid": "d2"}\n')
    with pytest.raises(InputError, match='run.jsonl:2: missing field "score"'):
        formats.read_run(path)
    write(tmp_path / "run.jsonl", '{"qid": "q1", "docid": "d2", "score": null}\n')
    with pytest.raises(InputError, match='run.jsonl:1: field "score" must be a number, not null'):
        formats.read_run(path)


def test_ranking_follows_trec_eval_ties_by_docid_descending():
    assert ranking({"a": 1.0, "c": 2.0, "b": 1.0, "d": 0.5}) == ["c", "b", "a", "d"]
    # trec_eval keeps scores as float32: these two tie, and the docid decides
    assert ranking({"x": 1.0 + 1e-12, "y": 1.0}) == ["y", "x"]


# -------------------------------------------------------------------------------------------------- qrels


def test_trec_and_beir_qrels(tmp_path):
    trec = write(tmp_path / "qrels.txt", "q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n")
    beir = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    headless = write(tmp_path / "plain.tsv", "q1\td1\t2\nq1\td2\t0\nq2\td3\t1.0\n")
    expected = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    assert formats.read_qrels(trec) == formats.read_qrels(beir) == formats.read_qrels(headless) == expected
    # BEIR's TSV splits on tabs: ids may hold spaces (a jsonl run can name them)
    other = write(tmp_path / "other.tsv", "qid\tdocid\trelevance\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    assert formats.read_qrels(other) == expected  # another header
    capital = write(tmp_path / "capital.tsv", "Query-ID\tCorpus-ID\tScore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    assert formats.read_qrels(capital) == expected  # a header's names in any case
    for first in ("q1\td1\tx", "q1\td1\t1.5"):  # a bad first judgment is no header
        with pytest.raises(InputError, match="bad.tsv:1: relevance"):
            formats.read_qrels(write(tmp_path / "bad.tsv", f"{first}\nq2\td3\t1\n"))
    with pytest.raises(InputError, match=r"relevance 'qrel' is not a whole number \(a header\? BEIR's is query-id"):
        formats.read_qrels(write(tmp_path / "bad.tsv", "qid\tdocid\tqrel\nq2\td3\t1\n"))
    spaced = write(tmp_path / "spaced.tsv", "q1\td 1\t2\nq1\td 2\t0\n")
    headed = write(tmp_path / "headed.tsv", "query-id\tcorpus-id\tscore\nq 1\td 1\t2\n")
    assert formats.read_qrels(spaced) == {"q1": {"d 1": 2, "d 2": 0}}
    assert formats.read_qrels(headed) == {"q 1": {"d 1": 2}}


def test_a_judgment_given_again_alike_is_kept_once_with_a_warning(tmp_path, caplog):
    # a qrels file joined from overlapping parts: it was refused as judged twice
    path = write(tmp_path / "qrels", "q1 0 d1 1\nq1 0 d2 0\nq1 0 d1 1\nq2 0 d3 2\nq2 0 d3 2\n")
    with caplog.at_level("WARNING", logger="qrr"):
        assert formats.read_qrels(path) == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    assert [r.getMessage() for r in caplog.records] == [f"{path}:3: a judgment given again alike, kept once (2 such "
                                                        "lines)"]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1 1\nq1 0 d2\n", r"qrels:2: expected 'qid 0 docid relevance', found 3"),
        ("q1 0 d1 1\nq1 0 d2 yes\n", r"qrels:2: relevance 'yes' is not a whole number"),
        ("q1 0 d1 1\nq1 0 d2 0.5\n", r"qrels:2: relevance '0.5' is not a whole number"),
        ("q1 0 d1 1\nq1 0 d1 2\n", r"qrels:2: document d1 is judged twice for query q1"),
        (
            "q1 0 d1 1\nq1 0 d\xa02 1\n",
            r"qrels:2: expected 'qid 0 docid relevance', found 5 fields \(it holds U\+00A0 "
            r"NO-BREAK SPACE, which",
        ),
        (
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n",
            r"qrels:3: expected query-id<TAB>corpus-id<TAB>score, found 2",
        ),
    ],
)
def test_bad_qrels(tmp_path, text, message):
    path = write(tmp_path / "qrels", text)
    with pytest.raises(InputError, match=message):
        formats.read_qrels(path)
    skipped = Collect()
    assert formats.read_qrels(path, on_error=skipped)["q1"]["d1"] == 1
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
    assert formats.read_corpus(path) == {
        "d1": "Beijing The capital of China.",
        "d2": "Paris is in France.",
        "d3": "No title at all.",
        "4": "A numeric id.",
    }


def test_corpus_keeps_only_what_is_asked(tmp_path):
    path = write(tmp_path / "corpus.jsonl", jsonl(CORPUS) + "not json, but not needed either\n")
    with pytest.raises(InputError, match="corpus.jsonl:5: malformed JSON"):
        formats.read_corpus(path, keep={"d2"})
    path = write(tmp_path / "corpus.jsonl", jsonl([*CORPUS, {"_id": "d1", "text": "again"}]))
    assert formats.read_corpus(path, keep={"d2"}) == {"d2": "Paris is in France."}
    with pytest.raises(InputError, match="corpus.jsonl:5: document d1 appears twice in the corpus"):
        formats.read_corpus(path, keep={"d1"})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"title": "t", "text": "x"}, r'/corpus.jsonl:2: missing field "_id" or "id"$'),
        ({"_id": "d9", "title": "t"}, r'/corpus.jsonl:2: missing field "text" or "contents"$'),
        ({"_id": "d9", "text": 5}, r'corpus.jsonl:2: field "text" must be a string, not a number'),
        (["d9", "x"], r"corpus.jsonl:2: expected an object, found an array"),
    ],
)
def test_bad_corpus_lines(tmp_path, record, message):
    path = write(tmp_path / "corpus.jsonl", jsonl([CORPUS[0], record, CORPUS[1]]))
    with pytest.raises(InputError, match=message):
        formats.read_corpus(path)
    skipped = Collect()
    assert set(formats.read_corpus(path, on_error=skipped)) == {"d1", "d2"}
    assert len(skipped) == 1


def test_corpus_as_msmarco_tsv_or_pyserini_jsonl(tmp_path):
    beir = write(tmp_path / "corpus.jsonl", jsonl([{"_id": "7", "title": "", "text": "Beijing is the capital."}]))
    tsv = write(tmp_path / "collection.tsv", "7\tBeijing is the capital.\n")
    pyserini = write(tmp_path / "pyserini.jsonl", jsonl([{"id": 7, "contents": "Beijing is the capital."}]))
    assert formats.read_corpus(beir) == formats.read_corpus(tsv) == formats.read_corpus(pyserini)
    assert formats.read_corpus(tsv) == {"7": "Beijing is the capital."}
    padded = write(tmp_path / "padded.tsv", " 7 \tBeijing is the capital.\n")  # an id's spaces are no part of it
    assert formats.read_corpus(padded) == {"7": "Beijing is the capital."}
    assert [(d.id, d.text) for d in formats.read_documents(padded, "tsv")] == [("7", "Beijing is the capital.")]
    headed = write(tmp_path / "headed.tsv", "id\ttext\n7\tBeijing is the capital.\n")  # a header line is no document
    assert formats.read_corpus(headed) == formats.read_corpus(tsv)
    # DPR's passages: id, text, title, read by the header's names (a title before the text, as BEIR joins them)
    dpr = write(tmp_path / "psgs.tsv", "id\ttext\ttitle\n7\tis the capital.\tBeijing\n8\tno title\t\n")
    assert formats.read_corpus(dpr) == {"7": "Beijing is the capital.", "8": "no title"}
    with pytest.raises(InputError, match=r"psgs.tsv:2: expected the header's 3 columns, found 2 fields$"):
        formats.read_corpus(write(tmp_path / "psgs.tsv", "id\ttext\ttitle\n7\tBeijing\n"))
    # without a header a third column is not glued onto the text
    with pytest.raises(InputError, match=r"three.tsv:1: expected docid<TAB>text, found 3 fields \(a first line naming "
                       r"the columns, as id<TAB>text<TAB>title, reads more\)$"):  # fmt: skip
        formats.read_corpus(write(tmp_path / "three.tsv", "7\tBeijing\tthe capital\n"))
    assert formats.read_queries(write(tmp_path / "q.tsv", "qid\tquery\nq1\tcapital?\n")) == {"q1": "capital?"}
    # named *.csv: a tool's TSV so named is read; CSV is said to be (it was a bad TSV line)
    assert formats.read_corpus(write(tmp_path / "tabbed.csv", "7\tBeijing is the capital.\n")) == {
        "7": "Beijing is the capital."
    }
    comma = write(tmp_path / "c.csv", "docid,text\n7,Beijing\n")
    with pytest.raises(InputError) as caught:
        formats.read_corpus(comma)
    assert str(caught.value) == (f"{comma}: CSV by its name, which qrr does not read (as TSV, a line holds "
                                 "docid<TAB>text); give JSON lines, for example pandas.read_csv(FILE).to_json(OUT, "
                                 "orient='records', lines=True), or TSV")  # fmt: skip
    with pytest.raises(InputError, match=r"collection.tsv:2: expected docid<TAB>text \(or a JSON object\)$"):
        formats.read_corpus(write(tmp_path / "collection.tsv", "7\tBeijing\njust words\n"))


def test_queries_as_jsonl_or_tsv(tmp_path):
    beir = write(tmp_path / "queries.jsonl", jsonl([{"_id": "q1", "text": "capital?", "metadata": {}}]))
    tsv = write(tmp_path / "queries.tsv", "q1\tcapital?\n")
    plain = write(tmp_path / "queries-id.jsonl", jsonl([{"id": "q1", "text": "capital?"}]))
    assert formats.read_queries(beir) == formats.read_queries(tsv) == formats.read_queries(plain) == {"q1": "capital?"}
    with pytest.raises(InputError, match="queries.tsv:2: query q1 appears twice"):
        formats.read_queries(write(tmp_path / "queries.tsv", "q1\tcapital?\nq1\tagain\n"))
    with pytest.raises(InputError, match=r"queries.tsv:1: expected qid<TAB>text"):
        formats.read_queries(write(tmp_path / "queries.tsv", "just words\n"))


def test_beir_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        formats.BeirFolder.at(tmp_path / "nope")
    (tmp_path / "qrels").mkdir()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (tmp_path / name).write_text("")
    (tmp_path / "corpus.jsonl").unlink()
    (tmp_path / "corpus.jsonl.gz").write_bytes(gzip.compress(b""))
    folder = formats.BeirFolder.at(tmp_path)
    assert folder.corpus.endswith("corpus.jsonl.gz") and folder.qrels.endswith("qrels/test.tsv")
    with pytest.raises(InputError, match=r"qrels/dev.tsv: no such file"):
        formats.BeirFolder.at(tmp_path, split="dev")


# ------------------------------------------------------------------------------------------------- writing


def test_format_results():
    results = [("d2", 0.75), ("d1", 0.1)]
    assert formats.format_results("q1", results, "trec") == "q1 Q0 d2 1 0.75 qrr\nq1 Q0 d1 2 0.1 qrr\n"
    assert formats.format_results("q1", results, "trec", tag="mine").endswith(" mine\n")
    lines = formats.format_results("q1", results, "jsonl").splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {"qid": "q1", "docid": "d2", "rank": 1, "score": 0.75},
        {"qid": "q1", "docid": "d1", "rank": 2, "score": 0.1},
    ]


def test_output_format_and_result_line(tmp_path):
    path = tmp_path / "out"
    assert formats.output_format(path) is None
    path.write_text("")
    assert formats.output_format(path) is None
    path.write_text("q1 Q0 d1 1 0.5 qrr\n")
    assert formats.output_format(path) == "trec"
    assert formats.result_line(b"q1 Q0 d1 1 0.5 qrr\n", "trec", "out:1") == ("q1", "d1", 0.5)
    assert formats.result_line(b'{"qid": "q7", "docid": "d", "score": 1}\n', "jsonl", "out:1") == ("q7", "d", 1.0)
    with pytest.raises(InputError, match="^out:1: expected 'qid Q0 docid rank score tag'; the file is not a TREC run"):
        formats.result_line(b"notes\n", "trec", "out:1")
    with pytest.raises(InputError, match="^out:1: the score is not a number; the file is not a run qrr wrote"):
        formats.result_line(b'{"qid": "q7", "docid": "d", "score": "high"}\n', "jsonl", "out:1")


# ------------------------------------------------------------------------------------------------ any bytes

READERS = (formats.read_run, formats.read_qrels, formats.read_corpus, formats.read_queries)
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
