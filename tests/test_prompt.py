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


def _message(prompter, query):
    with pytest.raises(InputError) as caught:
        prompter.check_room(query)
    return str(caught.value)


def test_a_query_that_takes_every_token_left_says_a_document_would_keep_one_token_at_most(tokenizer):
    """It said "take 26 tokens, but max_length 74 leaves 26", as if they fit; then "none for a document", where the
    recipe keeps one token: the space before the document, merged with its start (" The") where they merge."""
    p = Prompter(tokenizer, max_length=74)
    with pytest.raises(InputError) as caught:
        p.check_room("q")
    assert str(caught.value) == (
        "the query and instruction take all 26 tokens that max_length 74 leaves for query, instruction and document "
        "together (the prompt frame takes 48): a document would keep one token at most; raise max_length or shorten "
        "the query"
    )
    # a chat recipe's system message counts as frame, not as the query's: it said "take all 65 tokens ... (the
    # prompt frame takes 9)"
    assert str(caught.value) == _message(Prompter(tokenizer, max_length=74, recipe="vllm"), "q")
    body = p.family.format_body("q", "The answer", None, p.recipe.name)
    assert tokenizer.decode(tokenizer.encode(body)[: p.body_budget][-1]) == " The"
    said = "the query and instruction take 26 tokens, but max_length 73 leaves 25 "
    assert _message(Prompter(tokenizer, max_length=73), "q").startswith(said)
    assert _message(Prompter(tokenizer, max_length=73, recipe="vllm"), "q") == _message(Prompter(tokenizer, 73), "q")


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
    assert cut == p.encode([("q", long, None)]) and cut[0].truncated and seen[-1] > len(long)


def _kinds_of_text(n: int) -> dict[str, str]:
    import random
    import string

    rng = random.Random(0)
    pick = lambda alphabet, k: "".join(rng.choice(alphabet) for _ in range(k))  # noqa: E731
    han = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000))
    return {
        "words": " ".join(pick(string.ascii_lowercase, rng.randint(1, 10)) for _ in range(n // 6)),
        "han without punctuation": pick(han, n),  # one pre-token: the cut falls inside it
        "dna": pick("ACGT", n),
        "base64": pick(string.ascii_letters + string.digits + "+/", n),
        "emoji and accents": pick("😀🎉👍🏽🇨🇳é\u0301ñ", n),
        # up to 128 characters a token, and 64: the first cut is too short for these two
        "runs of spaces": "".join(rng.choice([" " * rng.randint(1, 300), "word", "\n"]) for _ in range(n // 40)),
        "rules": "=" * n + " tail",
    }


@pytest.mark.parametrize("recipe", ["transformers", "vllm"])
def test_a_long_document_is_cut_short_first_and_gets_the_ids_of_the_whole(tokenizer, recipe, monkeypatch):
    """The first cut (FIRST_CHARS a token of the budget) gives the ids the whole text gives, whatever the text; a
    text of more characters a token is cut again where nothing past can reach its first tokens."""
    from qrr import prompt

    p = Prompter(tokenizer, max_length=256, recipe=recipe)
    whole = Prompter(tokenizer, max_length=256, recipe=recipe)
    whole.max_chars = None
    seen = []
    tokenize = p._tokenize
    p._tokenize = lambda texts: seen.append([len(t) for t in texts]) or tokenize(texts)
    for name, text in _kinds_of_text(40_000).items():
        seen.clear()
        cut = p.encode([("a query", text, None)])
        with monkeypatch.context() as m:
            m.setattr(prompt, "FIRST_CHARS", 10**9)
            assert cut == whole.encode([("a query", text, None)]), name
        assert cut[0].truncated
        first = p.body_budget * prompt.FIRST_CHARS
        assert seen[0][0] < first + 500, name  # the query and frame besides
        assert len(seen) == (2 if name in ("rules", "runs of spaces") else 1), name
    # a run of combining marks through the cut: NFC puts it in canonical order as a whole, and the last mark (of a
    # lower class) moved to its front, into the kept tokens (a review's find; the 2M-character cut had it too)
    first = p.body_budget * prompt.FIRST_CHARS
    start = len("word " * 5 + "a")
    for text in ["word " * 5 + "a" + "\u0301" * run + "\u0323 tail" for run in (first + 10, p.max_chars + 10)] + [
        "word " * 5 + "a" + "\u0301" * (first - start) + "\u0f73" + " tail words" * 2000]:  # fmt: skip
        cut = p.encode([("a query", text, None)])
        with monkeypatch.context() as m:
            m.setattr(prompt, "FIRST_CHARS", 10**9)
            assert cut == whole.encode([("a query", text, None)]), len(text)
    # a document of megabytes: a few thousand characters tokenized for its 200 tokens (seconds, and gigabytes, were
    # spent on 2 million characters a document)
    seen.clear()
    long = "word " * 400_000
    p.encode([("q", long, None)] * 3)
    assert seen == [[len(p.render("q", long[: p.body_budget * prompt.FIRST_CHARS], None))] * 3]


def test_texts_are_tokenized_a_bounded_size_at_a_time(tokenizer, monkeypatch):
    from qrr import prompt

    p = Prompter(tokenizer, max_length=256)
    triples = [("q", f"document {n} " * (n * 10), None) for n in range(40)]
    alone = p.encode(triples)
    calls = []
    spy = p.tokenizer
    monkeypatch.setattr(p, "tokenizer", type("Spy", (), {
        "__call__": lambda self, texts, **kw: calls.append(sum(map(len, texts))) or spy(texts, **kw),
        "__getattr__": lambda self, name: getattr(spy, name)})())  # fmt: skip
    monkeypatch.setattr(prompt, "TOKENIZE_CHARS", 5_000)
    assert p.encode(triples) == alone
    assert len(calls) > 5 and all(size <= 5_000 or size == max(calls) for size in calls)
    assert sum(calls) == sum(len(p.render(q, d[: p.body_budget * prompt.FIRST_CHARS], i)) for q, d, i in triples)


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


def test_a_cut_never_falls_inside_a_run_of_combining_marks(tokenizer):
    from qrr.prompt import text_head

    assert text_head("abc", 2) == "ab" and text_head("abc", 5) == "abc" and text_head("abc", None) == "abc"
    assert text_head("xa\u0301\u0301\u0323y", 3) == "xa\u0301\u0301\u0323"  # on to the run's end
    assert text_head("\u0301" * 5, 3) == "\u0301" * 5
    # no mark itself, but NFC decomposes it into two, the first of which joins the run (a second review's find)
    assert text_head("ab\u0f73c", 2) == "ab\u0f73"
    p = Prompter(tokenizer, max_length=256)
    text = "word " * 5 + "a" + "\u0301" * (20 * p.token_chars) + "\u0323 tail"
    whole = p.tokenizer.decode(p.tokenizer.encode(text, add_special_tokens=False)[:20])
    assert p.cut(text, 20) == whole  # the run, ordered as the whole text orders it
