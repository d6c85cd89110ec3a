"""The Reranker: Qwen3-Reranker scores for (query, document) pairs, usable without the CLI.

``score`` and ``rank`` return their results with the statistics of that call (``.stats``); nothing of a call
stays on the Reranker, so one Reranker serves several threads at once. ``predict`` and ``rank`` take the
arguments of sentence-transformers' ``CrossEncoder`` and return what it returns.
"""

from __future__ import annotations

import functools
import heapq
import inspect
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, Protocol, TypedDict, TypeVar, overload

from qrr.engine import Progress
from qrr.errors import (
    FixedSetting,
    InputError,
    NotAModelError,
    NotPicklableError,
    PairError,
    PeerKeyword,
    check_count,
    warn,
)
from qrr.family import DEFAULT_MAX_LENGTH, DEFAULT_RECIPE, QWEN3, run_settings
from qrr.formats.rows import named_fields
from qrr.prompt import Prompt, Prompter

if TYPE_CHECKING:
    from pathlib import Path

    import numpy
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    # what predict returns (CrossEncoder's kinds): many scores, or one
    Predicted = numpy.ndarray | torch.Tensor | list[float] | numpy.float32 | float

# Pairs tokenized and scored at a time: memory stays bounded however long the input is, and a chunk is still
# large enough to sort into well-filled batches.
CHUNK = 1024

# One pair as predict tells it from many: (query, document) or (query, document, instruction or None), or a list of
# them (CrossEncoder's one pair as a list)
OnePair = tuple[str, str] | tuple[str, str, str | None] | list[str]


class NamedPair(Protocol):
    """A record whose texts are its attributes: ``formats.PairRecord``, a named tuple (``instruction`` optional)."""

    @property
    def query(self) -> str: ...
    @property
    def document(self) -> str: ...


class Frame(Protocol):
    """A pandas DataFrame of ``query`` and ``document`` columns (``instruction`` optional): its rows are the pairs."""

    @property
    def columns(self) -> Any: ...
    def itertuples(self, *args: Any, **kwargs: Any) -> Any: ...


# a pair: one of those, a list or tuple of its texts (a JSON array), or a record with those fields (a dict, a pandas
# row, a NamedPair); pairs: any iterable of them, or a DataFrame
Pair = OnePair | tuple[str | None, ...] | list[str | None] | Mapping[str, Any] | NamedPair
Pairs = Iterable[Pair] | Frame

_T = TypeVar("_T")
_P = ParamSpec("_P")

# Keywords of CrossEncoder's and FlagReranker's that qrr takes otherwise, or has no use for: what to write instead.
# Python's own TypeError named a private class (_Predicts.predict) and no way on.
_RAW = "scores are p(yes), from 0 to 1; the raw scores are their log-odds, log(p / (1 - p))"
_POOL = "qrr scores in this process, one model shared by threads; qrr serve or qrr rerank --ray spread the work wider"
_CACHE = "the Hugging Face cache is where HF_HUB_CACHE (or HF_HOME) says"
PEER_KEYWORDS = {
    "sentences": "give the pairs first, by position: predict(pairs)",
    "inputs": "give the pairs first, by position: predict(pairs)",
    "prompt": "qrr's is instruction=, the task's text",
    "prompt_name": "qrr's is instruction=, the task's text",
    "activation_fn": _RAW,
    "apply_softmax": _RAW,
    "normalize": _RAW,
    "use_fp16": 'qrr\'s is dtype="fp16" (dtype="auto" picks bf16 where the device computes it)',
    "trust_remote_code": "qrr runs Qwen3 through transformers' own code: there is no remote code to trust",
    "device": "the device is the Reranker's, chosen when it is built: Reranker(model, device=...)",
    "dtype": "the dtype is the Reranker's, chosen when it is built (from_model keeps the model's: convert it first, "
    "model.to(torch.bfloat16))",
    "chunk_size": _POOL,
    "pool": _POOL,
    "revision": 'name it with the model: Reranker("0.6b@REVISION") (a commit, branch or tag)',
    "cache_folder": _CACHE,
    "cache_dir": _CACHE,
    "local_files_only": "qrr's is offline=True",
    "token": "the Hugging Face Hub's token is read from HF_TOKEN (or `hf auth login`)",
    "model_kwargs": "qrr's are dtype= and device=",
    "automodel_args": "qrr's are dtype= and device=",
    "model_name_or_path": "qrr's is model=, first by position",
    "model_name": "qrr's is model=, first by position",
}


