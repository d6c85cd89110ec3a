"""Property-based tests of the readers: any bytes in, either a clean error or correct records out."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrr import formats
from qrr.errors import InputError

# Text a JSON line can carry: anything but surrogates (not UTF-8) and NUL (refused on purpose).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read(tmp_path, data: bytes, reader, **kwargs):
    path = tmp_path / "input"
    path.write_bytes(data)
    return list(reader([str(path)], **kwargs))


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes_give_records_or_one_clean_error(tmp_path, data):
    for reader in (formats.read_pairs, formats.read_documents):
        for fmt in ("auto", "jsonl", "json", "tsv" if reader is formats.read_pairs else "text"):
            try:
                records = read(tmp_path, data, reader, input_format=fmt)
            except InputError as exc:
                message = str(exc)
                assert message and "\n" not in message and "Traceback" not in message
                continue
            kind = formats.PairRecord if reader is formats.read_pairs else formats.DocRecord
            assert all(isinstance(r, kind) for r in records)
            for r in records:
                texts = (r.query, r.document) if kind is formats.PairRecord else (r.text,)
                assert all(isinstance(t, str) for t in texts)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_skipping_never_raises_on_lines(tmp_path, data):
    skipped = []
    try:
        records = read(tmp_path, data, formats.read_pairs, input_format="jsonl", on_error=skipped.append)
    except InputError:
        raise AssertionError("--on-error skip must not stop on a bad line") from None
    lines = [line for line in data.split(b"\n") if line.strip()]
    assert len(records) + len(skipped) <= len(lines)


# orjson reads integers beyond 64 bits as floats, so ids round-trip exactly within that range (JSON tools at large
# agree only up to 2**53; such ids belong in strings).
INT64 = st.integers(-(2**63), 2**64 - 1)


@SETTINGS
@given(pairs=st.lists(st.tuples(TEXT, TEXT, st.none() | TEXT, st.none() | INT64 | TEXT), max_size=8),
       crlf=st.booleans(), bom=st.booleans())  # fmt: skip
def test_jsonl_pairs_round_trip(tmp_path, pairs, crlf, bom):
    lines = []
    for query, document, instruction, pair_id in pairs:
        record = {"query": query, "document": document}
        if instruction is not None:
            record["instruction"] = instruction
        if pair_id is not None:
            record["id"] = pair_id
        lines.append(json.dumps(record, ensure_ascii=False))
    data = ("\ufeff" if bom else "") + "".join(line + ("\r\n" if crlf else "\n") for line in lines)
    records = read(tmp_path, data.encode(), formats.read_pairs, input_format="jsonl")
    assert [(r.query, r.document, r.instruction, r.ids.get("id")) for r in records] == [
        (q, d, i, pid) for q, d, i, pid in pairs
    ]


@SETTINGS
@given(docs=st.lists(TEXT.filter(lambda t: t.strip() and "\n" not in t and "\r" not in t), max_size=8))
def test_plain_text_documents_round_trip(tmp_path, docs):
    data = "".join(d + "\n" for d in docs).encode()
    records = read(tmp_path, data, formats.read_documents, input_format="text")
    assert [r.text for r in records] == docs
