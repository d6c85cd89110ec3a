"""The Reranker: Qwen3-Reranker scores for (query, document) pairs, usable without the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qrr.errors import InputError
from qrr.prompt import DEFAULT_MAX_LENGTH

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
        self.stats = Stats()

    @property
    def max_length(self) -> int:
        return self.prompter.max_length

    def score(self, pairs: Iterable[Pair], progress: Callable[[int], None] | None = None) -> list[float]:
        """p(yes) in [0, 1] for each pair, in input order.

        A pair is ``(query, document)`` or ``(query, document, instruction)``; an instruction of ``None``
        falls back to this Reranker's instruction, then to the model card's default. ``progress`` is called
        with the number of pairs each finished batch scored.
        """
        triples = []
        for n, pair in enumerate(pairs):
            if isinstance(pair, str) or len(pair) not in (2, 3):
                raise InputError(f"pair {n}: expected (query, document) or (query, document, instruction)")
            query, document, *rest = pair
            instruction = rest[0] if rest and rest[0] is not None else self.instruction
            triples.append((query, document, instruction))
        return self._score(triples, progress)

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        ids: Sequence[Any] | None = None,
        instruction: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Ranked]:
        """The documents sorted by p(yes) for ``query``, best first; ties keep input order.

        ``top_k`` keeps the best k; ``ids`` (same length as ``documents``) are carried into the results.
        """
        if ids is not None and len(ids) != len(documents):
            raise InputError(f"{len(ids)} ids for {len(documents)} documents")
        if top_k is not None and top_k < 1:
            raise InputError(f"--top-k must be at least 1, not {top_k}")
        instruction = instruction if instruction is not None else self.instruction
        scores = self._score([(query, d, instruction) for d in documents], progress)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:top_k]
        return [Ranked(i, scores[i], None if ids is None else ids[i], documents[i]) for i in order]

    def _score(self, triples, progress) -> list[float]:
        for n, (query, document, instruction) in enumerate(triples):
            for field, value in (("query", query), ("document", document), ("instruction", instruction)):
                if not isinstance(value, str) and not (field == "instruction" and value is None):
                    raise InputError(f"pair {n}: {field} must be a string, not {type(value).__name__}")
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


def _check_batch_tokens(batch_tokens: int | None) -> None:
    if batch_tokens is not None and batch_tokens < 1:
        raise InputError(f"--batch-tokens must be positive, not {batch_tokens}")


def _load_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _pad_id(tokenizer) -> int:
    # The recipe pads with <|endoftext|>; padded positions are masked, so only the mask matters.
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
