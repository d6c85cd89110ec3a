from __future__ import annotations

import gzip
import io as stdio
import json
import os
import re

import pytest

from qrr import errors, formats
from qrr.errors import InputError, QrrError


def write(tmp_path, name, data: bytes | str):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def test_pairs_jsonl_with_ids_and_instruction(tmp_path):
    f = write(tmp_path, "p.jsonl", '{"qid": 1, "docid": "d", "query": "q", "document": "d", "instruction": "t"}\n'
              '\n{"query": "q2", "document": "d2", "instruction": null, "other": 5}\n')  # fmt: skip
    assert list(formats.read_pairs([f])) == [
        formats.PairRecord("q", "d", "t", {"qid": 1, "docid": "d"}),
        formats.PairRecord("q2", "d2", None, {}, {"other": 5}),  # other fields are kept apart from the ids
    ]


def test_pairs_tsv_json_array_bom_and_crlf(tmp_path):
    tsv = write(tmp_path, "p.tsv", b"\xef\xbb\xbfq1\td1\r\nq2\td2\r\n\r\n")
    assert list(formats.read_pairs([tsv])) == [formats.PairRecord("q1", "d1"), formats.PairRecord("q2", "d2")]
    arr = write(tmp_path, "p.json", '[{"query": "q", "document": "d", "id": 7}]')
    assert list(formats.read_pairs([arr])) == [formats.PairRecord("q", "d", None, {"id": 7})]
    # several sources in order, each with its own format
    assert [r.query for r in formats.read_pairs([tsv, arr])] == ["q1", "q2", "q"]


def test_compressed_or_parquet_data_is_named_as_such(tmp_path):
    import gzip

    data = gzip.compress(b'{"query": "q", "document": "d"}\n' * 50)
    for name in ("pairs.jsonl", "pairs.bin"):  # a .gz file by another name: it was "invalid UTF-8 at byte 1"
        with pytest.raises(InputError, match=f"^{tmp_path / name}: gzip-compressed data; name the file \\*.gz, or "
                                             "decompress it first \\(zcat\\)$"):  # fmt: skip
            list(formats.read_pairs(write(tmp_path, name, data)))
    skipped = []  # with --on-error skip: one message for the file, not one per line of compressed bytes
    assert list(formats.read_pairs(str(tmp_path / "pairs.bin"), on_error=skipped.append)) == []
    assert [str(e) for e in skipped] == [f"{tmp_path / 'pairs.bin'}: gzip-compressed data; name the file *.gz, or "
                                         "decompress it first (zcat)"]  # fmt: skip
    with pytest.raises(InputError, match=r"p.parquet: a Parquet file, not text; qrr score --ray reads Parquet \(in "
                                         r"Python, qrr.raydata.read_pairs, or a DataFrame from pandas.read_parquet\), "
                                         "or convert it to JSON lines$"):  # fmt: skip
        list(formats.read_documents(write(tmp_path, "p.parquet", b"PAR1\x15\x04\x8c\xff rest\n")))
    assert [d.text for d in formats.read_documents(write(tmp_path, "t.txt", "PAR1 is a word\n"))] == ["PAR1 is a word"]
    said = (f"{tmp_path / 'u.txt'}: UTF-16 text (it opens with UTF-16's byte order mark, as Windows PowerShell's > "
            "writes files); qrr reads UTF-8: convert it first, for example with iconv -f utf-16 -t utf-8")  # fmt: skip
    utf32 = write(tmp_path, "u32.txt", "one\n".encode("utf-32"))
    with pytest.raises(InputError, match="u32.txt: UTF-32 text .* for example with iconv -f utf-32 -t utf-8$"):
        list(formats.read_documents(utf32))
    for encoding in ("utf-16", "utf-16-be"):  # Windows PowerShell's > writes UTF-16LE with a byte order mark
        text = ("\ufeff" if encoding == "utf-16-be" else "") + "one\ntwo\n"
        with pytest.raises(InputError) as caught:
            list(formats.read_documents(write(tmp_path, "u.txt", text.encode(encoding))))
        assert str(caught.value) == said
        assert isinstance(caught.value, errors.SourceError)  # skipped, the whole file is left out
    assert list(formats.read_pairs(write(tmp_path, "ok.jsonl.gz", data)))[0] == formats.PairRecord("q", "d")
    with pytest.raises(errors.SourceError, match="/x.jsonl.gz: not gzip data, though its name ends in .gz$"):
        list(formats.read_pairs(write(tmp_path, "x.jsonl.gz", '{"query": "q", "document": "d"}\n')))
    skipped = []  # skipped whole, as a UTF-16 file is
    assert list(formats.read_pairs([str(tmp_path / "x.jsonl.gz")], on_error=skipped.append)) == []
    assert [type(e) for e in skipped] == [errors.SourceError]
    with pytest.raises(InputError, match="/c.jsonl.gz: not a complete gzip file") as caught:  # lines of it were read
        list(formats.read_pairs(write(tmp_path, "c.jsonl.gz", data[:-20])))
    assert not isinstance(caught.value, errors.SourceError)
    # UTF-16 without a byte order mark: NUL bytes every other byte
    said = (r"/n.txt:1: NUL byte at byte 2 of the line \(UTF-16 text without a byte order mark\? convert it first, "
            r"for example with iconv -f utf-16le -t utf-8\)$")  # fmt: skip
    with pytest.raises(InputError, match=said):
        list(formats.read_documents(write(tmp_path, "n.txt", "one two\n".encode("utf-16-le"))))
    with pytest.raises(InputError, match=r"/n.txt:1: NUL byte at byte 2 of the line$"):  # one NUL: no such guess
        list(formats.read_documents(write(tmp_path, "n.txt", b"a\x00bcdefgh\n")))


def test_one_path_is_one_source_and_a_file_object_none(tmp_path):
    from pathlib import Path

    pairs = write(tmp_path, "p.jsonl", '{"query": "q", "document": "d"}\n')
    docs = write(tmp_path, "d.txt", "alpha\nbeta\n")
    # one path, not its letters as paths ("p: no such file")
    assert list(formats.read_pairs(pairs)) == list(formats.read_pairs(Path(pairs))) == [formats.PairRecord("q", "d")]
    assert [d.text for d in formats.read_documents(Path(docs))] == ["alpha", "beta"]
    with open(pairs) as handle, pytest.raises(InputError, match="^sources must be paths \\(or one path\\), not Text"):
        formats.read_pairs(handle)  # its lines would be taken for paths
    with pytest.raises(InputError, match="^sources must be paths \\(or one path\\), not int$"):
        formats.read_documents([docs, 3])
    with pytest.raises(InputError, match=r"^- \(stdin\) is given twice; it can be read once: give the others as"):
        formats.read_pairs(["-", pairs, "-"])  # the second read found stdin empty, unsaid


