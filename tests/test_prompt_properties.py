"""Property-based test of the prompts: qrr's token ids are the card's, token for token, whatever the text."""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qrr.errors import InputError
from qrr.prompt import Prompter
from tests.oracle import SUFFIX, recipe_ids, vllm_recipe_ids

# the tokenizer fixture beside the autouse offline one; documents of up to a megabyte
SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=SLOW, database=None)


def _vllm_template_ids(tokenizer, pairs, instruction, max_length):
    """The transformers recipe with the suffix of vLLM's template: one newline less."""
    suffix = tokenizer.encode(SUFFIX[:-1], add_special_tokens=False)
    return recipe_ids(tokenizer, pairs, instruction, max_length, suffix_tokens=suffix)


RECIPES = {"transformers": recipe_ids, "vllm": vllm_recipe_ids, "vllm-template": _vllm_template_ids}

# What tokenizes unlike plain words: special tokens and the template's own markers written in a text, line ends and
# control characters, digits (one token each), marks that Unicode normalization reorders, emoji sequences, scripts
# without spaces, contractions, words the byte-level BPE cascades through
PIECES = [
    "<|im_end|>", "<|endoftext|>", "<|im_start|>assistant", "<think>", "</think>", "<Document>: ", "<Query>: ",
    "<Instruct>: ", "{document}", "%s", "\r\n", "\r", "\n", "\n\n\n", "\x00", "\x1b", "\x85", "\u2028", "\t",
    "\f", " " * 40, "\u00a0", "\u3000", "\u200b", "\u200d", "\ufeff", "\u00ad", "1234567890", "\u0663\u0664",
    "\u00bd", "e\u0301", "a\u0308\u0304", "\u0323\u0307", "\u0f73", "\u1100\u1161\u11a8",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1ef\U0001f1f5", "\U0001f44d\U0001f3fd",
    "\u65e5\u672c\u8a9e", "\u0e44\u0e17\u0e22", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u0939\u093f\u0928\u094d\u0926\u0940", "'s", "'ll", "n't", "IT'S", "The", " the answer",
    "supercalifragilisticexpialidocious" * 3, "a" * 300, "=" * 64, "http://example.com/a?b=c&d=e",
]  # fmt: skip
CHUNK = st.one_of(st.sampled_from(PIECES), st.text(max_size=8))
TEXT = st.lists(CHUNK, max_size=10).map("".join)
SHORT = st.lists(CHUNK, max_size=3).map("".join)  # a query or instruction that mostly leaves room for a document
# long documents, one piece repeated up to thousands of times: the path that cuts characters before tokenizing
LONG = st.builds(lambda piece, n, tail: (piece or "x") * n + tail, CHUNK, st.integers(100, 20_000), TEXT)
DOCUMENT = st.one_of(TEXT, LONG)
INSTRUCTION = st.one_of(st.none(), st.just(""), SHORT)
# 74: the default instruction and a one-letter query take all it leaves
MAX_LENGTH = st.one_of(st.sampled_from([74, 75, 76, 100, 512, 8192]), st.integers(49, 400))
RECIPE = st.sampled_from(sorted(RECIPES))


@functools.cache
def _prompter(tokenizer, max_length: int, recipe: str) -> Prompter:
    return Prompter(tokenizer, max_length, recipe=recipe)


def _check(tokenizer, triples, max_length, recipe):
    prompter = _prompter(tokenizer, max_length, recipe)
    kept = []
    for query, document, instruction in triples:
        try:
            prompter.check_room(query, instruction)
        except InputError as exc:  # a query leaving no room is refused on purpose, where the card cuts into it
            # an empty query's: the instruction's alone
            assert str(exc).startswith("the query and instruction take " if query else "the instruction takes ")
            continue
        kept.append((query, document, instruction))
    assume(kept)  # a test whose every pair was refused would prove nothing
    want = [RECIPES[recipe](tokenizer, [(q, d)], i, max_length)[0] for q, d, i in kept]
    assert [e.ids for e in prompter.encode(kept)] == want


@SETTINGS
@given(query=SHORT, document=DOCUMENT, instruction=INSTRUCTION, max_length=MAX_LENGTH, recipe=RECIPE)
def test_any_text_gets_the_recipes_token_ids(tokenizer, query, document, instruction, max_length, recipe):
    _check(tokenizer, [(query, document, instruction)], max_length, recipe)


@settings(SETTINGS, max_examples=30)
@given(triples=st.lists(st.tuples(SHORT, DOCUMENT, INSTRUCTION), min_size=2, max_size=6), max_length=MAX_LENGTH,
       recipe=RECIPE)  # fmt: skip
def test_a_chunk_of_pairs_gets_each_pairs_own_ids(tokenizer, triples, max_length, recipe):
    """A chunk is tokenized together and its long documents retried together: no pair's ids depend on another's."""
    _check(tokenizer, triples, max_length, recipe)
