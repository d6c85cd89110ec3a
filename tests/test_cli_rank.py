"""qrr rank: every input format as a file, stdin and arguments; every output format; streaming; bad input. The
fake model scores (the CLI's job is to pass the core's results through); one test runs the tiny transformer."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import orjson
import pytest

from qrr import Reranker
from qrr.errors import Terminated
from tests.clitools import jsonl, ok

QUERY = "what is the capital of China?"
DOCS = [
    {"id": "a", "text": "The capital of China is Beijing."},
    {"id": "b", "text": "Paris is the capital of France."},
    {"id": "c", "text": "Gravity pulls bodies together."},
]


@pytest.fixture(scope="module")
def ranked():
    """The ranking the core gives, which every CLI input path must reproduce."""
    return Reranker("fake").rank(QUERY, [d["text"] for d in DOCS], ids=[d["id"] for d in DOCS])


def check(stdout, ranked, with_ids=True):
    rows = jsonl(stdout)
    assert [r["rank"] for r in rows] == list(range(1, len(ranked) + 1))
    assert [r["index"] for r in rows] == [r["corpus_id"] for r in ranked]
    assert [r["score"] for r in rows] == [r["score"] for r in ranked]
    if with_ids:
        assert [r["id"] for r in rows] == [r["id"] for r in ranked]
    else:
        assert all("id" not in r for r in rows)
    assert all("text" not in r for r in rows)


def test_jsonl_file_and_stdin(cli, tmp_path, ranked):
    data = "".join(orjson.dumps(d).decode() + "\n" for d in DOCS)
    (tmp_path / "docs.jsonl").write_text(data)
    check(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.jsonl"))), ranked)
    check(ok(cli("rank", "-q", QUERY, input=data)), ranked)
    check(ok(cli("rank", "-q", QUERY, "-", input=data)), ranked)


def test_text_file_stdin_and_arguments(cli, tmp_path, ranked):
    data = "\n".join(d["text"] for d in DOCS) + "\n"
    (tmp_path / "docs.txt").write_text(data)
    check(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.txt"))), ranked, with_ids=False)
    check(ok(cli("rank", "-q", QUERY, input=data)), ranked, with_ids=False)
    args = [a for d in DOCS for a in ("-d", d["text"])]
    check(ok(cli("rank", "-q", QUERY, *args)), ranked, with_ids=False)


def test_tsv_lines_of_id_and_text(cli, tmp_path, ranked):
    data = "".join(f"{d['id']}\t{d['text']}\n" for d in DOCS)  # MS MARCO's collection.tsv
    (tmp_path / "docs.tsv").write_text(data)
    check(ok(cli("rank", "-q", QUERY, "--input-format", "tsv", str(tmp_path / "docs.tsv"))), ranked)
    check(ok(cli("rank", "-q", QUERY, "--input-format", "tsv", input="docid\ttext\n" + data)), ranked)  # a header
    # a file named so is read so (it was read as text, its header ranked as a document), a header too
    result = cli("rank", "-q", QUERY, str(tmp_path / "docs.tsv"))
    assert result.stderr == ""
    check(ok(result), ranked)
    (tmp_path / "headed.tsv.gz").write_bytes(gzip.compress(("id\ttext\n" + data).encode()))
    assert (result := cli("rank", "-q", QUERY, str(tmp_path / "headed.tsv.gz"))).stderr == ""
    check(ok(result), ranked)
    # pairs so named: refused (the header was ranked as a document, each query taken for an id); prose: text
    (tmp_path / "pairs.tsv").write_text("query\tdocument\nwhat is a cat\tthe cat sat\n")
    result = cli("rank", "-q", QUERY, str(tmp_path / "pairs.tsv"))
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'pairs.tsv'}: its first line names a query "
                                                    "and a document column, as pairs' TSV does: qrr score scores "
                                                    "pairs, and qrr rank reads id<TAB>text lines\n")  # fmt: skip
    (tmp_path / "prose.tsv").write_text("A sentence with\ta tab in it.\n")  # and plain lines: each read whole
    assert [r["index"] for r in jsonl(ok(cli("rank", "-q", QUERY, str(tmp_path / "prose.tsv"))))] == [0]
    # ids longer than 40 characters (TREC CAsT's CAR ids, URLs): ids still (read as text, each scored in its document)
    long_ids = ["CAR_00000006f6e6c0c3f0b8a0d3a6b3b5e1c9a2f4d1", "http://example.com/a/b/c/some-article-about-things"]
    (tmp_path / "cast.tsv").write_text("".join(f"{i}\t{d['text']}\n" for i, d in zip(long_ids, DOCS[:2], strict=True)))
    assert sorted(r["id"] for r in jsonl(ok(cli("rank", "-q", QUERY, str(tmp_path / "cast.tsv"))))) == long_ids
    # but a CJK sentence past 40 characters (no spaces in it) is prose, each line read whole
    sentence = "北京是中华人民共和国的首都也是全国的政治中心和文化中心以及国际交往中心和科技创新中心" + "。"
    (tmp_path / "zh.tsv").write_text(f"{sentence}\t城市\n")
    assert [r.get("id") for r in jsonl(ok(cli("rank", "-q", QUERY, str(tmp_path / "zh.tsv"))))] == [None]
    # lines of ids whose later line has no tab: how to read each line whole is said
    (tmp_path / "plain.tsv").write_text("d1\tBeijing is the capital.\nParis is in France.\n")
    result = cli("rank", "-q", QUERY, str(tmp_path / "plain.tsv"))
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'plain.tsv'}:2: expected id<TAB>text "
                                                    "(--input-format text reads each line whole, as a document's "
                                                    "text)\n")  # fmt: skip
    # a file named *.csv: refused whole, how to read it said (its header was ranked as a document, unsaid)
    (tmp_path / "docs.csv").write_text("id,text\n" + data.replace("\t", ","))
    result = cli("rank", "-q", QUERY, str(tmp_path / "docs.csv"))
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'docs.csv'}: CSV by its name, which qrr does "
                                                    "not read (as text, each line would be a document, the header "
                                                    "too); give JSON lines, for example pandas.read_csv(FILE).to_json("
                                                    "OUT, orient='records', lines=True), or --input-format text to "
                                                    "read each line whole\n")  # fmt: skip
    # otherwise read as text, each line whole: the id was scored as part of the document, unsaid
    (tmp_path / "docs.txt").write_text(data)
    result = cli("rank", "-q", QUERY, str(tmp_path / "docs.txt"))
    assert result.exit_code == 0 and all("id" not in r for r in jsonl(result.stdout))
    assert result.stderr == (f"warning: {tmp_path / 'docs.txt'}: its lines look like id<TAB>text; each is read whole, "
                             "as a document's text (--input-format tsv reads ids and texts)\n")  # fmt: skip
    assert ok(cli("rank", "-q", QUERY, input="a line\twith a tab in its prose\n"))  # prose with a tab: no warning
    assert cli("rank", "-q", QUERY, input="a line\twith a tab in its prose\n").stderr == ""
    result = cli("rank", "-q", QUERY, "--input-format", "tsv", input="d1 Beijing\n")
    assert (result.exit_code, result.stderr) == (2, "error: <stdin>:1: expected id<TAB>text\n")
    result = cli("rank", "-q", QUERY, "--input-format", "tsv", input="id\ttitle\n1\tBeijing\n")  # it was a KeyError
    assert (result.exit_code, result.stderr) == (2, "error: <stdin>:1: the header names no text column (text, "
                                                    "contents, passage or body), only a title\n")  # fmt: skip
    # a blank first line, and DPR's three columns with their header: read as text, each line whole, said
    said = cli("rank", "-q", QUERY, input="\nid\ttext\ttitle\n1\tis the capital.\tBeijing\n").stderr
    assert said.startswith("warning: <stdin>: its lines look like id<TAB>text;")
    # in a process of its own, where reading the input warns before any model loads (it was Python's bare line)
    (tmp_path / "nope").mkdir()
    env = {**os.environ, "QRR_MODEL": str(tmp_path / "nope")}
    out = subprocess.run([sys.executable, "-m", "qrr", "rank", "-q", QUERY, str(tmp_path / "docs.txt")], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stderr.startswith(f"warning: {tmp_path / 'docs.txt'}: its lines look like id<TAB>text; each is read "
                                 "whole, as a document's text (--input-format tsv reads ids and texts)\n")  # fmt: skip


def test_a_trec_run_given_as_documents_is_warned_of(cli):
    """`qrr rank -q x bm25.trec` ranked the run's lines as documents, without a word."""
    result = cli("rank", "-q", QUERY, input="q1 Q0 d7 1 12.5 bm25\nq1 Q0 d2 2 11 bm25\n")
    assert result.exit_code == 0 and len(jsonl(result.stdout)) == 2
    assert result.stderr == ("warning: <stdin>: its lines look like a TREC run (qid Q0 docid rank score tag), each "
                             "read as a document's text; a run's documents are reranked by qrr rerank "
                             "(pipelines.rerank_run in Python)\n")  # fmt: skip
    assert cli("rank", "-q", QUERY, input="q1 said Q0 to d7 then\n").stderr == ""  # prose of six words


