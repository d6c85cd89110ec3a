"""Turning (query, document, instruction) into token ids with one of the family's recipes and its truncation.

The ``transformers`` recipe makes ``prefix + body + suffix`` token ids and cuts only the body (from its tail), so
the suffix that asks for the yes/no answer always survives. The ``vllm`` recipe renders the system and user
messages with the tokenizer's chat template, cuts that token list to ``max_length - len(suffix)`` and appends the
suffix. Either way the result is at most ``max_length`` tokens ending in the suffix.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from qrr.errors import InputError, NotAModelError, PairError
from qrr.family import DEFAULT_MAX_LENGTH, DEFAULT_RECIPE, QWEN3, Family

Triple = tuple[str, str, "str | None"]

# A long document is first cut to this many characters a token of the budget (natural text takes 1 to 5): enough
# where it then gives SLACK tokens past the budget, since a cut changes only the tokens of the last piece or two the
# tokenizer splits the text into (a cut through a word of natural text changed 3 at most; a 63-letter word built to
# cascade, 31), never one inside a run of combining marks (see text_head); else it is cut at max_chars, the most
# that its first tokens can span. A document of megabytes took seconds and gigabytes to tokenize for the first 8,192
# tokens, and held the tokenizer (a server's every request) as long.
FIRST_CHARS = 16
SLACK = 256
# Characters of text tokenized in one call: memory stays bounded (about 40 bytes a character while tokenizing), and
# another thread (a server's next request) gets the tokenizer between two calls
TOKENIZE_CHARS = 1_000_000


class Prompt(NamedTuple):
    """The prompt the model reads for one pair: ``text`` (its tokens decoded, special tokens and all), ``ids`` (its
    token ids) and ``cut`` (whether its document was cut to fit ``max_length``). Set ``ids`` beside another
    implementation's: ``text`` shows the tokenizer's Unicode normalization (``cafe\u0301`` reads ``café``), and a cut
    through a character's bytes as U+FFFD."""

    text: str
    ids: list[int]
    cut: bool


@dataclass(frozen=True)
class Encoded:
    """Token ids of one pair, and whether its prompt was cut to fit ``max_length``."""

    ids: list[int]
    truncated: bool


