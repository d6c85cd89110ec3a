"""How results look on a terminal: tables that never split a number or an id, input's control characters written
out, and streams that never fail on a character."""

from __future__ import annotations

import io
import json
import sys

import pytest

from qrr.cli import base, render
from qrr.errors import InputError
from tests.clitools import ok

UUID = "doc-3f2a9c1e-7b4d-4e5f-9a8b-1c2d3e4f5a6b"
DOCS = "".join(json.dumps(d) + "\n" for d in [
    {"id": UUID, "text": "The capital of China is Beijing, a city of many people."},
    {"id": "x[/]y", "text": "red \x1b[31mALERT\x1b[0m and a title \x1b]0;pwned\x07 done"},
    {"id": "id\x1b[7mrev", "text": "plain"},
])  # fmt: skip


def test_control_characters_and_brackets_in_the_input_are_shown_as_written(cli, monkeypatch):
    """A document's escape sequences recoloured the terminal and retitled it; an id with [/] was a MarkupError."""
    monkeypatch.setenv("COLUMNS", "140")
    table = ok(cli("rank", "-q", "q", "-f", "table", input=DOCS))
    assert "\x1b" not in table and "\x07" not in table
    assert "x[/]y" in table and "id\\x1b[7mrev" in table and "red \\x1b[31mALERT\\x1b[0m and a title \\x1b]0;" in table
    result = cli("rank", "-q", "q", input=json.dumps({"te\x1bxt": "a"}) + "\n")
    assert (result.exit_code, result.stderr) == (2, 'error: <stdin>:1: missing field "text"; the object\'s text is in '
                                                    '"te\\x1bxt": name one with --text-field\n')  # fmt: skip
    assert base.visible("a\tb\nc\x9bd\x7fé") == "a\\tb\\nc\\x9bd\\x7fé"
    assert base.visible("id-\u202e321\u2066x\u2028") == "id-\\u202e321\\u2066x\\u2028"  # reordering what follows


def rows_of(table: str) -> list[str]:
    return [line.rstrip() for line in table.splitlines()]


def test_field_names_and_titles_are_shown_as_written_and_measured_in_cells(monkeypatch, capsys):
    """With --with-fields an input's keys are headers: x[/]y failed the table, an escape reached the terminal, and
    CJK keys measured by len squeezed the id column away."""
    monkeypatch.setenv("COLUMNS", "90")
    wide = "标签标签标签标签标签标签标签标签"  # 16 characters, 32 cells
    render.write_table([{"id": UUID, "x[/]y": 1, "k\x1b[31mred": 2, wide: "v"}], title="runs of q[/]x")
    table = capsys.readouterr().out
    assert "\x1b" not in table and "x[/]y" in table and "k\\x1b[31mred" in table and "runs of q[/]x" in table
    assert UUID in table  # whole: the table did not fit, so each row is a block
    monkeypatch.setenv("COLUMNS", "30")  # in blocks too
    render.write_table([{"k\x1b[31mred": 2, "id": UUID}], title="q[/]\x07")
    assert rows_of(capsys.readouterr().out)[:3] == ["q[/]\\x07", "k\\x1b[31mred 2", f"id           {UUID[:17]}"]


def test_a_narrow_terminal_drops_bars_and_previews_then_writes_blocks_and_never_splits_an_id_or_a_number(
    cli, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "80")  # the id whole on its row; no room for the text preview beside it
    lines = rows_of(ok(cli("rank", "-q", "q", "-f", "table", input=DOCS)))
    assert lines[0].split() == ["rank", "┃", "index", "┃", "score", "┃", "id", "┃", "text"]  # previews before bars
    assert sum(UUID in line for line in lines) == 1 and all(len(line) <= 80 for line in lines)
    monkeypatch.setenv("COLUMNS", "60")  # the id would fold beside the scores: a block of lines per result
    lines = rows_of(ok(cli("rank", "-q", "q", "-f", "table", input=DOCS)))
    assert lines[:2] == ["rank  1", f"index {lines[1].split()[1]}"]
    assert f"id    {UUID}" in lines and "id    x[/]y" in lines and lines.count("") == 2  # a blank line between two
    assert [line.split()[0] for line in lines if line] == ["rank", "index", "score", "id", "text"] * 3
    assert all(len(line) <= 60 for line in lines)
    score = next(line for line in lines if line.startswith("score"))
    assert len(score.split()) == 2 and float(score.split()[1]) > 0  # a number, whole, with no bar
    monkeypatch.setenv("COLUMNS", "30")  # a value longer than the line folds on its own line, under its name
    lines = rows_of(ok(cli("rank", "-q", "q", "-f", "table", input=DOCS)))
    assert lines[lines.index(f"id    {UUID[:24]}") + 1] == f"      {UUID[24:]}"
    assert sum(line.startswith("text") and line.endswith("…") and len(line) == 30 for line in lines) == 2  # cut


