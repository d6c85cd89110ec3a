from __future__ import annotations

import pytest

from qrr.errors import InputError
from qrr.prompt import DEFAULT_INSTRUCTION, Prompter, format_body
from tests.tiny import tokenizer_files

SUFFIX_IDS = [151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_files())


def test_frame_and_head_ids(tokenizer):
    p = Prompter(tokenizer)
    assert len(p.prefix_ids) == 39
    assert p.suffix_ids == SUFFIX_IDS
    assert (p.yes_id, p.no_id) == (9693, 2152)
    assert p.body_budget == 8192 - 39 - 9


def test_body_format():
    assert format_body("q", "d") == f"<Instruct>: {DEFAULT_INSTRUCTION}\n<Query>: q\n<Document>: d"
    assert format_body("q", "d", "task") == "<Instruct>: task\n<Query>: q\n<Document>: d"


def test_body_is_tokenized_as_one_string(tokenizer):
    # The space after "<Document>:" merges with the document's first word: pieces tokenized apart differ.
    p = Prompter(tokenizer)
    (enc,) = p.encode([("q", "The answer", None)])
    whole = tokenizer.encode(format_body("q", "The answer"), add_special_tokens=False)
    assert enc.ids == p.prefix_ids + whole + p.suffix_ids
    assert not enc.truncated


def test_truncation_cuts_the_body_tail_and_keeps_the_suffix(tokenizer):
    p = Prompter(tokenizer, max_length=100)
    (enc,) = p.encode([("q", "word " * 400, None)])
    assert enc.truncated and len(enc.ids) == 100
    assert enc.ids[-9:] == SUFFIX_IDS and enc.ids[:39] == p.prefix_ids
    body = tokenizer.encode(format_body("q", "word " * 400), add_special_tokens=False)
    assert enc.ids[39:-9] == body[: 100 - 48]


def test_query_without_room_for_the_document_is_an_error(tokenizer):
    p = Prompter(tokenizer, max_length=90)
    with pytest.raises(InputError, match="pair 1: the query and instruction take"):
        p.encode([("short", "doc", None), ("long query " * 30, "doc", None)])


def test_max_length_must_exceed_the_frame(tokenizer):
    with pytest.raises(InputError, match="prompt frame alone takes 48 tokens"):
        Prompter(tokenizer, max_length=48)
    assert Prompter(tokenizer, max_length=49).body_budget == 1
