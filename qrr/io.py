"""Readers (JSONL, JSON, TSV, plain text; files or stdin) and writers (table, JSONL, JSON, TSV).

Readers raise ``InputError`` naming the source and line. Nothing here imports torch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from qrr.errors import InputError

STDIN = "-"
PAIR_FORMATS = ("auto", "jsonl", "json", "tsv")
DOC_FORMATS = ("auto", "jsonl", "json", "text")
OUTPUT_FORMATS = ("table", "jsonl", "json", "tsv")


@dataclass(frozen=True)
class PairRecord:
    """One pair to score, with the input's id fields (``id``, ``qid``, ``doc_id``, ...) kept as they were."""

    query: str
    document: str
    instruction: str | None = None
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DocRecord:
    """One document to rank, with its id when the input gave one."""

    text: str
    id: Any = None


def is_id_field(key: str) -> bool:
    """``id`` and names ending in ``id`` (``qid``, ``docid``, ``doc_id``) are carried into the output."""
    return key.lower().endswith("id")


# ---------------------------------------------------------------------------------------------- reading


def _label(source: str) -> str:
    return "<stdin>" if source == STDIN else source


def read_lines(source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line of a file or stdin (``-``): UTF-8, a leading BOM and CR dropped."""
    label = _label(source)
    if source == STDIN:
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream without bytes underneath (embedded use)
            yield from _numbered(enumerate(sys.stdin.read().split("\n"), 1), label)
            return
        yield from _decoded(stream, label)
        return
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below; a generator cannot use `with` across yields
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read ({exc.strerror})") from None
    with handle:
        yield from _decoded(handle, label)


def _decoded(stream, label: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{label}:{number}: invalid UTF-8 at byte {exc.start} of the line") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield number, text.rstrip("\n").removesuffix("\r")


def _numbered(lines, label: str) -> Iterator[tuple[int, str]]:
    for number, text in lines:
        yield number, (text.removeprefix("\ufeff") if number == 1 else text).removesuffix("\r")


def _sniff(lines: Iterator[tuple[int, str]]) -> tuple[str, list[tuple[int, str]]]:
    """The first non-blank line's leading character, and the lines read to find it (to replay)."""
    seen = []
    for number, text in lines:
        seen.append((number, text))
        if text.strip():
            return text.lstrip()[0], seen
    return "", seen


def _replay(seen, lines) -> Iterator[tuple[int, str]]:
    yield from seen
    yield from lines


def _loads(text: str, label: str, number: int | None, hint: str = ""):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        where = f"{label}:{number}" if number is not None else label
        raise InputError(f"{where}: malformed JSON ({exc.args[0].split(':')[0]}){hint}") from None


def _json_records(source: str, lines, fmt: str, hint: str = "") -> Iterator[tuple[str, Any]]:
    """(where, value) for each JSON value of a JSONL stream or a JSON array."""
    label = _label(source)
    if fmt == "json":
        value = _loads("\n".join(text for _, text in lines), label, None, hint)
        if not isinstance(value, list):
            raise InputError(f"{label}: expected a JSON array, found {type(value).__name__}")
        for n, item in enumerate(value):
            yield f"{label}: item {n}", item
        return
    for number, text in lines:
        if text.strip():
            yield f"{label}:{number}", _loads(text, label, number, hint)


def _string(record: dict, key: str, where: str, optional: bool = False) -> str | None:
    if key not in record or (optional and record[key] is None):
        if optional:
            return None
        raise InputError(f'{where}: missing field "{key}"')
    value = record[key]
    if not isinstance(value, str):
        raise InputError(f'{where}: field "{key}" must be a string, not {_json_type(value)}')
    return value


def _json_type(value) -> str:
    return {
        dict: "an object",
        list: "an array",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def read_pairs(sources: Iterable[str], fmt: str = "auto") -> Iterator[PairRecord]:
    """Pairs from JSONL objects (``query``, ``document``, optional ``instruction`` and id fields), a JSON
    array of such objects, or TSV ``query<TAB>document`` lines. ``auto`` picks by the first character."""
    for source in sources:
        lines = read_lines(source)
        kind = fmt
        if fmt == "auto":
            first, seen = _sniff(lines)
            kind = {"{": "jsonl", "[": "json"}.get(first, "tsv")
            lines = _replay(seen, lines)
        if kind == "tsv":
            yield from _tsv_pairs(source, lines)
            continue
        for where, record in _json_records(source, lines, kind):
            if not isinstance(record, dict):
                raise InputError(f'{where}: expected an object with "query" and "document", found {_json_type(record)}')
            yield PairRecord(
                query=_string(record, "query", where),
                document=_string(record, "document", where),
                instruction=_string(record, "instruction", where, optional=True),
                ids={k: v for k, v in record.items() if is_id_field(k)},
            )


def _tsv_pairs(source: str, lines) -> Iterator[PairRecord]:
    for number, text in lines:
        if not text.strip():
            continue
        if "\t" not in text:
            raise InputError(f"{_label(source)}:{number}: expected query<TAB>document (or a JSON object)")
        query, document = text.split("\t", 1)
        yield PairRecord(query, document)


def read_documents(
    sources: Iterable[str], fmt: str = "auto", text_field: str = "text", id_field: str = "id"
) -> Iterator[DocRecord]:
    """Documents from JSONL (objects with ``text_field`` and optional ``id_field``, or JSON strings), a JSON
    array of either, or plain text with one document per line. ``auto`` picks by the first character."""
    for source in sources:
        lines = read_lines(source)
        kind = fmt
        if fmt == "auto":
            first, seen = _sniff(lines)
            kind = {"{": "jsonl", '"': "jsonl", "[": "json"}.get(first, "text")
            lines = _replay(seen, lines)
        if kind == "text":
            yield from (DocRecord(text) for _, text in lines if text.strip())
            continue
        hint = " (use --input-format text for plain text)" if fmt == "auto" else ""
        for where, record in _json_records(source, lines, kind, hint):
            if isinstance(record, str):
                yield DocRecord(record)
            elif isinstance(record, dict):
                yield DocRecord(_string(record, text_field, where), record.get(id_field))
            else:
                raise InputError(
                    f'{where}: expected an object with "{text_field}" or a string, found {_json_type(record)}'
                )


# ---------------------------------------------------------------------------------------------- writing


def score_rows(records: list[PairRecord], scores: list[float]) -> list[dict]:
    """The JSONL contract of ``qrr score``: ``index``, the input's id fields, ``score``; input order."""
    return [{"index": i, **r.ids, "score": s} for i, (r, s) in enumerate(zip(records, scores, strict=True))]


def rank_rows(ranked, with_text: bool = False) -> list[dict]:
    """The JSONL contract of ``qrr rank``: ``rank`` (1-based), ``index``, ``score``, ``id``, ``text``."""
    rows = []
    for n, r in enumerate(ranked, 1):
        row = {"rank": n, "index": r.index, "score": r.score}
        if r.id is not None:
            row["id"] = r.id
        if with_text:
            row["text"] = r.text
        rows.append(row)
    return rows


def write_jsonl(rows: Iterable[dict], out=None) -> None:
    out = out or sys.stdout
    for row in rows:
        out.write(orjson.dumps(row).decode() + "\n")
    out.flush()


def write_json(rows: list[dict], out=None) -> None:
    out = out or sys.stdout
    out.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    out.flush()


def _tsv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return orjson.dumps(value).decode()


def write_tsv(rows: list[dict], out=None) -> None:
    """A header line, then one tab-separated line per row; tabs and newlines in text are escaped."""
    out = out or sys.stdout
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if columns:
        out.write("\t".join(columns) + "\n")
    for row in rows:
        out.write("\t".join(_tsv_cell(row.get(c)) for c in columns) + "\n")
    out.flush()


def write_table(rows: list[dict], title: str | None = None, previews: dict[int, dict] | None = None) -> None:
    """A rich table for people; ``previews`` adds one-line text columns (by row position)."""
    from rich.console import Console
    from rich.table import Table

    columns = list(dict.fromkeys(k for row in rows for k in row if k != "text"))
    table = Table(title=title, header_style="bold", show_edge=False)
    extra = list(dict.fromkeys(k for p in (previews or {}).values() for k in p))
    cells = [[_table_cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(line[n]) for line in cells]) for n, c in enumerate(columns)]
    # Short data columns keep their full width; long ones (paths) fold; text previews share what is left.
    # Where even the short ones cannot all fit, every column may wrap rather than be cropped.
    console = Console()
    fixed = [w if w <= 32 else 0 for w in widths]
    if sum(fixed) + 3 * len(columns) > console.width:
        fixed = [0] * len(columns)
    for c, width in zip(columns, fixed, strict=True):
        justify = "right" if c in ("rank", "index") else "left"
        if width:
            table.add_column(c, justify=justify, no_wrap=True, min_width=width)
        else:
            table.add_column(c, justify=justify, overflow="fold")
    room = console.width - sum(fixed) - 3 * (len(columns) + len(extra))
    for c in extra:
        table.add_column(c, overflow="ellipsis", no_wrap=True, max_width=max(8, room // max(1, len(extra))))
    for n, line in enumerate(cells):
        table.add_row(*line, *[_preview((previews or {}).get(n, {}).get(c, "")) for c in extra])
    console.print(table)


def _table_cell(column: str, value) -> str:
    if column == "score" and isinstance(value, float):
        return f"{value:.4f} {bar(value)}"
    return "" if value is None else str(value)


def bar(value: float, width: int = 10) -> str:
    """A bar of ``width`` cells filled to ``value`` in [0, 1], in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, value)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)


def _preview(text: str, limit: int = 200) -> str:
    from rich.markup import escape

    flat = " ".join(text.split())
    return escape(flat[:limit] + ("…" if len(flat) > limit else ""))


def write_rows(rows: list[dict], fmt: str, title: str | None = None, previews=None) -> None:
    """Write ``rows`` to stdout as ``table``, ``jsonl``, ``json`` or ``tsv``."""
    if fmt == "table":
        write_table(rows, title, previews)
    elif fmt == "json":
        write_json(rows)
    elif fmt == "tsv":
        write_tsv(rows)
    else:
        write_jsonl(rows)
