"""SIGTERM, SIGHUP and Ctrl-C in the parts of a command: the commands' own tests send them to whole runs."""

from __future__ import annotations

import os
import signal
import time

import pytest

from qrr.cli.signals import TWIN_WITHIN, signals_deferred, sigterm_stops
from qrr.errors import Terminated


def test_a_sigterm_in_the_heavy_imports_stops_the_command_at_their_end():
    reached = []
    with pytest.raises(Terminated), sigterm_stops():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler has run by now, and raised nothing here
            reached.append("the block's end")
        reached.append("after the block")
    assert reached == ["the block's end"]
    with pytest.raises(Terminated), sigterm_stops():  # outside such a block, at once
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        reached.append("never")
    assert reached == ["the block's end"]
    # once: a closed SSH session sends SIGHUP twice, and the second came into the first one's clean-up
    with sigterm_stops():
        for sig in (signal.SIGHUP, signal.SIGHUP, signal.SIGTERM):
            try:
                os.kill(os.getpid(), sig)
                time.sleep(0.2)
                reached.append("went on")
            except Terminated:
                reached.append("stopped")
    assert reached == ["the block's end", "stopped", "went on", "went on"]
    # a second try, where the first stop went unheeded (a library's bare except took it): it stops
    with sigterm_stops():
        for sig in (signal.SIGTERM, signal.SIGTERM):
            try:
                os.kill(os.getpid(), sig)
                time.sleep(0.2)
            except Terminated:
                reached.append("stopped")
                time.sleep(TWIN_WITHIN)  # the stop's clean-up
    assert reached == ["the block's end", "stopped", "went on", "went on", "stopped", "stopped"]
    with pytest.raises(Terminated), sigterm_stops():  # the next command stops again
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.2)


def test_a_ctrl_c_in_the_heavy_imports_stops_the_command_at_their_end():
    """Ctrl-C in the first second (torch's import) ended in a RecursionError, an ImportError or an abort (134)."""
    reached = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            with signals_deferred():  # nested: the outer block's end raises
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
                reached.append("the inner block's end")
            reached.append("the outer block's end")
        reached.append("after the block")
    assert reached == ["the inner block's end", "the outer block's end"]
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is Python's again
    # ignored (a background job of a script): it stays so
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigterm_handling_leaves_other_threads_alone():
    """Signals belong to the main thread: a command run from another (a caller's own runner) sets no handler."""
    import threading

    seen = []

    def run():
        with sigterm_stops():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before] and signal.getsignal(signal.SIGTERM) is before
    with sigterm_stops():  # and in the main thread it does
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def _finalizer_sending(signum: int, kind: str) -> None:
    """Leave an object whose finalizer (run by the garbage collector in the middle of any code: a ``regex`` object's
    ``__del__`` was seen) is where ``signum`` comes: an object's ``__del__``, a generator's ``finally`` when it is
    closed unfinished, a weakref callback."""

    def send(*_):
        os.kill(os.getpid(), signum)
        time.sleep(0.1)  # the handler runs in here

    if kind == "__del__":
        type("Dying", (), {"__del__": send})()
    elif kind == "generator":

        def unfinished():
            try:
                yield
            finally:
                send()

        next(unfinished())
    else:
        import weakref

        gone = type("Gone", (), {})()
        kept = weakref.ref(gone, send)  # noqa: F841 (kept, it calls back when gone goes)
        del gone


@pytest.mark.parametrize("kind", ["__del__", "generator", "weakref callback"])
@pytest.mark.parametrize("signum, stop", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_a_stop_that_comes_inside_a_finalizer_stops_the_command_once_it_returns(signum, stop, kind, capfd):
    """Raised inside a finalizer, the stop was printed ("Exception ignored in ...") and lost: the run went on to its
    end and exited 0, and every later SIGTERM waited on that lost one."""
    reached = []
    with pytest.raises(stop), sigterm_stops():
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C stays Python's (asyncio's check)
        _finalizer_sending(signum, kind)
        reached.append("after the finalizer")
        time.sleep(2)  # sent again when the finalizer has returned: the stop comes in this sleep
        reached.append("never")
    assert reached == ["after the finalizer"]
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_stop_lost_at_a_commands_end_stops_it_there_and_is_not_sent_after(monkeypatch):
    import sys

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    with pytest.raises(Terminated), sigterm_stops():
        _finalizer_sending(signal.SIGTERM, "__del__")  # the block ends before the signal is sent again
    time.sleep(0.3)  # past the moment it would have been sent: SIGTERM's default handler would end pytest here
    assert sys.unraisablehook == seen.append and seen == []
    # what else cannot be raised goes where it went before
    with sigterm_stops():
        type("Failing", (), {"__del__": lambda self: 1 / 0})()
    assert [type(u.exc_value) for u in seen] == [ZeroDivisionError]