class Prompter:
    """Token ids for pairs, with a recipe's truncation. Safe to share between threads."""

    def __init__(
        self,
        tokenizer,
        max_length: int = DEFAULT_MAX_LENGTH,
        family: Family = QWEN3,
        recipe: str = DEFAULT_RECIPE,
        positions: int | None = None,
    ):
        """``positions``: the model's ``max_position_embeddings``, which ``max_length`` may not pass."""
        if isinstance(positions, int) and max_length > positions:
            raise InputError(f"{{max_length}} {max_length} is more than the model's {positions} positions "
                             "(max_position_embeddings): lower it", "max_length")  # fmt: skip
        self.tokenizer = tokenizer
        self.family = family
        self.recipe = family.recipe(recipe)
        # A fast tokenizer is one Rust object; calls from two threads at once can collide ("Already borrowed").
        self._lock = threading.Lock()
        if self.recipe.chat and not getattr(tokenizer, "chat_template", None):
            raise InputError(f"the tokenizer has no chat template, which {{recipe}} {recipe} renders; use "
                             "{recipe} transformers or vllm-template, which need none", "recipe")  # fmt: skip
        # Written by hand, the prompt starts with the prefix; rendered, the chat template writes all but the suffix.
        self.prefix_ids = [] if self.recipe.chat else self._encode(family.prefix)
        self.suffix_ids = self._encode(self.recipe.suffix or family.suffix)
        self.yes_id, self.no_id = (self._single_token(t) for t in (family.yes, family.no))
        # a tokenizer saved without tokenizer.json (vocab.json and merges.txt alone) lost its added tokens: it spells
        # "<|im_end|>" out in pieces, and every score was another prompt's, unsaid
        for token in family.special_tokens:
            pieces = len(self._encode(token))
            if pieces != 1:
                raise NotAModelError(
                    f"the tokenizer splits {token!r} into {pieces} tokens: its special tokens are missing (saved "
                    "without tokenizer.json?); copy the base model's tokenizer.json and tokenizer_config.json"
                )
        if self.recipe.chat:
            probe = "qrr-probe-7f3a"
            if probe not in self.render(probe, probe):  # a template of other roles (sentence-transformers' query and
                raise InputError(  # document) drops the user's message: every document scored alike
                    f"the tokenizer's chat template does not render a user message (one of other roles?), which "
                    f"{{recipe}} {recipe} renders; use {{recipe}} transformers or vllm-template",
                    "recipe",
                )
        frame = len(self.prefix_ids) + len(self.suffix_ids)
        if max_length <= frame:
            raise InputError(f"{{max_length}} {max_length} leaves no room: the prompt frame alone takes {frame} tokens",
                             "max_length")  # fmt: skip
        self.max_length = max_length
        self.body_budget = max_length - frame  # tokens of what is cut: the body, or the rendered messages
        # A token spans about as many characters as the vocabulary's longest (byte-level) token at most (Unicode
        # normalization can merge a few, hence the factor 2), so a document past that is cut whatever follows: its
        # tail is dropped before tokenizing, which took gigabytes for a text of megabytes.
        try:
            longest = max((len(t) for t in tokenizer.get_vocab()), default=0)
        except (AttributeError, NotImplementedError):
            longest = 0
        self.token_chars = 2 * longest or None  # the most characters one token spans
        self.max_chars = max_length * self.token_chars if self.token_chars else None

    def _encode(self, text: str) -> list[int]:
        with self._lock:
            # verbose=False: no warning for texts over the tokenizer's model_max_length, which qrr cuts itself
            return self.tokenizer.encode(text, add_special_tokens=False, verbose=False)

    def _single_token(self, token: str) -> int:
        tid = self.tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == self.tokenizer.unk_token_id:
            raise InputError(f"the tokenizer has no single token {token!r}: is this a {self.family.name} model?")
        return tid

    @property
    def pad_id(self) -> int:
        """The recipe pads with ``<|endoftext|>``; qrr's pads follow each row's real tokens, which never attend
        to them, so any id would do."""
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def cut(self, text: str, tokens: int) -> str:
        """``text`` cut to its first ``tokens`` tokens (tokenized alone), or as it is where it is shorter."""
        limit = tokens * self.token_chars if self.token_chars else None
        head = text_head(text, limit)  # its tail cannot reach the first tokens
        ids = self._encode(head)
        if len(ids) <= tokens and head is text:
            return text
        with self._lock:
            cut = self.tokenizer.decode(ids[:tokens])
        # a character of several byte-level tokens cut through decodes as U+FFFD, which the text never held
        return cut if text.startswith(cut) else cut.rstrip("\ufffd")

    def render(self, query: str, document: str, instruction: str | None = None) -> str:
        """The text whose tokens are cut to fit: the body, or with a chat recipe the rendered messages."""
        body = self.family.format_body(query, document, instruction, self.recipe.name)
        if not self.recipe.chat:
            return body
        messages = [{"role": "system", "content": self.family.system}, {"role": "user", "content": body}]
        with self._lock:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=False, enable_thinking=False
            )

    def encode(self, triples: Sequence[Triple]) -> list[Encoded]:
        """Token ids for each ``(query, document, instruction)``; ``None`` means the default instruction.

        What is cut is tokenized as one string (never piece by piece: the space after ``<Document>:`` merges with
        the document's first word) and cut from its tail to the budget. A query and instruction that leave no
        room for any of the document raise ``InputError`` instead of scoring nothing.
        """
        if not triples:
            return []
        first = self.body_budget * FIRST_CHARS
        if self.max_chars:
            first = min(first, self.max_chars)
        encoded = self._tokenize([self.render(q, text_head(d, first), i) for q, d, i in triples])
        # the documents whose first cut left too few tokens past the budget to trust: cut where nothing can follow
        again = [n for n, ((_, d, _), ids) in enumerate(zip(triples, encoded, strict=True))
                 if len(d) > first and len(ids) < self.body_budget + SLACK]  # fmt: skip
        if again:
            retried = self._tokenize([self.render(q, text_head(d, self.max_chars), i) for q, d, i in
                                      (triples[n] for n in again)])  # fmt: skip
            for n, ids in zip(again, retried, strict=True):
                encoded[n] = ids
        out = []
        checked: set[tuple[str, str | None]] = set()  # one query's long documents need its head tokenized once
        for n, ((query, _, instruction), ids) in enumerate(zip(triples, encoded, strict=True)):
            truncated = len(ids) > self.body_budget
            if truncated:
                if (query, instruction) not in checked:
                    self.check_room(query, instruction, n)
                    checked.add((query, instruction))
                ids = ids[: self.body_budget]
            out.append(Encoded(self.prefix_ids + ids + self.suffix_ids, truncated))
        return out

    def prompt(self, triple: Triple) -> Prompt:
        """The prompt of one ``(query, document, instruction)``, as ``encode`` makes its ids."""
        [encoded] = self.encode([triple])
        with self._lock:  # the decoded text is the ids' own: no spaces tidied away
            text = self.tokenizer.decode(encoded.ids, clean_up_tokenization_spaces=False)
        return Prompt(text, encoded.ids, encoded.truncated)

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, ``TOKENIZE_CHARS`` characters of them a call."""
        out: list[list[int]] = []
        part: list[str] = []
        size = 0
        for text in [*texts, None]:
            if part and (text is None or size + len(text) > TOKENIZE_CHARS):
                with self._lock:
                    out += self.tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"]
                part, size = [], 0
            if text is not None:
                part.append(text)
                size += len(text)
        return out

    def check_room(self, query: str, instruction: str | None = None, n: int | None = None) -> None:
        """Raise ``InputError`` where ``query`` and ``instruction`` leave no room for any document (a ``PairError``
        where ``n``, the pair's position, is given)."""
        # everything up to where the document would start
        rendered = self.render(query, "", instruction)
        head = self.family.format_body(query, "", instruction, self.recipe.name)
        start = rendered.index(head)
        used = len(self._encode(rendered[: start + len(head)]))
        if used >= self.body_budget:
            # a chat recipe's system message and markers before the body are said as frame, as the prefix is
            before = len(self._encode(rendered[:start])) if self.recipe.chat else 0
            used, left = used - before, self.body_budget - before
            over, frame = used > left, self.max_length - left
            # all of it taken: "take 26 tokens, but max_length 74 leaves 26" read as if they fit
            # no query: an instruction alone, checked before any request comes (qrr serve -i)
            what, s = ("the query and instruction", "") if query else ("the instruction", "s")
            take = (f"take{s} {used} tokens, but {{max_length}} {self.max_length} leaves {left}" if over
                    else f"take{s} all {used} tokens that {{max_length}} {self.max_length} leaves")  # fmt: skip
            # the recipe keeps one token: the space before the document, merged with its start where they merge
            kept = "" if over else ": a document would keep one token at most"
            shorten = ("the query" + (" or the instruction" if instruction else "")) if query else "the instruction"
            said = (f"{what} {take} for query, instruction and document together (the prompt frame takes {frame})"
                    f"{kept}; raise {{max_length}} or shorten {shorten}")  # fmt: skip
            raise InputError(said, "max_length") if n is None else PairError(n, said, "max_length")


def text_head(text: str, chars: int | None) -> str:
    """``text`` cut after its first ``chars`` characters (``None``: whole), never inside a run of combining marks:
    the tokenizer's NFC puts such a run in canonical order as a whole, so a mark past a cut through it would move
    into the tokens kept (the cut moves on to the run's end)."""
    if not chars or len(text) <= chars:
        return text
    while chars < len(text) and _is_mark(text[chars]):
        chars += 1
    return text[:chars]


def _is_mark(c: str) -> bool:
    # three Tibetan vowel signs (U+0F73, U+0F75, U+0F81) are no marks themselves, but NFC decomposes each into two
    return bool(unicodedata.combining(c) or unicodedata.combining(unicodedata.normalize("NFD", c)[0]))
