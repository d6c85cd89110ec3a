"""What people see: tables, bars, progress on stderr, and the notes after a run (skipped lines, too-long queries).
Data formats (JSON lines, JSON, TSV) are the core's ``formats.RowWriter``; the run around ``qrr rerank`` and
``qrr eval``'s reranking is ``qrr.cli.runs``."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Collection
from contextlib import contextmanager

import orjson

from qrr.cli.base import (
    animated,
    flag,
    stderr,
    unseen,
    visible,
    visible_data,
)
from qrr.cli.signals import writes_whole
from qrr.errors import InputError, SourceError, plural
from qrr.formats import SCORE_FIELDS, RowWriter, is_id_field, merged_order


class TableWriter:
    """A rich table for people, drawn once at ``close`` (the interface of ``formats.RowWriter``). The row fields
    named in ``previews`` (texts) become one-line preview columns at the right."""

    def __init__(self, title: str | None = None, previews: tuple[str, ...] = (), asked: bool = False):
        self.title = title
        self.preview_fields = previews
        self.asked = asked  # the previews were asked for (--with-text): never left out
        self.rows: list[tuple[dict, dict]] = []  # (data, previews): one append a row, so an interrupt splits none

    @property
    def count(self) -> int:
        return len(self.rows)

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self.rows.append(({k: v for k, v in row.items() if k not in self.preview_fields},
                              {k: row[k] for k in self.preview_fields if row.get(k) is not None}))  # fmt: skip

    def close(self) -> None:
        write_table([data for data, _ in self.rows], self.title, [shown for _, shown in self.rows], self.asked)


def writer(fmt: str, title: str | None = None, previews: tuple[str, ...] = (), asked: bool = False):
    """A table writer for ``table`` (``previews``: text fields shown as previews, kept where ``asked``), else the
    core's row writer for JSON lines, JSON or TSV on stdout."""
    if fmt == "table":
        return TableWriter(title, previews, asked)
    return _ShownRows(fmt)


class _ShownRows(RowWriter):
    """The core's row writer, which on a terminal writes out what would drive it (``-f tsv`` of a field holding an
    escape sequence cleared the screen and retitled the window); a file or pipe gets the data as they are. A Ctrl-C
    or SIGTERM waits for a write to end (a slow reader's pipe held one): the rows written are whole, and counted."""

    guard = staticmethod(writes_whole)

    def write(self, rows: list[dict]) -> None:
        if self.out is not None or not sys.stdout.isatty():
            return super().write(rows)
        self.out = _Shown(sys.stdout)
        try:
            super().write(rows)
        finally:
            self.out = None


