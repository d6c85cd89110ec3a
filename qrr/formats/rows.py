"""Result rows and their writers: ``qrr score``'s and ``qrr rank``'s rows (ids, score, a record's other fields) and
``RowWriter`` (JSONL, JSON, TSV, a table's rows)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass

import orjson

from qrr.errors import InputError, warn
from qrr.formats.records import ROW_FORMATS, DocRecord, PairRecord, is_id_field

log = logging.getLogger("qrr")


def score_rows(records: list, scores: list[float], start: int | Sequence[int] = 0, with_fields: bool = False
               ) -> list[dict]:  # fmt: skip
    """The JSONL contract of ``qrr score``: ``index``, the input's id fields, ``score``, and with ``with_fields`` each
    record's other fields after them (a label, a first-stage rank); input order. ``records``: ``PairRecord``s, or
    the pairs ``pipelines.score_records`` passes through (a mapping's fields count by name). ``start`` is the input
    position of the first record (for streamed chunks), or of each record (a chunk that left some out). A record
    whose own field is named ``index`` or ``score`` raises ``InputError`` with ``with_fields``, rather than losing
    one of the two."""
    rows = []
    indexes = range(start, start + len(records)) if isinstance(start, int) else start
    for i, r, s in zip(indexes, records, scores, strict=True):
        ids, other = record_fields(r)
        row = {"index": i, **ids, "score": s}
        if with_fields:
            check_fields(r, i)
            row.update(other)
        rows.append(row)
    return rows


def named_fields(pair) -> Mapping | None:
    """A pair's fields by name where it has names: a mapping, a pandas row (``keys()``), a named tuple or a
    dataclass (``qrr.formats.PairRecord``) with a ``query`` field. ``None`` for a plain tuple or list, read by
    position."""
    if isinstance(pair, Mapping):
        return pair
    named = None
    if is_dataclass(pair) and not isinstance(pair, type):  # qrr.formats.PairRecord, or the caller's own
        named = {f.name: getattr(pair, f.name) for f in fields(pair)}
    elif hasattr(pair, "_asdict"):  # a named tuple
        named = pair._asdict()
    if named is not None:  # by name where it names a query, else by position
        return named if "query" in named else None
    if hasattr(pair, "keys") and hasattr(pair, "__getitem__") and not isinstance(pair, str | bytes | list | tuple):
        return {key: pair[key] for key in pair.keys()}  # noqa: SIM118 (a pandas row iterates its values)
    return None


def record_fields(record) -> tuple[dict, dict]:
    """A record's id fields and other fields: a ``PairRecord``'s or ``DocRecord``'s, a mapping's by their names (as
    ``pipelines.score_records`` passes records through as given), none for a tuple."""
    if isinstance(record, PairRecord | DocRecord):
        return getattr(record, "ids", {}), record.other
    named = named_fields(record)  # a DataFrame's row, a named tuple, a dataclass: dropped whole before
    if named is not None:
        ids = {k: v for k, v in named.items() if isinstance(k, str) and is_id_field(k)}
        return ids, {k: v for k, v in named.items() if k not in ids and k not in ("query", "document", "instruction")}
    return {}, {}


# the fields qrr score gives each result of its own (besides the input's id fields): a field added here is one that
# --with-fields cannot copy, and that a --resume check does not take for a copied one
SCORE_FIELDS = ("index", "score")


def check_fields(record: PairRecord | DocRecord, index: int, taken: Iterable[str] = SCORE_FIELDS) -> None:
    """Raise ``InputError`` where ``record`` (the input's ``index``-th) has a field that its result with its fields
    copied names itself (``taken``: a pair's ``index`` and ``score``; a document's ``rank_fields``)."""
    clash = [f'"{k}"' for k in taken if k in record_fields(record)[1]]
    if clash:
        noun = "document" if isinstance(record, DocRecord) else "pair"
        fields = f"field {clash[0]}" if len(clash) == 1 else f"fields {' and '.join(clash)}"
        place = record.where or f"{noun} {index}"  # in its file, where it was read from one
        raise InputError(f"{place}: its {fields} would take the place of the result's own with "
                         "{with_fields}; rename it in the input", "with_fields")  # fmt: skip


def rank_fields(record: DocRecord, with_text: bool = False) -> tuple[str, ...]:
    """The fields that ``rank_rows`` gives ``record``'s result of its own."""
    return ("rank", *SCORE_FIELDS) + ("id",) * (record.id is not None) + ("text",) * with_text


def rank_rows(ranked, with_text: bool = False) -> list[dict]:
    """The JSONL contract of ``qrr rank`` from ``Reranker.rank``'s results: ``rank`` (1-based), ``index`` (the
    document's input position), ``score``, ``id`` where the document had one, ``text`` with ``with_text``, and
    the document's other fields where a result carries them (``fields``: ``pipelines.rank_records(...,
    with_fields=True)``), but for one of the result's own names (``check_fields`` refuses such input first)."""
    rows = []
    for n, r in enumerate(ranked, 1):
        row = {"rank": n, "index": r["corpus_id"], "score": r["score"]}
        if r.get("id") is not None:
            row["id"] = r["id"]
        if with_text:
            row["text"] = r.get("text")
        row.update((k, v) for k, v in r.get("fields", {}).items() if k not in row)
        rows.append(row)
    return rows


def merged_order(rows: list[dict]) -> list[str]:
    """Every field of ``rows``, each one that first comes in a later row placed after the field it follows there:
    an id seen only from the 1,000th row on still comes before ``score``."""
    columns: list[str] = []
    for row in rows:
        at = 0
        for key in row:
            if key in columns:
                at = columns.index(key) + 1
            else:
                columns.insert(at, key)
                at += 1
    return columns


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _tsv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
                .replace("\0", "\\0"))  # fmt: skip
    return json_text(value)


def json_text(value) -> str:
    """``value`` as JSON; numpy's numbers and arrays, and what has ``isoformat`` (a pandas ``Timestamp``, a date), as
    their plain values: a DataFrame's fields carry them, and a run failed at its first write."""
    return orjson.dumps(value, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _writable(value) -> bool:
    try:
        json_text(value)
    except TypeError:
        return False
    return True


def _plain(value):
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values (NaT has an isoformat: "NaT")
        return None
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # a numpy array orjson leaves (of objects, strided)
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a numpy scalar of a kind orjson leaves (float16)
        return value.item()
    raise TypeError  # orjson says which type


class RowWriter:
    """Writes result rows as JSON lines, a JSON array or TSV as they come: each ``write`` ends in complete,
    flushed lines (a JSON array one element per line), so a reader downstream never sees half a result, nor does
    an interrupt where ``guard`` (a context manager factory) holds signals back while a ``write`` runs (a front
    end's: a Ctrl-C inside a blocked write cut a row short, and the count with it). ``close`` ends a JSON array;
    ``count`` is the rows written.

    TSV columns are those of the first rows written; a field that first comes later is left out, with a warning
    (logged once, to the ``qrr`` logger)."""

    def __init__(self, fmt: str, out=None):
        if fmt not in ROW_FORMATS:
            raise InputError(f"{{fmt}} {fmt}: use one of {', '.join(ROW_FORMATS)}", "fmt")
        self.fmt = fmt
        self.out = out
        self.columns: list[str] | None = None  # TSV: fixed by the first rows
        self.count = 0
        self.left_out: set[str] = set()

    guard = contextlib.nullcontext

    def write(self, rows: list[dict]) -> None:
        with self.guard():
            self._write_flushed(rows)

    def _write_flushed(self, rows: list[dict]) -> None:
        out = self.out or sys.stdout
        try:
            self._write(out, rows)
        except TypeError as exc:  # orjson's: a value nested past its 254 levels (a copied field), or no JSON type
            n = self.count + (self.fmt != "tsv")
            deep = " (a field nested more than 254 levels deep)" if "Recursion" in str(exc) else ""
            bad = next((k for row in rows for k, v in row.items() if not _writable(v)), None)
            field = f' (its field "{bad}": make it a string, number or list)' if bad else ""
            raise InputError(f"the {_ordinal(n)} result cannot be written: {exc}{deep or field}") from None
        finally:
            out.flush()  # the results before it are whole

    def _write(self, out, rows: list[dict]) -> None:
        if self.fmt == "json":
            for row in rows:
                out.write(("[\n  " if self.count == 0 else ",\n  ") + json_text(row))
                self.count += 1
        elif self.fmt == "tsv":
            if self.columns is None and rows:
                self.columns = merged_order(rows)
                out.write("\t".join(map(_tsv_cell, self.columns)) + "\n")  # field names as an input gave them
            for row in rows:
                self.count += 1
                if not row.keys() <= set(self.columns) | self.left_out:
                    self._leave_out(row)
                out.write("\t".join(_tsv_cell(row.get(c)) for c in self.columns) + "\n")
        else:
            for row in rows:
                out.write(json_text(row) + "\n")
                self.count += 1

    def _leave_out(self, row: dict) -> None:
        new = [k for k in row if k not in self.columns and k not in self.left_out]
        self.left_out.update(new)
        said = (f"the {_ordinal(self.count)} result has a field the TSV header (from the first results) lacks: "
                f"{', '.join(new)}; it is left out, here and after ({{fmt}} jsonl keeps every field)")  # fmt: skip
        warn(log, said, "fmt")

    def close(self, columns: tuple[str, ...] = ()) -> None:
        """End the output; where no row came, a JSON array is ``[]`` and TSV is the header of ``columns``, where
        given (an empty file reads as no table at all: ``pandas.errors.EmptyDataError``)."""
        out = self.out or sys.stdout
        if self.fmt == "json":
            out.write("[]\n" if self.count == 0 else "\n]\n")
            out.flush()
        elif self.fmt == "tsv" and self.columns is None and columns:
            out.write("\t".join(columns) + "\n")
            out.flush()