@pytest.mark.parametrize(
    "data, message",
    [
        ('{"query": "q", "document": "d"}\n{"query": "q"\n', r"p:2: malformed JSON"),
        ('{"query": "q"}\n', r'p:1: missing field "document"'),
        ('{"query": ["q"], "document": "d"}\n', r'p:1: field "query" must be a string, not an array'),
        ('{"query": "q", "document": "d", "instruction": 3}\n', r'field "instruction" must be a string'),
        ("q only, no tab\n", r"p:1: expected query<TAB>document"),
        (
            "[1, 2]",
            r"p: item 0: expected an object with \"query\" and \"document\", or a \[query, document\] array, "
            "found a number$",
        ),
        ('{"a": 1}', r'p:1: missing field "query"'),
        ("[1, 2", r"p:1: expected query<TAB>document"),  # no JSON array of pairs opens so
        (
            "[\n1, 2",
            r"p:2: malformed JSON \(unexpected end of data\) in the file's JSON array \(if the input is "
            r"query<TAB>document lines, use input_format tsv\)$",
        ),
    ],
)
def test_bad_pairs_name_the_file_and_line(tmp_path, data, message):
    with pytest.raises(InputError, match=message):
        list(formats.read_pairs([write(tmp_path, "p", data)]))


def test_a_pair_missing_a_field_names_the_fields_it_has_instead(tmp_path):
    """`{"query": .., "passage": ..}` said only `missing field "document"`, where rank names its text field."""

    def said(data: str) -> str:
        with pytest.raises(InputError) as caught:
            list(formats.read_pairs([write(tmp_path, "p", data)]))
        return str(caught.value).removeprefix(f"{tmp_path}/")

    assert said('{"query": "q", "passage": "p", "id": 1}') == (
        'p:1: missing field "document" (its other field is "passage": rename one with jq, say jq -c \'.document = '
        ".passage | del(.passage)')"
    )
    assert said('{"q": "q", "my-doc": "p"}') == (
        'p:1: missing field "query" (its other fields are "q", "my-doc": rename one with jq, say jq -c \'.query = '
        ".q | del(.q)')"
    )
    assert said('{"query": "q", "my-doc": "p"}').endswith("""jq -c '.document = .["my-doc"] | del(.["my-doc"])')""")
    assert said('{"query": "q", "id": 1}') == 'p:1: missing field "document"'  # nothing else to name
    # a document's line (qrr score given a documents file without -q): renamed, it was scored as its own query
    for line, text in (('{"id": "a", "text": "t"}', "text"), ('{"id": "a", "contents": "t"}', "contents"),
                       ('{"_id": "a", "title": "T", "text": "t"}', "text")):  # fmt: skip
        with pytest.raises(InputError) as caught:
            list(formats.read_pairs([write(tmp_path, "d.jsonl", line + "\n")]))
        assert caught.value.naming({"query": "-q"}).endswith(f'd.jsonl:1: missing field "query"; a document ("{text}") '
                                                             "with no query: give -q QUERY to score each document "
                                                             "against it (qrr rank ranks them)")  # fmt: skip
    # a pair's query by another name beside the text: renamed, as before (-q would score every text against one)
    assert said('{"question": "what is a cat", "text": "the cat sat"}') == (
        'p:1: missing field "query" (its other fields are "question", "text": rename one with jq, say jq -c \'.query '
        "= .question | del(.question)')"
    )
    # a request's body, FlagEmbedding's training lines: documents in arrays, which a rename would not make a pair
    assert said('{"query": "q", "documents": ["a", "b"]}') == (
        'p:1: missing field "document" (the documents are in the array "documents": one pair a document, with jq -c '
        "'.documents[] as $d | {query, document: $d}')"
    )
    assert said('{"query": "q", "documents": [{"text": "a"}, "b"]}').endswith(
        "with jq -c '.documents[] as $d | {query, document: ($d.text? // $d)}')"  # objects' text, strings as they are
    )
    # a text field beside an array (of authors, of ids) is the likelier document: renamed, as before
    assert said('{"query": "q", "abstract": "t", "authors": ["A. Smith"], "doc_ids": ["1"]}').endswith(
        "rename one with jq, say jq -c '.document = .abstract | del(.abstract)')"
    )
    # a request body names its model, a FlagEmbedding line its prompt: no document (a rename to them was advised)
    assert said('{"model": "rerank-v3.5", "query": "q", "documents": ["a"], "top_n": 1}').endswith(
        "with jq -c '.documents[] as $d | {query, document: $d}')"
    )
    assert said('{"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [1], "prompt": "Given a", "type": "x"}'
                ).endswith("jq -c '(.pos + .neg)[] as $d | {query, document: $d}')")  # fmt: skip
    assert said('{"query": "q", "scores": [1, 2]}') == 'p:1: missing field "document"'  # no rename to numbers
    assert said('{"prompt": "q", "document": "d"}').endswith("jq -c '.query = .prompt | del(.prompt)')")
    assert said('{"query": "q", "pos": ["a"], "neg": ["b"]}').endswith(
        """the arrays "pos", "neg": one pair a document, with jq -c '(.pos + .neg)[] as $d | {query, document: $d}')"""
    )


def test_an_id_past_64_bits_is_warned_of_once_per_file(tmp_path, caplog):
    """An integer id past 64 bits is read as a float (the parser's limit): its join key came back changed, silently."""
    big = '{"id": 18446744073709551617, "query": "q", "document": "d"}\n'
    with caplog.at_level("WARNING", logger="qrr"):
        pairs = list(formats.read_pairs([write(tmp_path, "p", big * 2 + '{"id": 7, "query": "q", "document": "d"}')]))
        docs = list(formats.read_documents([write(tmp_path, "d", '{"docid": -9223372036854775809, "text": "t"}')]))
    assert [p.ids["id"] for p in pairs] == [1.8446744073709552e19] * 2 + [7] and docs[0].id < 0
    assert [r.getMessage().removeprefix(f"{tmp_path}/") for r in caplog.records] == [
        'p:1: "id" is an integer past 64 bits, read as the float 1.8446744073709552e+19 (its last digits lost); give '
        "such ids as strings",
        'd:1: "docid" is an integer past 64 bits, read as the float -9.223372036854776e+18 (its last digits lost); '
        "give such ids as strings",
    ]


