from __future__ import annotations

import pytest

from qrr.errors import InputError
from qrr.family import QWEN3
from qrr.prompt import Prompter

SUFFIX_IDS = [151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]


format_body = QWEN3.format_body


def test_frame_and_head_ids(tokenizer):
    p = Prompter(tokenizer)
    assert len(p.prefix_ids) == 39
    assert p.suffix_ids == SUFFIX_IDS
    assert (p.yes_id, p.no_id) == (9693, 2152)
    assert p.body_budget == 8192 - 39 - 9


def test_body_format():
    assert format_body("q", "d") == f"<Instruct>: {QWEN3.default_instruction}\n<Query>: q\n<Document>: d"
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


def test_a_prompt_that_fits_exactly_is_not_truncated(tokenizer):
    body = tokenizer.encode(format_body("q", "word " * 40), add_special_tokens=False)
    fits = Prompter(tokenizer, max_length=48 + len(body))  # the frame's 48 tokens and the body, to the token
    (enc,) = fits.encode([("q", "word " * 40, None)])
    assert not enc.truncated and enc.ids == fits.prefix_ids + body + SUFFIX_IDS
    (enc,) = Prompter(tokenizer, max_length=47 + len(body)).encode([("q", "word " * 40, None)])
    assert enc.truncated and enc.ids[39:-9] == body[:-1]


def test_query_without_room_for_the_document_is_an_error(tokenizer):
    p = Prompter(tokenizer, max_length=90)
    with pytest.raises(InputError, match="pair 1: the query and instruction take"):
        p.encode([("short", "doc", None), ("long query " * 30, "doc", None)])


def test_a_query_that_takes_every_token_left_says_none_is_left_for_a_document(tokenizer):
    """It said "take 26 tokens, but max_length 74 leaves 26", as if they fit."""
    p = Prompter(tokenizer, max_length=74)
    with pytest.raises(InputError) as caught:
        p.check_room("q")
    assert str(caught.value) == (
        "the query and instruction take all 26 tokens that max_length 74 leaves for query, instruction and document "
        "together (the prompt frame takes 48), none for a document; raise max_length or shorten the query"
    )
    with pytest.raises(InputError, match="^the query and instruction take 26 tokens, but max_length 73 leaves 25 "):
        Prompter(tokenizer, max_length=73).check_room("q")


def test_max_length_must_exceed_the_frame(tokenizer):
    with pytest.raises(InputError, match="prompt frame alone takes 48 tokens") as caught:
        Prompter(tokenizer, max_length=48)
    assert caught.value.params == ("max_length",)
    assert Prompter(tokenizer, max_length=49).body_budget == 1
    # up to the model's positions, and not one more
    assert Prompter(tokenizer, max_length=40960, positions=40960).max_length == 40960
    with pytest.raises(InputError, match="^max_length 40961 is more than the model's 40960 positions"):
        Prompter(tokenizer, max_length=40961, positions=40960)


def test_one_prompter_serves_threads(tokenizer):
    import threading

    p = Prompter(tokenizer, max_length=200)
    triples = [(f"query {n}", "word " * (n * 7 % 300), None) for n in range(200)]
    alone = p.encode(triples)
    got = {}

    def run(key):
        got[key] = [p.encode(triples[i : i + 7]) for i in range(0, len(triples), 7)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for parts in got.values():
        assert [e for part in parts for e in part] == alone


@pytest.mark.parametrize("recipe", ["transformers", "vllm"])
def test_a_document_far_past_the_budget_is_cut_before_tokenizing_to_the_same_ids(tokenizer, recipe):
    """A one-line document of megabytes was tokenized whole (gigabytes of memory) to keep its first tokens."""
    p = Prompter(tokenizer, max_length=256, recipe=recipe)
    assert p.max_chars == 2 * 256 * max(len(t) for t in tokenizer.get_vocab())
    long = "x" + "=" * (p.max_chars + 5000) + " tail words"
    seen = []

    class Spy:  # the texts the tokenizer is given
        def __call__(self, texts, **kwargs):
            seen.extend(len(t) for t in texts)
            return tokenizer(texts, **kwargs)

        def __getattr__(self, name):
            return getattr(tokenizer, name)

    p.tokenizer = Spy()
    cut = p.encode([("q", long, None)])
    assert seen[0] < p.max_chars + 1000 < len(long)  # the tail was dropped first
    p.max_chars = None  # tokenized whole
    assert cut == p.encode([("q", long, None)]) and cut[0].truncated and seen[1] > len(long)


def test_a_cut_to_some_tokens_tokenizes_only_what_can_reach_them(tokenizer):
    """The server's max_tokens_per_doc tokenized a document of megabytes whole to keep its first tokens."""
    p = Prompter(tokenizer, max_length=256)
    long = "word " * 200_000 + "tail"
    seen = []
    p._encode = lambda text, encode=p._encode: seen.append(len(text)) or encode(text)
    cut = p.cut(long, 20)
    assert seen == [20 * p.token_chars] and cut == "word " * 19 + "word"
    assert p.cut("a few words", 20) == "a few words"
    p.token_chars = None  # tokenized whole, to the same cut
    assert p.cut(long, 20) == cut and seen[-1] == len(long)


def test_a_cut_through_a_character_of_several_tokens_leaves_it_out(tokenizer):
    # byte-level tokens: a cut inside an emoji decoded to U+FFFD, a character the document never held, and scored
    p = Prompter(tokenizer, max_length=256)
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467 family photo"
    ids = p._encode(family)
    cuts = [tokenizer.decode(ids[:n]) for n in range(1, len(ids))]
    assert any(c.endswith("\ufffd") for c in cuts)  # where the tokenizer alone decodes half a character
    for n in range(1, len(ids)):
        cut = p.cut(family, n)
        assert "\ufffd" not in cut and family.startswith(cut)
    assert p.cut("\ufffd\ufffd kept", 1) == "\ufffd\ufffd"  # ones the document held stay
