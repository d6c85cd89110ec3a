"""The README and the pages under docs/: every link between them reaches a file and a heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)", flags=re.M)  # [name]: target, for [text][name]


def _prose(path: Path) -> str:
    """The page without its fenced code blocks (``` or ~~~, indented or not), where brackets are code, not links."""
    return re.sub(r"^\s*(```|~~~).*?^\s*\1", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)


def _anchors(path: Path) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation but - and _ dropped, spaces as -."""
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _links(path: Path) -> list[str]:
    prose = _prose(path)
    # a link of another form ([text](target "title"), a space in it) would go unread: every "](" must be one
    assert prose.count("](") == len(LINK.findall(prose)), path
    return [t for t in LINK.findall(prose) + REFERENCE.findall(prose) if not re.match(r"[a-z]+:", t)]


def test_the_anchors_are_github_s():
    assert {"choosing-a-size-qrr-bench", "settings-kept-beside-a---resume-file", "the---server-client"} <= set().union(
        *(_anchors(p) for p in PAGES)
    )
    # a link this test reads, and one it must leave to the web
    assert _links(ROOT / "README.md")[:1] == ["#usage"]
    assert "https://huggingface.co/Qwen/Qwen3-Reranker-0.6B" in LINK.findall(_prose(ROOT / "README.md"))


def test_links_of_other_forms_are_read_or_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n~~~\n[code](nowhere.md)\n~~~\n\nSee [it][r].\n\n[r]: other.md#top\n")
    assert _links(page) == ["other.md#top"]
    page.write_text('# Top\n\nSee [it](other.md "a title").\n')
    with pytest.raises(AssertionError):
        _links(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_reaches_a_file_and_a_heading(page):
    broken = []
    for target in _links(page):
        name, _, anchor = target.partition("#")
        path = (page.parent / name).resolve() if name else page
        if not path.exists() or (anchor and path.is_file() and anchor not in _anchors(path)):
            broken.append(target)
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _links(ROOT / "README.md")}
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p not in linked] == []


def test_the_changelog_says_each_kind_of_change_once_a_release():
    # a second "### Added" far down the Unreleased section went unread by one skimming the first
    releases = re.split(r"^## ", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)[1:]
    assert releases[0].startswith("Unreleased\n")
    for release in releases:
        kinds = re.findall(r"^### (.+)$", release, flags=re.M)
        assert sorted(kinds) == sorted(set(kinds)) and set(kinds) <= {"Added", "Changed", "Fixed", "Removed"}, kinds
