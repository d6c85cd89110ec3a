"""First-stage runs and relevance judgments in the field's formats: reading them, and writing reranked runs.

- TREC run: ``qid Q0 docid rank score tag`` per line (or MS MARCO's ``qid<TAB>docid<TAB>rank``, its scores the ranks
  negated). TREC qrels: ``qid 0 docid relevance``.
- BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/SPLIT.tsv`` (``query-id<TAB>corpus-id<TAB>score`` after a header line).

A run is ``{qid: {docid: score}}`` and qrels are ``{qid: {docid: relevance}}``, the shapes pytrec_eval takes.
Readers name the file and line of a bad line; with ``on_error`` they hand it over and go on instead of raising.
Nothing here imports torch.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from qrr.errors import InputError, plural, warn
from qrr.formats.lines import label, path_of, read_lines
from qrr.formats.records import (
    ErrorSink,
    check_sink,
    json_records,
    json_type,
    named_plain,
    parse_json,
    raise_or_hand,
    sniffed,
    tabbed_csv,
    tsv_records,
)

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]

log = logging.getLogger("qrr")

TAG = "qrr"
RUN_FORMATS = ("trec", "jsonl")


def _fields(lines, name: str, on_error: ErrorSink, tabs: int = 0) -> Iterator[tuple[str, list[str], str]]:
    """(where, fields, the line) for each non-blank line: split on whitespace, or on tabs where that gives
    ``tabs`` fields, none blank (a TSV's ids may hold spaces)."""
    for number, text in lines:
        if isinstance(text, InputError):
            raise_or_hand(text, on_error)
        elif text.strip():
            tabbed = [f.strip() for f in text.split("\t")] if tabs else []
            yield f"{name}:{number}", tabbed if tabs and len(tabbed) == tabs and all(tabbed) else text.split(), text


def _spaces(text: str) -> str:
    """Where ``text`` holds whitespace other than ASCII's (U+3000, a no-break space), which splits fields as a space
    does here (Python's split; trec_eval's C reader splits on ASCII's alone) though it looks like none: said, for a
    wrong field count."""
    odd = next((c for c in text if c.isspace() and not c.isascii()), None)
    if odd is None:
        return ""
    import unicodedata

    return (f" (it holds U+{ord(odd):04X} {unicodedata.name(odd, 'a space')}, which separates fields as a space "
            "does: an id cannot hold it)")  # fmt: skip


def read_run(source: str | os.PathLike[str], on_error: ErrorSink = None) -> Run:
    """A run: a TREC run file, MS MARCO's ``qid<TAB>docid<TAB>rank`` lines (scored ``-rank``), or JSON lines with
    ``qid``, ``docid`` and ``score`` (qrr's own ``--format jsonl``; or a JSON array of them), told apart by the first
    line; ``-`` reads stdin and a ``.gz`` file is read compressed. Queries keep the order in which they first appear.
    A malformed line, a score that is not a number and a docid listed twice for one query are errors (with
    ``on_error``: handed over and skipped, the first listing kept)."""
    check_sink(on_error)
    source = path_of(source)
    lines = read_lines(source)
    kind, lines = sniffed(lines, "trec")
    json = kind in ("jsonl", "json")  # a JSON array of qrr's records too
    entries = _jsonl_run(source, lines, on_error, kind) if json else _trec_run(lines, label(source), on_error)
    run: Run = {}
    for where, qid, docid, score in entries:
        _add(run, qid, docid, score, f"{where}: document {docid} is listed twice for query {qid}", on_error)
    return run


def _add(table: dict, qid: str, docid: str, value, twice: str, on_error: ErrorSink) -> None:
    """Enter a run's score or a judgment; a second entry for the same query and document is an error (or,
    handed to ``on_error``, dropped: the first stays)."""
    entries = table.setdefault(qid, {})
    if docid in entries:
        raise_or_hand(InputError(twice), on_error)
    else:
        entries[docid] = value


def _trec_run(lines, name: str, on_error: ErrorSink):
    shape = None  # the first line's: TREC's six fields, or MS MARCO's three (qid, docid, rank)
    for where, fields, text in _fields(lines, name, on_error):
        shape = shape or (3 if len(fields) == 3 else 6)
        if len(fields) != shape:
            said = "'qid Q0 docid rank score tag'" if shape == 6 else "'qid<TAB>docid<TAB>rank' (MS MARCO's run)"
            raise_or_hand(InputError(f"{where}: expected {said}, found {plural(len(fields), 'field')}"
                                     f"{_spaces(text)}"), on_error)  # fmt: skip
            continue
        if shape == 3:  # ranks without scores: the rank, negated, is the score (best first, as a score is)
            rank = _whole(fields[2])
            if rank is None or rank < 1:
                raise_or_hand(InputError(f"{where}: rank {_quoted(fields[2])} is not a whole number from 1"), on_error)
                continue
            yield where, fields[0], fields[1], float(-rank)
            continue
        score = _number(fields[4])
        if score is None:
            said = "out of a float's range" if _out_of_range(fields[4]) else "not a number"
            raise_or_hand(InputError(f"{where}: score {_quoted(fields[4])} is {said}"), on_error)
            continue
        yield where, fields[0], fields[2], score


def _quoted(field: str) -> str:
    """A bad field as a message quotes it: its first 40 characters (a 10 MB field made a 10 MB "one line")."""
    return repr(field) if len(field) <= 40 else f"{field[:40]!r}... ({len(field):,} characters)"


def _jsonl_run(source: str, lines, on_error: ErrorSink, fmt: str = "jsonl"):
    for where, record in _json_objects(source, lines, on_error, fmt):
        try:
            qid, docid = _field(record, "qid", where), _field(record, "docid", where)
            score = record.get("score")
            if "score" not in record:
                raise InputError(f'{where}: missing field "score"')
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise InputError(f'{where}: field "score" must be a number, not {json_type(score)}')
        except InputError as exc:
            raise_or_hand(exc, on_error)
            continue
        yield where, qid, docid, float(score)


def _out_of_range(text: str) -> bool:
    """Whether ``text`` is a number written out (``1e400``) that no float holds."""
    if not text.isascii() or "_" in text or "inf" in text.lower():
        return False
    try:
        return math.isinf(float(text))
    except ValueError:
        return False


def _number(text: str) -> float | None:
    """A finite number as trec_eval reads one, else None: Python's ``float`` takes more (``1_0`` as 10, digits of
    other scripts), which trec_eval reads otherwise."""
    if not text.isascii() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_GRADE_NAMES = {"score", "rel", "relevance", "label", "grade", "judgment", "judgement"}


def read_qrels(source: str | os.PathLike[str], on_error: ErrorSink = None) -> Qrels:
    """Relevance judgments: TREC qrels (``qid iteration docid relevance``) or BEIR's TSV (``query-id``,
    ``corpus-id``, ``score``, with or without a header), told apart by the first line. Relevance is a whole
    number; a judgment given twice is an error (with ``on_error``: the first is kept), but where both give the same
    relevance: it is kept once, and a warning counts such lines."""
    check_sink(on_error)
    source = path_of(source)
    qrels: Qrels = {}
    kind = None
    repeated = []  # where a judgment is given again, alike
    for where, fields, text in _fields(read_lines(source), label(source), on_error, tabs=3):
        first = kind is None
        if kind is None:
            kind = "beir" if len(fields) == 3 else "trec"
            if kind == "beir" and fields[2].lower() in _GRADE_NAMES:
                continue  # a header: BEIR's "query-id corpus-id score", or another's ("qid docid rel")
        expected = 3 if kind == "beir" else 4
        if len(fields) != expected:
            shape = "query-id<TAB>corpus-id<TAB>score" if kind == "beir" else "'qid 0 docid relevance'"
            run = " (a run's line, not a judgment: is this the qrels file?)" if len(fields) == 6 else ""
            raise_or_hand(InputError(f"{where}: expected {shape}, found {plural(len(fields), 'field')}{run}"
                                     f"{_spaces(text)}"), on_error)  # fmt: skip
            continue
        qid, docid, grade = (fields[0], fields[1], fields[2]) if kind == "beir" else (fields[0], fields[2], fields[3])
        relevance = _whole(grade)
        if relevance is None:
            header = " (a header? BEIR's is query-id<TAB>corpus-id<TAB>score)" if kind == "beir" and first else ""
            raise_or_hand(InputError(f"{where}: relevance {_quoted(grade)} is not a whole number{header}"), on_error)
            continue
        if qrels.get(qid, {}).get(docid) == relevance:  # a file joined from parts that overlap: the same judgment
            repeated.append(where)
            continue
        _add(qrels, qid, docid, relevance, f"{where}: document {docid} is judged twice for query {qid}", on_error)
    if repeated:
        more = f" ({plural(len(repeated), 'such line')})" if len(repeated) > 1 else ""
        warn(log, f"{repeated[0]}: a judgment given again alike, kept once{more}")
    return qrels


def _whole(text: str) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value == int(value) else None


def _json_objects(source: str, lines, on_error: ErrorSink, fmt: str = "jsonl") -> Iterator[tuple[str, dict]]:
    """(where, object) for each JSON line (or item of a JSON array, ``fmt`` json); a bad line, or a value that is not
    an object, is raised or handed."""
    try:
        for where, record in json_records(source, lines, fmt):
            if isinstance(record, InputError):
                raise_or_hand(record, on_error)
            elif not isinstance(record, dict):
                raise_or_hand(InputError(f"{where}: expected an object, found {json_type(record)}"), on_error)
            else:
                yield where, record
    except InputError as exc:
        if fmt != "json" or on_error is None:
            raise
        raise_or_hand(exc, on_error)  # a bad line spoils a JSON array whole: skipped whole, as a file of no text is


def _field(record: dict, key: str, where: str, optional: bool = False) -> str:
    """A string field; an optional one that is missing or null is empty. Numeric ids come as their text."""
    value = record.get(key)
    if value is None and optional:
        return ""
    if key not in record:
        raise InputError(f'{where}: missing field "{key}"')
    ids = key in ("_id", "id", "qid", "docid")
    if isinstance(value, int) and not isinstance(value, bool) and ids:
        return str(value)  # a numeric id names the same document as its text does in a TREC run
    if not isinstance(value, str):
        raise InputError(f'{where}: field "{key}" must be a string, not {json_type(value)}')
    if not ids:
        return value
    # an id's spaces are no part of it, as in a TREC run (split on them) and a TSV line: "q1 " matched no "q1"
    if not value.strip():  # none at all: a TREC run of it would lose a field
        raise InputError(f'{where}: field "{key}" is blank ({value!r}): give the id')
    return value.strip()


# Field names read where BEIR's are missing: ``id`` (Pyserini, most JSONL), ``contents`` (Pyserini's corpora)
ID_FIELDS = ("_id", "id")
TEXT_FIELDS = ("text", "contents")


def read_corpus(
    source: str | os.PathLike[str], keep: set[str] | None = None, on_error: ErrorSink = None
) -> dict[str, str]:
    """A corpus as ``{docid: text}``: BEIR's JSONL (``_id``, ``title``, ``text``; ``id`` and ``contents`` as Pyserini
    writes them are read too; or a JSON array of such objects) or TSV lines ``docid<TAB>text`` (MS MARCO's
    collection.tsv), told apart by the first line. A title and text are joined with a space when the title is not
    empty. With ``keep``, only those documents are kept in memory, so a corpus of millions of passages costs only
    what a run needs. A document id given twice is an error."""
    check_sink(on_error)
    source = path_of(source)
    corpus: dict[str, str] = {}
    for where, record in _id_text_records(source, "docid", on_error):
        try:
            docid = _either(record, ID_FIELDS, where)
            if keep is not None and docid not in keep:
                continue
            title = _field(record, "title", where, optional=True)
            text = _either(record, TEXT_FIELDS, where)
            if docid in corpus:
                raise InputError(f"{where}: document {docid} appears twice in the corpus")
        except InputError as exc:
            raise_or_hand(exc, on_error)
            continue
        corpus[docid] = f"{title} {text}" if title else text
    return corpus


def read_queries(source: str | os.PathLike[str], on_error: ErrorSink = None) -> dict[str, str]:
    """Queries as ``{qid: text}``: BEIR's JSONL (``_id``, ``text``; or ``id``; or a JSON array of such objects) or TSV
    lines ``qid<TAB>text`` (MS MARCO), told apart by the first line. A query id given twice is an error."""
    check_sink(on_error)
    source = path_of(source)
    queries: dict[str, str] = {}
    for where, record in _id_text_records(source, "qid", on_error):
        try:
            qid, body = _either(record, ID_FIELDS, where), _either(record, TEXT_FIELDS[:1], where)
            if qid in queries:
                raise InputError(f"{where}: query {qid} appears twice")
        except InputError as exc:
            raise_or_hand(exc, on_error)
            continue
        queries[qid] = body
    return queries


def _id_text_records(source: str, id_name: str, on_error: ErrorSink) -> Iterator[tuple[str, dict]]:
    """(where, record) for each JSON line, or each TSV line ``id<TAB>text`` as ``{"_id", "text"}``, by the first
    line."""
    lines = read_lines(source)
    kind, lines = sniffed(lines, named_plain(source, "tsv"))
    if kind in ("jsonl", "json"):  # a JSON array of objects too, as qrr rank reads it
        return _json_objects(source, lines, on_error, kind)
    if kind == "csv":  # a tool's TSV so named is read; CSV is said to be, not each line as a bad TSV one
        kind, lines = tabbed_csv(source, lines, "tsv", f"as TSV, a line holds {id_name}<TAB>text")
    if kind == "csv":
        raise_or_hand(lines, on_error)
        return iter(())
    return _tsv_records(lines, label(source), f"{id_name}<TAB>text", on_error)


def _either(record: dict, keys: tuple[str, ...], where: str) -> str:
    """The first of ``keys`` that ``record`` has (``_field``), else the error names them all."""
    for key in keys:
        if key in record:
            return _field(record, key, where)
    names = " or ".join(f'"{k}"' for k in keys)
    raise InputError(f"{where}: missing field {names}")


def _tsv_records(lines, name: str, shape: str, on_error: ErrorSink) -> Iterator[tuple[str, dict]]:
    for where, record in tsv_records(lines, name, shape, " (or a JSON object)"):
        if isinstance(record, InputError):
            raise_or_hand(record, on_error)
        else:
            yield where, record


@dataclass(frozen=True)
class BeirFolder:
    """The files of a BEIR dataset folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``; each may
    also be gzipped)."""

    corpus: str
    queries: str
    qrels: str | None

    @classmethod
    def at(cls, folder: str | os.PathLike[str], split: str | None = "test") -> BeirFolder:
        """The folder's files, which must be there; ``split`` None: no qrels are needed (``qrels`` is None)."""
        root = Path(folder)
        if not root.is_dir():
            raise InputError(f"{folder}: no such folder (a BEIR dataset folder holds corpus.jsonl, queries.jsonl "
                             "and qrels/)")  # fmt: skip
        qrels = None if split is None else _one_of(root / "qrels", f"{split}.tsv", _splits)
        return cls(_one_of(root, "corpus.jsonl"), _one_of(root, "queries.jsonl"), qrels)


def _one_of(folder: Path, name: str, hint=None) -> str:
    """``folder/name``, gzipped or not; where neither is there, an error ending in ``hint(folder)``'s words."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return str(candidate)
    raise InputError(f"{folder / name}: no such file{hint(folder) if hint else ''}")


def _splits(qrels: Path) -> str:
    names = sorted({p.name.removesuffix(".gz").removesuffix(".tsv") for p in qrels.glob("*.tsv*")})
    return f" (the folder's splits: {', '.join(names)})" if names else ""


# --------------------------------------------------------------------------------------------------- writing


def format_results(qid: str, results: list[tuple[str, float]], fmt: str, tag: str = TAG) -> str:
    """One query's results as TREC run lines (``qid Q0 docid rank score tag``) or JSON lines (``qid``,
    ``docid``, ``rank``, ``score``), ranks from 1. Scores are written in full, so that no tie is invented (trec_eval
    still compares them in single precision)."""
    if fmt == "trec":
        return "".join(f"{qid} Q0 {d} {n} {s!r} {tag}\n" for n, (d, s) in enumerate(results, 1))
    return "".join(
        orjson.dumps({"qid": qid, "docid": d, "rank": n, "score": s}).decode() + "\n"
        for n, (d, s) in enumerate(results, 1)
    )


def output_format(path: str | os.PathLike[str]) -> str | None:
    """``trec`` or ``jsonl`` by the first line of an existing output, or None where it is missing or empty."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(1 << 16)  # not a crash's NULs, by the gigabyte
    except FileNotFoundError:
        return None
    return None if not first.strip() else ("jsonl" if first.lstrip().startswith(b"{") else "trec")


def result_line(raw: bytes, fmt: str, where: str) -> tuple[str, str, float]:
    """The query id, document id and score of one line of a reranked run (``trec`` or ``jsonl``); ``InputError``
    where the line is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where}: invalid UTF-8, so the file is not a run qrr wrote") from None
    if fmt == "jsonl":
        record = parse_json(text, where)
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("qid", "docid")):
            raise InputError(f'{where}: expected a JSON object with "qid" and "docid"; the file is not a jsonl run')
        qid, docid, score = record["qid"], record["docid"], record.get("score")
        score = score if isinstance(score, int | float) and not isinstance(score, bool) else None
    else:
        fields = text.split()
        if len(fields) != 6:
            raise InputError(f"{where}: expected 'qid Q0 docid rank score tag'; the file is not a TREC run")
        qid, docid, score = fields[0], fields[2], _number(fields[4])
    if score is None:
        raise InputError(f"{where}: the score is not a number; the file is not a run qrr wrote")
    return qid, docid, float(score)