def test_tsv_pairs_have_two_fields_and_may_start_with_a_header(tmp_path):
    # a third column (a label, a second passage) is not glued onto the document
    with pytest.raises(InputError, match="/p:2: 3 tab-separated fields; expected query<TAB>document "
                                         r"\(a first line naming the columns reads more, as query<TAB>document<TAB>"
                                         r"label; JSON lines carry documents with tabs\)$"):  # fmt: skip
        list(formats.read_pairs([write(tmp_path, "p", "q\td\nq\td\t1\n")]))
    skipped = []
    pairs = formats.read_pairs([write(tmp_path, "p", "q\td\nq\ta\tb\tc\nq\te\n")], on_error=skipped.append)
    assert list(pairs) == [formats.PairRecord("q", "d"), formats.PairRecord("q", "e")]
    assert [str(e).rsplit("/", 1)[1] for e in skipped] == [
        "p:2: 4 tab-separated fields; expected query<TAB>document (a first line naming the columns reads more, as "
        "query<TAB>document<TAB>label; JSON lines carry documents with tabs)"]  # fmt: skip
    # a first line naming the columns is a header; the same line later is a pair
    data = "\nQuery\tDocument\nq\td\nquery\tdocument\n"
    assert list(formats.read_pairs([write(tmp_path, "p", data)])) == [
        formats.PairRecord("q", "d"), formats.PairRecord("query", "document")]  # fmt: skip
    assert list(formats.read_pairs([write(tmp_path, "p", "query\tpassage\n")], input_format="tsv")) == []
    # sentence-pair data's headers (STS, CrossEncoder training sets): the header was scored as a pair
    for header in ("sentence1\tsentence2", "anchor\tpositive", "question\tanswer"):
        assert list(formats.read_pairs([write(tmp_path, "p", f"{header}\nq\td\n")])) == [formats.PairRecord("q", "d")]
    # a header is read by name, in any order and with more columns: ids to ids, a label to the other fields
    data = " Document \tquery\tlabel\tqid\nBeijing\tcapital\t1\tq7\n"
    assert list(formats.read_pairs([write(tmp_path, "p", data)])) == [
        formats.PairRecord("capital", "Beijing", None, {"qid": "q7"}, {"label": "1"})]  # fmt: skip
    data = "question\tresponse\tinstruction\nq\td\tJudge it\n"  # the header was scored as a pair
    assert list(formats.read_pairs([write(tmp_path, "p", data)])) == [formats.PairRecord("q", "d", "Judge it")]
    with pytest.raises(InputError, match=r"/p:3: expected the header's 3 columns, found 2 fields$"):
        list(formats.read_pairs([write(tmp_path, "p", "query\tdocument\tlabel\nq\td\t1\nq\td\n")]))
    # two columns of queries, a name twice, a name of two words: no header
    assert list(formats.read_pairs([write(tmp_path, "p", "query\tquestion\n")])) == [
        formats.PairRecord("query", "question")]  # fmt: skip
    for data in ("query\tdocument\tdocument\nq\td\te\n", "query\tdocument\tmy label\n"):
        with pytest.raises(InputError, match="/p:1: 3 tab-separated fields"):
            list(formats.read_pairs([write(tmp_path, "p", data)]))


def test_tsv_quoted_as_csv_writers_quote_is_said(tmp_path, caplog):
    """Excel, pandas and Python's csv quote a field holding quotes (doubling them), tabs or line breaks: qrr reads
    TSV as MS MARCO's files are (quotes are text), so it says where a field looks quoted, once a file."""
    data = 'q1\t"He said ""hi"" to me"\nq2\t"a ""b"""\nq3\t"just quoted"\n'
    with caplog.at_level("WARNING", logger="qrr"):
        pairs = list(formats.read_pairs(write(tmp_path, "p.tsv", data)))
        docs = list(formats.read_documents(write(tmp_path, "d.tsv", 'id\ttext\nd1\t"x ""y"""\n'), "tsv"))
    assert [p.document for p in pairs] == ['"He said ""hi"" to me"', '"a ""b"""', '"just quoted"']  # read as written
    assert docs == [formats.DocRecord('"x ""y"""', "d1")]
    said = ("a field in quotes with its quotes doubled, as CSV writers quote one; TSV is read as MS MARCO's files are, "
            "quotes and all (from pandas, df.to_json(PATH, orient='records', lines=True) writes JSON lines, read as "
            "written)")  # fmt: skip
    assert [r.getMessage().removeprefix(f"{tmp_path}/") for r in caplog.records] == [f"p.tsv:1: {said}",
                                                                                     f"d.tsv:2: {said}"]  # fmt: skip
    caplog.clear()
    with caplog.at_level("WARNING", logger="qrr"):  # quotes around a text, or inside it alone: nothing said
        assert len(list(formats.read_pairs(write(tmp_path, "p.tsv", 'q\t"Quoted"\nq\tHe said "hi"\n')))) == 2
    assert caplog.records == []
    # a quoted field holding a line break splits the record: the line that is left says why it may be
    hint = (r" \(a field in quotes holding a tab or a line break, as CSV writers quote one\? TSV is read without "
            r"quoting: give JSON lines\)$")  # fmt: skip
    with pytest.raises(InputError, match=r"/p.tsv:2: expected query<TAB>document \(or a JSON object\)" + hint):
        list(formats.read_pairs(write(tmp_path, "p.tsv", 'q\t"first\nsecond"\n')))
    with pytest.raises(InputError, match=r"/d.tsv:3: expected the header's 2 columns, found 1 field" + hint):
        list(formats.read_documents(write(tmp_path, "d.tsv", 'id\ttext\nd1\t"first\nsecond"\n'), "tsv"))


@pytest.mark.parametrize(
    "data, texts",
    [
        ('"Gravity," she said.\nApples fall.\n', ['"Gravity," she said.', "Apples fall."]),  # prose, not JSON
        ("[1] Newton, Principia.\n[2] Hooke.\n", ["[1] Newton, Principia.", "[2] Hooke."]),
        ('"a JSON string line"\n{"text": "an object"}\n', ["a JSON string line", "an object"]),
        ('[\n  "a",\n  {"text": "b"}\n]\n', ["a", "b"]),
        ('[{"text": "a"},\n "b"]\n', ["a", "b"]),
        ('["a", "b"]\n', ["a", "b"]),
        ("[]\n", []),
    ],
)
def test_documents_auto_format_reads_the_first_line(tmp_path, data, texts):
    assert [r.text for r in formats.read_documents([write(tmp_path, "d", data)])] == texts


