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
            raise SystemExit(0) from None
        raise


__all__ = ["app", "main"]
