"""The ``qrr`` command, one module per subcommand: parse options, call the core, render. What the commands share
is in ``base`` (options, errors to exit codes, loading a model or reaching a server), ``render`` (output,
progress, the notes after a run), ``runs`` (the run around ``rerank`` and ``eval``), ``onray`` (``--ray``) and
``signals`` (SIGTERM, SIGHUP and Ctrl-C).

torch and transformers are imported only once a command runs, so ``qrr --help`` stays instant.
"""

import contextlib
import os
import signal


def _stop_as_pid_1() -> None:
    """As a container's first process (PID 1), where the kernel drops a signal that has no handler, SIGTERM ends the
    process until a command sets its own: a SIGTERM in the first half second (the imports) was lost, and the
    supervisor waited out its grace period to kill it. (Python's start and the package's own light imports before
    this take some 0.1 s.)"""
    if os.getpid() == 1 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        with contextlib.suppress(ValueError):  # imported first from another thread: signals are the main thread's
            signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))


_stop_as_pid_1()  # before the imports below, which take most of that half second

from qrr.cli import base  # noqa: E402
from qrr.cli.base import app  # noqa: E402
from qrr.errors import debugging  # noqa: E402

# Importing a command's module registers it; the order here is the order of `qrr --help`.
# isort: off
from qrr.cli import rank, score, rerank, evaluate, serve, download, bench  # noqa: E402, F401
# isort: on


_ending: list = []  # SIGINT, once a command stopped by Ctrl-C (exit 130) has said how far it got


def main() -> None:
    """Console-script entry point."""
    import atexit

    base.FREEZE_AFTER_LOAD = True
    atexit.register(_end_by_signal)  # registered first, so run last of the exit handlers
    try:
        app(prog_name="qrr")
    except OSError as exc:  # outside a command's own handling: the help or version (> /dev/full), completion's files
        if debugging():
            raise
        if exc.filename is not None:  # --install-completion under a HOME it cannot write: a traceback of 50 lines
            raise SystemExit(base.fail(f"{exc.filename}: {exc.strerror}", 1).exit_code) from None
        if exc.errno not in base.WRITE_FAILURES:
            raise
        base.silence_stdout()  # what is left in its buffer would fail again at exit
        raise SystemExit(base.fail(*base.describe(exc)).exit_code) from None
    except SystemExit as exc:
        # typer exits 1 where the reader closed the pipe while it wrote (`qrr rank --help | head -n 2`); a command's
        # own output ends quietly with 0 then (errors_to_exit), and so does the help
        if exc.code == 1 and isinstance(exc.__context__, BrokenPipeError):
            _past_readers(0)
            raise SystemExit(0) from None
        if exc.code == 130 and os.name != "nt":  # Windows has no death by a signal: it would exit 2 (bad input)
            import signal

            _ending.append(signal.SIGINT)
        _past_readers(exc.code)
        raise


def _end_by_signal() -> None:
    """After Ctrl-C, end by SIGINT rather than exit 130, as Python ends on an uncaught Ctrl-C: a shell stops a script
    whose command died by SIGINT (after an exit of 130 it ran the next command, so a loop over files took a Ctrl-C
    for each). The shell's ``$?`` is 130 either way. SIGTERM keeps its exit 143: a shell goes on after a command
    that SIGTERM ended as after one that exited, and prints a line of its own for it."""
    if not _ending:
        return
    import signal

    _flush()
    signal.signal(_ending[0], signal.SIG_DFL)
    os.kill(os.getpid(), _ending[0])


def _past_readers(code) -> None:
    """End the process with ``code`` at once where a thread still reads the input ahead (``qrr score``'s, waiting on
    a pipe that paused): Python's shutdown aborted (exit 134) on the lock of stdin that its read holds."""
    import sys
    import threading

    pipelines = sys.modules.get("qrr.pipelines")  # not imported (qrr --help): no such thread
    if pipelines is None or not any(t.name == pipelines.READER and t.is_alive() for t in threading.enumerate()):
        return
    if isinstance(code, str):  # a message, as SystemExit prints it
        print(code, file=sys.stderr)
    _flush()
    _end_by_signal()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _flush() -> None:
    import contextlib
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (| head): nothing more to say to it
            stream.flush()


__all__ = ["app", "main"]