def test_documents_as_tsv_lines_of_id_and_text(tmp_path):
    plain = write(tmp_path, "c.tsv", "7\tBeijing is the capital.\n\n008\tParis.\n")
    assert list(formats.read_documents(plain, "tsv")) == [formats.DocRecord("Beijing is the capital.", "7"),
                                                          formats.DocRecord("Paris.", "008")]  # fmt: skip
    dpr = write(tmp_path, "p.tsv", "id\ttext\ttitle\n1\tis the capital.\tBeijing\n")  # DPR's: a title, joined
    assert list(formats.read_documents(dpr, "tsv")) == [formats.DocRecord("Beijing is the capital.", "1")]
    with pytest.raises(InputError, match=r"c2.tsv:1: expected id<TAB>text"):
        list(formats.read_documents(write(tmp_path, "c2.tsv", "no tab here\n"), "tsv"))
    # a header in another order, with a column of its own: read by name, the column kept (rank --with-fields)
    swapped = write(tmp_path, "s.tsv", "Text\tDocID\turl\nBeijing is the capital.\td1\thttp://x\n")
    assert list(formats.read_documents(swapped, "tsv")) == [
        formats.DocRecord("Beijing is the capital.", "d1", {"url": "http://x"})]  # fmt: skip
    assert formats.read_corpus(swapped) == {"d1": "Beijing is the capital."}
    both = write(tmp_path, "b.tsv", "id\tpassage\ttext\n1\tp\tt\n")  # the text column is "text", where one is
    assert list(formats.read_documents(both, "tsv")) == [formats.DocRecord("t", "1", {"passage": "p"})]
    with pytest.raises(InputError, match=r"/t.tsv:1: the header names no text column"):
        list(formats.read_documents(write(tmp_path, "t.tsv", "title\tid\nB\t1\n"), "tsv"))
    # any id's name: a header of passage_id was read as a document, ranked among the others
    for name in ("passage_id", "document_id", "corpus_id", "topic_id", "docId", "uuid"):
        named = write(tmp_path, "n.tsv", f"{name}\ttext\np1\tgravity\np2\tcats\n")
        assert list(formats.read_documents(named, "tsv")) == [formats.DocRecord("gravity", "p1"),
                                                              formats.DocRecord("cats", "p2")]  # fmt: skip
        assert list(formats.read_documents(named)) == list(formats.read_documents(named, "tsv"))  # auto: the same
    assert [d.text for d in formats.read_documents(write(tmp_path, "v.tsv", "valid\ttext\n"), "tsv")] == ["text"]
    # beside an id of the usual names, another id's column is a field of the document's
    more = write(tmp_path, "m.tsv", "id\ttext\ttitle\tauthor_id\np1\tgravity\tT\ta9\n")
    assert list(formats.read_documents(more)) == [formats.DocRecord("T gravity", "p1", {"author_id": "a9"})]
    more = write(tmp_path, "m.tsv", "docid\ttext\tparent_id\np1\tgravity\ta9\n")
    assert list(formats.read_documents(more)) == [formats.DocRecord("gravity", "p1", {"parent_id": "a9"})]
    # a pairs file's header, whatever its id's name, is refused as one: it was ranked as documents, each query a text
    with pytest.raises(InputError, match="its first line names a query and a document column, as pairs' TSV does"):
        list(formats.read_documents(write(tmp_path, "pairs.tsv", "pair_id\tquery\tdocument\n1\tq\td\n")))


def test_documents_name_their_id_as_their_input_does(tmp_path, caplog):
    """A document without "id" takes BEIR's "_id", else its one id field ("doc_id", "docid", "pid"; not a query's,
    "qid"), which stays among its fields too (--with-fields copies it as the input named it): qrr rank dropped them,
    unsaid, where qrr score kept them. With several, none is taken, and that is said once a file."""
    data = ('{"doc_id": "a", "text": "one"}\n{"pid": 7, "text": "two", "n": 1}\n{"_id": "c", "docid": "x", "text": '
            '"three"}\n{"docid": "d", "qid": "q", "text": "four"}\n{"docid": "e", "pid": "p", "text": "five"}\n'
            '{"docid": "f", "pid": "p", "text": "six"}\n{"qid": "q", "text": "seven"}\n')  # fmt: skip
    with caplog.at_level("WARNING", logger="qrr"):
        docs = list(formats.read_documents(write(tmp_path, "d.jsonl", data)))
    assert docs == [formats.DocRecord("one", "a", {"doc_id": "a"}), formats.DocRecord("two", 7, {"pid": 7, "n": 1}),
                    formats.DocRecord("three", "c", {"docid": "x"}),
                    formats.DocRecord("four", "d", {"docid": "d", "qid": "q"}),
                    formats.DocRecord("five", None, {"docid": "e", "pid": "p"}),
                    formats.DocRecord("six", None, {"docid": "f", "pid": "p"}),
                    formats.DocRecord("seven", None, {"qid": "q"})]  # fmt: skip
    assert [r.getMessage().removeprefix(f"{tmp_path}/") for r in caplog.records] == [
        'd.jsonl:5: no "id" field, and several others that are ids (docid, pid): none is taken as the document\'s; '
        "name it with id_field"]  # fmt: skip
    assert list(formats.read_documents(write(tmp_path, "d.jsonl", data), id_field="pid"))[4].id == "p"


