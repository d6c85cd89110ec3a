"""The ``qrr`` command, one module per subcommand: parse options, call the core, render. Nothing else lives here.

torch and transformers are imported only once a command runs, so ``qrr --help`` stays instant.
"""

from qrr.cli import base
from qrr.cli.base import app

# Importing a command's module registers it; the order here is the order of `qrr --help`.
# isort: off
from qrr.cli import rank, score, rerank, evaluate, serve, download, bench  # noqa: E402, F401
# isort: on


def main() -> None:
    """Console-script entry point."""
    base.FREEZE_AFTER_LOAD = True
    try:
        app(prog_name="qrr")
    except SystemExit as exc:
        # typer exits 1 where the reader closed the pipe while it wrote (`qrr rank --help | head -n 2`); a command's
        # own output ends quietly with 0 then (errors_to_exit), and so does the help
        if exc.code == 1 and isinstance(exc.__context__, BrokenPipeError):
            _past_readers(0)
            raise SystemExit(0) from None
        _past_readers(exc.code)
        raise


def _past_readers(code) -> None:
    """End the process with ``code`` at once where a thread still reads the input ahead (``qrr score``'s, waiting on
    a pipe that paused): Python's shutdown aborted (exit 134) on the lock of stdin that its read holds."""
    import contextlib
    import os
    import sys
    import threading

    pipelines = sys.modules.get("qrr.pipelines")  # not imported (qrr --help): no such thread
    if pipelines is None or not any(t.name == pipelines.READER and t.is_alive() for t in threading.enumerate()):
        return
    if isinstance(code, str):  # a message, as SystemExit prints it
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (| head): nothing more to say to it
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


__all__ = ["app", "main"]