class _Shown:
    """A text stream whose writes are shown with ``visible_data``."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(visible_data(text))

    def flush(self) -> None:
        self.stream.flush()


def write_rows(rows: list[dict], fmt: str, title: str | None = None) -> None:
    """Write ``rows`` to stdout as ``table``, ``jsonl``, ``json`` or ``tsv`` in one go."""
    out = writer(fmt, title)
    out.write(rows)
    out.close()


def write_table(rows: list[dict], title: str | None = None, previews: list[dict] | None = None,
                keep_previews: bool = False) -> None:  # fmt: skip
    """A rich table for people; ``previews`` (one dict per row) adds one-line text columns. Where the data do not fit
    the terminal, the score bars go first, then the previews (unless ``keep_previews``: asked for, they are not
    left out), then long columns of paths or prose fold; where even then they do not fit, each row is written as a
    block of ``field value`` lines: a number or id split over lines was misread (``0.274`` above ``2``)."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    columns = merged_order(rows)  # an id that only later rows have still comes before their other fields
    previews = previews or [{} for _ in rows]
    extra = list(dict.fromkeys(k for p in previews for k in p))

    def laid_out(bars: bool) -> tuple[list[list[str]], list[int]]:
        cells = [[_for_stdout(_cut(visible(_table_cell(c, row.get(c), bars)), c)) for c in columns] for row in rows]
        return cells, [max([header_width(c)] + [cell_len(line[n]) for line in cells]) for n, c in enumerate(columns)]

    # text previews need at least 8 characters each (11 with their lines): the bars give way to them, and where
    # they cannot be had even so, the bars come back if they fit
    with_bars = cells, widths = laid_out(True)
    if table_width(widths) + 11 * len(extra) > console.width:
        cells, widths = laid_out(False)
        if table_width(widths) + 11 * len(extra) > console.width:
            if keep_previews:  # --with-text: the texts were asked for, and a block has room for them
                _write_blocks(console, title, columns, cells, previews)
                return
            extra = []
            if table_width(with_bars[1]) <= console.width:
                cells, widths = with_bars
    fixed = widths
    if table_width(widths) > console.width:  # long columns of paths or prose fold (never ids), where the rest fits
        fixed = [0 if w > 32 and not is_id_field(c) else w for c, w in zip(columns, widths, strict=True)]
        least = [w or max([8, header_width(c)] + [cell_len(line[n]) for line in cells if cell_len(line[n]) <= 32])
                 for n, (c, w) in enumerate(zip(columns, fixed, strict=True))]  # fmt: skip
        if table_width(least) > console.width:
            _write_blocks(console, title, columns, cells, previews)
            return
    heading = Text(_for_stdout(visible(title))) if title else None
    if heading is not None and cell_len(heading.plain) > table_width(fixed) + 11 * len(extra):
        console.print(heading)  # wider than the table, whose title is cut to its width (mid-word, mid-path)
        heading = None
    table = Table(title=heading, header_style="bold", show_edge=False)
    for c, width in zip(columns, fixed, strict=True):
        justify = "right" if c in ("rank", "index") else "left"
        if width:
            table.add_column(_header(c), justify=justify, no_wrap=True, min_width=width)
        else:
            table.add_column(_header(c), justify=justify, overflow="fold")
    room = console.width - sum(fixed) - 3 * (len(columns) + len(extra))
    for c in extra:
        table.add_column(_header(c), overflow="ellipsis", no_wrap=True, max_width=max(8, room // max(1, len(extra))))
    for n, line in enumerate(cells):
        table.add_row(*map(Text, line), *[Text(_preview(previews[n].get(c, ""))) for c in extra])
    console.print(table)


def _write_blocks(console, title: str | None, columns: list[str], cells: list[list[str]], previews: list[dict]) -> None:
    """Rows as blocks of ``field value`` lines (a text preview cut to its line), a blank line between two, for a
    terminal too narrow for a table."""
    from rich.table import Table
    from rich.text import Text

    if title:
        console.print(Text(visible(title), style="bold"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", overflow="fold", max_width=max(8, console.width // 2))  # room left for values
    grid.add_column(overflow="fold")
    for n, line in enumerate(cells):
        if n:
            grid.add_row("", "")
        for name, cell in zip(columns, line, strict=True):
            if cell:
                grid.add_row(Text(" ".join(map(visible, name.split("\n")))), Text(cell))  # a header's lines on one
        for name, text in previews[n].items():
            grid.add_row(Text(visible(name)), Text(_preview(text), no_wrap=True, overflow="ellipsis"))
    console.print(grid)


def _cut(cell: str, column: str, limit: int = 200) -> str:
    """A table cell cut to ``limit`` characters, as a text preview is (a copied embedding of 1,024 numbers filled
    1,800 lines); an id stays whole, and ``-f jsonl`` has every field in full."""
    if len(cell) <= limit or is_id_field(column):
        return cell
    return _head(cell, limit - 1)


def _head(text: str, limit: int) -> str:
    """``text`` cut to its first ``limit`` characters as a person counts them (graphemes), with an ellipsis where
    anything was cut: a cut through a flag, an emoji of several people, an accent or a conjunct left half a
    character showing. A grapheme of any length is cut too (a million combining marks are no preview)."""
    import regex

    head = regex.match(rf"\X{{0,{limit}}}", text[: limit * 8]).group()
    if len(head) == len(text):
        return text
    return (head or text[:limit]) + ("…" if _encodes("…") else "...")


def table_width(widths: list[int]) -> int:
    """The characters a table with columns this wide takes across, as ``write_table`` draws it (each column
    padded by one on each side, one line between two)."""
    return sum(w + 3 for w in widths) - 1


def header_width(column: str) -> int:
    """The width of a column's header (its longest line, in terminal cells: a CJK character takes two)."""
    from rich.cells import cell_len

    return max(cell_len(visible(line)) for line in column.split("\n"))


def _header(column: str):
    """A column's header as rich shows it: its lines as written, never read as markup (an input's field names are
    headers with --with-fields)."""
    from rich.text import Text

    return Text("\n".join(visible(line) for line in column.split("\n")))


def _table_cell(column: str, value, bars: bool = True) -> str:
    if column == "score" and isinstance(value, float):
        return f"{value:.4f} {bar(value)}" if bars else f"{value:.4f}"
    if value is None:
        return ""
    if not isinstance(value, dict | list | bool):
        return str(value)
    return orjson.dumps(value, default=str).decode()  # as JSON says it: true, {"u": 1}, not Python's True, {'u': 1}


def bar(value: float, width: int = 10) -> str:
    """A bar of ``width`` cells filled to ``value`` in [0, 1], in eighths of a cell (``#`` a cell where stdout
    cannot encode the block characters)."""
    value = max(0.0, min(1.0, value)) if value == value else 0.0  # NaN: no bar
    if not _encodes("█▏▎▍▌▋▊▉"):
        return ("#" * round(value * width)).ljust(width)
    eighths = round(value * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)


def _encodes(text: str) -> bool:
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _preview(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return _for_stdout(visible(flat if len(flat) <= limit else _head(flat, limit)))


def _for_stdout(text: str) -> str:
    """``text`` as stdout writes it: a character its encoding lacks as ``?`` (ASCII, under ``LC_ALL=C``), before a
    table is laid out; replaced as it was written, a row of emoji came out short and one of accents long."""
    if text.isascii():
        return text
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "replace").decode(encoding)
    except LookupError:
        return text


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


# ------------------------------------------------------------------------------------------------ progress


# A bar shows once the work has run this long: a quick run whose output a program in a pipe prints on the same
# terminal (`qrr score ... | jq`) stays clean.
SHOW_AFTER = 1.0


class _Delayed:
    """Starts a transient rich ``Progress`` once ``after`` seconds have passed (on a timer, so a long first batch or
    request shows it too; at once where ``after`` is 0), and stops it, if it started, at ``close``. Where stdout is
    the bar's terminal, data written to it goes through an ``AboveBar`` meanwhile."""

    def __init__(self, bar, after: float):
        self.bar = bar
        self.lock = threading.Lock()
        self.closed = False
        self.timer = None
        self.proxy = None
        if bar.console.is_terminal and _same_terminal():
            self.proxy = sys.stdout = AboveBar(bar, sys.stdout)
        if after <= 0:
            self.show()
        else:
            self.timer = threading.Timer(after, self.show)
            self.timer.daemon = True
            self.timer.start()

    def show(self) -> None:
        with self.lock:
            if not self.closed and not self.bar.live.is_started:
                self.bar.start()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.timer is not None:
                self.timer.cancel()
            if self.bar.live.is_started:
                self.bar.stop()  # first: the held end of a line is written where the bar was, not under its redraw
            if self.proxy is not None and sys.stdout is self.proxy:
                sys.stdout = self.proxy.release()


def _same_terminal() -> bool:
    """Whether stdout and stderr are one terminal, so that data on stdout and a bar on stderr share a screen."""
    try:
        out, err = sys.stdout, sys.stderr
        return out.isatty() and err.isatty() and os.path.samestat(os.fstat(out.fileno()), os.fstat(err.fileno()))
    except (AttributeError, OSError, ValueError):  # a stream without a file (embedded use, a test's capture)
        return False


class AboveBar(io.TextIOBase):
    """stdout on the terminal a bar is drawn on: data written past a live bar mixed with it (and its redraws erased
    an unfinished line), so whole lines go out above the live bar (through its console) and straight to stdout
    while it is not shown, and the unfinished end of a line waits for its newline, or for ``release``. Never read
    as markup (a line is rich ``Text``; tabs are shown as spaces)."""

    def __init__(self, bar, stdout):
        self.bar, self.stdout, self.pending = bar, stdout, ""

    def write(self, text: str) -> int:
        from rich.text import Text

        *lines, self.pending = (self.pending + text).split("\n")
        if lines and self.bar.live.is_started:
            self.bar.console.print(Text("\n".join(lines)), soft_wrap=True, highlight=False)
        elif lines:
            self.stdout.write("\n".join(lines) + "\n")
            self.stdout.flush()
        return len(text)

    def flush(self) -> None:
        self.stdout.flush()

    @property
    def encoding(self) -> str:
        return getattr(self.stdout, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stdout.fileno()

    def release(self):
        """The stdout stood in for, with the unfinished line written to it."""
        self.stdout.write(self.pending)
        self.stdout.flush()
        return self.stdout


@contextmanager
def _bar(*columns, after: float | None = None):
    """A transient rich progress bar on stderr, shown once ``after`` seconds (default ``SHOW_AFTER``) have passed."""
    from rich.progress import Progress

    # redirect_stdout=False: rich would send data lines printed while the bar is live to stderr where stdout is a
    # pipe, and mark up a JSON array's unfinished line where it is a terminal (_Delayed does that case itself).
    bar = Progress(*columns, console=stderr, transient=True, redirect_stdout=False, redirect_stderr=False)
    delayed = _Delayed(bar, SHOW_AFTER if after is None else after)
    try:
        yield bar
    finally:
        delayed.close()


class LineCount:
    """About how many pairs a streamed input holds: the lines of its files, counted in a thread (a large file takes
    seconds; a gzipped one is decompressed to count them), less ``done`` (pairs a resumed run skips). ``value`` stays
    ``None`` until counted, and where a source is stdin, a JSON array (whose lines are no pairs), Parquet or cannot
    be read (the run itself says why)."""

    def __init__(self, sources: list[str], done: int = 0):
        self.value: int | None = None
        self.thread = None
        if sources and all(s != "-" and os.path.isfile(s) for s in sources):
            self.thread = threading.Thread(target=self._count, args=(sources, done), daemon=True)
            self.thread.start()

    def _count(self, sources: list[str], done: int) -> None:
        import gzip
        import zlib

        lines = 0
        for source in sources:
            try:
                with (gzip.open if source.endswith(".gz") else open)(source, "rb") as handle:
                    block = handle.read(1 << 20)
                    if block.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[") or block.startswith(b"PAR1"):
                        return  # a JSON array's lines, or a Parquet file's bytes, are no count of pairs
                    while block:
                        lines += block.count(b"\n") + (len(block) < 1 << 20 and not block.endswith(b"\n"))
                        block = handle.read(1 << 20)
            except (OSError, EOFError, zlib.error):  # unreadable, or a gzip file cut short: no count
                return
        self.value = max(lines - done, 0)

    def left(self, done: int, seconds: float) -> str:
        """``of about N, M:SS left`` once counted and under way, else nothing."""
        eta = self.eta(done, seconds)
        return f"of about {self.value:,}, {eta} left" if eta else ""

    def total(self, done: int) -> int | None:
        """The count, where there is one and ``done`` has not passed it."""
        return self.value if self.value and done < self.value else None

    def eta(self, done: int, seconds: float) -> str | None:
        """The time left (``M:SS``) at the pace of ``done`` in ``seconds``, once counted and under way."""
        total = self.total(done)
        return _clock(seconds * (total - done) / done) if total and done else None


@contextmanager
def progress(total: int | None, what: str, after: float | None = None, estimate: LineCount | None = None,
             unit: str = "pairs"):  # fmt: skip
    """A progress bar on stderr when stderr is a terminal, once the work has run ``after`` seconds (default
    ``SHOW_AFTER``; 0: at once); yields a callback taking finished counts (of ``unit``). With ``total=None``
    (streamed input, length unknown) it counts instead, with the time left where an ``estimate`` of the total comes,
    and where stderr is a log writes a line now and then."""
    if not animated(stderr) or total == 0:
        lines = _CountLines(what, estimate, unit) if total is None else None
        yield lines or (lambda n: None)
        if lines is not None:  # not after an error or Ctrl-C: their own lines say how far the work got
            lines.finish()
        return
    from rich.progress import MofNCompleteColumn, TextColumn, TimeRemainingColumn

    # One line, whatever the width, read at each redraw (it wrapped at 80 columns, spread over five at 50, and
    # again in a pane narrowed mid-run): the bar narrows, and the status after it says what fits beside it.
    if total is None:  # no end to show: how many (of about how many), how fast, for how long, and the time left

        def bar_width() -> int:
            return _bar_width(stderr.width - 68)

        room = lambda: stderr.width - len(what) - bar_width() - 2  # noqa: E731
        columns = (
            TextColumn("{task.description}", markup=False),
            _fit_bar(bar_width),
            _status_column(estimate, room, unit),
        )
    else:
        columns = (TextColumn("{task.description}", markup=False), _fit_bar(lambda: _bar_width(stderr.width - 40)),
                   MofNCompleteColumn(), TextColumn(unit), TimeRemainingColumn())  # fmt: skip
    with _bar(*columns, after=after) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _bar_width(room: int) -> int:
    return max(8, min(40, room))


def _fit_bar(width):
    """A bar column ``width()`` cells wide, asked at each redraw."""
    from rich.progress import BarColumn

    class FitBar(BarColumn):
        def render(self, task):
            self.bar_width = width()
            return super().render(task)

    return FitBar()


def _status_column(estimate: LineCount | None, room, unit: str = "pairs"):
    """A progress column of a streamed count in ``room`` characters (a number, or a function giving it at each
    redraw): ``1,024 of ~4,000 pairs 270 pairs/s 0:00:09 0:12 left``, where the time so far goes first if it does
    not fit, then the rate, then the count's total; what still does not fit is cut, never wrapped."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Status(ProgressColumn):
        def render(self, task) -> Text:
            width = room() if callable(room) else room
            done, elapsed = int(task.completed), task.elapsed or 0.0
            total = estimate.total(done) if estimate is not None else None
            rate = done / elapsed if done and elapsed else 0.0
            count = (f"{done:,} of ~{total:,} {unit}" if total else _counted(done, unit), "progress.download")
            speed = (f"{rate:,.0f} {unit}/s" if rate >= 100 else f"{rate:.1f} {unit}/s" if rate else "",
                     "progress.data.speed")  # fmt: skip
            so_far = (_clock(elapsed, hours=True), "progress.elapsed")
            eta = estimate.eta(done, elapsed) if estimate is not None else None
            left = (f"{eta} left" if eta else "", "progress.remaining")
            for parts in ([count, speed, so_far, left], [count, speed, left], [count, left],
                          [(_counted(done, unit), count[1]), left], [(_counted(done, unit), count[1])]):  # fmt: skip
                parts = [p for p in parts if p[0]]
                if sum(len(p[0]) + 1 for p in parts) - 1 <= width:
                    break
            said = Text(" ").join(Text(*p) for p in parts)
            said.no_wrap, said.overflow = True, "ellipsis"
            return said

    return Status()


def _counted(n: int, unit: str) -> str:
    """``1 document``, ``2 documents``: a count of a plural ``unit``."""
    one = {"queries": "query"}.get(unit, unit.removesuffix("s"))
    return plural(n, one, unit)


class _CountLines:
    """Streamed progress where stderr is not a terminal (a log of a long ``qrr score``): a line at most every
    ``interval`` s, as ``_Lines`` writes for a rerank."""

    interval = 60.0

    def __init__(self, what: str, estimate: LineCount | None = None, unit: str = "pairs"):
        self.what, self.done, self.estimate, self.unit = what, 0, estimate, unit
        self.start = self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        left = self.estimate.left(self.done, elapsed) if self.estimate is not None else ""
        self._say(elapsed, left)

    def finish(self) -> None:
        """The last line, where earlier ones were written: a log of an overnight run ended with its last minute's."""
        if self.last > self.start:
            self._say(max(time.monotonic() - self.start, 1e-9), "done")

    def _say(self, elapsed: float, after: str) -> None:
        stderr.print(f"{self.what}: {_counted(self.done, self.unit)} in {_clock(elapsed)}, "
                     f"{self.done / elapsed:,.1f} {self.unit}/s{f'; {after}' if after else ''}",
                     highlight=False)  # fmt: skip


class _Lines:
    """Progress where stderr is not a terminal (a log of a long run): a line at most every ``interval`` s."""

    interval = 60.0

    def __init__(self, queries: int, pairs: int):
        self.queries, self.total = queries, pairs
        self.done_queries = self.done_pairs = 0
        self.start = self.last = time.monotonic()

    def pairs(self, n: int) -> None:
        self.done_pairs += n

    def query(self, qid: str) -> None:
        self.done_queries += 1
        now = time.monotonic()
        if now - self.last < self.interval or self.done_queries == self.queries:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed * (self.total - self.done_pairs) / self.done_pairs if self.done_pairs else 0.0
        stderr.print(f"reranked {self.done_queries}/{self.queries} queries in {_clock(elapsed)}, "
                     f"about {_clock(left)} left", highlight=False)  # fmt: skip

    def finish(self) -> None:
        """The last line, where earlier ones were written: a job's log ended at "reranked 674/800 queries", as if the
        run had died there."""
        if self.last > self.start:
            elapsed = time.monotonic() - self.start
            stderr.print(f"reranked {self.done_queries}/{self.queries} queries in {_clock(elapsed)}; done",
                         highlight=False)  # fmt: skip


def _clock(seconds: float, hours: bool = False) -> str:
    """``M:SS``, or ``H:MM:SS`` where there are hours (always, with ``hours``)."""
    minutes, secs = divmod(int(seconds), 60)
    h, minutes = divmod(minutes, 60)
    return f"{h}:{minutes:02}:{secs:02}" if h or hours else f"{minutes}:{secs:02}"


class _Bar:
    def __init__(self, bar, task):
        self.bar, self.task, self.done = bar, task, 0

    def pairs(self, n: int) -> None:
        self.bar.advance(self.task, n)

    def query(self, qid: str) -> None:
        self.done += 1
        self.bar.update(self.task, queries=self.done)


@contextmanager
def query_progress(queries: int, pairs: int):
    """Progress over queries on stderr: a bar (moved by each batch of pairs, so it moves inside long queries; shown
    once the work has run ``SHOW_AFTER`` seconds) on a terminal, else a line now and then. Yields an object with
    ``pairs(n)`` and ``query(qid)``."""
    if not animated(stderr):
        lines = _Lines(queries, pairs)
        yield lines
        lines.finish()  # not after an error or Ctrl-C: their own lines say how far the work got
        return
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("reranking"), BarColumn(bar_width=_bar_width(stderr.width - 52)),
               TextColumn(f"{{task.fields[queries]}}/{queries} queries"),
               TimeElapsedColumn(), TextColumn("·"), TimeRemainingColumn(), TextColumn("left"))  # fmt: skip
    with _bar(*columns) as bar:
        yield _Bar(bar, bar.add_task("reranking", total=pairs, queries=0))


# ---------------------------------------------------------------------------------------------------- notes


class Skipped:
    """Collects what --on-error skip passes over (bad lines, by default), and reports it on stderr."""

    shown = 20

    def __init__(self, what: str = "bad line", noun: bool = True):
        self.what, self.noun = what, noun  # a noun is counted ("3 bad lines"), a phrase follows the count as it is
        self.count = 0
        self.files = 0  # of the count: whole files left out (UTF-16 text, say), not lines
        self.messages: list[str] = []
        self.wholes: set[str] = set()  # the messages of those files
        self._lock = threading.Lock()  # called from a thread that reads ahead too (qrr score)

    def __call__(self, error: InputError) -> None:
        with self._lock:
            self.count += 1
            self.files += isinstance(error, SourceError)
            if len(self.messages) < self.shown:
                self.messages.append(error.naming(flag))
                if isinstance(error, SourceError):
                    self.wholes.add(self.messages[-1])

    def took(self, logged: tuple[int, list[InputError]]) -> None:
        """What an ``ErrorLog`` of Ray's read tasks and actors collected (``report()``), in place of its own."""
        count, errors = logged
        self.count, self.messages = count, [error.naming(flag) for error in errors]
        self.files = sum(isinstance(error, SourceError) for error in errors)  # among the first kept: few files
        self.wholes = {error.naming(flag) for error in errors if isinstance(error, SourceError)}

    def report(self) -> None:
        if not self.count:
            return
        rest = self.count - self.files
        said = plural(rest, self.what) if self.noun else f"{rest:,} {self.what}"
        if self.files:  # a file left out whole is no "bad line": all of its records are gone
            said = f"{plural(self.files, 'whole file')}{f' and {said}' if rest else ''}"
        stderr.print(f"skipped {said}:", style="yellow", highlight=False)
        for message in sorted(self.messages, key=_place(self.messages, self.wholes)):
            stderr.print(f"  {unseen(message)}", highlight=False, markup=False)
        if self.count > len(self.messages):
            stderr.print(f"  … and {self.count - len(self.messages)} more", highlight=False)


def _place(messages: list[str], wholes: Collection[str] = ()):
    """A sort key putting ``FILE:LINE: ...`` messages in the order of their files (as first named) and lines: a
    bad line is told as it is read, a query too long as it is scored, a chunk later. Others keep their order."""
    import re

    files: dict[str, int] = {}
    for message in messages:
        if found := re.match(r"(.+?):(\d+): ", message):
            files.setdefault(found[1], len(files))
        elif message in wholes:  # a file skipped whole (FILE: UTF-16 text): its place among the files, as read
            files.setdefault(message, len(files))

    def key(message: str) -> tuple[int, int]:
        found = re.match(r"(.+?):(\d+): ", message)
        if found:
            return files[found[1]], int(found[2])
        return (files[message], 0) if message in wholes else (len(files), 0)

    return key


class Blanks:
    """Counts the records with a blank text as they pass (``{"text": ""}`` is scored as any text is, and an empty
    document can rank first), to warn of them after the run: ``noun`` and ``nouns`` say such a record
    (``blank document``), ``texts`` are the fields that must not be blank."""

    shown = 3

    def __init__(self, noun: str, nouns: str, texts: tuple[str, ...]):
        self.noun, self.nouns, self.texts = noun, nouns, texts
        self.count = 0
        self.where: list[str] = []

    def passing(self, records):
        """``records``, counted on their way."""
        for record in records:
            if any(not getattr(record, name).strip() for name in self.texts):
                self.see(getattr(record, "where", None))
            yield record

    def see(self, where: str | None) -> None:
        """One more blank record, at ``where`` (``None``: the input does not say)."""
        self.count += 1
        if len(self.where) < self.shown:
            self.where.append(where or "?")

    def saw(self, count: int, where: list[str | None]) -> None:
        """``count`` blank records counted elsewhere (by Ray's actors), the first at ``where`` (each place said
        once: a Parquet row's is its file)."""
        self.count += count
        self.where += list(dict.fromkeys(w for w in where if w and w not in self.where))[: self.shown - len(self.where)]

    def report(self) -> None:
        if not self.count:
            return
        where = ", ".join(self.where) + (", …" if self.count > len(self.where) else "")
        where = f" ({where})" if self.where else ""
        stderr.print(f"warning: {plural(self.count, self.noun, self.nouns)}{where} scored as given: such a score "
                     "says nothing of relevance", style="yellow", highlight=False, markup=False)  # fmt: skip


def skipping(policy, what: str = "bad line", noun: bool = True) -> Skipped | None:
    """A collector for ``--on-error skip``; ``None`` (stop at the first) for ``fail``."""
    return Skipped(what, noun) if policy.value == "skip" else None


def cut_to(reranker) -> str:
    """The length a reranker cuts documents to, as a note says it: ``--max-length 512``, or the server's (which
    ``--max-length`` here does not change)."""
    if getattr(reranker, "url", None) is not None:  # a RemoteReranker
        return f"the server's max length {reranker.max_length}"
    return f"--max-length {reranker.max_length}"


def report(stats, limit: str, verbose: bool, skipped: Skipped | None = None, cut: list[str] = ()) -> None:
    """After a run, on stderr: what was skipped, how many documents were cut to ``limit`` (``cut_to``; ``cut``:
    where the first few came from), and with -v the speed."""
    if skipped is not None:
        skipped.report()
    if stats.truncated:
        where = f" ({', '.join(cut)}{', …' if stats.truncated > len(cut) else ''})" if cut else ""
        stderr.print(f"note: {plural(stats.truncated, 'document')} cut to {limit}{where}",
                     style="yellow", highlight=False, markup=False)  # fmt: skip
    # stats.pairs is 0 where the work ran elsewhere (Ray), which says its own speed
    if verbose and stats.pairs:
        rate = stats.pairs / stats.seconds if stats.seconds else 0.0
        stderr.print(f"scored {plural(stats.pairs, 'pair')} ({plural(stats.tokens, 'token')}) in "
                     f"{stats.seconds:.2f} s, {rate:.1f} pairs/s", highlight=False)  # fmt: skip


def no_input(fmt: str, skipped: Skipped | None, noun: str, verb: str, verbose: bool,
             done: int = 0, output=None) -> None:  # fmt: skip
    """An input that holds no ``noun`` (pair, document) to ``verb``: the empty result written (``[]`` for JSON)
    and said (on a terminal, or with ``verbose``); exit 2 where every line was bad (a script should not take it
    for a good run). ``done``: what a resumed output holds already, which makes an input with nothing left a good
    one; ``output``: that output (see ``nothing_left``)."""
    if skipped is not None:
        skipped.report()
    if skipped is not None and skipped.count and not done:
        raise all_bad(skipped, noun, verb)
    if fmt != "table":  # a resumed output's rows went to its file: no header here
        header = SCORE_FIELDS if noun == "pair" else ("rank", *SCORE_FIELDS)
        writer(fmt).close(() if done else header)
    if done:
        stderr.print(nothing_left(verb, output), highlight=False)
    elif verbose or stderr.is_terminal:  # a person sees why nothing came; a script's log stays quiet
        stderr.print(f"no {noun}s in the input")


def all_bad(skipped: Skipped, noun: str, verb: str, unit: str = "line") -> InputError:
    """The error of a run whose every line (``unit``: a Parquet file's row) was skipped: a script should not take it
    for a good run."""
    if skipped.files:  # a UTF-16 file is no bad line
        return InputError(f"nothing of the input could be read ({skipped.count:,} skipped): no {noun} to {verb}")
    return InputError(f"every {unit} of the input was bad ({skipped.count:,} skipped): no {noun} to {verb}")


def crash_zeros(path: str, count: int) -> str:
    """The note on a --resume file that ended in ``count`` NUL bytes (``zero_tail``), dropped."""
    return (
        f"{path}: it ended in {plural(count, 'zero byte')}, what a machine's crash leaves of writes that never "
        "reached the disk; they are dropped, with the line they cut, and what they held is scored again"
    )


def nothing_left(verb: str, output=None) -> str:
    """What a finished --resume file (``output``, a ``pipelines`` output) gets: a resume that scores nothing loads no
    model, so where no record of the file's settings was kept beside it, or it names another model, the check that
    the file was written with these settings (another instruction, say) is not made; it says so."""
    if output is not None and output.settings_kept:  # a record was kept, and matched
        return f"nothing left to {verb}"
    kept, now = ((output.kept or {}).get("model"), (output.settings or {}).get("model")) if output else (None, None)
    if kept is not None and now is not None and kept != now:  # a note that said nothing of the name it had
        from qrr.pipelines.files import shown

        return (f"nothing left to {verb} (its record names --model {shown(kept)}, not {shown(now)}; no model was "
                "loaded to tell one model named two ways from two models)")  # fmt: skip
    return f"nothing left to {verb} (no model was loaded, so its results were not checked against these settings)"


def unrecorded(output) -> None:
    """Say where a --resume file goes on without a record of its settings beside it (written to stdout first, or
    copied alone): only scoring some of its results again checks them, and a small change passes that."""
    from qrr.pipelines import settings_path

    if not (output.path and output.held and output.settings):
        return
    if output.kept is None:
        stderr.print(f"note: {output.path} has no record of the settings it was written with "
                     f"({settings_path(output.path)}): go on only with the model, --instruction, --max-length, "
                     "--recipe and --dtype it was written with", style="yellow", highlight=False)  # fmt: skip
        return
    # a model is told by scoring a result again, and a dtype is within its tolerance
    unknown = [flag(k) for k in output.unknown if k not in ("model", "dtype")]
    if unknown:
        said = unknown[0] if len(unknown) == 1 else f"{', '.join(unknown[:-1])} and {unknown[-1]}"
        stderr.print(f"note: the record of {output.path}'s settings ({settings_path(output.path)}) does not say the "
                     f"{said} it was written with (a server that did not say it): go on only with that",
                     style="yellow", highlight=False)  # fmt: skip