def test_messages_write_out_what_shows_as_nothing(capsys):
    # a left-to-right mark and a zero-width space in an id: the message showed the id the corpus holds
    assert base.unseen("d\u200e1 d\u200b2 \u0645\u200c\u06cc \U000e0041 \x1b") == (
        "d\\u200e1 d\\u200b2 \u0645\u200c\u06cc \\U000e0041 \\x1b"
    )  # ZWNJ shapes Persian: kept
    skipped = render.Skipped()
    skipped(InputError('<stdin>:1: missing field "text"; the object\'s text is in "bo\u200bdy"'))
    skipped.report()
    assert '"bo\\u200bdy"' in capsys.readouterr().err


def test_a_file_skipped_whole_is_said_as_one(capsys):
    """A file left out whole (UTF-16 text) was "1 bad line", though all of its records were gone."""
    from qrr.errors import SourceError

    skipped = render.Skipped()
    skipped(SourceError("u.jsonl: UTF-16 text"))
    skipped.report()
    assert capsys.readouterr().err == "skipped 1 whole file:\n  u.jsonl: UTF-16 text\n"
    assert str(render.all_bad(skipped, "pair", "score")) == ("nothing of the input could be read (1 skipped): no pair "
                                                             "to score")  # fmt: skip
    skipped(InputError("d.jsonl:3: malformed JSON"))
    skipped(SourceError("v.jsonl: UTF-16 text"))
    skipped(InputError("c.jsonl:2: malformed JSON"))
    skipped(InputError("d.jsonl:2: malformed JSON"))
    skipped.report()  # each in its place, as the files were read: a file skipped whole was listed last
    assert capsys.readouterr().err.splitlines() == [
        "skipped 2 whole files and 3 bad lines:", "  u.jsonl: UTF-16 text", "  d.jsonl:2: malformed JSON",
        "  d.jsonl:3: malformed JSON", "  v.jsonl: UTF-16 text", "  c.jsonl:2: malformed JSON"]  # fmt: skip


def test_previews_are_cut_between_characters_as_people_count_them():
    # cut by code point, a flag showed half (a boxed letter), a family a dangling joiner, an accent went
    assert render._preview("x" * 199 + "🇨🇳🇯🇵") == "x" * 199 + "🇨🇳…"
    assert render._preview("x" * 199 + "e\u0301 more") == "x" * 199 + "e\u0301…"
    family = "👨\u200d👩\u200d👧\u200d👦"
    assert render._preview("x" * 199 + family + " and more") == "x" * 199 + family + "…"
    assert render._cut("x" * 198 + family + "!", "text") == "x" * 198 + family + "…"
    # counted in graphemes, nothing is cut: no ellipsis; one grapheme of a million marks is cut all the same
    assert render._cut(family * 100, "text") == family * 100
    assert len(render._preview("a" + "\u0301" * 1_000_000)) < 2000