def test_exports_of_other_tools_are_read_or_said(tmp_path, caplog):
    """What Windows tools, Excel and other tools' exports write: a doubled BOM, CRLF after a CR, a first line of
    the tool's own, pretty-printed JSON, lines that end in CR alone, a JSON array with a bad item far down."""
    doubled = write(tmp_path, "b.jsonl", b'\xef\xbb\xbf\xef\xbb\xbf{"id": "a", "text": "one"}\r\r\n')
    assert list(formats.read_documents(doubled)) == [formats.DocRecord("one", "a")]
    assert list(formats.read_pairs(write(tmp_path, "p.tsv", "q\td\r\r\n"))) == [formats.PairRecord("q", "d")]
    export = 'Exported 2 rows\n{"id": "a", "text": "one"}\n'
    for name in ("e.jsonl", "e.json", "e.ndjson"):  # its name says JSON: the first line is bad JSON, not a document
        with pytest.raises(InputError, match=rf"/{name}:1: malformed JSON \(.*\) \(if the input is plain text, use "
                                             r"input_format text\)$"):  # fmt: skip
            list(formats.read_documents(write(tmp_path, name, export)))
    with pytest.raises(InputError, match=r"/e.jsonl:1: malformed JSON .* query<TAB>document lines"):
        list(formats.read_pairs(write(tmp_path, "e.jsonl", 'Exported\n{"query": "q", "document": "d"}\n')))
    with caplog.at_level("WARNING", logger="qrr"):  # by another name, it is text: said where the next line is JSON
        docs = list(formats.read_documents(write(tmp_path, "e.txt", export)))
    assert [d.text for d in docs] == ["Exported 2 rows", '{"id": "a", "text": "one"}']
    assert [r.getMessage().removeprefix(f"{tmp_path}/") for r in caplog.records] == [
        "e.txt: its first line is no JSON but its next is a JSON object; each line is read whole, as a document's "
        "text (input_format jsonl reads JSON lines, and says where one is not)"]  # fmt: skip
    pretty = write(tmp_path, "o.json", '{\r\n  "id": "a",\r\n  "text": "one"\r\n}\r\n')  # ConvertTo-Json's
    said = (
        r"/o.json:1: malformed JSON \(the line ends inside its value: cut short, or JSON spread over lines, "
        r"pretty-printed, which jq -c . makes JSON lines\) \(if the input is plain text, use input_format text\)$"
    )
    with pytest.raises(InputError, match=said):
        list(formats.read_documents(pretty))
    mac = write(tmp_path, "m.txt", "Beijing.\rParis.\rRome.\r")
    for read in (formats.read_documents, formats.read_pairs):
        with pytest.raises(errors.SourceError, match=r"/m.txt: its lines end in CR alone \(classic Mac OS, Excel for "
                                                     r"Mac\); qrr reads lines that end in LF or CRLF: convert it "
                                                     r"first, with tr '\\r' '\\n'$"):  # fmt: skip
            list(read(mac))
    items = "[\n" + '{"text": "ok"},\n' * 5 + '{"text" "x"}\n]\n'
    with pytest.raises(InputError, match=r"/a.json:7: malformed JSON \(unexpected character, expected ':' after key\) "
                                         r"in the file's JSON array \(if the input is plain text, use input_format "
                                         r"text\)$"):  # fmt: skip
        list(formats.read_documents(write(tmp_path, "a.json", items)))
    with pytest.raises(InputError, match=r"/a2.json:2: text after the end of the JSON array the file opens with \(a "
                                         r"file holds one JSON array, or one JSON value a line\) \(if the input is "
                                         r"plain text, use input_format text\)$"):  # fmt: skip
        list(formats.read_documents(write(tmp_path, "a2.json", '["d1", "Beijing"]\n["d2", "Paris"]\n')))
    with pytest.raises(InputError, match=r"/o.jsonl:2: text after the end of the JSON value the file opens with "):
        list(formats.read_documents(write(tmp_path, "o.jsonl", '{"text": "a"}\n{"text": "b"}\n'), input_format="json"))


def test_pairs_auto_format_reads_the_first_line(tmp_path):
    # a TSV line that opens with [ is TSV; JSON that fails to parse says how to read it as TSV
    assert list(formats.read_pairs([write(tmp_path, "p", "[citation needed]\tdoc\n")])) == [
        formats.PairRecord("[citation needed]", "doc")]  # fmt: skip
    assert list(formats.read_pairs([write(tmp_path, "p", '["a" "b"]\tdoc\n')])) == [
        formats.PairRecord('["a" "b"]', "doc")
    ]
    with pytest.raises(InputError, match=r"/p:1: malformed JSON \(.*\) \(if the input is query<TAB>document lines, "
                                         r"use input_format tsv\)$") as caught:  # fmt: skip
        list(formats.read_pairs([write(tmp_path, "p", "{oops\tdoc\n")]))
    assert caught.value.params == ("input_format",)
    with pytest.raises(InputError, match=r"/p:1: malformed JSON \([^)]*\)$"):  # no hint where the format was given
        list(formats.read_pairs([write(tmp_path, "p", "{oops\n")], input_format="jsonl"))


def test_pairs_as_arrays_as_crossencoder_takes_them(tmp_path):
    # JSON lines of [query, document] (and an instruction): read as JSON lines, not as a malformed JSON array
    data = '["q", "d"]\n\n["q2", "d2", "Judge it"]\n'
    assert list(formats.read_pairs([write(tmp_path, "p", data)])) == [
        formats.PairRecord("q", "d"), formats.PairRecord("q2", "d2", "Judge it")]  # fmt: skip
    assert list(formats.read_pairs([write(tmp_path, "p", '[["q", "d"], ["q2", "d2"]]\n')])) == [
        formats.PairRecord("q", "d"), formats.PairRecord("q2", "d2")]  # fmt: skip
    assert [r.text for r in formats.read_documents([write(tmp_path, "d", '["a", "b"]\n')])] == ["a", "b"]  # one array
    assert list(formats.read_pairs([write(tmp_path, "p", '["q", "d"]\n\n')])) == [formats.PairRecord("q", "d")]
    # a bad line after a one-line array is said where it is
    with pytest.raises(InputError, match=r"/p:2: invalid UTF-8"):
        list(formats.read_pairs([write(tmp_path, "p", b'[{"query": "q", "document": "d"}]\n\xff\n')]))
    # after a [query, document] line, a bad line is one of the JSON lines, skipped alone (it spoilt the whole file)
    bad = []
    lines = b'["q", "d1"]\n["q", "caf\xe9"]\n["q", "d3"]\n'
    pairs = formats.read_pairs([write(tmp_path, "p", lines)], on_error=bad.append)
    assert [p.document for p in pairs] == ["d1", "d3"]
    assert [str(e).partition(" (")[0] for e in bad] == [f"{tmp_path}/p:2: invalid UTF-8 at byte 11 of the line"]
    for bad, said in (('["q", 3]\n["q", "d"]\n', "an array of a string, a number"),
                      ('["q"]\n["q", "d"]\n', "an array of 1 item")):  # fmt: skip
        with pytest.raises(InputError) as caught:
            list(formats.read_pairs([write(tmp_path, "p", bad)]))
        assert str(caught.value) == (f'{tmp_path}/p:1: expected an object with "query" and "document", or a [query, '
                                     f"document] array, found {said}")  # fmt: skip


def test_id_fields():
    ids = ["id", "ID", "Id", "qid", "docid", "pid", "uuid", "topicid", "doc_id", "query_id", "_id", "docId",
           "passageID", "corpus-id"]  # fmt: skip
    others = ["valid", "paid", "VALID", "squid", "text", "idea", "identity", "i"]
    assert [k for k in ids + others if formats.is_id_field(k)] == ids