def test_json_array_and_string_lines(cli, tmp_path, ranked):
    (tmp_path / "docs.json").write_text(json.dumps(DOCS))
    check(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.json"))), ranked)
    check(ok(cli("rank", "-q", QUERY, input=json.dumps(DOCS))), ranked)
    strings = "".join(json.dumps(d["text"]) + "\n" for d in DOCS)
    check(ok(cli("rank", "-q", QUERY, input=strings)), ranked, with_ids=False)
    check(ok(cli("rank", "-q", QUERY, "--input-format", "JSONL", input=strings)), ranked, with_ids=False)


def test_field_mapping(cli, ranked):
    data = "".join(json.dumps({"_id": d["id"], "body": d["text"]}) + "\n" for d in DOCS)
    check(ok(cli("rank", "-q", QUERY, "--text-field", "body", "--id-field", "_id", input=data)), ranked)


def test_ids_from_beir_and_a_warning_for_an_id_field_that_is_never_there(cli, ranked):
    beir = "".join(json.dumps({"_id": d["id"], "title": "", "text": d["text"]}) + "\n" for d in DOCS)
    check(ok(cli("rank", "-q", QUERY, input=beir)), ranked)
    result = cli("rank", "-q", QUERY, "--id-field", "nope", input=beir)
    assert result.exit_code == 0 and all("id" not in r for r in jsonl(result.stdout))
    assert result.stderr == 'warning: no result has an id; is "nope" the field that holds them? (--id-field)\n'
    assert cli("rank", "-q", QUERY, "--id-field", "nope", input="").stderr == ""  # no results, nothing to say


def test_ids_by_another_name_are_ids(cli, tmp_path, ranked):
    """A document's one id field by another name (doc_id, pid) is its id, as qrr score keeps it: rank dropped it.
    A query's id (qid) is never a document's; --with-fields still copies the field as the input named it."""
    data = "".join(json.dumps({"doc_id": d["id"], "qid": "q1", "text": d["text"]}) + "\n" for d in DOCS)
    (tmp_path / "docs.jsonl").write_text(data)
    check(ok(cli("rank", "-q", QUERY, str(tmp_path / "docs.jsonl"))), ranked)
    check(ok(cli("rank", "-q", QUERY, input=data)), ranked)
    fields = jsonl(ok(cli("rank", "-q", QUERY, "--with-fields", input=data)))
    assert all(r["doc_id"] == r["id"] and r["qid"] == "q1" for r in fields)
    two = "".join(json.dumps({"docid": d["id"], "pid": "p", "text": d["text"]}) + "\n" for d in DOCS)
    result = cli("rank", "-q", QUERY, input=two)
    assert result.exit_code == 0 and all("id" not in r for r in jsonl(result.stdout))
    assert result.stderr == ('warning: <stdin>:1: no "id" field, and several others that are ids (docid, pid): none '
                             "is taken as the document's; name it with --id-field\n")  # fmt: skip
    check(ok(cli("rank", "-q", QUERY, "--id-field", "docid", input=two)), ranked)


def test_with_fields_copies_each_documents_other_fields_after_its_own(cli, tmp_path, ranked):
    """A page's url or a chunk's source was dropped: only the id was kept, so results had to be joined back."""
    pages = [{"id": d["id"], "text": d["text"], "url": f"https://x/{d['id']}", "meta": {"n": n}}
             for n, d in enumerate(DOCS)]  # fmt: skip
    data = "".join(json.dumps(p) + "\n" for p in pages)
    (tmp_path / "pages.jsonl").write_text(data)
    want = [{"rank": n, "index": r["corpus_id"], "score": r["score"], "id": r["id"], "url": f"https://x/{r['id']}",
             "meta": {"n": r["corpus_id"]}} for n, r in enumerate(ranked, 1)]  # fmt: skip
    got = jsonl(ok(cli("rank", "-q", QUERY, str(tmp_path / "pages.jsonl"), "--with-fields")))
    assert [list(r.items()) for r in got] == [list(r.items()) for r in want]  # the result's own fields first
    assert jsonl(ok(cli("rank", "-q", QUERY, "--with-fields", "-k", "1", input=data))) == want[:1]
    args = [a for d in DOCS for a in ("-d", d["text"])]  # arguments carry no other fields
    assert [set(r) for r in jsonl(ok(cli("rank", "-q", QUERY, "--with-fields", *args)))] == [
        {"rank", "index", "score"}
    ] * 3
    # the fields left are the document's own: the text and id fields read are not copied again
    body = "".join(json.dumps({"_id": p["id"], "body": p["text"], "url": p["url"]}) + "\n" for p in pages)
    got = jsonl(ok(cli("rank", "-q", QUERY, "--with-fields", "--text-field", "body", "--with-text", input=body)))
    assert got[0] == {"rank": 1, "index": ranked[0]["corpus_id"], "score": ranked[0]["score"], "id": ranked[0]["id"],
                      "text": DOCS[ranked[0]["corpus_id"]]["text"], "url": f"https://x/{ranked[0]['id']}"}  # fmt: skip
    assert "https://x/a" in ok(cli("rank", "-q", QUERY, "--with-fields", "-f", "table", input=data))
    assert ok(cli("rank", "-q", QUERY, "--with-fields", "-f", "tsv", input=data)).splitlines()[0] == (
        "rank\tindex\tscore\tid\turl\tmeta"
    )
    # a field of a result's own name is refused: the first document's before any model loads, a later one's in place
    said = "would take the place of the result's own with --with-fields; rename it in the input\n"
    clash = json.dumps({"text": "a", "score": 0.5, "rank": 3}) + "\n"
    result = cli("rank", "-q", QUERY, "--with-fields", input=clash, model="nowhere")
    assert (result.exit_code, result.stderr) == (2, f'error: <stdin>:1: its fields "rank" and "score" {said}')
    result = cli("rank", "-q", QUERY, "--with-fields", "--on-error", "skip", input=clash + data)  # skipped, listed
    assert result.exit_code == 0 and jsonl(result.stdout) == want
    assert result.stderr.splitlines()[:2] == ["skipped 1 bad line:", f'  <stdin>:1: its fields "rank" and "score" '
                                              f"{said[:-1]}"]  # fmt: skip
    result = cli("rank", "-q", QUERY, "--with-fields", "--text-field", "body", "--with-text",
                 input=body + json.dumps({"body": "b", "text": "c"}) + "\n")  # fmt: skip
    assert (result.exit_code, result.stderr) == (2, f'error: <stdin>:4: its field "text" {said}')
    other = body + json.dumps({"body": "b", "text": "c"}) + "\n"  # without --with-text, "text" is the input's
    rows = jsonl(ok(cli("rank", "-q", QUERY, "--with-fields", "--text-field", "body", input=other)))
    assert [r["text"] for r in rows if r["index"] == 3] == ["c"]
    # a table shows each document's text; its own "text" field gives way there, not refused as with --with-text
    assert cli("rank", "-q", QUERY, "--with-fields", "--text-field", "body", "-f", "table", input=other).exit_code == 0


def test_prose_that_opens_like_json_is_text(cli):
    rows = jsonl(ok(cli("rank", "-q", "gravity", "--with-text", input='"Gravity," she said.\n[1] Newton.\n')))
    assert sorted(r["text"] for r in rows) == ['"Gravity," she said.', "[1] Newton."]


def test_top_k_and_with_text(cli, ranked):
    rows = jsonl(ok(cli("rank", "-q", QUERY, "-k", "2", "--with-text", input=json.dumps(DOCS))))
    assert [r["index"] for r in rows] == [r["corpus_id"] for r in ranked[:2]]
    assert [r["text"] for r in rows] == [DOCS[r["corpus_id"]]["text"] for r in ranked[:2]]


def test_output_formats(cli, ranked):
    data = json.dumps(DOCS)
    rows = json.loads(ok(cli("rank", "-q", QUERY, "--format", "json", input=data)))
    assert [r["id"] for r in rows] == [r["id"] for r in ranked]
    tsv = ok(cli("rank", "-q", QUERY, "-f", "tsv", "--with-text", input=data)).splitlines()
    assert tsv[0] == "rank\tindex\tscore\tid\ttext"
    assert tsv[1].split("\t")[3:] == [ranked[0]["id"], DOCS[ranked[0]["corpus_id"]]["text"]]
    table = ok(cli("rank", "-q", QUERY, "-f", "table", input=data))
    assert "rank" in table and "score" in table and f"{ranked[0]['score']:.4f}" in table
    assert DOCS[ranked[0]["corpus_id"]]["text"][:20] in table


def test_the_real_model_end_to_end(cli, tiny_model, reranker):
    """The tiny transformer from its folder, through the CLI: the core's scores, to 1e-6."""
    expected = reranker.rank(QUERY, [d["text"] for d in DOCS])
    rows = jsonl(ok(cli("rank", "-q", QUERY, *[a for d in DOCS for a in ("-d", d["text"])], model=tiny_model)))
    assert [r["index"] for r in rows] == [r["corpus_id"] for r in expected]
    assert [r["score"] for r in rows] == pytest.approx([r["score"] for r in expected], abs=1e-6)


def test_streamed_in_chunks_equals_ranking_at_once(fake, cli):
    """Documents are read and scored a chunk (1024 documents) at a time; 2,500 documents make three chunks."""
    name, loader = fake()
    docs = [f"document {n} " * (1 + n % 3) for n in range(2500)]
    expected = Reranker("fake").rank("q", docs)
    rows = jsonl(ok(cli("rank", "-q", "q", "-k", "5", input="\n".join(docs) + "\n", model=name)))
    assert [r["index"] for r in rows] == [r["corpus_id"] for r in expected[:5]]
    assert sum(loader.engines[-1].rows) == 2500


@pytest.mark.parametrize(("raising", "code", "how"), [(KeyboardInterrupt, 130, "interrupted"),
                                                       (Terminated, 143, "terminated")])  # fmt: skip
def test_an_interrupted_ranking_says_how_far_it_got(fake, cli, raising, code, how):
    name, _ = fake(interrupt_after=3, raising=raising)  # --batch-tokens 1: a batch a document
    result = cli("rank", "-q", "q", "--batch-tokens", "1", input="a\nb\nc\nd\ne\n", model=name)
    assert (result.exit_code, result.stdout) == (code, "")
    assert result.stderr == (f"error: {how} after scoring 3 documents; a ranking is written once every document is "
                             "scored (for a long one, qrr score -q QUERY FILE --resume OUT keeps the scores as they "
                             "come)\n")  # fmt: skip


def test_a_ranking_stopped_by_a_fault_minutes_in_says_what_was_scored(fake, cli):
    # a bad line after the first call's 1,024 documents: they were scored, and are lost with the run
    lines = "".join(json.dumps({"text": f"document {n}"}) + "\n" for n in range(1100)) + "{bad\n"
    result = cli("rank", "-q", "q", input=lines)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("note: nothing was written of the 1,024 documents scored: a ranking is written "
                                    "once every document is scored (for a long one, qrr score -q QUERY FILE "
                                    "--resume OUT keeps the scores as they come); --on-error skip leaves such lines "
                                    "out\nerror: <stdin>:1101: malformed JSON")  # fmt: skip
    from qrr.errors import QrrError

    name, _ = fake(interrupt_after=3, raising=QrrError("cannot reach the server at http://x:1: gone"))  # at runtime
    result = cli("rank", "-q", "q", "--batch-tokens", "1", input="a\nb\nc\nd\ne\n", model=name)
    assert result.exit_code == 1 and result.stderr.startswith("note: nothing was written of the 3 documents scored: ")
    assert result.stderr.endswith("as they come)\nerror: cannot reach the server at http://x:1: gone\n")


def test_a_table_shows_the_best_hundred_unless_k_says(cli):
    lines = "".join(f"document {n}\n" for n in range(150))
    result = cli("rank", "-q", "q", "-f", "table", input=lines)
    assert result.exit_code == 0
    assert result.stderr.endswith("note: the table shows the best 100 of 150 documents; -k N shows N, -f jsonl writes "
                                  "them all\n")  # fmt: skip
    ranks = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert ranks == [str(n) for n in range(1, 101)]
    every = cli("rank", "-q", "q", "-f", "table", "-k", "150", input=lines)
    assert every.stdout.splitlines()[-1].split()[0] == "150" and "the table shows" not in every.stderr
    assert len(cli("rank", "-q", "q", "-f", "jsonl", input=lines).stdout.splitlines()) == 150  # data: all of it


@pytest.mark.parametrize(("raising", "code", "how"), [(KeyboardInterrupt, 130, "interrupted"),
                                                       (Terminated, 143, "terminated")])  # fmt: skip
def test_a_ranking_stopped_while_it_is_written_says_it_is_cut_short(cli, monkeypatch, raising, code, how):
    from qrr import formats

    rank_rows = formats.rank_rows

    def slow_reader(ranked, with_text=False):  # the signal comes after two rows, as a slow pipe holds the writing
        rows = rank_rows(ranked, with_text)
        yield from rows[:2]
        raise raising

    monkeypatch.setattr(formats, "rank_rows", slow_reader)
    result = cli("rank", "-q", "q", "-f", "json", input="a\nb\nc\nd\ne\n")
    assert result.exit_code == code
    assert [r["rank"] for r in json.loads(result.stdout)] == [1, 2]  # the array closed: still one JSON document
    assert result.stderr == f"error: {how} after writing the best 2 of 5 results\n"  # was a bare "error: terminated"


def test_empty_input_prints_nothing_and_says_so_with_v_or_on_a_terminal(cli, monkeypatch):
    import io

    from rich.console import Console

    from qrr.cli import render

    assert ok(cli("rank", "-q", "x", input="\n\n")) == ""
    assert ok(cli("rank", "-q", "x", "-f", "json", input="")) == "[]\n"  # still one JSON document
    assert ok(cli("rank", "-q", "x", "-f", "tsv", input="")) == "rank\tindex\tscore\n"  # pandas reads no rows
    result = cli("rank", "-q", "q", "-v", input="")
    assert result.exit_code == 0 and result.stdout == "" and "no documents in the input" in result.stderr
    # a person at a terminal (grep matched nothing, say) learns why nothing came
    monkeypatch.setattr(render, "stderr", Console(file=(seen := io.StringIO()), force_terminal=True, width=100))
    assert ok(cli("rank", "-q", "x", input="")) == ""
    assert seen.getvalue() == "no documents in the input\n"


def test_verbose_reports_on_stderr_only(cli):
    result = cli("rank", "-q", QUERY, "-d", "doc", "-v")
    assert result.exit_code == 0
    assert "scored 1 pair (" in result.stderr and re.search(r"model fake on cpu \(fp32, \d+ threads?\)", result.stderr)
    assert len(jsonl(result.stdout)) == 1


def test_truncation_is_noted(cli):
    result = cli("rank", "-q", "q", "-d", "word " * 200, "--max-length", "100")
    assert result.exit_code == 0
    assert result.stderr == "note: 1 document cut to --max-length 100\n"


def test_blank_documents_are_scored_and_warned_of(cli, tmp_path):
    data = '{"id": "a", "text": "x"}\n{"id": "b", "text": ""}\n{"id": "c", "text": " \\t"}\n'
    (tmp_path / "docs.jsonl").write_text(data)
    for args, kwargs, where in (([str(tmp_path / "docs.jsonl")], {}, f"{tmp_path / 'docs.jsonl'}"),
                                ([], {"input": data}, "<stdin>")):  # fmt: skip
        result = cli("rank", "-q", "q", *args, **kwargs)
        assert sorted(r["id"] for r in jsonl(result.stdout)) == ["a", "b", "c"]  # each scored still
        assert result.stderr == (f"warning: 2 blank documents ({where}:2, {where}:3) scored as given: such a score "
                                 "says nothing of relevance\n")  # fmt: skip
    assert cli("rank", "-q", "q", input='{"text": "x"}\n').stderr == ""  # none blank: no warning


def test_on_error_skip(cli):
    result = cli("rank", "-q", "q", "--on-error", "skip", input=b'{"text": "a"}\n{"text": 3}\n"b"\n')
    assert [r["index"] for r in jsonl(result.stdout)] != []
    assert result.stderr.startswith('skipped 1 bad line:\n  <stdin>:2: field "text" must be a string')
    # nothing good at all: no run that went well (it exited 0 with no output)
    result = cli("rank", "-q", "q", "--on-error", "skip", "-f", "json", input=b'{"text": 3}\n{"text": 4}\n')
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == "error: every line of the input was bad (2 skipped): no document to rank"


def test_query_is_required(cli, monkeypatch):
    result = cli("rank", "-d", "x")
    assert result.exit_code == 2 and "error: missing option '--query'" in result.stderr
    # -q "$Q" with Q unset ranked for nothing, exit 0; so did -d "$D"; refused before any model loads
    for args, said in ((("-q", "", "-d", "x"), "-q/--query is blank (''; an unset shell variable?): give the query"),
                       (("-q", " \t"), "-q/--query is blank (' \\t'; an unset shell variable?): give the query"),
                       (("-q", "q", "-d", "x", "-d", ""), "-d/--document 2 is blank (''; an unset shell variable?): "
                        "give its text")):  # fmt: skip
        result = cli("rank", *args, input="a document\n", model="nowhere")
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {said}\n")
    # -i "$I" so too (it scored with an empty instruction), in every command that takes -i
    said = "error: -i/--instruction is blank (''; an unset shell variable?): give the instruction, or leave -i out "
    for args in (("rank", "-q", "q", "-d", "x"), ("score", "-q", "q", "-d", "x"), ("rerank", "r.trec", "--beir", "b"),
                 ("eval", "--beir", "b", "--run", "r.trec"), ("serve",),
                 ("score", "p.jsonl", "--ray", "-o", "o")):  # fmt: skip
        result = cli(*args, "-i", "", model="nowhere")
        assert (result.exit_code, result.stderr) == (2, said + "for the default\n"), args
    # bytes that are not UTF-8 (a GBK terminal): said of the option, before any model loads (-i was a TypeError)
    gbk = "判断".encode("gbk").decode("utf-8", "surrogateescape")
    for args, option in ((("rank", "-q", "q", "-d", "x", "-i", gbk), "-i/--instruction"),
                         (("rank", "-q", gbk, "-d", "x"), "-q/--query"),
                         (("score", "-q", "q", "-d", "x", "-d", "a" + gbk), "-d/--document 2"),
                         (("serve", "-i", gbk), "-i/--instruction")):  # fmt: skip
        result = cli(*args, model="nowhere")
        character = 2 if option.startswith("-d") else 1
        assert (result.exit_code, result.stderr) == (
            2,
            f"error: {option} is not UTF-8 text (at character {character}): "
            "the shell passed it in another encoding (a GBK or Shift-JIS "
            "terminal, or a file's bytes in $(...)?); give it in UTF-8\n",
        )
    # UTF-8 read under an ASCII locale (LC_ALL=C): the locale is to blame, not the shell
    ascii_read = "北京".encode().decode("ascii", "surrogateescape")
    result = cli("rank", "-q", ascii_read, "-d", "x", model="nowhere")
    assert (result.exit_code, result.stderr) == (2, "error: -q/--query is UTF-8, but this locale is not (LC_ALL=C?), "
                                                    "so Python read it as bytes: set PYTHONUTF8=1, or a UTF-8 locale "
                                                    "(LC_ALL=C.UTF-8)\n")  # fmt: skip
    # and under an 8-bit locale (ISO-8859-1), which reads any bytes: UTF-8's were scored as other letters, unsaid
    latin1_read = "北京".encode().decode("latin-1")
    monkeypatch.setattr(os, "fsencode", lambda text: text.encode("latin-1", "surrogateescape"))
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "iso8859-1")
    result = cli("rank", "-q", "capital", "-d", latin1_read, model="nowhere")
    assert (result.exit_code, result.stderr) == (2, "error: -d/--document 1 is UTF-8, but this locale is iso8859-1, so "
                                                    "Python read it as other letters ('å\\x8c\\x97äº¬'): set "
                                                    "PYTHONUTF8=1, or a UTF-8 locale (LC_ALL=C.UTF-8)\n")  # fmt: skip
    from qrr.cli.base import check_given_texts

    check_given_texts("café", ["café"])  # the locale's own letters (no UTF-8 in their bytes): taken as given