def test_previews_asked_for_are_never_left_out(monkeypatch, capsys, cli):
    """`rank --with-text --with-fields` at 55 columns showed the url and no text, while a narrower terminal's
    blocks showed it: a text asked for takes blocks before it gives way."""
    monkeypatch.setenv("COLUMNS", "55")
    rows = [{"rank": 1, "index": 0, "score": 0.4378, "id": "a", "url": "https://example.com/a"}]
    previews = [{"text": "Beijing is the capital of China"}]
    render.write_table(rows, previews=previews)  # shown for a table's sake only: it gives way
    lines = rows_of(capsys.readouterr().out)
    assert lines[0].split() == ["rank", "┃", "index", "┃", "score", "┃", "id", "┃", "url"]
    render.write_table(rows, previews=previews, keep_previews=True)
    lines = rows_of(capsys.readouterr().out)
    assert lines == ["rank  1", "index 0", "score 0.4378", "id    a", "url   https://example.com/a",
                     "text  Beijing is the capital of China"]  # fmt: skip
    docs = json.dumps({"text": "Beijing is the capital of China", "url": "https://example.com/a"}) + "\n"
    asked = rows_of(ok(cli("rank", "-q", "q", "-f", "table", "--with-text", "--with-fields", input=docs)))
    assert asked[-1] == "text  Beijing is the capital of China"
    plain = rows_of(ok(cli("rank", "-q", "q", "-f", "table", "--with-fields", input=docs)))
    assert plain[0].split()[-1] == "url" and "Beijing" not in "".join(plain)


def test_a_long_path_column_folds_where_the_figures_fit_beside_it(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "60")
    path = "/data/runs/" + "a" * 40 + ".trec"
    render.write_table([{"run": path, "nDCG@10": "0.8155"}])
    lines = rows_of(capsys.readouterr().out)
    assert "0.8155" in lines[2] and all(len(line) <= 60 for line in lines)
    assert "".join(line.split("│")[0].strip() for line in lines[2:]) == path


@pytest.mark.parametrize("tty", [False, True])
def test_streams_of_another_encoding_never_fail_on_a_character(monkeypatch, tty):
    """LC_ALL=C with PYTHONUTF8=0, or a latin-1 locale: JSON lines failed with UnicodeEncodeError after the scoring,
    a table at its first bar."""
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    out, err = io.BytesIO(), io.BytesIO()
    stdout, stderr = io.TextIOWrapper(out, encoding="ascii"), io.TextIOWrapper(err, encoding="ascii")
    stdout.isatty = lambda: tty
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    base.text_streams()
    print('{"text":"首都"}', render.bar(0.5, 4), end="")
    print("naïve", file=sys.stderr, end="")
    stdout.flush(), stderr.flush()
    # data for a pipe is UTF-8, as JSON lines are read; a terminal gets what it can show
    assert out.getvalue() == ('{"text":"??"} ##  ' if tty else '{"text":"首都"} ██  ').encode("utf-8")
    assert err.getvalue() == b"na\\xefve"
    # an encoding asked for (PYTHONIOENCODING) stays, and in a pipe its handler too: ids were written "??", exit 0
    monkeypatch.setenv("PYTHONIOENCODING", "latin-1")
    out = _stdout_in(monkeypatch, "latin-1", tty)
    if tty:
        print("é首", end="")
        sys.stdout.flush()
        assert out.getvalue() == "é?".encode("latin-1")
        return
    with pytest.raises(UnicodeEncodeError) as caught:
        print("é首", end="")
    assert base.describe(caught.value) == ("cannot write '首' (U+9996) in the output's encoding, latin-1: leave "
                                           "PYTHONIOENCODING unset for UTF-8, or name an error handler "
                                           "(latin-1:backslashreplace)", 1)  # fmt: skip
    # an encoding error of something else (an HTTP header's) is not blamed on PYTHONIOENCODING
    with pytest.raises(UnicodeEncodeError) as header:
        "密".encode("cp1252")
    assert base.describe(header.value)[0].startswith("UnicodeEncodeError: 'charmap' codec can't encode")
    monkeypatch.delenv("PYTHONIOENCODING")
    assert base.describe(caught.value)[0].startswith("UnicodeEncodeError: 'latin-1' codec can't encode")
    # a handler alone names no encoding: data is UTF-8, as without one
    monkeypatch.setenv("PYTHONIOENCODING", ":replace")
    out = _stdout_in(monkeypatch, "ascii", False)
    print("首", end="")
    sys.stdout.flush()
    assert out.getvalue() == "首".encode()


def _stdout_in(monkeypatch, encoding: str, tty: bool) -> io.BytesIO:
    """sys.stdout as a stream of ``encoding`` (a terminal's where ``tty``), as qrr's commands set it up; its bytes."""
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding=encoding)
    stdout.isatty = lambda: tty
    monkeypatch.setattr(sys, "stdout", stdout)
    base.text_streams()
    return out