def peer_keywords(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """``method``, refusing a keyword it does not take with what to write instead (``PEER_KEYWORDS``) or the
    keywords it takes (``PeerKeyword``); its signature as it was, for a type checker too."""
    parameters = inspect.signature(method).parameters.values()
    takes = [p.name for p in parameters if p.name not in ("self", "cls") and p.kind is not p.VAR_KEYWORD]
    anything = any(p.kind is p.VAR_KEYWORD for p in parameters)  # where any keyword is taken, the peers' are said

    @functools.wraps(method)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        unknown = [name for name in kwargs if name not in takes and (not anything or name in PEER_KEYWORDS)]
        if unknown:
            called = type(args[0]).__name__ if method.__name__ == "__init__" else method.__name__
            name = next((name for name in unknown if name in PEER_KEYWORDS), unknown[0])
            said = PEER_KEYWORDS.get(name) or f"it takes {', '.join(takes)}"
            raise PeerKeyword(f"{called}() takes no {name}=: {said}")
        return method(*args, **kwargs)

    return checked


class _RankFields(TypedDict):
    corpus_id: int
    score: float


class RankResult(_RankFields, total=False):
    """One result of ``rank``: ``corpus_id`` (the document's input position) and ``score`` (p(yes)); ``id`` where
    ``ids`` were given, ``text`` with ``return_documents`` (and ``pipelines.rank_records``' ``fields`` with
    ``with_fields``)."""

    id: Any
    text: str
    fields: dict[str, Any]


@dataclass
class Stats:
    """What one call did: ``pairs`` scored, prompt ``tokens`` (every token of every prompt), documents
    ``truncated`` to fit ``max_length``, ``seconds``, and the work the model did: ``computed_tokens`` (a shared
    prefix counts once) and ``attended`` (query, key) pairs of attention."""

    pairs: int = 0
    tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0
    computed_tokens: int = 0
    attended: int = 0

    def __iadd__(self, other: Stats) -> Stats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def __add__(self, other: Stats) -> Stats:
        total = Stats(**vars(self))
        total += other
        return total


class Results(list[_T], Generic[_T]):
    """A list of results (scores: ``Results[float]``, or ranked documents: ``Results[RankResult]``) that also
    carries the ``stats`` of the call. A ``Reranker``'s scores also carry each pair's ``pair_tokens`` (prompt tokens)
    and ``pair_cut`` (whether it was truncated), so that a caller who merged several requests into one call can split
    the statistics again (a ``RemoteReranker``'s carry ``pair_cut`` alone: a server says no pair's tokens)."""

    def __init__(self, items: Iterable[_T] = (), stats: Stats | None = None):
        super().__init__(items)
        self.stats = stats if stats is not None else Stats()
        self.pair_tokens: list[int] = []
        self.pair_cut: list[bool] = []


class _Predicts:
    """``predict`` (sentence-transformers' ``CrossEncoder.predict``) for a scorer with ``Reranker.score``."""

    def score(self, pairs: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None, *,
              instruction: str | None = None, progress: Progress | None = None) -> Results[float]:  # fmt: skip
        raise NotImplementedError

    # what predict returns, told to a type checker by the pairs (one, or many) and the conversion asked for
    @overload
    def predict(self, pairs: OnePair, batch_size: int | None = None, show_progress_bar: bool | None = None,
                convert_to_numpy: bool = True, *, convert_to_tensor: Literal[True],
                instruction: str | None = None) -> torch.Tensor: ...  # fmt: skip
    @overload
    def predict(self, pairs: OnePair, batch_size: int | None = None, show_progress_bar: bool | None = None, *,
                convert_to_numpy: Literal[False], convert_to_tensor: Literal[False] = False,
                instruction: str | None = None) -> float: ...  # fmt: skip
    @overload
    def predict(self, pairs: OnePair, batch_size: int | None = None, show_progress_bar: bool | None = None,
                convert_to_numpy: Literal[True] = True, convert_to_tensor: Literal[False] = False, *,
                instruction: str | None = None) -> numpy.float32: ...  # fmt: skip
    @overload
    def predict(self, pairs: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None,
                convert_to_numpy: bool = True, *, convert_to_tensor: Literal[True],
                instruction: str | None = None) -> torch.Tensor: ...  # fmt: skip
    @overload
    def predict(self, pairs: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None, *,
                convert_to_numpy: Literal[False], convert_to_tensor: Literal[False] = False,
                instruction: str | None = None) -> list[float]: ...  # fmt: skip
    @overload
    def predict(self, pairs: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None,
                convert_to_numpy: Literal[True] = True, convert_to_tensor: Literal[False] = False, *,
                instruction: str | None = None) -> numpy.ndarray: ...  # fmt: skip
    @overload
    def predict(self, pairs: Pairs | OnePair, batch_size: int | None = None,
                show_progress_bar: bool | None = None, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
                *, instruction: str | None = None) -> Predicted: ...  # fmt: skip

    @peer_keywords
    def predict(
        self,
        pairs: Pairs | OnePair,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        *,
        instruction: str | None = None,
    ) -> Predicted:
        """Scores as sentence-transformers' ``CrossEncoder.predict`` returns them: a numpy array (or a torch
        tensor with ``convert_to_tensor``, a list with ``convert_to_numpy=False``) of p(yes), one per pair, or
        one number for one pair. ``batch_size`` caps the pairs of one forward pass; ``show_progress_bar`` draws
        a tqdm bar on stderr; ``instruction`` is that of the pairs without their own, for this call (CrossEncoder's
        ``prompt``)."""
        return predicted(self.score, pairs, batch_size, show_progress_bar, convert_to_numpy, convert_to_tensor,
                         instruction)  # fmt: skip


class Scorer(Protocol):
    """What the pipelines need of a reranker, and what an application can take to accept either kind: a
    ``Reranker``, or a server's ``qrr.server.client.RemoteReranker`` (a type for hints: ``isinstance`` refuses it,
    as a runtime check would read a server's properties over the network on Python 3.11)."""

    @property
    def max_length(self) -> int: ...
    @property
    def batch_tokens(self) -> int: ...
    @property
    def instruction(self) -> str | None: ...
    def settings(self) -> dict[str, Any]: ...
    def score(self, pairs: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None, *,
              instruction: str | None = None, progress: Progress | None = None) -> Results[float]: ...  # fmt: skip
    def rank(self, query: str, documents: Iterable[str], top_k: int | None = None, return_documents: bool = False,
             batch_size: int | None = None, show_progress_bar: bool | None = None, *, ids: Iterable[Any] | None = None,
             instruction: str | None = None, progress: Progress | None = None) -> Results[RankResult]: ...  # fmt: skip


class Reranker(_Predicts):
    """A Qwen3-Reranker that scores pairs exactly as the model card's transformers recipe does.

    >>> rr = Reranker("0.6b")                                          # doctest: +SKIP
    >>> rr.score([("capital of China?", "Beijing is the capital.")])  # doctest: +SKIP
    [0.99...]
    >>> rr.rank("capital of China?", ["Paris", "Beijing"], top_k=1)   # doctest: +SKIP
    [{'corpus_id': 1, 'score': 0.99...}]

    ``model`` is an alias (``0.6b``, ``4b``, ``8b``), a hub repo id, a local folder (a causal checkpoint or a
    converted ``Qwen3ForSequenceClassification`` one), a name registered with ``qrr.models.register`` or such a
    loader itself (default ``$QRR_MODEL`` or ``0.6b``). ``device`` is ``auto`` (cuda, mps, cpu), ``cpu``, ``mps``,
    ``cuda`` or ``cuda:N`` (or a ``torch.device``); ``dtype`` is ``auto``, ``bf16``, ``fp16`` or ``fp32`` (or a
    ``torch.dtype``). ``max_length`` caps the prompt in tokens (only the document part is cut; ``None``: the
    default, 8192). ``instruction`` replaces the default task instruction. ``batch_tokens`` bounds the tokens of one
    forward pass, pads included (memory), default by device; a longer prompt runs alone. A hub model missing from
    the local cache is downloaded first, unless ``offline`` (default: whether ``HF_HUB_OFFLINE`` is set; where it is
    set, nothing downloads).
    ``share_prefix`` runs the tokens that pairs with the same instruction and query share once (same scores,
    less work); turn it off only to measure what it saves. ``recipe`` is the model card's ``transformers`` recipe
    (the default), its ``vllm`` one (the chat template, as Qwen's published evaluation used) or ``vllm-template``
    (vLLM's template file; see ``qrr.family``). ``compile`` runs the model's layers through ``torch.compile``
    (long-lived or long work: the first start spends a minute or more compiling, a later one reads the compiled code
    from disk; see ``TransformerEngine.compile`` and BENCHMARKS.md for where it pays).
    """

    @peer_keywords
    def __init__(
        self,
        model: str | os.PathLike[str] | Callable | None = None,
        device: str | int | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        max_length: int | None = DEFAULT_MAX_LENGTH,
        instruction: str | None = None,
        batch_tokens: int | None = None,
        offline: bool | None = None,
        share_prefix: bool = True,
        recipe: str = DEFAULT_RECIPE,
        compile: bool = False,
    ):
        from qrr import device as devices
        from qrr import models

        # before anything loads
        max_length = _check_options(max_length, instruction, batch_tokens, share_prefix, compile, recipe)
        dev = devices.resolve_device(device)
        devices.fit_threads(dev)
        dt = devices.resolve_dtype(dtype, dev)
        model = models.named(model)
        key = models.model_key(model) if isinstance(model, str | os.PathLike) else None
        if hasattr(model, "forward") and hasattr(model, "parameters"):  # callable, but no loader
            raise InputError("{model}: a loaded model goes to Reranker.from_model(model, tokenizer)", "model")
        if not isinstance(model, str | os.PathLike) and not callable(model):
            raise InputError(f"{{model}} must be a model name, hub repo id or folder, not {type(model).__name__}",
                             "model")  # fmt: skip
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        loader = model if callable(model) else models.registered(model)
        if loader is not None:
            devices.slow_dtype_warning(dev, dt)
            engine, tokenizer = loader(dev, dt)
            name = model if isinstance(model, str) else type(model).__name__
            self._init(engine, Prompter(tokenizer, max_length, recipe=recipe), instruction, batch_tokens, share_prefix,
                       name, compile)  # fmt: skip
            self._model_key = key
            return
        from qrr.engine import TransformerEngine

        path = models.resolve(model, offline=offline)
        devices.slow_dtype_warning(dev, dt)  # once the model is found: a wrong name is said without it
        config = models.read_config(path)
        kind = models.checkpoint_kind(path, config)
        if config.get("auto_map"):  # trust_remote_code's classes, which may score otherwise
            warn(logging.getLogger("qrr"), f"{path}: config.json names code of its own (auto_map), which qrr does not "
                 "run: it scores with transformers' Qwen3")  # fmt: skip
        # checks max_length, the recipe and the answer tokens before the weights load
        tokenizer = _load_tokenizer(path)
        try:
            prompter = Prompter(tokenizer, max_length, recipe=recipe, positions=QWEN3.max_positions(config))
        except InputError as exc:  # the tokenizer's own faults (special tokens, chat template): said of its folder
            if isinstance(exc, NotAModelError) or "recipe" in exc.params:
                raise type(exc)(f"{path}: {exc.template}", *exc.params) from None
            raise
        if isinstance(config.get("vocab_size"), int):  # the embeddings' rows, said before they load (minutes, for 8B)
            _check_vocabulary(prompter.tokenizer, config["vocab_size"])
        engine = TransformerEngine.load(path, kind, dev, dt, prompter.yes_id, prompter.no_id, prompter.pad_id,
                                        attn=devices.ATTENTION)  # fmt: skip
        self._init(engine, prompter, instruction, batch_tokens, share_prefix, path, compile)
        self._model_key = key

    @classmethod
    @peer_keywords
    def from_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device: str | int | torch.device | None = None,
        max_length: int | None = DEFAULT_MAX_LENGTH,
        instruction: str | None = None,
        batch_tokens: int | None = None,
        share_prefix: bool = True,
        recipe: str = DEFAULT_RECIPE,
        compile: bool = False,
    ) -> Reranker:
        """A Reranker around an already loaded Qwen3 causal LM (or converted sequence classifier) and its
        tokenizer (benchmarks on random weights, custom loading). The model keeps its dtype and its device (with
        ``device``, it is moved there, ``auto`` the best there is); once the caller drops its own reference, the full
        output head is freed. Its attention implementation becomes qrr's (``qrr_sdpa`` for ``sdpa``), which answers
        the model's own calls as before, and its RMSNorm class answers them as before too (qrr's passes take a fused
        kernel on CUDA). The other options are ``Reranker``'s."""
        from qrr import device as devices
        from qrr.engine import TransformerEngine

        max_length = _check_options(max_length, instruction, batch_tokens, share_prefix, compile, recipe)
        if isinstance(model, str | os.PathLike) or not hasattr(model, "base_model"):
            raise InputError(f"{{model}}: from_model takes a loaded transformers model, not {type(model).__name__}; a "
                             "name or folder goes to Reranker(model)", "model")  # fmt: skip
        if not hasattr(tokenizer, "convert_tokens_to_ids"):
            raise InputError(f"{{tokenizer}}: from_model takes a loaded tokenizer "
                             f"(AutoTokenizer.from_pretrained(folder)), not {type(tokenizer).__name__}",
                             "tokenizer")  # fmt: skip
        dev = devices.resolve_device(device) if device is not None else _device_of(model)
        devices.fit_threads(dev)
        config = getattr(model, "config", None)
        positions = QWEN3.max_positions(config.to_dict() if hasattr(config, "to_dict") else vars(config or object()))
        prompter = Prompter(tokenizer, max_length, recipe=recipe, positions=positions)
        if hasattr(model, "get_input_embeddings"):  # before the engine takes the model over (device, attention)
            _check_vocabulary(tokenizer, model.get_input_embeddings().num_embeddings)
        if hasattr(model, "score") and not hasattr(model, "lm_head"):
            engine = TransformerEngine.from_classifier(model, dev, prompter.pad_id)
        else:
            engine = TransformerEngine.from_causal(model, dev, prompter.yes_id, prompter.no_id, prompter.pad_id)
        self = cls.__new__(cls)
        self._init(engine, prompter, instruction, batch_tokens, share_prefix, None, compile)
        return self

    def _init(self, engine, prompter, instruction, batch_tokens, share_prefix, source, compile=False):
        self.prompter = prompter
        self.engine = engine
        self.model_path = source
        self._model_key = None  # from_model's: not known
        self.instruction = instruction
        self.share_prefix = share_prefix
        self.batch_tokens = batch_tokens  # checked against the memory that is free
        self._framed_said = False  # unlocked: two threads at once may each say it, no worse than once more
        if compile:
            engine.compile()

    def description(self) -> str:
        """Where and how this reranker runs, in a line (``qrr -v`` says it): ``model PATH on cpu (bf16, 2 threads),
        transformers recipe, batch budget 1024 tokens``."""
        from qrr.device import cpu_threads, dtype_name

        on = dtype_name(self.dtype) + (f", {cpu_threads()}" if self.device.type == "cpu" else "")
        compiled = ", compiled" if getattr(self.engine, "compiled", False) else ""
        return (f"model {self.model_path} on {self.device} ({on}), {self.recipe} recipe, batch budget "
                f"{self.batch_tokens} tokens{compiled}")  # fmt: skip

    def __repr__(self) -> str:
        from qrr.device import dtype_name

        made = f"Reranker({str(self.model_path)!r}, " if self.model_path else "Reranker.from_model(..., "
        return (f"{made}device={str(self.device)!r}, dtype={dtype_name(self.dtype)!r}, max_length={self.max_length}, "
                f"recipe={self.recipe!r})")  # fmt: skip

    def __reduce__(self):
        # pickle's own message names a lock; what a caller needs to know is where to build one instead
        raise NotPicklableError(
            "a Reranker holds a loaded model and cannot be pickled or copied: build one in each process (in a "
            "multiprocessing Pool's initializer, say) from the same options"
        )

    @property
    def max_length(self) -> int:
        return self.prompter.max_length

    @max_length.setter
    def max_length(self, value) -> None:
        _fixed("max_length")

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @device.setter
    def device(self, value) -> None:
        _fixed("device")  # the model's weights stay where they were loaded

    @property
    def dtype(self) -> torch.dtype:
        return self.engine.dtype

    @dtype.setter
    def dtype(self, value) -> None:
        _fixed("dtype")

    # Set after building too (a notebook's rr.batch_tokens = 4096): checked as the constructor checks them, so that
    # a bad value fails here and not in a later call, blaming a pair
    @property
    def batch_tokens(self) -> int:
        """The token budget of one forward pass, pads included."""
        return self._batch_tokens

    @batch_tokens.setter
    def batch_tokens(self, value: int | None) -> None:
        from qrr.engine import default_batch_tokens

        # None: the device's default, as when building
        value = check_count(value, "batch_tokens") or default_batch_tokens(self.device)
        self.engine.check_budget(value)
        self._batch_tokens = value

    @property
    def instruction(self) -> str | None:
        """The task instruction of pairs and calls without their own (``None``: the model family's default)."""
        return self._instruction

    @instruction.setter
    def instruction(self, value: str | None) -> None:
        _check_text(value, "instruction", none=True)
        _check_unicode(value, "the instruction")
        if value is not None:  # one leaving no room for a query and document failed every call after: said now
            self.prompter.check_room("", value)
        self._instruction = value

    @property
    def share_prefix(self) -> bool:
        """Whether pairs that share a prompt prefix (one query) run it once."""
        return self._share_prefix

    @share_prefix.setter
    def share_prefix(self, value: bool) -> None:
        _check_flag(value, "share_prefix")
        self._share_prefix = value

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.prompter.tokenizer

    @tokenizer.setter
    def tokenizer(self, value) -> None:
        _fixed("tokenizer")  # the model's own: another would number its tokens otherwise

    @property
    def recipe(self) -> str:
        return self.prompter.recipe.name

    @recipe.setter
    def recipe(self, value) -> None:
        _fixed("recipe")

    def settings(self) -> dict[str, Any]:
        """How this Reranker scores, as a reranked run's output records it (``pipelines.RunOutput``: kept beside
        the file, and checked when a run goes on with it): the model (a repo id, or a folder's full path; ``None``
        after ``from_model``), the instruction as its text (the default's too), ``max_length``, ``recipe`` and
        ``dtype`` (``bf16``: its scores differ from fp32's in rounding, so one file holds one dtype's)."""
        from qrr.device import dtype_name

        return run_settings(self._model_key, self.instruction, self.max_length, self.recipe, dtype_name(self.dtype))

    # ----------------------------------------------------------------------------------------------- scoring

    @peer_keywords
    def score(
        self,
        pairs: Pairs,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        *,
        instruction: str | None = None,
        progress: Progress | None = None,
    ) -> Results[float]:
        """p(yes) in [0, 1] for each pair, in input order, with the call's ``stats``.

        A pair is ``(query, document)`` or ``(query, document, instruction)``; an instruction of ``None``
        falls back to ``instruction`` (for this call), then to this Reranker's, then to the model card's default.
        ``pairs`` may be any iterable; they are tokenized and scored ``CHUNK`` (1,024) at a time. ``progress`` is called
        with the number of pairs each finished batch scored; ``batch_size`` caps the pairs of one forward pass
        (the token budget ``batch_tokens`` always applies); ``show_progress_bar`` draws a tqdm bar on stderr.
        """
        check_call(batch_size, show_progress_bar, instruction)
        instruction = instruction if instruction is not None else self.instruction
        results: Results[float] = Results()
        total = len(pairs) if hasattr(pairs, "__len__") and not _is_pair(pairs) else None
        checked = triples(pairs, instruction)
        if isinstance(pairs, list | tuple) and not _is_pair(pairs):  # a bad pair at 100,000 said before any is scored
            checked = list(checked)
        with ProgressBar(total, show_progress_bar, progress) as advance:
            for chunk in chunks(checked, CHUNK):
                try:
                    scores, stats, encoded = self._score(chunk, advance, batch_size)
                except PairError as exc:
                    raise exc.shifted(len(results)) from None
                results += scores
                results.stats += stats
                results.pair_tokens += [len(e.ids) for e in encoded]
                results.pair_cut += [e.truncated for e in encoded]
        return results

    @peer_keywords
    def rank(
        self,
        query: str,
        documents: Iterable[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        *,
        ids: Iterable[Any] | None = None,
        instruction: str | None = None,
        progress: Progress | None = None,
    ) -> Results[RankResult]:
        """The documents best first for ``query``, as sentence-transformers' ``CrossEncoder.rank`` gives them:
        dicts with ``corpus_id`` (the document's input position) and ``score`` (p(yes)), ``text`` with
        ``return_documents``, and ``id`` where ``ids`` (one per document) are given. Ties keep input order.

        ``documents`` may be any iterable, a generator over millions of lines included: they are scored
        ``CHUNK`` (1,024) at a time, and with ``top_k`` only the best k are kept. ``instruction`` overrides this
        Reranker's instruction for the call; ``progress`` is called with the pairs each batch scored.
        """
        check_call(batch_size, show_progress_bar)
        check_query(query, instruction)
        instruction = instruction if instruction is not None else self.instruction
        total = len(documents) if hasattr(documents, "__len__") else None
        with ProgressBar(total, show_progress_bar, progress, "ranking", "document") as advance:

            def score(start: int, chunk: list[str]) -> tuple[list[float], Stats]:
                try:
                    scores, stats, _ = self._score([(query, d, instruction) for d in chunk], advance, batch_size)
                except PairError as exc:  # every pair holds the one query: no pair is to blame
                    raise InputError(exc.text, *exc.params) from None
                return scores, stats

            return rank_chunks(score, documents, top_k, return_documents, ids)

    def prompt(self, query: str, document: str, instruction: str | None = None) -> Prompt:
        """The prompt the model reads for one pair, to set beside another implementation's: ``text`` (its tokens
        decoded, special tokens and all), ``ids`` (the ones to compare: see ``qrr.Prompt``) and ``cut`` (whether the
        document was cut to fit ``max_length``). ``instruction`` as in ``score``: ``None`` takes this Reranker's, then
        the model card's default."""
        check_query(query, instruction)
        _check_text(document, "document")
        _check_unicode(document, "the document")
        try:
            return self.prompter.prompt((query, document, self.instruction if instruction is None else instruction))
        except PairError as exc:  # one pair: no "pair 0" to name
            raise InputError(exc.text, *exc.params) from None

    def _score(self, triples, progress, max_rows) -> tuple[list[float], Stats, list]:
        start = time.perf_counter()
        if not self._framed_said:
            self._framed_said = say_framed(triples, self.prompter.family)
        encoded = self.prompter.encode(triples)
        sequences = [e.ids for e in encoded]
        groups = [(instruction, query) for query, _, instruction in triples] if self.share_prefix else None
        scores, work = [], None
        if sequences:
            scores, work = self.engine.score(sequences, self.batch_tokens, progress, groups, max_rows)
        stats = Stats(
            pairs=len(sequences),
            tokens=sum(len(s) for s in sequences),
            truncated=sum(e.truncated for e in encoded),
            seconds=time.perf_counter() - start,
            computed_tokens=work.tokens if work else 0,
            attended=work.attended if work else 0,
        )
        return scores, stats, encoded


def _device_of(model) -> torch.device:
    """Where ``model`` is, for ``from_model`` without a ``device``: one split across devices (``device_map``) needs
    one named, as qrr scores on one."""
    placed = {str(d) for d in (getattr(model, "hf_device_map", None) or {}).values()}
    if len(placed) > 1:
        raise InputError(f"{{device}}: the model is split across devices ({', '.join(sorted(placed))}) and qrr "
                         "scores on one: give the one to move it to, device=\"cuda:0\" say", "device")  # fmt: skip
    first = next(iter(model.parameters()), None)
    if first is None:
        raise InputError("{model}: the model has no weights", "model")
    return first.device


def find_framed(triples: Iterable[tuple[str, str, str | None]], family=QWEN3) -> tuple[str, str] | None:
    """The first query or document of ``triples`` formatted as the prompt already (``Family.framed``): ``("query"
    or "document", its marker)``, or ``None``."""
    for query, document, _ in triples:
        for what, text in (("query", query), ("document", document)):
            marker = family.framed(text)
            if marker is not None:
                return what, marker
    return None


def warn_framed(what: str, marker: str) -> None:
    """Warn of a query or document (``what``) formatted as the prompt already: its frame is there twice, and its
    score is another prompt's."""
    warn(logging.getLogger("qrr"), f"a {what} starts or ends with {marker!r}, a marker of the prompt qrr writes around "
         "each pair: a text formatted as that prompt already (as vLLM's Qwen3-Reranker example formats them) gets the "
         "frame twice and another score; send the bare query and document, and the instruction apart, as {instruction}",
         "instruction")  # fmt: skip


def say_framed(triples, family=QWEN3) -> bool:
    """Warn where a query or document of ``triples`` is formatted as the prompt already; whether it did (a scorer
    says it once)."""
    found = find_framed(triples, family)
    if found is not None:
        warn_framed(*found)
    return found is not None


def predicted(score, pairs, batch_size=None, show_progress_bar=None, convert_to_numpy=True, convert_to_tensor=False,
              instruction=None):  # fmt: skip
    """``predict`` for any scorer with ``Reranker.score``'s signature (a server's too)."""
    _check_iterable(pairs, "pairs", "(query, document) pairs")
    _check_flag(convert_to_numpy, "convert_to_numpy")
    _check_flag(convert_to_tensor, "convert_to_tensor")
    single = _is_pair(pairs)
    items = [pairs] if single else list(_rows(pairs))
    scores = score(items, batch_size=batch_size, show_progress_bar=show_progress_bar, instruction=instruction)
    if convert_to_tensor:
        import torch

        out = torch.tensor(list(scores), dtype=torch.float32)
    elif convert_to_numpy:
        import numpy

        out = numpy.array(scores, dtype=numpy.float32)
    else:
        out = list(scores)
    return out[0] if single else out


_END = object()


def rank_chunks(score, documents: Iterable[str], top_k: int | None = None, return_documents: bool = False,
                ids: Iterable[Any] | None = None) -> Results[RankResult]:  # fmt: skip
    """What ``rank`` does around the scoring, for any scorer: ``score(start, texts)`` gives the scores and stats
    of a chunk of documents (``start``: the first one's input position), checked (``check_documents``). Documents
    are read ``CHUNK`` at a time; with ``top_k`` only the best k are kept (none with 0, as CrossEncoder's slice keeps
    none: nothing is scored). Best first; ties keep input order."""
    top_k = check_count(top_k, "top_k", least=0)
    check_document_source(documents, "documents", "documents=list(d.values()), ids=list(d)")
    _check_flag(return_documents, "return_documents")
    if ids is not None:
        _check_iterable(ids, "ids", "ids, one per document")
    whole = isinstance(documents, list | tuple)
    if whole:  # a bad one at 100,000 said before any is scored; an iterator's, a chunk at a time
        check_documents(documents)
        if isinstance(ids, Sequence) and len(ids) != len(documents):
            raise InputError(f"{{ids}}: {'fewer' if len(ids) < len(documents) else 'more'} ids than documents", "ids")
    if top_k == 0:  # rank(q, hits, top_k=min(5, len(hits))) where the first stage found none
        return Results([], Stats())
    id_source = None if ids is None else iter(ids)
    kept: list = []  # every result, or with top_k a min-heap of (score, -index, result)
    stats = Stats()
    index = 0
    for chunk in chunks(documents, CHUNK):
        chunk_ids = [None] * len(chunk) if id_source is None else list(itertools.islice(id_source, len(chunk)))
        if len(chunk_ids) < len(chunk):
            raise InputError("{ids}: fewer ids than documents", "ids")
        if not whole:
            check_documents(chunk, index)
        scores, chunk_stats = score(index, chunk)
        stats += chunk_stats
        for text, doc_id, value in zip(chunk, chunk_ids, scores, strict=True):
            result: RankResult = {"corpus_id": index, "score": value}
            if id_source is not None:
                result["id"] = doc_id
            if return_documents:
                result["text"] = text
            if top_k is None:
                kept.append(result)
            elif len(kept) < top_k:
                heapq.heappush(kept, (value, -index, result))
            else:  # the lowest score, and of equal scores the latest document, leaves
                heapq.heappushpop(kept, (value, -index, result))
            index += 1
    if id_source is not None and next(id_source, _END) is not _END:
        raise InputError("{ids}: more ids than documents", "ids")
    results = kept if top_k is None else [entry[2] for entry in kept]
    return Results(sorted(results, key=lambda r: (-r["score"], r["corpus_id"])), stats)


FRAME_HINT = "pass its column of texts, frame['document'] (and ids=frame.index, for each result to name its row: " \
             "corpus_id is a position)"  # fmt: skip


def _fixed(param: str):
    raise FixedSetting(f"{{{param}}} is fixed when a Reranker is built; build another for another {param}", param)


def check_document_source(documents, param: str, instead: str, frame: str = FRAME_HINT) -> None:
    """Raise ``InputError`` unless ``documents`` (the parameter ``param``) is an iterable of documents: not one
    string, whose characters would be ranked, nor a mapping or a DataFrame, whose keys or column names would
    (``instead`` and ``frame`` say what to pass)."""
    if isinstance(documents, str | bytes):
        raise InputError(f"{{{param}}} must be an iterable of strings, not one string (put it in a list)", param)
    if isinstance(documents, Mapping):
        raise InputError(f"{{{param}}} must be an iterable of strings, not a mapping: pass its texts and keys "
                         f"({instead})", param)  # fmt: skip
    if hasattr(documents, "itertuples") and hasattr(documents, "columns"):  # iterating it gives its column names
        raise InputError(f"{{{param}}} must be an iterable of strings, not a DataFrame, whose column names would be "
                         f"ranked: {frame}", param)  # fmt: skip
    _check_iterable(documents, param, "strings")


def triples(pairs: Pairs, instruction: str | None = None) -> Iterator[tuple[str, str, str | None]]:
    """``(query, document, instruction)`` for each ``(query, document)`` or ``(query, document, instruction)``, or
    each record with the fields ``query``, ``document`` and optionally ``instruction`` (a dict, as ``qrr score``'s
    JSON lines hold; a pandas row; a named tuple), an instruction of ``None`` taking ``instruction``; lazily, a
    malformed pair raising ``InputError``."""
    for n, pair in enumerate(pair_rows(pairs)):
        if isinstance(pair, tuple) and len(pair) == 2 and _is_iterrows(pair):
            raise PairError(n, "an (index, row) tuple, as DataFrame.iterrows() gives; pass the DataFrame itself, or "
                               "its rows: (row for _, row in frame.iterrows())")  # fmt: skip
        fields = named_fields(pair)
        if fields is not None:
            if "query" not in fields or "document" not in fields:
                has = f"not {', '.join(map(str, fields))}" if fields else "and it has none"
                raise PairError(n, f"a record needs the fields query and document, {has}")
            pair = (fields["query"], fields["document"], fields.get("instruction"))
        elif isinstance(pair, str | bytes) or not hasattr(pair, "__len__") or len(pair) not in (2, 3):
            texts = (" (a list of texts is no list of pairs: rank(query, documents) takes documents; one pair with "
                     "its instruction is a tuple)") if isinstance(pair, str) else ""  # fmt: skip
            raise PairError(n, f"expected (query, document) or (query, document, instruction), not {_shown(pair)}"
                               f"{texts}")  # fmt: skip
        query, document, *rest = pair
        yield _triple(n, (query, document, rest[0] if rest and not _missing(rest[0]) else instruction))


def _missing(value) -> bool:
    """Whether ``value`` is no value: ``None``, or pandas' missing values (NaN; ``pd.NA`` in a column of dtype
    ``string``)."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NAType"


def _is_iterrows(pair: tuple) -> bool:
    """Whether ``(a, b)`` is what ``DataFrame.iterrows()`` gives, ``(index, row)``: a record for a row (with the
    pair's fields, or after an index that is no query), unlike ``(query, hit)``, a vector store's hit as the
    document."""
    row = named_fields(pair[1])
    return row is not None and (not isinstance(pair[0], str) or {"query", "document"} <= set(row))


def pair_rows(pairs, param: str = "pairs"):
    """The items of ``pairs`` (the parameter ``param``), one pair each: checked to be an iterable of pairs, not
    one pair; a DataFrame's rows."""
    _check_iterable(pairs, param, "(query, document) pairs")
    if _is_pair(pairs):
        raise InputError(f"{{{param}}} must be an iterable of pairs, not one pair: [(query, document), ...]", param)
    return _rows(pairs)


def _rows(pairs):
    """A pandas DataFrame's rows as named tuples (iterating one gives its column names); anything else as it is."""
    if hasattr(pairs, "itertuples") and hasattr(pairs, "columns"):
        if getattr(pairs.columns, "nlevels", 1) > 1:
            raise InputError("{pairs}: a DataFrame with columns of several levels; flatten them to query and "
                             "document (and optionally instruction)", "pairs")  # fmt: skip
        named = [str(c) for c in pairs.columns if isinstance(c, str)]
        if named and not {"query", "document"} <= set(named):  # read by position, its columns would be mixed up
            raise InputError(f"{{pairs}}: a DataFrame needs the columns query and document (and optionally "
                             f"instruction), not {', '.join(named)}; rename them", "pairs")  # fmt: skip
        return pairs.itertuples(index=False)
    return pairs


def _triple(n: int, triple: tuple) -> tuple[str, str, str | None]:
    for field, value in zip(("query", "document", "instruction"), triple, strict=True):
        if not isinstance(value, str) and not (field == "instruction" and value is None):
            raise PairError(n, f"{field} must be a string, not {type(value).__name__}{_text_hint(value)}")
        _check_unicode(value, f"the {field}", n)
    return triple


def _check_unicode(text: str | None, what: str, pair: int | None = None) -> None:
    """Raise ``InputError`` (``PairError`` where ``pair`` is given) for a text that is no valid Unicode (a lone
    surrogate, from a bad decode), which the tokenizer would refuse with a ``TypeError``."""
    if text is None or text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # a lone surrogate is what Python makes of bytes that are not UTF-8 (a Latin-1 shell argument, a bad decode)
        said = f"{what} is not valid Unicode text (a lone surrogate at character {exc.start + 1}: bytes that were " \
               "not UTF-8?)"  # fmt: skip
        raise (InputError(said) if pair is None else PairError(pair, said)) from None


def check_call(batch_size=None, show_progress_bar=None, instruction=None) -> None:
    """A scoring call's own parameters, checked (``Reranker``'s and a server's alike): ``batch_size`` a count,
    ``show_progress_bar`` a flag, ``instruction`` a string of valid Unicode; each may be ``None``."""
    check_count(batch_size, "batch_size")
    _check_flag(show_progress_bar, "show_progress_bar", none=True)
    _check_text(instruction, "instruction", none=True)
    _check_unicode(instruction, "the instruction")


def check_query(query, instruction=None) -> None:
    """``rank``'s query and instruction, checked: strings (the instruction may be ``None``) of valid Unicode."""
    _check_text(query, "query")
    _check_text(instruction, "instruction", none=True)
    _check_unicode(query, "the query")
    _check_unicode(instruction, "the instruction")


def check_documents(documents: list, start: int = 0) -> None:
    """``rank``'s documents, checked: strings of valid Unicode (``start``: the first one's input position)."""
    for n, document in enumerate(documents, start):
        if not isinstance(document, str):
            from qrr.formats import DocRecord

            hint = _text_hint(document)
            if isinstance(document, DocRecord):
                hint = " (pass its text; qrr.pipelines.rank_records ranks DocRecords, keeping their ids)"
            raise InputError(f"document {n} must be a string, not {type(document).__name__}{hint}")
        _check_unicode(document, f"document {n}")


def _check_options(max_length, instruction, batch_tokens, share_prefix, compile, recipe) -> int:
    """The options both constructors take, checked before anything loads; returns ``max_length`` (``None``, as
    CrossEncoder takes it: the default)."""
    max_length = DEFAULT_MAX_LENGTH if max_length is None else max_length
    check_count(batch_tokens, "batch_tokens")
    max_length = check_count(max_length, "max_length")  # numpy's int64 kept made settings() no JSON
    _check_text(instruction, "instruction", none=True)
    _check_unicode(instruction, "the instruction")  # before loading: the tokenizer raised a TypeError at each call
    _check_flag(share_prefix, "share_prefix")
    _check_flag(compile, "compile")
    _check_text(recipe, "recipe")
    QWEN3.recipe(recipe)  # an unknown one said before the model is looked for
    return max_length


def _text_hint(value) -> str:
    """Where a record stands for a text (a vector store's hit, a DocRecord): what to pass instead; a NaN said as
    the missing value it stands for."""
    if value is not None and _missing(value):
        return f" ({'NaN' if isinstance(value, float) else 'NA'}: a missing value, as pandas reads an empty cell)"
    if isinstance(value, Mapping):
        field = next((k for k in ("text", "page_content", "content", "document") if k in value), None)
        return f" (pass its {field!r} field)" if field else ""
    # LangChain's Document holds .page_content, Haystack's .content, LlamaIndex's nodes .text
    attribute = next((a for a in ("text", "page_content", "content") if isinstance(getattr(value, a, None), str)), None)
    return f" (pass its .{attribute})" if attribute else ""


def _check_text(value, param: str, none: bool = False) -> None:
    if not isinstance(value, str) and not (none and value is None):
        raise InputError(f"{{{param}}} must be a string, not {type(value).__name__}", param)


def _check_flag(value, param: str, none: bool = False) -> None:
    numpy_bool = getattr(value, "dtype", None) is not None and value.dtype.kind == "b" and value.ndim == 0
    if not isinstance(value, bool) and not numpy_bool and not (none and value is None):  # "no" would count as true
        raise InputError(f"{{{param}}} must be True or False, not {value!r}", param)


def _check_iterable(items, param: str, of: str) -> None:
    if isinstance(items, str | bytes):  # its characters would be taken for the items
        raise InputError(f"{{{param}}} must be an iterable of {of}, not one string", param)
    if items is None or not hasattr(items, "__iter__"):
        raise InputError(f"{{{param}}} must be an iterable of {of}, not {type(items).__name__}", param)


def _shown(value) -> str:
    """A wrong value, short: its type, and its length where it has one."""
    size = f" (length {len(value)})" if hasattr(value, "__len__") and not isinstance(value, str | bytes) else ""
    return f"{type(value).__name__}{size}"


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to ``size`` items from any iterable, read lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def spans(sizes: Iterable[int]) -> Iterator[slice]:
    """Consecutive slices of parts this long: where each part of a merged call lies in its results."""
    start = 0
    for n in sizes:
        yield slice(start, start + n)
        start += n


def best_first(scores: Sequence[float]) -> list[int]:
    """The indexes of ``scores``, best first; equal scores keep their order."""
    return sorted(range(len(scores)), key=lambda n: -scores[n])


def _is_pair(item) -> bool:
    """One pair (``("q", "d")``, or one record with ``query`` and ``document``), not a sequence of pairs:
    CrossEncoder's rule for ``predict``."""
    fields = named_fields(item)
    if fields is not None:
        return isinstance(fields.get("query"), str) and isinstance(fields.get("document"), str)
    one_row = isinstance(item, list | tuple) or getattr(item, "ndim", None) == 1  # a numpy array of two strings
    # a sequence of pairs never starts with a string: ("q", None) is one pair, with a bad document; three strings
    # are one (query, document, instruction) only as a tuple: a list of three may be three documents
    return one_row and (len(item) == 2 or len(item) == 3 and isinstance(item, tuple)) and isinstance(item[0], str)


class ProgressBar:
    """A tqdm bar on stderr (``show`` true; a notebook's widget) advanced by the pairs (or documents) scored,
    chained with a ``progress`` callback; neither is required. ``what`` and ``unit`` label it."""

    def __init__(self, total: int | None, show: bool | None, progress: Progress | None = None, what: str = "scoring",
                 unit: str = "pair"):  # fmt: skip
        self.total, self.show, self.progress, self.bar = total, bool(show), progress, None
        self.what, self.unit = what, unit

    def __enter__(self) -> Progress | None:
        if self.show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit=self.unit, desc=self.what)
        if self.bar is None:
            return self.progress
        return self._advance

    def _advance(self, n: int) -> None:
        self.bar.update(n)
        if self.progress is not None:
            self.progress(n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_vocabulary(tokenizer, rows: int) -> None:
    """``NotAModelError`` where the tokenizer has tokens past the model's ``rows`` embeddings: a text holding one
    failed in the middle of a run (``IndexError: index out of range in self``)."""
    if len(tokenizer) > rows:
        raise NotAModelError(f"the tokenizer has {len(tokenizer):,} tokens, the model's embeddings {rows:,} rows: "
                             "tokens were added to it (a pad token?) without resize_token_embeddings(len(tokenizer)) "
                             "before saving")  # fmt: skip


def _load_tokenizer(path: Path):
    """The folder's tokenizer; where its files are missing or broken, the folder check says which (transformers
    builds an empty tokenizer from tokenizer_config.json alone, or fails with a bare JSON error)."""
    from transformers import AutoTokenizer

    from qrr import models

    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.json")):
        models.check_folder(path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception:
        models.check_folder(path)
        raise
