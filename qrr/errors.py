"""The errors qrr raises. Front ends turn each into their own form: the CLI into one line on stderr and its
``exit_code``, a server into an HTTP status with a JSON body.

Messages speak of the Python parameters they concern (``top_k must be at least 1``). A message marks each such
name as ``{top_k}`` and lists it in ``params``; ``str()`` says the Python name, and a front end says its own
(``--top-k`` on the command line) with ``naming``. Only the marks are replaced, never a value the message quotes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any


class _Said:
    """A message whose ``{param}`` marks a front end says in its own names (``naming``)."""

    exit_code = 1

    def __init__(self, message: str, *params: str):
        self.template = message
        self.params = params
        super().__init__(self.naming({}))

    def __reduce__(self):
        # pickled whole, its marks and attributes too (Ray, and a process pool, hand workers' errors back pickled),
        # without calling a subclass's own __init__ again, whose arguments are not the message's
        return _restored, (type(self), self.args), self.__dict__  # the state set after: a cycle through it holds

    def naming(self, names: Mapping[str, str] | Callable[[str], str]) -> str:
        """The message with each ``{param}`` mark said as ``names`` says (a mapping or a function of the
        parameter's name); a name that the mapping lacks is said as it is."""
        message = self.template
        for param in self.params:
            name = names(param) if callable(names) else names.get(param, param)
            message = message.replace("{" + param + "}", name)
        return message


def _restored(cls: type, args: tuple) -> BaseException:
    """An error of ``cls`` with its ``args``, made without its ``__init__`` (pickle sets its attributes after)."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    return exc


def debugging() -> bool:
    """Whether ``QRR_DEBUG`` asks for tracebacks: set to anything but empty, ``0``, ``false``, ``no`` or ``off``
    (any case), as ``1``, ``true`` and ``yes`` all read in a CI file."""
    import os

    return os.environ.get("QRR_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


class QrrError(_Said, Exception):
    """Base class of every error qrr raises on purpose (a runtime failure: exit 1); a job's Ctrl-C is
    ``Interrupted``, a ``KeyboardInterrupt``."""


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """A count and its noun, as a message says them: ``1 pair``, ``1,030 pairs`` (``nouns`` where it is not
    ``noun`` + s: ``query``, ``queries``)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def json_type(value) -> str:
    """What a JSON value is, as a message says it (``an object``, ``a number``, ``null``)."""
    return {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number",
            str: "a string", type(None): "null"}.get(type(value), type(value).__name__)  # fmt: skip


def warn(log, template: str, *params: str) -> None:
    """Log a warning whose ``template`` marks ``params`` as a ``QrrError``'s message does: said with the Python
    names, and carrying the template and params (``extra``) so that a front end can say its own names."""
    log.warning(QrrError(template, *params).naming({}), extra={"template": template, "params": params})


class InputError(QrrError, ValueError):
    """Bad input or usage: malformed records, missing fields, impossible arguments (exit 2); a ``ValueError`` too,
    as CrossEncoder's and Python's own refusals of a value are. ``skippable``: a bad line's, raised where it could
    have been skipped (``on_error``)."""

    exit_code = 2
    skippable = False


class SourceError(InputError):
    """A whole file (or stdin) that is no text qrr reads (UTF-16, gzip data by another name, lines ending in CR
    alone): skipped, all of it is left out."""


class PairError(InputError):
    """Bad input in one pair: ``pair`` is its position among the pairs of the call that raised it."""

    def __init__(self, pair: int, text: str, *params: str):
        super().__init__(f"pair {pair}: {text}", *params)
        self.pair, self.text = pair, text

    def shifted(self, by: int) -> PairError:
        """The same error, counted from ``by`` pairs before that call's first (one chunk of a longer input)."""
        return PairError(self.pair + by, self.text, *self.params)


def check_count(value, param: str, least: int = 1) -> int | None:
    """Raise ``InputError`` unless ``value`` (the parameter ``param``) is ``None`` or an integer of at least
    ``least`` (numpy's integers count; ``True`` and ``2.0`` do not); returns it as Python's ``int`` (or ``None``),
    which JSON writes."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)  # an array or tensor of several numbers is no integer either
    except TypeError:
        raise InputError(f"{{{param}}} must be an integer, not {value!r}", param) from None
    if value < least:
        raise InputError(f"{{{param}}} must be at least {least}, not {value}", param)
    return value


class ModelNotFoundError(QrrError):
    """The model is neither a local folder nor in the local cache."""


class ModelNameError(ModelNotFoundError, InputError):
    """A model named by something that is no folder, alias or hub repo id: bad input (exit 2)."""


class ModelCheckError(ModelNotFoundError):
    """A model folder that is not a complete Qwen3-Reranker: partial weights or files (an interrupted download)."""


class IncompleteModelError(ModelCheckError):
    """A model folder with files missing (weights, a shard, the tokenizer): what an interrupted download leaves,
    and what downloading again finishes."""


class PickledWeightsError(ModelCheckError, InputError):
    """A folder whose weights are in PyTorch's pickle format (``pytorch_model.bin``), which qrr does not load: bad
    input (exit 2) as a local folder; a hub cache's copy gets the safetensors downloaded."""


class NotAModelError(ModelCheckError, InputError):
    """A folder that holds no Qwen3-Reranker at all (no config, another model, another tokenizer): bad input (exit
    2), as a model name that names nothing is."""


class DeviceError(QrrError):
    """The asked device or dtype does not exist on this machine (exit 2)."""

    exit_code = 2


class OutOfMemoryError(QrrError):
    """A forward pass ran out of memory."""


class FixedSetting(InputError, AttributeError):
    """A Reranker's setting that cannot change once it is built (an ``AttributeError`` too, as a read-only
    attribute's is)."""


class PeerKeyword(InputError, TypeError):
    """A keyword argument of sentence-transformers' ``CrossEncoder`` or FlagEmbedding's ``FlagReranker`` that qrr
    takes otherwise or has no use for, said with qrr's way (a ``TypeError``, as Python's for an unknown keyword)."""


class NotPicklableError(QrrError, TypeError):
    """A ``Reranker`` pickled or copied (a ``TypeError``, as pickle's own refusals are)."""


class Missing(InputError):
    """A query or document (``kind``) that a run names and the inputs lack, as ``pipelines.plan`` hands it to
    ``on_missing``."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class ServerUnavailable(QrrError):
    """A rerank server (``RemoteReranker``, ``--server``) that could not be reached, dropped the connection, did
    not answer in time, answered 502, 503 or 504 past the retries, or went away and did not come back: what an
    application may fall back from (to the first stage's order, or another server)."""


class OutputBusy(QrrError):
    """Another run writes the output, or wrote to it since this one read it."""


class Stopped(QrrError):
    """A runtime error (``cause``, any exception) that stopped a long job after ``done`` of ``total`` units, which
    are kept in ``path``: the same call goes on from there. Its exit code is the cause's."""

    def __init__(self, cause: BaseException, done: int, total: int | None, path: str, kept: str | None = None,
                 verb: str = "rerank"):  # fmt: skip
        """``kept``: what ``path`` holds, in words (default ``{done} of {total} queries``); ``verb``: the call that
        goes on."""
        said = cause.template if isinstance(cause, QrrError) else f"{type(cause).__name__}: {cause}"
        self.kept = kept or f"{done} of {total} queries"
        super().__init__(f"{said}; {self.kept} are in {path}: {verb} into it again to go on",
                         *getattr(cause, "params", ()))  # fmt: skip
        self.cause, self.done, self.total, self.path = cause, done, total, path
        self.exit_code = getattr(cause, "exit_code", 1)


def qrr_cause(exc: BaseException) -> BaseException:
    """The ``QrrError`` inside an error that a worker process raised and Ray wrapped (``cause``, ``__cause__``), or
    ``exc`` itself."""
    seen = exc
    for _ in range(8):
        if isinstance(seen, QrrError) and type(seen).__module__.startswith("qrr"):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
        if seen is None:
            return exc
    return exc


def innermost(exc: BaseException) -> BaseException:
    """The error a worker raised inside what Ray wraps it in (``RayTaskError(FileNotFoundError)``'s ``cause``), or
    ``exc`` itself."""
    for _ in range(8):
        inner = getattr(exc, "cause", None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler preempting a job, ``kill``, ``timeout``), raised by a front end's signal handler so that
    a long job stops as it does on Ctrl-C: what is finished is kept and said. Exit code 143 (128 + 15)."""

    exit_code = 143


class Interrupted(_Said, KeyboardInterrupt):
    """Ctrl-C during a long job, or SIGTERM (``terminated``): ``done`` of ``total`` units were finished (and kept,
    where ``path`` names where). Exit code 130, or 143 for SIGTERM; ``how`` says which in a word. ``partial``
    holds the finished units' results where they were kept in memory, not written (``pipelines.rerank_run``
    without an output: the run of the finished queries). A ``KeyboardInterrupt``, as what it stands for: a loop
    that goes on past ``except Exception`` still stops (it is no ``QrrError``)."""

    exit_code = 130
    partial: Any = None

    def __init__(self, message: str, done: int = 0, total: int = 0, path: str | None = None,
                 terminated: bool = False):  # fmt: skip
        super().__init__(message)
        self.done, self.total, self.path = done, total, path
        self.how = _how(terminated)
        if terminated:
            self.exit_code = Terminated.exit_code

    @classmethod
    def of(cls, exc: KeyboardInterrupt, said: str, done: int = 0, total: int = 0, path: str | None = None):
        """The ``Interrupted`` for ``exc`` (Ctrl-C's ``KeyboardInterrupt`` or ``Terminated``): "interrupted" or
        "terminated", then ``said``."""
        terminated = isinstance(exc, Terminated)
        return cls(f"{_how(terminated)} {said}", done, total, path, terminated)


def _how(terminated: bool) -> str:
    return "terminated" if terminated else "interrupted"