@pytest.mark.parametrize(
    "width, total, line",
    [
        (100, 40, r"scoring ━{32} 10 of ~40 pairs [\d.]+ pairs/s 0:00:00 0:0\d left"),
        (50, 40, r"scoring ━{8} 10 of ~40 pairs 0:0\d left"),  # no rate, no time so far
        (80, 10_000_000, r"scoring ━{12} 10 of ~10,000,000 pairs [\d.]+ pairs/s (0:00:00 )?\d+:\d\d:\d\d left"),
        (40, 30_000, r"scoring ━{8} 10 pairs \d+:\d\d left"),  # the count's total goes too
    ],
)
def test_a_streamed_bar_keeps_to_one_line(monkeypatch, width, total, line):
    """It wrapped its time left onto a second line at 80 columns, and spread over five at 50."""
    import re
    import time

    from rich.console import Console

    out = io.StringIO()
    monkeypatch.setattr(render, "stderr", Console(file=out, force_terminal=True, width=width))
    estimate = render.LineCount([])
    estimate.value = total
    with render.progress(None, "scoring", after=0, estimate=estimate) as advance:
        time.sleep(0.1)
        advance(10)
        time.sleep(0.2)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # colours and cursor moves out
    drawn = [part.strip() for part in re.split(r"[\r\n]", shown) if "10 " in part]
    assert drawn and all(re.fullmatch(line, part) and len(part) <= width for part in drawn), drawn


def test_force_color_colours_a_log_without_animating_it(monkeypatch):
    """FORCE_COLOR=1 in a CI job wrote spinner frames into its log."""
    from rich.console import Console

    log = Console(file=io.StringIO())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert Console(file=io.StringIO()).is_terminal and not base.animated(Console(file=io.StringIO()))
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    assert base.animated(log)
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    assert not base.animated(Console(file=io.StringIO(), force_terminal=True))
    monkeypatch.delenv("TTY_INTERACTIVE")
    assert base.animated(Console(file=io.StringIO(), force_terminal=True))


def test_the_status_beside_a_streamed_bar_says_what_fits_its_room():
    """1,234,567 of ~10,000,000 pairs wrapped onto a second line at 80 columns."""
    from types import SimpleNamespace

    estimate = render.LineCount([])
    estimate.value = 10_000_000
    task = SimpleNamespace(completed=1_234_567, elapsed=354.0)
    said = {room: render._status_column(estimate, room).render(task).plain for room in (80, 59, 41, 40, 10)}
    assert said == {
        80: "1,234,567 of ~10,000,000 pairs 3,487 pairs/s 0:05:54 41:53 left",
        59: "1,234,567 of ~10,000,000 pairs 3,487 pairs/s 41:53 left",
        41: "1,234,567 of ~10,000,000 pairs 41:53 left",
        40: "1,234,567 pairs 41:53 left",
        10: "1,234,567 pairs",  # the least it says
    }


def test_bars_stay_where_only_the_previews_cannot(monkeypatch, capsys):
    """Two text previews need 22 columns: at 30 they go, and the bars, which fit, stay (they went too)."""
    monkeypatch.setenv("COLUMNS", "30")
    render.write_table([{"index": 0, "score": 0.5}], previews=[{"query": "q", "document": "d"}])
    lines = rows_of(capsys.readouterr().out)
    assert lines[0].split() == ["index", "┃", "score"] and lines[2].split() == ["0", "│", "0.5000", "█████"]
    monkeypatch.setenv("COLUMNS", "45")  # room for both previews once the bars give way
    render.write_table([{"index": 0, "score": 0.5}], previews=[{"query": "q", "document": "d"}])
    assert rows_of(capsys.readouterr().out)[2].split() == ["0", "│", "0.5000", "│", "q", "│", "d"]
    monkeypatch.setenv("COLUMNS", "100")  # and all of it where it fits
    render.write_table([{"index": 0, "score": 0.5}], previews=[{"query": "q", "document": "d"}])
    assert rows_of(capsys.readouterr().out)[2].split() == ["0", "│", "0.5000", "█████", "│", "q", "│", "d"]
    assert render.bar(float("nan"), 4) == "    "


