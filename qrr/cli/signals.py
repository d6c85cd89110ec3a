"""SIGTERM, SIGHUP and Ctrl-C while a command runs: each stops it as Ctrl-C does, between writes and after the
heavy imports, never inside them (``sigterm_stops``, ``signals_deferred``, ``writes_whole``)."""

from __future__ import annotations

import _thread
import contextlib
import functools
import signal
import sys
import threading
import time

from qrr.errors import Terminated

# SIGTERM's state while a command runs: ``deferred`` counts the ``signals_deferred`` blocks open, ``pending`` is a
# SIGTERM that came during one.
# interrupted: a Ctrl-C that came during one; stopped: when a SIGTERM (or SIGHUP) was raised (time.monotonic), which
# later ones wait on for a while
_SIGTERM = {"deferred": 0, "pending": False, "interrupted": False, "stopped": None}
# A SIGTERM or SIGHUP this soon after one that was raised is its twin (a closed SSH session sends SIGHUP twice, the
# second into the stop's clean-up), ignored; a later one is someone's second try, where the first went unheeded.
TWIN_WITHIN = 1.0
# How soon a stop lost in a finalizer is sent again (``_lost``), and the signal owed until then
AGAIN_AFTER = 0.05
_OWED = {"signal": None}
_AGAIN = threading.Lock()


def _lost(unraisable, previous) -> None:
    """``sys.unraisablehook`` while a command runs: Python hands it what it cannot raise, an exception raised inside
    a finalizer (an object's ``__del__``, a generator closed by the garbage collector, a weakref callback), which the
    collector runs in the middle of any code, and goes on. A stop raised there (Ctrl-C's ``KeyboardInterrupt``,
    SIGTERM's ``Terminated``: a ``regex`` object's ``__del__`` while a command started) was printed ("Exception
    ignored in ...") and lost, and the run went on to its end and exited 0. Its signal is sent to the main thread
    again in a moment, once the finalizer has returned; anything else goes to ``previous``."""
    exc = unraisable.exc_value
    if not isinstance(exc, KeyboardInterrupt) or threading.current_thread() is not threading.main_thread():
        previous(unraisable)
        return
    signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT  # SIGHUP's stop too is Terminated
    _SIGTERM["stopped"] = None  # nothing stopped: the signal sent again is no twin
    _OWED["signal"] = signum
    # a thread of _thread's, not threading's: inside the collector, threading's own locks may be held
    _thread.start_new_thread(_send_again, (signum,))


def _send_again(signum: int) -> None:
    time.sleep(AGAIN_AFTER)
    with _AGAIN:
        if _OWED["signal"] != signum:  # the command has ended, or stopped
            return
        _OWED["signal"] = None
        if hasattr(signal, "pthread_kill"):  # to the main thread itself, so that a sleep or a read there wakes
            signal.pthread_kill(threading.main_thread().ident, signum)
        else:  # Windows, where raise_signal from any thread reaches the main thread's handler
            signal.raise_signal(signum)


@contextlib.contextmanager
def sigterm_stops():
    """While a command runs, SIGTERM (a scheduler's preemption, ``kill``, ``timeout``) stops it as Ctrl-C does,
    raising ``Terminated``: finished results stay written and the command says how far it got. Python's default
    would end the process at once, without a word. So do SIGHUP, SIGUSR1 and SIGUSR2, unless ignored or handled.
    ``qrr serve`` sets its own handlers inside this."""

    def terminate(signum, frame):
        if _SIGTERM["stopped"] is not None and time.monotonic() - _SIGTERM["stopped"] < TWIN_WITHIN:
            return
        if _SIGTERM["deferred"]:
            _SIGTERM["pending"] = True
            return
        _SIGTERM["stopped"] = time.monotonic()
        raise Terminated

    _SIGTERM["stopped"] = None
    previous: dict = {}
    # SIGHUP too (a terminal or SSH session closed), unless ignored (nohup): it ended the command without a word,
    # the end of its --resume record unwritten
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    stops = [signal.SIGTERM] + ([hangup] if hangup and signal.getsignal(hangup) is not signal.SIG_IGN else [])
    # SIGUSR1 and SIGUSR2 where they would end the process without a word (exit 138, 140): Slurm's --signal sends one
    # before a job's time is up, for it to stop while it can
    stops += [s for s in (getattr(signal, f"SIGUSR{n}", None) for n in (1, 2)) if s and signal.getsignal(s) is
              signal.SIG_DFL]  # fmt: skip
    hook = sys.unraisablehook
    try:
        with contextlib.suppress(ValueError):  # not the main thread (a caller's own runner): leave signals alone
            for stop in stops:
                previous[stop] = signal.signal(stop, terminate)
        if previous:
            sys.unraisablehook = functools.partial(_lost, previous=hook)
        yield
        with _AGAIN:
            owed, _OWED["signal"] = _OWED["signal"], None
        if owed is not None:  # lost at the block's end, and not sent again yet: the stop is now
            raise Terminated if owed == signal.SIGTERM else KeyboardInterrupt
    finally:
        with _AGAIN:
            _OWED["signal"] = None  # ended by an exception of its own: nothing more is sent
        if previous:
            sys.unraisablehook = hook
        for stop, handler in previous.items():  # None: a handler not set from Python, which cannot be set back
            signal.signal(stop, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def signals_deferred():
    """A SIGTERM or Ctrl-C that comes inside this block stops the command at its end, not in it. For the heavy
    imports: raised inside one, the exception was seen swallowed by a library's bare ``except`` (the command went on
    as if no signal had come), leaving a module half-imported (an ``ImportError`` next, a ``RecursionError``) or
    thrown through torch's C++ (an abort, exit 134)."""
    previous, installed = None, False
    # the outer block takes Ctrl-C, unless it is ignored (a background job of a script) or this is not the main thread
    if not _SIGTERM["deferred"] and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        with contextlib.suppress(ValueError):
            previous = signal.signal(signal.SIGINT, lambda *_: _SIGTERM.update(interrupted=True))
            installed = True
    _SIGTERM["deferred"] += 1
    try:
        yield
    finally:
        _SIGTERM["deferred"] -= 1
        if installed:  # None: a handler not set from Python, which cannot be set back; the default stands in
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        if not _SIGTERM["deferred"] and _SIGTERM["pending"]:
            _SIGTERM["pending"] = _SIGTERM["interrupted"] = False
            _SIGTERM["stopped"] = time.monotonic()  # a SIGTERM or SIGHUP just after is this one's twin
            raise Terminated
        if not _SIGTERM["deferred"] and _SIGTERM["interrupted"]:
            _SIGTERM["interrupted"] = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def writes_whole():
    """A Ctrl-C, SIGTERM or SIGHUP that comes while results are written stops the command once the write is done
    (``signals_deferred``), and never interrupts the write itself: blocked in this thread (another takes it), as a
    signal inside a write blocked on a slow reader's pipe lost a row's middle in Python's buffered file."""
    with signals_deferred():
        mask = getattr(signal, "pthread_sigmask", None)  # not on Windows
        if mask is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
        before = mask(signal.SIG_BLOCK, stops)
        try:
            yield
        finally:
            mask(signal.SIG_SETMASK, before)


def heavy_imports() -> None:
    """Import torch and transformers (and the Qwen3 code) now, where a SIGTERM waits for them to finish."""
    with signals_deferred():
        import torch  # noqa: F401
        import transformers.models.qwen3.modeling_qwen3  # noqa: F401
