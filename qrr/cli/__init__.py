"""The ``qrr`` command, one module per subcommand: parse options, call the core, render. Nothing else lives here.

torch and transformers are imported only once a command runs, so ``qrr --help`` stays instant.
"""

from qrr.cli import bench, download, rank, score  # noqa: F401 - importing a module registers its command
from qrr.cli.base import app


def main() -> None:
    """Console-script entry point."""
    app(prog_name="qrr")


__all__ = ["app", "main"]