def test_a_long_field_name_leaves_its_value_room_in_blocks(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "40")
    name = "a_rather_long_metadata_field_name_from_upstream"  # 47 characters: the values went
    render.write_table([{"id": UUID, name: "kept"}])
    lines = rows_of(capsys.readouterr().out)
    assert lines[0].split() == ["id", UUID[:20]] and lines[2].split() == [name[:19], "kept"], lines


def test_a_title_wider_than_its_table_is_said_whole_above_it(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "120")
    title = "experiments/bm25-baseline-runs-2024/qrels-test-2024.txt: 3 judged queries"
    render.write_table([{"run": "a.trec", "MRR@10": "0.5000"}], title=title)
    assert rows_of(capsys.readouterr().out)[0] == title  # it was cut to the table's width, mid-path


def test_a_streamed_bar_follows_the_terminal_as_it_is_resized(monkeypatch):
    import re
    import time

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    monkeypatch.setattr(render, "stderr", console)
    estimate = render.LineCount([])
    estimate.value = 10_000_000
    with render.progress(None, "ranking", after=0, estimate=estimate) as advance:
        advance(1_234_567)
        time.sleep(0.3)
        console.width = 50  # a pane narrowed mid-run
        out.seek(0), out.truncate()
        advance(1)
        time.sleep(0.3)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    drawn = [part.rstrip() for part in re.split(r"[\r\n]", shown) if "pairs" in part]
    assert drawn and all(len(part) <= 50 and re.fullmatch(r"ranking ━{8} 1,234,568 pairs( \d+:\d\d left)?", part)
                         for part in drawn), drawn  # fmt: skip


def test_a_long_cell_is_cut_in_a_table_and_an_id_is_not(monkeypatch, capsys):
    """A copied embedding of 1,024 numbers filled 1,800 lines of a table."""
    monkeypatch.setenv("COLUMNS", "500")
    render.write_table([{"id": "x" * 230, "embedding": list(range(300))}])
    line = rows_of(capsys.readouterr().out)[2]
    cell = json.dumps(list(range(300)), separators=(",", ":"))
    assert line.split("│") == [f" {'x' * 230} ", f" {cell[:199]}…"]


def test_blanks_counted_by_rays_actors_name_each_place_once(monkeypatch):
    """A Parquet row's place is its file: three blank rows of one file said it three times."""
    said = io.StringIO()
    monkeypatch.setattr(render, "stderr", base.Console(file=said, width=200))
    blanks = render.Blanks("pair with a blank query or document", "pairs with a blank query or document", ())
    blanks.saw(4, ["/d/a.parquet", "/d/a.parquet", None, "/d/b.parquet", "/d/c.parquet", "/d/e.parquet"])
    blanks.report()
    assert said.getvalue() == (
        "warning: 4 pairs with a blank query or document (/d/a.parquet, /d/b.parquet, "
        "/d/c.parquet, …) scored as given: such a score says nothing of relevance\n"
    )
    said.seek(0), said.truncate()
    unknown = render.Blanks("blank document", "blank documents", ())
    unknown.saw(2, [None, None])  # from rows whose place no one knows: no empty parentheses
    unknown.report()
    assert said.getvalue() == "warning: 2 blank documents scored as given: such a score says nothing of relevance\n"


def test_a_table_on_an_ascii_stdout_is_laid_out_with_what_it_writes(monkeypatch):
    """Under LC_ALL=C, characters stdout cannot encode are written as "?": replaced after the layout, a row of emoji
    came out shorter than the others and one of combining accents longer."""
    import io

    written = io.BytesIO()
    monkeypatch.setattr(
        sys, "stdout", io.TextIOWrapper(written, encoding="ascii", errors="replace", write_through=True)
    )
    monkeypatch.setenv("COLUMNS", "80")
    rows = [{"rank": 1, "index": 0, "score": 0.5}, {"rank": 2, "index": 1, "score": 0.25}]
    texts = [{"text": "emoji? \U0001f389\U0001f389 time"}, {"text": "e\u0301a\u0301 Zalgo z\u0336\u0336"}]
    render.write_table(rows, title="q\u0301", previews=texts, keep_previews=True)
    lines = written.getvalue().decode("ascii").splitlines()
    assert [line.split("|")[-1] for line in lines[-2:]] == [" emoji? ?? time ", " e?a? Zalgo z?? "]
    assert len({len(line) for line in lines[1:]}) == 1  # every line of the table as wide as the others