def test_invalid_utf8_names_line_and_byte(tmp_path):
    f = write(tmp_path, "p", b"q\td\nq\t\xffd\n")
    with pytest.raises(InputError, match=r"p:2: invalid UTF-8 at byte 3 of the line"):  # from 1, as lines
        list(formats.read_pairs([f]))


def test_a_line_in_another_encoding_names_the_encodings_it_reads_in(tmp_path):
    # latin1 was advised, which converts any bytes: a GBK file became nonsense, exit 0
    for text, encoding, said in (
        ("首都\t北京是中国的首都。", "gbk",
         "Chinese (GBK) or traditional Chinese (Big5) text: convert it with iconv -f gb18030 (or big5)"),
        ("首都\t東京は日本の首都です", "cp932", "Japanese (Shift-JIS) text: convert it with iconv -f cp932"),
        ("q\tStraße über München", "cp1252", "Western European (Windows) text: convert it with iconv -f cp1252"),
        ("q\tМосква столица России", "cp1251", "Cyrillic (Windows) text: convert it with iconv -f cp1251"),
    ):  # fmt: skip
        with pytest.raises(InputError) as caught:
            list(formats.read_pairs([write(tmp_path, "p", (text + "\n").encode(encoding))]))
        assert str(caught.value).endswith(f"(qrr reads UTF-8; it may be {said} -t utf-8, and look at the result)")
    with pytest.raises(InputError) as caught:  # bytes that read as no language
        list(formats.read_pairs([write(tmp_path, "p", b"q\t\x80\x98\x81\n")]))
    assert str(caught.value).endswith("(qrr reads UTF-8; convert it from its encoding first, with iconv -f ENCODING -t "
                                      "utf-8 (file -i may tell which))")  # fmt: skip
    # UTF-8 with a character cut (a tool that cuts at a byte count): converting it from GBK spoiled the whole file
    cut = "q\t北京是中国的首都".encode()[:-1] + b"\n"
    with pytest.raises(InputError) as caught:
        list(formats.read_pairs([write(tmp_path, "p", b"q\td\n" + cut)]))
    assert str(caught.value).endswith(":2: invalid UTF-8 at byte 24 of the line (qrr reads UTF-8; it is UTF-8 but for "
                                      "the bytes at 24 (a character cut, or a stray byte?): iconv -f utf-8 -t utf-8 -c "
                                      "drops such bytes)")  # fmt: skip


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(formats.read_pairs([str(tmp_path / "nope")]))
    with pytest.raises(InputError, match=f"^{re.escape(str(tmp_path))}: a folder, not a file; give the files in it$"):
        list(formats.read_documents([str(tmp_path)]))


def test_documents_in_every_format(tmp_path):
    jsonl = write(tmp_path, "d.jsonl", '{"id": "a", "text": "A"}\n"just a string"\n{"text": "C"}\n')
    assert list(formats.read_documents([jsonl])) == [formats.DocRecord("A", "a"), formats.DocRecord("just a string"),
                                                formats.DocRecord("C")]  # fmt: skip
    arr = write(tmp_path, "d.json", '  [{"id": 1, "text": "A"}, "B"]')
    assert list(formats.read_documents([arr])) == [formats.DocRecord("A", 1), formats.DocRecord("B")]
    text = write(tmp_path, "d.txt", "first doc\r\n\n  second doc  \n")
    assert list(formats.read_documents([text])) == [formats.DocRecord("first doc"), formats.DocRecord("  second doc  ")]


def test_document_field_mapping_and_forced_format(tmp_path):
    f = write(tmp_path, "d.jsonl", '{"_id": "x", "body": "B"}\n')
    assert list(formats.read_documents([f], text_field="body", id_field="_id")) == [formats.DocRecord("B", "x")]
    # the default id field takes BEIR's _id where there is no id
    beir = write(tmp_path, "corpus.jsonl", '{"_id": "x", "text": "A"}\n{"_id": "y", "id": 3, "text": "B"}\n')
    assert list(formats.read_documents([beir])) == [
        formats.DocRecord("A", "x"),
        formats.DocRecord("B", 3, {"_id": "y"}),
    ]
    # an "id" of null gives way to "_id", which is then no other field either; a DocRecord hashes as before
    nulled = write(tmp_path, "nulled.jsonl", '{"_id": "x", "id": null, "text": "A", "url": "u"}\n')
    assert list(formats.read_documents([nulled])) == [formats.DocRecord("A", "x", {"url": "u"})]
    assert hash(formats.DocRecord("A", "x", {"url": "u"})) == hash(formats.DocRecord("A", "x"))
    assert list(formats.read_documents([beir], id_field="doc")) == [
        formats.DocRecord("A", None, {"_id": "x"}),
        formats.DocRecord("B", None, {"_id": "y", "id": 3}),
    ]  # the fields not read as the text or the id are the record's other fields
    # a record's title joins its text, as rerank's --corpus reads it (a record with "id" too: rerank joined it, rank
    # did not, so the two scored one corpus otherwise); not where the text field is another
    lines = ['{"_id": "x", "title": "T", "text": "A"}', '{"_id": "y", "title": "", "text": "B"}',
             '{"id": "z", "title": "T", "text": "C"}', '{"_id": "w", "title": "T", "body": "D"}']  # fmt: skip
    titled = write(tmp_path, "titled.jsonl", "\n".join(lines))
    skip = lambda e: None  # noqa: E731
    expected = [formats.DocRecord("T A", "x"), formats.DocRecord("B", "y"), formats.DocRecord("T C", "z")]
    assert list(formats.read_documents([titled], on_error=skip)) == expected
    pyserini = write(tmp_path, "ids.jsonl", '{"id": "z", "title": "T", "text": "C"}\n')
    assert {d.id: d.text for d in formats.read_documents([pyserini])} == formats.read_corpus(pyserini) == {"z": "T C"}
    # a title that is no string is another field, as before (a title joined was refused then)
    listed = write(tmp_path, "listed.jsonl", '{"id": "d2", "title": ["Beijing"], "text": "t"}\n')
    assert list(formats.read_documents([listed])) == [formats.DocRecord("t", "d2", {"title": ["Beijing"]})]
    # a title not joined (the text in another field) is another field
    assert list(formats.read_documents([titled], text_field="body", on_error=skip)) == [
        formats.DocRecord("D", "w", {"title": "T"})
    ]
    beir = write(tmp_path, "corpus.jsonl", '{"_id": "x", "title": "T", "text": "A"}\n{"_id": "y", "text": "B"}\n')
    assert {d.id: d.text for d in formats.read_documents([beir])} == formats.read_corpus(beir) == {"x": "T A", "y": "B"}
    with pytest.raises(InputError, match='d.jsonl:1: missing field "text"; the object\'s text is in "body": name one '):
        list(formats.read_documents([f]))
    assert list(formats.read_documents([f], input_format="text")) == [formats.DocRecord('{"_id": "x", "body": "B"}')]
    # a request's body given as documents: its query is no document's text (following a hint to it ranked the query)
    body = write(tmp_path, "body.jsonl", '{"query": "q", "documents": ["a", "b"], "top_n": 1}\n')
    with pytest.raises(InputError) as caught:
        list(formats.read_documents([body]))
    assert str(caught.value) == (f'{body}:1: missing field "text"; the object holds its documents in the array '
                                 '"documents" (a request body?), and qrr rank reads a document a line: jq -c '
                                 "'.documents[]' gives them so")  # fmt: skip
    for data, hint in (('{"id": "1", "abstract": "t", "authors": ["A. Smith"]}', "the object's text is in "
                        '"abstract": name one with text_field'),  # an array of authors is no document
                       ('{"pos": ["a"], "neg": ["b"], "doc_ids": ["1"]}', 'the object holds its documents in the '
                        "arrays \"pos\", \"neg\", and qrr rank reads a document a line: jq -c '(.pos + .neg)[]' gives "
                        "them so"),
                       ('{"model": "m", "query": "q", "documents": ["a"]}', 'the object holds its documents in the '
                        "array \"documents\" (a request body?), and qrr rank reads a document a line: jq -c "
                        "'.documents[]' gives them so")):  # fmt: skip
        with pytest.raises(InputError) as caught:
            list(formats.read_documents([write(tmp_path, "a.jsonl", data + "\n")]))
        assert str(caught.value).endswith(f'missing field "text"; {hint}')
    with pytest.raises(InputError) as caught:
        list(formats.read_documents([write(tmp_path, "q.jsonl", '{"query": "q", "title": "t"}\n')]))
    assert str(caught.value).endswith(
        'missing field "text"; the object\'s text is in "title": name one with text_field'
    )
    # a pair, as qrr score reads it: its id is no text to name (it named "document", "docid")
    with pytest.raises(InputError) as caught:
        list(formats.read_documents([write(tmp_path, "p.jsonl", '{"query": "q", "document": "d", "docid": "1"}\n')]))
    assert str(caught.value).endswith(
        'missing field "text"; the object\'s text is in "document": name one with '
        "text_field; a query and its document: qrr score without query scores such pairs"
    )


