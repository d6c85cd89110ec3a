"""Lines of text from files (gzipped or not) or stdin: UTF-8 read strictly, each bad line an ``InputError`` in
place of its text (with a guess at the encoding it is in), and files that are no text (UTF-16, gzip data by another
name, Parquet) said as such. Nothing here parses a line."""

from __future__ import annotations

import gzip
import logging
import os
import re
import sys
import zlib
from collections.abc import Iterable, Iterator

from qrr.errors import InputError, QrrError, SourceError

log = logging.getLogger("qrr")

STDIN = "-"


def path_of(source, name: str = "source") -> str:
    """``source`` (a path: a string or ``pathlib.Path``; ``-`` for stdin) as a string; ``InputError`` naming the
    parameter ``name`` where it is something else (a file object, say)."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    raise InputError(f"{{{name}}} must be a path, not {type(source).__name__}", name)


def label(source: str) -> str:
    """How messages name a source: its path, or ``<stdin>``."""
    return "<stdin>" if source == STDIN else source


# A bad line travels through the readers as an InputError value, not an exception, so that a reader can go on
# past it (--on-error skip); the public readers raise it unless told to skip.
Line = tuple[int, "str | InputError"]


def read_lines(source: str) -> Iterator[Line]:
    """(line number, text) for each line of a file (gzipped where its name ends in ``.gz``) or stdin (``-``):
    UTF-8, a BOM opening a line (a file's, or of each file joined: ``cat``) and CR dropped.
    A line that is not valid UTF-8 or holds a NUL byte comes as an ``InputError`` in place of its text."""
    source = path_of(source)
    name = label(source)
    if source == STDIN:
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise InputError("-: stdin is closed; give a FILE, or pipe the input on stdin")
        if sys.stdin.isatty():  # asked for by name: a person types the input, which nothing else would say
            log.warning("reading the input from the terminal (end it with Ctrl-D)", extra={"note": True})
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream without bytes underneath (embedded use)
            stream = (line.encode("utf-8", "surrogateescape") for line in sys.stdin)
        yield from decode_lines(stream, name)
        return
    try:
        # closed below; a generator cannot use `with` across yields
        handle = gzip.open(source, "rb") if source.endswith(".gz") else open(source, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: a folder, not a file; give the files in it") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            yield from decode_lines(handle, name)
        except gzip.BadGzipFile:  # at its first bytes: no line of it was read, so it can be skipped whole
            yield 1, SourceError(f"{source}: not gzip data, though its name ends in .gz")
        except (EOFError, zlib.error) as exc:  # its lines before were read: no file to skip whole
            raise InputError(f"{source}: not a complete gzip file ({exc})") from None
        except OSError as exc:  # a read that fails midway (a disk, a network mount, /proc/self/mem): its file named
            raise QrrError(f"{source}: cannot read ({exc.strerror or exc})") from None  # the machine's: exit 1


def decode_lines(stream: Iterable[bytes], name: str) -> Iterator[Line]:
    """(line number, text) for each raw line of ``stream`` (bytes, a newline at each end), as ``read_lines``
    gives them; ``name`` is how messages name the source."""
    hint = None  # the first bad line's, for the source's others (--on-error skip of a whole GBK file)
    for number, raw in enumerate(stream, 1):
        kind = _binary_kind(raw, name) if number == 1 else None
        if kind is not None:
            yield number, kind
            return  # the rest is no lines either
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            hint = hint or _convert(raw, exc)
            yield number, InputError(f"{name}:{number}: invalid UTF-8 at byte {exc.start + 1} of the line (qrr reads "
                                     f"UTF-8; {hint})")  # fmt: skip
            continue
        if "\0" in text:
            # counted from 1, as lines are (and editors' columns)
            yield number, InputError(f"{name}:{number}: NUL byte at byte {raw.index(0) + 1} of the line"
                                     f"{_utf16_hint(raw)}")  # fmt: skip
            continue
        if number == 1 and not raw.endswith(b"\n") and "\r" in text.rstrip("\r"):
            # no LF in the whole source: lines that end in CR alone would be one line, read as one document
            yield number, SourceError(f"{name}: its lines end in CR alone (classic Mac OS, Excel for Mac); qrr reads "
                                     "lines that end in LF or CRLF: convert it first, with tr '\\r' '\\n'")  # fmt: skip
            return
        # a BOM opens a file, or each file of several joined (cat a.jsonl b.jsonl), twice where a tool added its own
        # to a file that had one: it is no text of the line; nor is a CR before the LF (\r\r\n from a doubled CRLF)
        yield number, text.lstrip("\ufeff").rstrip("\n").rstrip("\r")


def _utf16_hint(raw: bytes) -> str:
    """Where a line's NUL bytes are every other byte: UTF-16 text without a byte order mark."""
    body = raw.rstrip(b"\r\n")
    if len(body) >= 4 and (body[0::2].count(0) > len(body) // 4 or body[1::2].count(0) > len(body) // 4):
        return " (UTF-16 text without a byte order mark? convert it first, for example with iconv -f utf-16le -t utf-8)"
    return ""


def _ideograph(c: str) -> bool:  # CJK ideographs, CJK punctuation and full-width forms (not half-width katakana)
    return "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uff60"


# Encodings that files not in UTF-8 come in, each with the characters its text is mostly made of: a line read in
# its own is mostly those. Read in another, bytes often make sense too (GBK's read as Korean, Cyrillic's as Western
# letters, Korean's as GBK's), so every encoding a line makes sense in is named, as a guess; kana tell Japanese apart.
_ENCODINGS = (
    ("cp932", "Japanese (Shift-JIS)", lambda c: "\u3040" <= c <= "\u30ff" or _ideograph(c)),
    ("cp949", "Korean", lambda c: "\uac00" <= c <= "\ud7a3"),
    ("gb18030", "Chinese (GBK)", _ideograph),
    ("big5", "traditional Chinese (Big5)", _ideograph),
    ("cp1251", "Cyrillic (Windows)", lambda c: "\u0400" <= c <= "\u04ff"),
    ("cp1252", "Western European (Windows)",
     lambda c: c.isalpha() or c in "\u2018\u2019\u201c\u201d\u2013\u2014\u20ac"),
)  # fmt: skip


def _unmixed(word: str) -> bool:  # no plain letters in a word of another script ("Stra\u7f36"; "caf\u0439")
    return word.isascii() or not re.search("[A-Za-z]", word)


# how the non-ASCII words of each reading look: most are of one script (a wrong reading mixes plain letters with
# another script's, as Western text read as GBK or Cyrillic does), and Western words with accents have plain
# letters too (Cyrillic read as Western is words of accented letters alone, "\u00cc\u00ee\u00f1\u00ea\u00e2\u00e0")
_WORDS = dict.fromkeys(("cp932", "gb18030", "cp949", "big5", "cp1251"), _unmixed) | {
    "cp1252": lambda word: not re.search("[\u00c0-\u00ff]", word) or bool(re.search("[A-Za-z]", word)),
}
_WINDOW = 4096  # bytes of a line looked at: its start, where a character begins in any encoding


def _convert(raw: bytes, exc: UnicodeDecodeError) -> str:
    """How to mend a line that is not UTF-8 (``exc``: where decoding it failed). A line that is UTF-8 before the
    bad bytes, or cut through its last character, is UTF-8 with bytes gone wrong: converting it from another
    encoding would spoil the whole file. Otherwise the encodings its first bytes read as sensible text in, as a
    guess (never latin1 by default: it takes any bytes, so converting from it always succeeds, and turned a CJK
    file into nonsense), else the file's own."""
    # UTF-8 characters before the bad bytes (two: one in eight of GBK's first characters is valid UTF-8 by chance)
    before = sum(1 for c in raw[: exc.start].decode("utf-8") if c >= "\x80")
    at_end = exc.start >= len(raw.rstrip(b"\r\n")) - 3
    if before >= 2 or before and at_end:
        return (f"it is UTF-8 but for the bytes at {exc.start + 1} (a character cut, or a stray byte?): iconv -f utf-8 "
                "-t utf-8 -c drops such bytes")  # fmt: skip
    window = raw[:_WINDOW]
    readings = []
    for encoding, what, usual in _ENCODINGS:
        try:
            text = window.decode(encoding)
        except UnicodeDecodeError as bad:
            if bad.start < len(window) - 4 or len(raw) <= _WINDOW:
                continue
            text = window[: bad.start].decode(encoding, "replace")  # the window's end cut a character
        wide = [c for c in text if c >= "\x80"]
        if not wide or sum(map(usual, wide)) < 0.8 * len(wide):
            continue
        if encoding == "cp932" and not any("\u3040" <= c <= "\u30ff" for c in wide):
            continue  # kanji alone: Chinese as likely
        words = [w for w in re.findall(r"\w+", text) if not w.isascii()]
        if sum(map(_WORDS[encoding], words)) < 0.8 * len(words):
            continue
        readings.append((encoding, what))
        if encoding == "cp932":
            break
    if not readings:
        return "convert it from its encoding first, with iconv -f ENCODING -t utf-8 (file -i may tell which)"
    (first, _), *others = readings[:3]
    names = [what for _, what in readings[:3]]
    said = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    alternatives = f" (or {', '.join(e for e, _ in others)})" if others else ""
    return (f"it may be {said} text: convert it with iconv -f {first}{alternatives} -t utf-8, and look at the "
            "result")  # fmt: skip


def _binary_kind(first: bytes, name: str) -> SourceError | None:
    """The error for a source that is no text but a kind a user can turn into text, by its first line: every line
    of it would be "invalid UTF-8" or "NUL byte". Parquet's magic, ``PAR1``, counts only before a control byte
    (its first page header's), so a text that starts with the word stays text."""
    if first.startswith(b"\x1f\x8b"):
        return SourceError(f"{name}: gzip-compressed data; name the file *.gz, or decompress it first (zcat)")
    if first.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return SourceError(f"{name}: UTF-32 text (it opens with UTF-32's byte order mark); qrr reads UTF-8: convert "
                          "it first, for example with iconv -f utf-32 -t utf-8")  # fmt: skip
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):  # each line would be "invalid UTF-8 at byte 1"
        return SourceError(f"{name}: UTF-16 text (it opens with UTF-16's byte order mark, as Windows PowerShell's "
                          "> writes files); qrr reads UTF-8: convert it first, for example with iconv -f utf-16 -t "
                          "utf-8")  # fmt: skip
    if first.startswith(b"PAR1") and any(b < 0x20 and b not in b"\t\r\n" for b in first[4:8]):
        return SourceError(
            f"{name}: a Parquet file, not text; qrr score --ray reads Parquet (in Python, qrr.raydata.read_pairs, or "
            "a DataFrame from pandas.read_parquet), or convert it to JSON lines"
        )
    return None
