"""The scoring recipe of the model card's transformers path: template, tokenization, truncation.

A pair becomes ``prefix + body + suffix`` token ids. Only the body is truncated (from its tail), so the
suffix that asks for the yes/no answer always survives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qrr.errors import InputError

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
DEFAULT_MAX_LENGTH = 8192
YES, NO = "yes", "no"


def format_body(query: str, document: str, instruction: str | None = None) -> str:
    """The text between prefix and suffix, exactly as the model card formats it."""
    if instruction is None:
        instruction = DEFAULT_INSTRUCTION
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


@dataclass(frozen=True)
class Encoded:
    """Token ids of one pair, and whether its document was cut to fit ``max_length``."""

    ids: list[int]
    truncated: bool


class Prompter:
    """Turns (query, document, instruction) triples into token ids with the recipe's truncation."""

    def __init__(self, tokenizer, max_length: int = DEFAULT_MAX_LENGTH):
        self.tokenizer = tokenizer
        self.prefix_ids = tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_ids = tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.yes_id, self.no_id = (self._single_token(t) for t in (YES, NO))
        frame = len(self.prefix_ids) + len(self.suffix_ids)
        if max_length <= frame:
            raise InputError(f"--max-length {max_length} leaves no room: the prompt frame alone takes {frame} tokens")
        self.max_length = max_length
        self.body_budget = max_length - frame

    def _single_token(self, token: str) -> int:
        tid = self.tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == self.tokenizer.unk_token_id:
            raise InputError(f"the tokenizer has no single token {token!r}: is this a Qwen3-Reranker model?")
        return tid

    def encode(self, triples: Sequence[tuple[str, str, str | None]]) -> list[Encoded]:
        """Token ids for each ``(query, document, instruction)``; ``None`` means the default instruction.

        The body is tokenized as one string (never piece by piece: the space after ``<Document>:`` merges
        with the document's first word) and cut from its tail to the body budget. A query and instruction
        that leave no room for any of the document raise ``InputError`` instead of scoring nothing.
        """
        if not triples:
            return []
        bodies = [format_body(q, d, i) for q, d, i in triples]
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
        head = format_body(query, "", instruction)
        used = len(self.tokenizer.encode(head, add_special_tokens=False))
        if used >= self.body_budget:
            raise InputError(
                f"pair {n}: the query and instruction take {used} tokens, but --max-length "
                f"{self.max_length} leaves {self.body_budget} for query, instruction and document together; "
                "raise --max-length or shorten the query"
            )