def test_a_file_named_csv_is_refused_whole_unless_its_format_is_given(tmp_path):
    """`qrr rank -q x docs.csv` ranked its header "id,text" as a document, and each line whole, unsaid."""
    from qrr.errors import SourceError

    docs = write(tmp_path, "d.csv", "id,text\n1,Beijing\n")
    pairs = write(tmp_path, "p.CSV.gz", gzip.compress(b"query,document\nq,d\n"))
    pandas = "give JSON lines, for example pandas.read_csv(FILE).to_json(OUT, orient='records', lines=True), or"
    for read, path, said in (
        (formats.read_documents, docs, f"{docs}: CSV by its name, which qrr does not read (as text, each line would be "
                                       f"a document, the header too); {pandas} input_format text to read each line "
                                       "whole"),
        (formats.read_pairs, pairs, f"{pairs}: CSV by its name, which qrr does not read (as TSV, a line is a pair only "
                                    f"where a tab parts its query and document); {pandas} input_format tsv to read it "
                                    "as TSV"),
    ):  # fmt: skip
        with pytest.raises(SourceError) as caught:
            list(read([path]))
        assert str(caught.value) == said
        assert list(read([path], on_error=lambda error: None)) == []  # skipped whole
    # the format given, JSON in it, or tabs with no comma (a tool's TSV export so named): read so
    assert [d.text for d in formats.read_documents([docs], "text")] == ["id,text", "1,Beijing"]
    tabbed = write(tmp_path, "t.csv", "cat\tthe cat sat\n")
    assert list(formats.read_pairs([tabbed])) == [formats.PairRecord("cat", "the cat sat", where=f"{tabbed}:1")]
    assert [(d.id, d.text) for d in formats.read_documents([tabbed])] == [("cat", "the cat sat")]
    assert [d.text for d in formats.read_documents([write(tmp_path, "j.csv", '{"text": "t"}\n')])] == ["t"]


def test_text_that_looks_like_json_gets_a_hint(tmp_path):
    f = write(tmp_path, "d.txt", "{not json} but text\n")
    with pytest.raises(InputError, match=r"\(if the input is plain text, use input_format text\)$") as caught:
        list(formats.read_documents([f]))
    assert caught.value.params == ("input_format",)
    # once a line was a JSON object, the guess was right: a later bad line is only a bad line
    f = write(tmp_path, "d.jsonl", '{"text": "one"}\n{"text": "two\n')
    with pytest.raises(InputError, match=r"d.jsonl:2: malformed JSON \([^)]*\)$") as caught:
        list(formats.read_documents([f]))
    assert caught.value.params == ()


def test_bad_documents(tmp_path):
    with pytest.raises(InputError, match="d: item 0: expected an object"):
        list(formats.read_documents([write(tmp_path, "d", "[[1]]")]))
    with pytest.raises(InputError, match='field "text" must be a string, not a number'):
        list(formats.read_documents([write(tmp_path, "d", '{"text": 5}\n')]))


def test_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", stdio.TextIOWrapper(stdio.BytesIO(b"q\td\n")))
    assert list(formats.read_pairs([formats.STDIN])) == [formats.PairRecord("q", "d")]
    monkeypatch.setattr("sys.stdin", stdio.TextIOWrapper(stdio.BytesIO(b'{"query": 1}\n')))
    with pytest.raises(InputError, match="<stdin>:1"):
        list(formats.read_pairs([formats.STDIN]))


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="Linux: a file that opens and cannot be read")
def test_a_file_that_fails_while_it_is_read_is_named():
    with pytest.raises(QrrError, match=r"^/proc/self/mem: cannot read \(Input/output error\)$") as caught:
        list(formats.read_lines("/proc/self/mem"))  # was "OSError: [Errno 5] Input/output error", no file
    assert not isinstance(caught.value, InputError)  # the machine's trouble (exit 1), not the input's to mend


