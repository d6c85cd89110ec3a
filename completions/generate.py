"""Write qrr's shell completion scripts from the typer app: ``python completions/generate.py``.

The scripts call back into ``qrr`` for the candidates, so they stay right as options change; a test fails
when the files here differ from what this renders.
"""

from __future__ import annotations

from pathlib import Path

from typer._completion_shared import get_completion_script

SHELLS = {"bash": "qrr.bash", "zsh": "qrr.zsh", "fish": "qrr.fish"}
HERE = Path(__file__).resolve().parent


def render(shell: str) -> str:
    """The completion script for ``shell``, as typer generates it for the ``qrr`` program."""
    return get_completion_script(prog_name="qrr", complete_var="_QRR_COMPLETE", shell=shell) + "\n"


def main() -> None:
    for shell, name in SHELLS.items():
        (HERE / name).write_text(render(shell))
        print(HERE / name)


if __name__ == "__main__":
    main()
