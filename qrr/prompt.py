"""Turning (query, document, instruction) into token ids with the family's template and the recipe's truncation.

A pair becomes ``prefix + body + suffix`` token ids. Only the body is truncated (from its tail), so the
suffix that asks for the yes/no answer always survives.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from qrr.errors import InputError
from qrr.family import DEFAULT_MAX_LENGTH, QWEN3, Family

Triple = tuple[str, str, "str | None"]


@dataclass(frozen=True)
class Encoded:
    """Token ids of one pair, and whether its document was cut to fit ``max_length``."""

    ids: list[int]
    truncated: bool


class Prompter:
    """Token ids for pairs, with the recipe's truncation. Safe to share between threads."""

    def __init__(self, tokenizer, max_length: int = DEFAULT_MAX_LENGTH, family: Family = QWEN3):
        self.tokenizer = tokenizer
        self.family = family
        # A fast tokenizer is one Rust object; calls from two threads at once can collide ("Already borrowed").
        self._lock = threading.Lock()
        self.prefix_ids = self._encode(family.prefix)
        self.suffix_ids = self._encode(family.suffix)
        self.yes_id, self.no_id = (self._single_token(t) for t in (family.yes, family.no))
        frame = len(self.prefix_ids) + len(self.suffix_ids)
        if max_length <= frame:
            raise InputError(f"{{max_length}} {max_length} leaves no room: the prompt frame alone takes {frame} tokens",
                             "max_length")  # fmt: skip
        self.max_length = max_length
        self.body_budget = max_length - frame

    def _encode(self, text: str) -> list[int]:
        with self._lock:
            return self.tokenizer.encode(text, add_special_tokens=False)

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

    def encode(self, triples: Sequence[Triple]) -> list[Encoded]:
        """Token ids for each ``(query, document, instruction)``; ``None`` means the default instruction.

        The body is tokenized as one string (never piece by piece: the space after ``<Document>:`` merges
        with the document's first word) and cut from its tail to the body budget. A query and instruction
        that leave no room for any of the document raise ``InputError`` instead of scoring nothing.
        """
        if not triples:
            return []
        bodies = [self.family.format_body(q, d, i) for q, d, i in triples]
        with self._lock:
            encoded = self.tokenizer(bodies, add_special_tokens=False)["input_ids"]
        out = []
        checked: set[tuple[str, str | None]] = set()  # one query's long documents need its head tokenized once
        for n, ((query, _, instruction), ids) in enumerate(zip(triples, encoded, strict=True)):
            truncated = len(ids) > self.body_budget
            if truncated:
                if (query, instruction) not in checked:
                    self._check_room(n, query, instruction)
                    checked.add((query, instruction))
                ids = ids[: self.body_budget]
            out.append(Encoded(self.prefix_ids + ids + self.suffix_ids, truncated))
        return out

    def _check_room(self, n: int, query: str, instruction: str | None) -> None:
        used = len(self._encode(self.family.format_body(query, "", instruction)))
        if used >= self.body_budget:
            raise InputError(
                f"pair {n}: the query and instruction take {used} tokens, but {{max_length}} {self.max_length} leaves "
                f"{self.body_budget} for query, instruction and document together; raise {{max_length}} or shorten "
                "the query",
                "max_length",
            )
