"""completions/ must hold what the typer app generates today, and the scripts must complete."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "completions" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_fresh(shell):
    gen = _generator()
    on_disk = (ROOT / "completions" / gen.SHELLS[shell]).read_text()
    assert on_disk == gen.render(shell), f"stale: run `python completions/generate.py` ({shell})"


def test_completion_callback_offers_commands_and_options():
    env = {**os.environ, "_QRR_COMPLETE": "complete_bash", "COMP_WORDS": "qrr rank --to", "COMP_CWORD": "2"}
    code = "from qrr.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "--top-k" in out.stdout.split()
    env.update(COMP_WORDS="qrr s", COMP_CWORD="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["score", "serve"]
    # a line being typed with two queries (refused when run) still completes
    env.update(COMP_WORDS="qrr rank -q a -q b --dtype ", COMP_CWORD="7")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["auto", "bf16", "fp16", "fp32"]


def test_bench_sizes_complete_as_a_list():
    env = {**os.environ, "_QRR_COMPLETE": "complete_bash", "COMP_WORDS": "qrr bench --sizes ", "COMP_CWORD": "3"}
    code = "from qrr.cli import main; main()"

    def offered(words: str) -> list[str]:
        env.update(COMP_WORDS=f"qrr bench --sizes {words}")
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.split()

    assert offered("") == ["0.6b", "4b", "8b"]
    assert offered("0.6b,") == ["0.6b,4b", "0.6b,8b"]  # the list so far kept, its sizes not offered again
    assert offered("0.6b,8") == ["0.6b,8b"]
    assert offered("Qwen/Qwen3-Reranker-4B,0.6B,") == ["Qwen/Qwen3-Reranker-4B,0.6B,8b"]  # as the run reads sizes