def test_stdin_closed_or_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr("sys.stdin", None)  # started with <&-
    with pytest.raises(InputError, match="^-: stdin is closed; give a FILE, or pipe the input on stdin$"):
        list(formats.read_pairs([formats.STDIN]))

    class Terminal(stdio.TextIOWrapper):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal(stdio.BytesIO(b"q\td\n")))
    with caplog.at_level("WARNING", logger="qrr"):
        assert list(formats.read_pairs([formats.STDIN])) == [formats.PairRecord("q", "d")]
    # asked for by name (`qrr score -`): it waited on the terminal without a word
    [said] = caplog.records
    assert (said.getMessage(), said.note) == ("reading the input from the terminal (end it with Ctrl-D)", True)


def written(fmt, *chunks):
    out = stdio.StringIO()
    writer = formats.RowWriter(fmt, out=out)
    for rows in chunks:
        writer.write(rows)
    writer.close()
    return out.getvalue()


def test_writers(caplog):
    rows = [{"index": 0, "id": "a", "score": 0.5}, {"index": 1, "score": 0.25, "text": "x\ty\nz"}]
    assert written("jsonl", rows[:1], rows[1:]) == (
        '{"index":0,"id":"a","score":0.5}\n{"index":1,"score":0.25,"text":"x\\ty\\nz"}\n'
    )
    # TSV columns are fixed by the first rows written; tabs and newlines in text are escaped
    assert written("tsv", rows) == "index\tid\tscore\ttext\n0\ta\t0.5\t\n1\t\t0.25\tx\\ty\\nz\n"
    assert written("tsv", rows[:1], rows[1:]) == "index\tid\tscore\n0\ta\t0.5\n1\t\t0.25\n"
    # a field that first comes in a later row of the first chunk takes its place among them (an id before score)
    assert written("tsv", [{"index": 0, "score": 0.5}, {"index": 1, "qid": "q", "score": 0.25}]) == (
        "index\tqid\tscore\n0\t\t0.5\n1\tq\t0.25\n"
    )
    # a field that first comes after the header is left out, with a warning for each new one
    caplog.clear()
    with caplog.at_level("WARNING", logger="qrr"):
        later = [{"index": 2, "qid": 1, "score": 0.5, "text": "t"}, {"index": 3, "score": 0.1, "text": "u"}]
        assert (
            written("tsv", rows[:1], rows[1:], later) == "index\tid\tscore\n0\ta\t0.5\n1\t\t0.25\n2\t\t0.5\n3\t\t0.1\n"
        )
    assert [r.getMessage() for r in caplog.records] == [
        "the 2nd result has a field the TSV header (from the first results) lacks: text; it is left out, here and "
        "after (fmt jsonl keeps every field)",
        "the 3rd result has a field the TSV header (from the first results) lacks: qid; it is left out, here and "
        "after (fmt jsonl keeps every field)",
    ]
    assert caplog.records[0].params == ("fmt",) and "{fmt} jsonl" in caplog.records[0].template
    # a JSON array streamed one element per line is still one JSON document
    assert json.loads(written("json", rows[:1], [], rows[1:])) == rows
    assert json.loads(written("json")) == []
    # field names as an input gave them (--with-fields): a tab or newline in one would break the header
    assert written("tsv", [{"a\tb": 1, "c\nd": 2}]).splitlines() == ["a\\tb\tc\\nd", "1\t2"]
    assert written("tsv", [{"t": "a\x00b"}]).splitlines() == ["t", "a\\0b"]  # a NUL from a JSON "\u0000"
    # a copied field nested past orjson's 254 levels (its reader takes 1,024): one line, the results before whole
    deep = {"a": 1}
    for _ in range(300):
        deep = {"x": deep}
    for fmt, before in (("jsonl", '{"index":0}\n'), ("json", '[\n  {"index":0}'), ("tsv", "index\tdeep\n0\t\n")):
        out = stdio.StringIO()
        with pytest.raises(InputError) as caught:
            formats.RowWriter(fmt, out=out).write([{"index": 0}, {"index": 1, "deep": deep}])
        assert str(caught.value) == "the 2nd result cannot be written: Recursion limit reached (a field nested more " \
                                    "than 254 levels deep)"  # fmt: skip
        assert out.getvalue() == before
    assert written("jsonl") == "" and written("tsv") == ""


def test_row_contracts():
    records = [formats.PairRecord("q", "d", None, {"qid": "1"}), formats.PairRecord("q", "e")]
    assert formats.score_rows(records, [0.1, 0.2]) == [
        {"index": 0, "qid": "1", "score": 0.1},
        {"index": 1, "score": 0.2},
    ]
    records[1].other["label"] = 1
    assert formats.score_rows(records, [0.1, 0.2], start=5, with_fields=True) == [
        {"index": 5, "qid": "1", "score": 0.1},
        {"index": 6, "score": 0.2, "label": 1},
    ]
    # the records score_records passes through as given: a mapping's fields by name, none for a tuple
    plain = [{"query": "q", "document": "d", "qid": 1, "label": 0}, ("q", "d")]
    assert formats.score_rows(plain, [0.1, 0.2], with_fields=True) == [
        {"index": 0, "qid": 1, "score": 0.1, "label": 0},
        {"index": 1, "score": 0.2},
    ]
    records[1].other["score"] = 3
    with pytest.raises(InputError, match='^pair 6: its field "score" would take the place of the result\'s own with '
                                         "with_fields; rename it in the input$"):  # fmt: skip
        formats.score_rows(records, [0.1, 0.2], start=5, with_fields=True)
    ranked = [{"corpus_id": 2, "score": 0.9, "id": "x", "text": "T"}, {"corpus_id": 0, "score": 0.1, "id": None,
                                                                       "text": "U"}]  # fmt: skip
    assert formats.rank_rows(ranked) == [{"rank": 1, "index": 2, "score": 0.9, "id": "x"},
                                    {"rank": 2, "index": 0, "score": 0.1}]  # fmt: skip
    assert formats.rank_rows(ranked, with_text=True)[1]["text"] == "U"


def test_format_names_are_checked():
    with pytest.raises(InputError, match="^input_format csv: use one of auto, jsonl, json, tsv$") as caught:
        formats.read_pairs(["x"], input_format="csv")
    assert caught.value.params == ("input_format",)
    with pytest.raises(InputError, match="^fmt table: use one of jsonl, json, tsv$"):
        formats.RowWriter("table")
