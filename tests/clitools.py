"""Reading what a command printed, for the CLI tests."""

from __future__ import annotations

import orjson


def jsonl(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines()]


def ok(result) -> str:
    """The stdout of a command that succeeded and said nothing on stderr."""
    assert result.exit_code == 0, result.output
    assert result.stderr == "", result.stderr
    return result.stdout


def said(result) -> str:
    """stderr's words on one line."""
    return " ".join(result.stderr.replace("│", " ").split())
