"""The Reranker: Qwen3-Reranker scores for (query, document) pairs, usable without the CLI."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qrr.errors import InputError
from qrr.prompt import DEFAULT_MAX_LENGTH

# Pairs tokenized and scored at a time: memory stays bounded however long the input is, and a chunk is still
# large enough to sort into well-filled batches.
CHUNK = 1024

Pair = Sequence[str]  # (query, document) or (query, document, instruction)


@dataclass(frozen=True)
class Ranked:
    """One ranked document: its input ``index``, ``score`` (p(yes)), optional ``id`` and its ``text``."""

    index: int
    score: float
    id: Any = None
    text: str | None = None


@dataclass
class Stats:
    """What the last ``score``/``rank`` call did: pairs, prompt tokens, documents truncated, seconds."""

    pairs: int = 0
    tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0

    def __add__(self, other: Stats) -> Stats:
        total = Stats(**vars(self))
        total += other
        return total

    def __iadd__(self, other: Stats) -> Stats:
        # in place, so that a Stats handed to a generator collects what it did
        self.pairs += other.pairs
        self.tokens += other.tokens
        self.truncated += other.truncated
        self.seconds += other.seconds
        return self


class Reranker:
    """A Qwen3-Reranker that scores pairs exactly as the model card's transformers recipe does.

    >>> rr = Reranker("0.6b")                                    # doctest: +SKIP
    >>> rr.score([("capital of China?", "Beijing is the capital.")])  # doctest: +SKIP
    [0.99...]
    >>> rr.rank("capital of China?", ["Paris", "Beijing"], top_k=1)   # doctest: +SKIP
    [Ranked(index=1, score=0.99..., id=None, text='Beijing')]

    ``model`` is an alias (``0.6b``, ``4b``, ``8b``), a hub repo id or a local folder (default
    ``$QRR_MODEL`` or ``0.6b``). ``device`` is ``auto`` (cuda, mps, cpu), ``cpu``, ``mps``, ``cuda`` or
    ``cuda:N``; ``dtype`` is ``auto``, ``bf16``, ``fp16`` or ``fp32``. ``max_length`` caps the prompt in
    tokens (only the document part is cut). ``instruction`` replaces the default task instruction.
    ``batch_tokens`` bounds the padded tokens of one forward pass (memory), default by device. A hub model
    missing from the local cache is downloaded first, unless ``offline`` (default: ``HF_HUB_OFFLINE``).
    ``share_prefix`` runs the tokens that pairs with the same instruction and query share once (same scores,
    less work); turn it off only to measure what it saves.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        instruction: str | None = None,
        batch_tokens: int | None = None,
        offline: bool | None = None,
        share_prefix: bool = True,
    ):
        from qrr import device as devices
        from qrr import models
        from qrr.engine import Engine
        from qrr.prompt import Prompter

        _check_batch_tokens(batch_tokens)  # before loading anything
        path = models.resolve(model, offline=offline)
        dev = devices.resolve_device(device)
        dt = devices.resolve_dtype(dtype, dev)
        prompter = Prompter(_load_tokenizer(path), max_length)
        engine = Engine.load(path, dev, dt, prompter.yes_id, prompter.no_id, _pad_id(prompter.tokenizer),
                             attn=devices.attention_implementation(dev, dt))  # fmt: skip
        self._init(prompter, engine, dev, dt, path, instruction, batch_tokens, share_prefix)

    @classmethod
    def from_model(
        cls,
        model,
        tokenizer,
        device: str = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        instruction: str | None = None,
        batch_tokens: int | None = None,
        share_prefix: bool = True,
    ) -> Reranker:
        """A Reranker around an already loaded Qwen3 causal LM and its tokenizer (benchmarks on random
        weights, custom loading). The model keeps its dtype and is moved to ``device``; once the caller drops
        its own reference, the full output head is freed."""
        from qrr import device as devices
        from qrr.engine import Engine
        from qrr.prompt import Prompter

        _check_batch_tokens(batch_tokens)
        dev = devices.resolve_device(device)
        prompter = Prompter(tokenizer, max_length)
        engine = Engine.from_causal(model, dev, prompter.yes_id, prompter.no_id, _pad_id(tokenizer))
        self = cls.__new__(cls)
        self._init(prompter, engine, dev, next(model.parameters()).dtype, None, instruction, batch_tokens, share_prefix)
        return self

    def _init(self, prompter, engine, device, dtype, model_path, instruction, batch_tokens, share_prefix) -> None:
        from qrr.engine import default_batch_tokens

        self.prompter = prompter
        self.engine = engine
        self.device = device
        self.dtype = dtype
        self.model_path = model_path
        self.instruction = instruction
        self.share_prefix = share_prefix
        self.batch_tokens = batch_tokens or default_batch_tokens(device)
        engine.check_budget(self.batch_tokens)
        self.stats = Stats()

    @property
    def max_length(self) -> int:
        return self.prompter.max_length

    def score(self, pairs: Iterable[Pair], progress: Callable[[int], None] | None = None) -> list[float]:
        """p(yes) in [0, 1] for each pair, in input order.

        A pair is ``(query, document)`` or ``(query, document, instruction)``; an instruction of ``None``
        falls back to this Reranker's instruction, then to the model card's default. ``pairs`` may be any
        iterable; they are tokenized and scored ``CHUNK`` at a time. ``progress`` is called with the number of
        pairs each finished batch scored.
        """
        scores: list[float] = []
        total = Stats()
        for chunk in chunks(self._triples(pairs), CHUNK):
            scores += self._score(chunk, progress)
            total += self.stats
        self.stats = total
        return scores

    def rank(
        self,
        query: str,
        documents: Iterable[str],
        top_k: int | None = None,
        ids: Iterable[Any] | None = None,
        instruction: str | None = None,
        progress: Callable[[int], None] | None = None,
        keep_text: bool = True,
    ) -> list[Ranked]:
        """The documents sorted by p(yes) for ``query``, best first; ties keep input order.

        ``documents`` may be any iterable, a generator over millions of lines included: they are scored
        ``CHUNK`` at a time, and with ``top_k`` only the best k are kept. ``ids`` (one per document) are
        carried into the results; ``keep_text=False`` leaves the texts out of them.
        """
        if top_k is not None and top_k < 1:
            raise InputError(f"--top-k must be at least 1, not {top_k}")
        instruction = instruction if instruction is not None else self.instruction
        id_source = None if ids is None else iter(ids)
        kept: list = []  # every result, or with top_k a min-heap of (score, -index, result)
        total = Stats()
        index = 0
        for chunk in chunks(documents, CHUNK):
            chunk_ids = [None] * len(chunk) if id_source is None else list(itertools.islice(id_source, len(chunk)))
            if len(chunk_ids) < len(chunk):
                raise InputError("fewer ids than documents")
            scores = self._score([self._triple(index + n, (query, d, instruction)) for n, d in enumerate(chunk)],
                                 progress)  # fmt: skip
            total += self.stats
            for text, doc_id, score in zip(chunk, chunk_ids, scores, strict=True):
                result = Ranked(index, score, doc_id, text if keep_text else None)
                if top_k is None:
                    kept.append(result)
                elif len(kept) < top_k:
                    heapq.heappush(kept, (score, -index, result))
                else:  # the lowest score, and of equal scores the latest document, leaves
                    heapq.heappushpop(kept, (score, -index, result))
                index += 1
        if id_source is not None and next(id_source, _END) is not _END:
            raise InputError("more ids than documents")
        self.stats = total
        results = kept if top_k is None else [entry[2] for entry in kept]
        return sorted(results, key=lambda r: (-r.score, r.index))

    def _triples(self, pairs: Iterable[Pair]) -> Iterator[tuple[str, str, str | None]]:
        for n, pair in enumerate(pairs):
            if isinstance(pair, str) or len(pair) not in (2, 3):
                raise InputError(f"pair {n}: expected (query, document) or (query, document, instruction)")
            query, document, *rest = pair
            yield self._triple(n, (query, document, rest[0] if rest and rest[0] is not None else self.instruction))

    @staticmethod
    def _triple(n: int, triple: tuple) -> tuple[str, str, str | None]:
        for field, value in zip(("query", "document", "instruction"), triple, strict=True):
            if not isinstance(value, str) and not (field == "instruction" and value is None):
                raise InputError(f"pair {n}: {field} must be a string, not {type(value).__name__}")
        return triple

    def _score(self, triples, progress) -> list[float]:
        start = time.perf_counter()
        encoded = self.prompter.encode(triples)
        sequences = [e.ids for e in encoded]
        groups = [(instruction, query) for query, _, instruction in triples] if self.share_prefix else None
        scores = self.engine.score(sequences, self.batch_tokens, progress, groups) if sequences else []
        self.stats = Stats(
            pairs=len(sequences),
            tokens=sum(len(s) for s in sequences),
            truncated=sum(e.truncated for e in encoded),
            seconds=time.perf_counter() - start,
        )
        return scores


_END = object()


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to ``size`` items from any iterable, read lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _check_batch_tokens(batch_tokens: int | None) -> None:
    if batch_tokens is not None and batch_tokens < 1:
        raise InputError(f"--batch-tokens must be positive, not {batch_tokens}")


def _load_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _pad_id(tokenizer) -> int:
    # The recipe pads with <|endoftext|>; qrr's pads follow each row's real tokens, which never attend to them.
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
