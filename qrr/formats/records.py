"""Pairs and documents: readers (JSONL, JSON, TSV, plain text; files or stdin, gzipped or not, as ``lines`` reads
them). Result rows and their writers are ``rows``'.

Readers raise ``InputError`` naming the source and line. Nothing here imports torch.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from qrr.errors import InputError, SourceError, json_type, plural, warn
from qrr.formats.lines import STDIN, Line, label, read_lines

log = logging.getLogger("qrr")

PAIR_FORMATS = ("auto", "jsonl", "json", "tsv")
DOC_FORMATS = ("auto", "jsonl", "json", "text", "tsv")
ROW_FORMATS = ("jsonl", "json", "tsv")


@dataclass(frozen=True)
class PairRecord:
    """One pair to score, with the input's id fields (``id``, ``qid``, ``doc_id``, ...) kept as they were, and
    its other fields in ``other`` (which a Ray stage passes through, and ``qrr score --with-fields`` copies);
    ``where`` is its file and line (``pairs.jsonl:7``), for messages, where it was read from one."""

    query: str
    document: str
    instruction: str | None = None
    ids: dict[str, Any] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    where: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DocRecord:
    """One document to rank, with its id when the input gave one, and a JSON record's other fields in ``other``
    (``qrr rank --with-fields`` copies them to its results)."""

    text: str
    id: Any = None
    other: dict[str, Any] = field(default_factory=dict, hash=False)  # hashed by text and id, as before it came
    where: str | None = field(default=None, compare=False, repr=False)  # its file and line, for messages


# Ids by name; other names count as ids where they end in "_id" (doc_id, _id) or "Id"/"ID" (docId, passageID)
ID_NAMES = set(
    "id qid pid did docid uid uuid guid queryid passageid corpusid documentid topicid chunkid textid pairid rowid "
    "recordid itemid sampleid questionid answerid articleid paragraphid sentenceid contextid entityid userid".split()
)


def is_id_field(key: str) -> bool:
    """Whether a field of an input record is an id, carried into the output: ``id``, common id names (``qid``,
    ``docid``, ``pid``, ``uuid``, ``topicid``: ``ID_NAMES``), names ending in ``_id`` (``doc_id``, BEIR's ``_id``)
    and camel-case ones ending in ``Id`` or ``ID`` (``docId``); not words such as ``valid`` or ``paid``."""
    if key.lower() in ID_NAMES or key.lower().endswith(("_id", "-id")):
        return True
    return len(key) > 2 and key[-2:] in ("Id", "ID") and key[-3].islower()


# ---------------------------------------------------------------------------------------------- reading


def sniffed(lines: Iterator[Line], plain: str, arrays: bool = False) -> tuple[str, Iterator[Line]]:
    """The format that the first good non-blank line says, ``plain`` where it is no JSON, and the lines, those
    read to find it included.

    A line opening with ``{`` is JSON lines even where it is malformed (the reader then says so). One opening with
    ``[`` is a JSON array where an element or the end follows, and one opening with ``"`` a JSON string line where
    it parses: prose such as ``"Gravity," she said`` or ``[1] Newton`` is plain. With ``arrays`` (pairs may be
    ``[query, document]``), an array closed on its line and followed by another line opening one is JSON lines:
    the next line is read to tell (from a producer that pauses, the first result waits for it)."""
    seen = []
    for number, text in lines:
        seen.append((number, text))
        if isinstance(text, str) and text.strip():
            guess = _guess(text.strip(), plain)
            if arrays and guess == "json" and text.rstrip().endswith("]"):
                for number, after in lines:
                    seen.append((number, after))
                    if not isinstance(after, str):  # a bad line after a [query, document] line: JSON lines, one bad
                        # (read as one array, it spoilt the whole file under --on-error skip)
                        guess = "jsonl" if _pair_array(_parses(text)) else guess
                        break
                    if after.strip():
                        guess = "jsonl" if after.lstrip().startswith("[") else guess
                        break
            return guess, itertools.chain(seen, lines)
    return plain, iter(seen)


def named_plain(source: str, plain: str) -> str:
    """What ``sniffed`` takes a first line that is no JSON for: JSON lines where the file's name says JSON
    (``*.jsonl``, ``*.ndjson``, ``*.json``, gzipped or not), so that a stray first line is said to be bad JSON
    rather than every line read as ``plain`` (a tool's export that opens with a line of its own); TSV where it says
    TSV (``collection.tsv``: read as text, each id and a header were scored as documents); ``csv`` where it says
    CSV, which no reader takes (``csv_named``); else ``plain``."""
    name = source.removesuffix(".gz").lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    return "tsv" if name.endswith(".tsv") else plain


def _first_fields(lines: Iterator[Line]) -> tuple[list[str] | None, Iterator[Line]]:
    """The tab-separated fields of the first non-blank line (``None`` where a bad line comes first, or none), and
    the lines, those read included."""
    seen = []
    for line in lines:
        seen.append(line)
        if not isinstance(line[1], str):
            break
        if line[1].strip():
            return line[1].rstrip("\r\n").split("\t"), itertools.chain(seen, lines)
    return None, itertools.chain(seen, lines)


def tabbed_csv(source: str, lines: Iterator[Line], read: str, what: str, then: str | None = None):
    """For a file named ``*.csv`` (``named_plain``): ``("tsv", lines)`` where its first line is tab-separated, with
    no comma (a tool's TSV export so named), else ``("csv", csv_named(...))``."""
    fields, lines = _first_fields(lines)
    if fields is not None and len(fields) > 1 and not any("," in field for field in fields):
        return "tsv", lines
    return "csv", csv_named(source, read, what, then)


def csv_named(source: str, read: str, what: str, then: str | None = None) -> SourceError:
    """The error for a file named ``*.csv`` whose first line is no JSON: read as ``read`` (text, tsv), ``what`` (it
    ranked the header "id,text" as a document, unsaid); ``then``: what ``--input-format read`` does, where the
    reader takes a format."""
    other = f"{{input_format}} {read} {then}" if then is not None else "TSV"
    return SourceError(f"{label(source)}: CSV by its name, which qrr does not read ({what}); give JSON lines, for "
                       f"example pandas.read_csv(FILE).to_json(OUT, orient='records', lines=True), or {other}",
                       "input_format")  # fmt: skip


def _guess(line: str, plain: str) -> str:
    if line.startswith("{"):
        return "jsonl"
    if line.startswith("["):
        # a TSV pair may open with a bracket ("[1] Newton<TAB>..."): a line with a tab is JSON only where it parses
        opens_array = line[1:].lstrip()[:1] in ("", "{", '"', "]") and not (plain == "tsv" and "\t" in line)
        if opens_array or _parses(line) is not None:
            return "json"
    if line.startswith('"') and plain == "text" and isinstance(_parses(line), str):
        return "jsonl"
    return plain


def _parses(line: str):
    """The JSON value of ``line``, or ``None`` where it is none."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def parse_json(text: str, where: str, hint: str = ""):
    """The JSON value of ``text``; where it is none, ``InputError`` at ``where`` (with ``hint``, another format to
    try)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        reason = _reason(exc)
        if reason == "unexpected end of data" and text.lstrip()[:1] in ("{", "["):  # its value goes on past the line
            raise InputError(f"{where}: malformed JSON (the line ends inside its value: cut short, or JSON spread "
                             f"over lines, pretty-printed, which jq -c . makes JSON lines){hint}",
                             *(("input_format",) if hint else ())) from None  # fmt: skip
        # a hint names the input_format parameter
        raise InputError(f"{where}: malformed JSON ({reason}){hint}", *(("input_format",) if hint else ())) from None


def _reason(exc: orjson.JSONDecodeError) -> str:
    """What the parser found wrong, without where (said as the file's line): "expected ':' after key" was cut at
    its colon."""
    return re.sub(r": line \d+ column \d+ \(char \d+\)$", "", exc.args[0])


def json_records(source: str, lines, fmt: str, hint: str = "", whole: Callable[[Any], bool] | None = None
                 ) -> Iterator[tuple[str, Any]]:  # fmt: skip
    """(where, value) for each JSON value of a JSONL stream or a JSON array; a bad line's value is its error, with
    ``hint`` (another format to try) until a line has been read as a JSON object (plain text may open with a line
    that is JSON, ``2024`` or ``"Hi"``, but hardly with an object). A JSON array for which ``whole`` is true is one
    value, not its items."""
    name = label(source)
    if fmt == "json":
        texts, numbers = [], []
        for number, text in lines:
            if isinstance(text, InputError):
                raise text  # one bad line spoils the whole array
            texts.append(text)
            numbers.append(number)
        try:
            joined = "\n".join(texts)
            value = orjson.loads(joined)
        except orjson.JSONDecodeError as exc:  # said at its line: the array may be long
            at = f"{name}:{numbers[min(exc.lineno, len(numbers)) - 1]}" if numbers else name
            params = ("input_format",) if hint else ()
            if _reason(exc) == "unexpected content after document":
                opens = "array" if joined.lstrip().startswith("[") else "value"  # JSON lines, told json
                raise InputError(f"{at}: text after the end of the JSON {opens} the file opens with (a file holds one "
                                 f"JSON array, or one JSON value a line){hint}", *params) from None  # fmt: skip
            raise InputError(f"{at}: malformed JSON ({_reason(exc)}) in the file's JSON array{hint}", *params) from None
        if not isinstance(value, list):
            raise InputError(f"{name}: expected a JSON array, found {json_type(value)}")
        if whole is not None and whole(value):
            yield name, value
            return
        for n, item in enumerate(value):
            yield f"{name}: item {n}", item
        return
    for number, text in lines:
        where = f"{name}:{number}"
        if isinstance(text, InputError):
            yield where, text
        elif text.strip():
            try:
                value = parse_json(text, where, hint)
            except InputError as exc:
                yield where, exc
                continue
            if isinstance(value, dict):
                hint = ""  # an object: the input is JSON lines, and a later bad line is only a bad line
            yield where, value


def _string(record: dict, key: str, where: str, optional: bool = False) -> str | None:
    if key not in record or (optional and record[key] is None):
        if optional:
            return None
        raise InputError(f'{where}: missing field "{key}"')
    value = record[key]
    if not isinstance(value, str):
        raise InputError(f'{where}: field "{key}" must be a string, not {json_type(value)}')
    return value


def _missing_named(record: dict, where: str) -> InputError | None:
    """A pair lacking "query" or "document" that has other fields: the error names them and how to rename one
    (``{"query": .., "passage": ..}`` holds its document under another name); ``None`` where it lacks neither,
    or has nothing else."""
    missing = next((k for k in ("query", "document") if k not in record), None)
    others = [k for k in record if k not in ("query", "document", "instruction") and not is_id_field(k)]
    if missing is None or not others:
        return None
    named = ", ".join(f'"{k}"' for k in others[:5]) + (", ..." if len(others) > 5 else "")
    strings = [k for k in others if isinstance(record[k], str)]
    if missing == "document":  # a body's model or a training line's prompt is no document
        strings = [k for k in strings if k not in METADATA]
    held = _held(record, others, strings) if missing == "document" else None
    if held:  # a request body, or FlagEmbedding's "pos" and "neg": one pair a document
        said, each, text = held
        return InputError(f'{where}: missing field "document" (the documents are in the {said}: one pair a '
                          f"document, with jq -c '{each}[] as $d | {{query, document: {text}}}')")  # fmt: skip
    if not strings:
        return None  # nothing to rename: numbers, arrays of them
    # a document's line (its texts all a document's: "question" beside "text" is a pair's query by another name)
    if missing == "query" and "document" not in record and all(k.lower() in _TEXT_HEADERS for k in strings):
        text = "text" if "text" in strings else strings[0]  # renamed, it was scored as its own query
        return InputError(f'{where}: missing field "query"; a document ("{text}") with no query: give {{query}} '
                          "QUERY to score each document against it (qrr rank ranks them)", "query")  # fmt: skip
    path = _jq_path(strings[0])
    return InputError(f'{where}: missing field "{missing}" (its other field{"s are" if len(others) > 1 else " is"} '
                      f"{named}: rename one with jq, say jq -c '.{missing} = {path} | del({path})')")  # fmt: skip


def _missing_text(record: dict, where: str, text_field: str, ids: tuple[str, ...]) -> InputError | None:
    """A document lacking ``text_field`` that holds its text elsewhere: the error names where (another field, or
    documents held in arrays, as a request's body holds them) and how to read it; ``None`` where it holds none."""
    # a query, instruction or model is no document's text (a request body holds them beside its documents)
    strings = [
        f'"{k}"'
        for k, v in record.items()
        if isinstance(v, str) and k not in ids and k not in METADATA and not is_id_field(k)
    ]
    held = _held(record, [k for k in record if not is_id_field(k)], strings)
    if held:
        said, each, _ = held
        body = " (a request body?)" if "query" in record and {"documents", "texts"} & set(record) else ""
        return InputError(f'{where}: missing field "{text_field}"; the object holds its documents in the {said}{body}, '
                          f"and qrr rank reads a document a line: jq -c '{each}[]' gives them so",
                          "text_field")  # fmt: skip
    # a pair: qrr rank -q x pairs.jsonl, or qrr score -q x pairs.jsonl (which reads documents)
    pair = "; a query and its document: qrr score without {query} scores such pairs"
    if strings:
        return InputError(f'{where}: missing field "{text_field}"; the object\'s text is in {", ".join(strings)}: '
                          f"name one with {{text_field}}{pair if {'query', 'document'} <= set(record) else ''}",
                          "text_field", "query")  # fmt: skip
    return None


def _jq_path(name: str) -> str:
    """jq's path to the field ``name``: ``.name``, or ``.["a name"]`` where jq's short form does not take it."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)  # jq's .name takes ASCII only
    return f".{name}" if plain else f".[{orjson.dumps(name).decode()}]"


# Fields of a request body or a training line that are no document's text: a rename to them was advised
METADATA = {"model", "prompt", "type", "query", "instruction", "return_documents", "rank_fields"}
# Arrays that hold documents wherever they are found: a request's, FlagEmbedding's and other training lines'
DOCUMENT_ARRAYS = {"documents", "docs", "texts", "passages", "candidates", "contexts", "pos", "neg", "positives",
                   "negatives"}  # fmt: skip


def _held(record: dict, keys: Iterable[str], strings: list[str]) -> tuple[str, str, str] | None:
    """Where ``record`` holds documents in arrays (``keys`` that are non-empty arrays of strings, or of objects as
    a request's documents are; none named as ids, ``doc_ids``): how to say them (``array "documents"``), jq's
    expression for them (``(.pos + .neg)``) and for the text of each one, ``$d``; ``None`` where it holds none, or
    where a text field (of ``strings``) is the likelier document than arrays of unknown names (``authors``)."""
    arrays = [k for k in keys if isinstance(record[k], list) and record[k] and not is_id_field(k.removesuffix("s"))
              and all(isinstance(v, str | dict) for v in record[k])]  # fmt: skip
    known = [k for k in arrays if k.lower() in DOCUMENT_ARRAYS]
    arrays = known or ([] if strings else arrays)
    if not arrays:
        return None
    each = " + ".join(map(_jq_path, arrays))
    objects = any(isinstance(v, dict) for k in arrays for v in record[k])
    said = ("arrays " if len(arrays) > 1 else "array ") + ", ".join(f'"{k}"' for k in arrays)
    return said, f"({each})" if len(arrays) > 1 else each, "($d.text? // $d)" if objects else "$d"


def _past_64_bits(record: dict, where: str) -> bool:
    """Warn (and say so) where an id field of ``record`` is an integer past 64 bits, which the JSON parser reads as
    a float: copied to the results, its last digits are lost (a float that large is no one's id)."""
    for key, value in record.items():
        if isinstance(value, float) and abs(value) >= 2**63 and value.is_integer() and is_id_field(key):
            warn(log, f'{where}: "{key}" is an integer past 64 bits, read as the float {value!r} (its last digits '
                 "lost); give such ids as strings")  # fmt: skip
            return True
    return False


# where a reader hands a bad line's error to be skipped (``--on-error skip``); ``None``: raise it
ErrorSink = Callable[[InputError], None] | None


def check_sink(on_error: ErrorSink, param: str = "on_error") -> None:
    """``InputError`` unless ``on_error`` is ``None`` or a function (of each ``InputError``): a word such as
    ``"skip"`` failed as a ``TypeError`` at the first bad line, hours in."""
    if on_error is not None and not callable(on_error):
        raise InputError(f"{{{param}}} must be a function that takes each error (a list's append, say), not "
                         f"{on_error!r}", param)  # fmt: skip


def raise_or_hand(error: InputError, on_error: ErrorSink) -> None:
    """Raise ``error`` (``skippable``), or where there is ``on_error`` hand it over (to be skipped)."""
    if on_error is None:
        error.skippable = True
        raise error
    on_error(error)


def _checked(items, on_error: ErrorSink):
    """Records pass; a bad line's error is raised, or handed to ``on_error`` and skipped."""
    for item in items:
        if isinstance(item, InputError):
            raise_or_hand(item, on_error)
        else:
            yield item


def read_pairs(
    sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    input_format: str = "auto",
    on_error: Callable[[InputError], None] | None = None,
) -> Iterator[PairRecord]:
    """Pairs from JSONL objects (``query``, ``document``, optional ``instruction`` and id fields), a JSON
    array of such objects, or TSV ``query<TAB>document`` lines (a first line naming the columns,
    ``query<TAB>document``, is a header). ``auto`` picks by the first line.

    ``sources``: paths (``-`` for stdin), or one path. Lazy: records come as lines are read. A bad line raises
    ``InputError``, or with ``on_error`` is handed to it and skipped."""
    check_sink(on_error)
    return _checked(_pairs(_paths(sources), _format(input_format, PAIR_FORMATS)), on_error)


def _paths(sources) -> list[str]:
    """``sources`` as a list of paths: one path (whose letters are no paths) as a list of one."""
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    items = list(sources) if hasattr(sources, "__iter__") and not hasattr(sources, "read") else [sources]
    for item in items:  # a file object, or its lines, would be taken for paths
        if not isinstance(item, str | os.PathLike):
            raise InputError(f"{{sources}} must be paths (or one path), not {type(item).__name__}", "sources")
    return stdin_once([os.fspath(item) for item in items])


def stdin_once(sources: list[str]) -> list[str]:
    """``sources``, checked to name stdin (``-``) at most once: a second read would find it empty, silently."""
    if sources.count(STDIN) > 1:
        raise InputError("- (stdin) is given twice; it can be read once: give the others as files")
    return sources


def _format(value: str, allowed: tuple[str, ...]) -> str:
    value = value.lower()
    if value not in allowed:
        raise InputError(f"{{input_format}} {value}: use one of {', '.join(allowed)}", "input_format")
    return value


def _pairs(sources, fmt):
    for source in sources:
        yield from parse_pairs(read_lines(source), source, fmt)


def parse_pairs(lines: Iterable[Line], source: str, input_format: str = "auto") -> Iterator[PairRecord | InputError]:
    """The pairs of one source's lines (from ``read_lines`` or ``decode_lines``), each bad one as the
    ``InputError`` that says what is wrong, in its place."""
    lines = iter(lines)
    fmt = kind = _format(input_format, PAIR_FORMATS)
    if kind == "auto":
        kind, lines = sniffed(lines, named_plain(source, "tsv"), arrays=True)
    if kind == "csv":
        kind, lines = tabbed_csv(source, lines, "tsv", "as TSV, a line is a pair only where a tab parts its query "
                                 "and document", "to read it as TSV")  # fmt: skip
    if kind == "csv":
        yield lines
        return
    if kind == "tsv":
        yield from _tsv_pairs(source, lines)
        return
    hint = " (if the input is query<TAB>document lines, use {input_format} tsv)" if fmt == "auto" else ""
    warned = False
    # one [query, document] alone is one pair, not an array of two texts
    for where, record in json_records(source, lines, kind, hint, whole=_pair_array):
        if isinstance(record, InputError):
            yield record
        elif _pair_array(record):  # [query, document] (and an instruction), as CrossEncoder and FlagEmbedding take
            yield PairRecord(*record, where=where)
        elif not isinstance(record, dict):
            yield InputError(f'{where}: expected an object with "query" and "document", or a [query, document] array, '
                             f"found {json_type(record)}{_said_array(record)}")  # fmt: skip
        else:
            try:
                yield PairRecord(
                    query=_string(record, "query", where),
                    document=_string(record, "document", where),
                    instruction=_string(record, "instruction", where, optional=True),
                    ids={k: v for k, v in record.items() if is_id_field(k)},
                    other={k: v for k, v in record.items()
                           if not is_id_field(k) and k not in ("query", "document", "instruction")},
                    where=where,
                )  # fmt: skip
            except InputError as exc:
                yield _missing_named(record, where) or exc
            warned = warned or _past_64_bits(record, where)


def _pair_array(record) -> bool:
    return isinstance(record, list) and len(record) in (2, 3) and all(isinstance(v, str) for v in record)


def _said_array(record) -> str:
    if not isinstance(record, list):
        return ""
    if len(record) in (2, 3):
        return f" of {', '.join(json_type(v) for v in record)}"
    return f" of {plural(len(record), 'item')}"


# A first line naming the columns is a header, read by name in any order: one column of the queries, one of the
# documents (as sentence-pair data names them too: STS's, CrossEncoder training sets'), and any others (a label, ids)
QUERY_COLUMNS = {"query", "question", "anchor", "sentence1", "text1", "text_a"}
DOCUMENT_COLUMNS = {"document", "doc", "passage", "text", "answer", "context", "positive", "response", "sentence2",
                    "text2", "text_b", "contents"}  # fmt: skip
_COLUMN = re.compile(r"[A-Za-z_][\w\-]{0,39}")


def _column_names(fields: list[str]) -> tuple[list[str], list[str]]:
    """The names a first TSV line's ``fields`` may give its columns, as written and lower-cased: none (two empty
    lists) unless each is a word, and no two alike."""
    names = [f.strip() for f in fields]
    lower = [n.lower() for n in names]
    if len(set(lower)) < len(lower) or not all(_COLUMN.fullmatch(n) for n in names):
        return [], []
    return names, lower


def _pair_header(fields: list[str]) -> list[str] | None:
    """The fields each column of a pairs TSV goes to (``query``, ``document``, ``instruction`` or its own name),
    where its first line ``fields`` names them, else None."""
    names, lower = _column_names(fields)
    if sum(n in QUERY_COLUMNS for n in lower) != 1 or sum(n in DOCUMENT_COLUMNS for n in lower) != 1:
        return None
    return ["query" if n in QUERY_COLUMNS else "document" if n in DOCUMENT_COLUMNS else
            "instruction" if n == "instruction" else name for n, name in zip(lower, names, strict=True)]  # fmt: skip


def _csv_quoted(where: str, texts: Iterable[str]) -> bool:
    """Whether one of ``texts`` is in quotes with each quote inside it doubled (``He said "hi"`` written in
    quotes, its own quotes as two each), as CSV writers (Excel, pandas, Python's csv) quote a field, and then says
    so: qrr reads TSV as MS MARCO's files are, quotes and all."""
    for text in texts:
        inner = text[1:-1]
        if len(text) >= 2 and text[0] == text[-1] == '"' and '""' in inner and '"' not in inner.replace('""', ""):
            warn(log, f"{where}: a field in quotes with its quotes doubled, as CSV writers quote one; TSV is read as "
                 "MS MARCO's files are, quotes and all (from pandas, df.to_json(PATH, orient='records', lines=True) "
                 "writes JSON lines, read as written)")  # fmt: skip
            return True
    return False


def _quoted_hint(fields: Iterable[str]) -> str:
    """For a TSV line with too many or too few fields: where a field opens a quote it does not close (or closes one
    it did not open), a CSV writer's quoted field holding a tab or a line break is the likely cause."""
    if any(f.startswith('"') != f.endswith('"') or f == '"' for f in fields):
        return (" (a field in quotes holding a tab or a line break, as CSV writers quote one? TSV is read without "
                "quoting: give JSON lines)")  # fmt: skip
    return ""


def _tsv_pairs(source: str, lines):
    columns = None
    first = True
    quoted = False  # said once a source
    for number, text in lines:
        where = f"{label(source)}:{number}"
        if isinstance(text, InputError):
            yield text
            first = False
            continue
        if not text.strip():
            continue
        fields = text.split("\t")
        if first:
            first = False
            columns = _pair_header(fields)
            if columns is not None:
                continue
        if columns is not None and len(fields) != len(columns):
            yield InputError(f"{where}: expected the header's {len(columns)} columns, found "
                             f"{plural(len(fields), 'field')}{_quoted_hint(fields)}")  # fmt: skip
        elif columns is None and len(fields) != 2:
            yield InputError(f"{where}: {len(fields)} tab-separated fields; expected query<TAB>document (a first "
                             "line naming the columns reads more, as query<TAB>document<TAB>label; JSON lines carry "
                             f"documents with tabs){_quoted_hint(fields)}" if len(fields) > 2 else
                             f"{where}: expected query<TAB>document (or a JSON object)"
                             f"{_quoted_hint(fields)}")  # fmt: skip
        else:
            record = dict(zip(columns or ("query", "document"), fields, strict=True))
            query, document, instruction = record.pop("query"), record.pop("document"), record.pop("instruction", None)
            quoted = quoted or _csv_quoted(where, (query, document))
            yield PairRecord(query, document, instruction, {k: v for k, v in record.items() if is_id_field(k)},
                             {k: v for k, v in record.items() if not is_id_field(k)}, where)  # fmt: skip


def read_documents(
    sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    input_format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    on_error: Callable[[InputError], None] | None = None,
) -> Iterator[DocRecord]:
    """Documents from JSONL (objects with ``text_field`` and optional ``id_field``, or JSON strings), a JSON
    array of either, plain text with one document per line, or TSV lines ``id<TAB>text`` (``tsv``: MS MARCO's
    collection.tsv; a header line names the columns, a title joins the text). ``auto`` picks JSON or text by the
    first line (TSV for a file named ``*.tsv``), and warns where text lines look like ``id<TAB>text``. An
    ``id_field`` of ``id`` takes BEIR's ``_id`` where a record has no ``id``; a record's ``title`` (a string) joins
    its ``text`` with a space, as ``read_corpus`` joins them.

    ``sources``, laziness and bad lines as in ``read_pairs``."""
    check_sink(on_error)
    return _checked(_documents(_paths(sources), _format(input_format, DOC_FORMATS), text_field, id_field), on_error)


def _documents(sources, fmt, text_field, id_field):
    for source in sources:
        lines = read_lines(source)
        kind = fmt
        if fmt == "auto":
            kind, lines = sniffed(lines, named_plain(source, "text"))
        if kind == "csv":
            kind, lines = tabbed_csv(source, lines, "text", "as text, each line would be a document, the header too",
                                     "to read each line whole")  # fmt: skip
            if kind == "csv":
                yield lines
                continue
        if kind == "tsv" and fmt == "auto":  # by its name: pairs so named, or prose, are read for what they are
            kind, lines = _named_tsv(source, lines)
            if kind == "pairs":
                yield lines
                continue
        if kind == "tsv":
            # read so for its name: a later line with no tab is told how to read each line whole
            named = " ({input_format} text reads each line whole, as a document's text)" if fmt == "auto" else ""
            for where, record in tsv_records(lines, label(source), "id<TAB>text", named):
                if isinstance(record, InputError):
                    yield record
                else:
                    title, text = record.pop("title", None), record.pop("text")
                    yield DocRecord(f"{title} {text}" if title else text, record.pop("_id"), record, where)
            continue
        if kind == "text" and fmt == "auto":
            lines = _tab_hint(lines, source)
        if kind == "text":
            for _, text in lines:
                if isinstance(text, InputError):
                    yield text
                elif text.strip():
                    yield DocRecord(text)
            continue
        hint = " (if the input is plain text, use {input_format} text)" if fmt == "auto" else ""
        warned = said_ids = False
        for where, record in json_records(source, lines, kind, hint):
            if isinstance(record, InputError | str):
                yield record if isinstance(record, InputError) else DocRecord(record)
            elif isinstance(record, dict):
                warned = warned or _past_64_bits(record, where)
                ident, taken = record.get(id_field), id_field
                if ident is None and id_field == "id":  # a BEIR corpus's documents, else the one id field there is
                    ident, taken, said_ids = _other_id(record, where, said_ids)
                ids = (id_field, "_id") if id_field == "id" else (id_field,)
                if text_field not in record and (missing := _missing_text(record, where, text_field, ids)):
                    yield missing
                    continue
                try:
                    text = _string(record, text_field, where)
                    # a title joins the text, as qrr rerank --corpus and BEIR's own evaluation read it (with an id of
                    # any name: a corpus with "id", as pyserini's or ir_datasets' is, was scored otherwise by rerank)
                    titled = isinstance(record.get("title"), str) and text_field == "text"  # else another field
                    title = _string(record, "title", where, optional=True) if titled else None
                    # the fields read as the text and id are no other fields (an "id" of null gave way to "_id");
                    # an id by another name stays one too (doc_id), as the input named it
                    used = {text_field, id_field} | ({"_id"} if taken == "_id" else set())
                    other = {k: v for k, v in record.items() if k not in used and not (titled and k == "title")}
                    yield DocRecord(f"{title} {text}" if title else text, ident, other, where)
                except InputError as exc:
                    yield exc
            else:
                yield InputError(f'{where}: expected an object with "{text_field}" or a string, found '
                                 f"{json_type(record)}")  # fmt: skip


# ids of queries, never a document's
QUERY_IDS = {"qid", "queryid", "query_id", "query-id", "topicid", "topic_id", "questionid", "question_id"}


def _other_id(record: dict, where: str, said: bool) -> tuple[Any, str, bool]:
    """A document's id where it has no ``id``: BEIR's ``_id``, else its one other id field (``doc_id``, ``docid``,
    ``pid``; not a query's, ``qid``); with several, none, said once a source (``said``) with the option that names
    one. Returns the id, its field and whether it was said."""
    if record.get("_id") is not None:
        return record["_id"], "_id", said
    named = [k for k, v in record.items()
             if v is not None and is_id_field(k) and k != "id" and k.lower() not in QUERY_IDS]  # fmt: skip
    if len(named) == 1:
        return record[named[0]], named[0], said
    if named and not said:
        warn(log, f"{where}: no \"id\" field, and several others that are ids ({', '.join(named)}): none is taken "
             "as the document's; name it with {id_field}", "id_field")  # fmt: skip
        said = True
    return None, "_id", said


# a first TSV line of an id's name and these is a header (MS MARCO's files have none; DPR's and others' do); the id
# is the column of one of these names, else the one column of any id's name (``is_id_field``)
_ID_HEADERS = {"id", "_id", "docid", "doc_id", "pid", "qid", "query_id", "query-id", "corpus-id"}
_TEXT_HEADERS = {"text", "title", "contents", "passage", "body", "query"}


def tsv_records(lines, name: str, shape: str, otherwise: str = "") -> Iterator[tuple[str, dict | InputError]]:
    """(where, record) for each TSV line ``id<TAB>text`` (MS MARCO's collection.tsv), as ``{"_id", "text"}``; a
    first line naming the columns (``id<TAB>text<TAB>title``, as DPR's passages, in any order) is a header, whose
    columns are then read by name: ``title`` too, and others (``url``) under their own names. A bad line comes as an
    ``InputError`` in place of its record (``shape``: what a line should be, ``otherwise`` what else it may be, for
    its message)."""
    columns = None
    first = True
    quoted = False  # said once a source
    for number, text in lines:
        where = f"{name}:{number}"
        if isinstance(text, InputError):
            yield where, text
        elif text.strip():
            fields = text.rstrip("\r\n").split("\t")
            if first:
                first = False
                columns = _doc_header(fields)
                if columns is not None:
                    if "text" not in columns:
                        yield where, InputError(f"{where}: the header names no text column (text, contents, "
                                                "passage or body), only a title")  # fmt: skip
                        return
                    continue
            if len(fields) != (len(columns) if columns else 2):
                if columns:
                    said = f"expected the header's {len(columns)} columns, found {plural(len(fields), 'field')}"
                elif len(fields) > 2:
                    said = (f"expected {shape}, found {len(fields)} fields (a first line naming the columns, as "
                            "id<TAB>text<TAB>title, reads more)")  # fmt: skip
                else:
                    said = f"expected {shape}{otherwise}"
                yield where, InputError(f"{where}: {said}{_quoted_hint(fields)}", "input_format")
                continue
            record = dict(zip(columns or ["_id", "text"], fields, strict=True))
            record["_id"] = record["_id"].strip()
            quoted = quoted or _csv_quoted(where, [record["text"]])
            yield where, record


def _doc_header(fields: list[str]) -> list[str] | None:
    """The keys of a documents TSV's columns (``_id``, ``text``, ``title`` or its own name) where its first line
    ``fields`` names them (one id column, a text or a title, every name a word), else None."""
    names, lower = _column_names(fields)
    ids = [n in _ID_HEADERS for n in lower]
    if not any(ids):  # any id's name: passage_id<TAB>text was read as a document of its own, ranked with the others
        ids = [is_id_field(name) for name in names]
    if sum(ids) != 1 or not set(lower) & _TEXT_HEADERS:
        return None
    text = "text" if "text" in lower else next((n for n in lower if n in _TEXT_HEADERS - {"title"}), None)
    if text == "query" and _pair_header(fields) is not None:  # pair_id<TAB>query<TAB>document: pairs, not documents
        return None
    return ["_id" if is_id else "text" if n == text else "title" if n == "title" else name
            for n, name, is_id in zip(lower, names, ids, strict=True)]  # fmt: skip


# the longest word before a tab taken for an id: TREC CAsT's CAR ids have 44 characters, a SHA-256 64, a URL more
# (at most 40 read such files as text, each id scored in its document, unsaid)
ID_CHARS = 256


def _looks_like_id(fields: list[str]) -> bool:
    """Whether a line's tab-separated ``fields`` open with what an id is: a word of at most ``ID_CHARS``."""
    head = fields[0].strip()
    # (CJK prose has no spaces: a sentence of it past 40 characters is no id)
    return len(fields) > 1 and bool(head) and " " not in head and len(fields[0]) <= (ID_CHARS if head.isascii() else 40)


def _named_tsv(source: str, lines: Iterator[Line]):
    """Documents from a file named ``*.tsv``, by its first line: ``tsv`` where it names documents' columns or looks
    like ``id<TAB>text``; ``("pairs", SourceError)`` where it names a pair's (query<TAB>document: its header was
    ranked as a document, each query as an id); else ``text`` (prose so named, read as before)."""
    fields, lines = _first_fields(lines)
    if fields is not None and _pair_header(fields) is not None and _doc_header(fields) is None:
        said = (f"{label(source)}: its first line names a query and a document column, as pairs' TSV does: qrr score "
                "scores pairs, and qrr rank reads id<TAB>text lines")  # fmt: skip
        return "pairs", SourceError(said)
    if fields is None or _doc_header(fields) is not None or _looks_like_id(fields):
        return "tsv", lines
    return "text", lines


def _tab_hint(lines: Iterator[Line], source: str) -> Iterator[Line]:
    """``lines``, after a warning where the first one looks like ``id<TAB>text`` (MS MARCO's collection.tsv): read
    as text, the id would be scored as a part of the document, unsaid; or where the first is no JSON but the next
    is a JSON object (a tool's export that opens with a line of its own): each would be scored as its text."""
    seen = []
    first = None
    for line in lines:
        seen.append(line)
        if not isinstance(line[1], str):
            break
        if not line[1].strip():
            continue  # blank lines are no documents: the first that is says
        if first is not None:
            if line[1].lstrip().startswith("{") and isinstance(_parses(line[1]), dict):
                warn(log, f"{label(source)}: its first line is no JSON but its next is a JSON object; each line is "
                     "read whole, as a document's text ({input_format} jsonl reads JSON lines, and says where "
                     "one is not)", "input_format")  # fmt: skip
            break
        first = line[1]
        if _looks_like_id(first.split("\t")):  # DPR's id<TAB>text<TAB>title too
            warn(log, f"{label(source)}: its lines look like id<TAB>text; each is read whole, as a document's text "
                 "({input_format} tsv reads ids and texts)", "input_format")  # fmt: skip
            break
        if _run_line(first):
            warn(log, f"{label(source)}: its lines look like a TREC run (qid Q0 docid rank score tag), each read as "
                 "a document's text; a run's documents are reranked by qrr rerank (pipelines.rerank_run in "
                 "Python)")  # fmt: skip
            break
    yield from seen
    yield from lines


def _run_line(line: str) -> bool:
    """Whether ``line`` looks like a TREC run's: ``qid Q0 docid rank score tag``."""
    fields = line.split()
    if len(fields) != 6 or fields[1].upper() != "Q0" or not fields[3].isdigit():
        return False
    try:
        float(fields[4])
    except ValueError:
        return False
    return True
