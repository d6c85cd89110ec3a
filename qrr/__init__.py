"""qrr: exact, fast Qwen3-Reranker scores from the shell or Python.

Where to start: ``Reranker`` (``predict``, ``score``, ``rank``: one process, any device); ``pipelines`` (score a
stream of pairs into a file that goes on after an interruption, rank a query, rerank a TREC or BEIR run);
``formats`` (the field's files: pairs, documents, runs, qrels, BEIR folders); ``metrics`` (nDCG, MAP, recall, as
trec_eval counts them); ``server.client.RemoteReranker`` (a running ``qrr serve``, as a Reranker); ``raydata``
(a Ray Data stage, with the ``ray`` extra); ``errors`` (every error qrr raises).

``from qrr import Reranker`` imports neither typer nor rich; torch and transformers load when a Reranker
is built.
"""

from importlib import import_module as _import_module
from importlib.util import find_spec as _find_spec
from typing import TYPE_CHECKING

from qrr._version import __version__
from qrr.errors import QrrError
from qrr.prompt import Prompt
from qrr.reranker import RankResult, Reranker, Results, Scorer, Stats

__all__ = ["Prompt", "QrrError", "RankResult", "Reranker", "Results", "Scorer", "Stats", "__version__"]

if TYPE_CHECKING:  # what __getattr__ imports when first named, as a type checker sees it
    from qrr import (  # noqa: F401
        bench,
        device,
        engine,
        errors,
        family,
        formats,
        metrics,
        models,
        pipelines,
        prompt,
        raydata,
        server,
        testing,
    )

# The core's modules, imported when first named (``qrr.pipelines.rerank_run``), so that ``import qrr`` stays light
_MODULES = {"bench", "device", "engine", "errors", "family", "formats", "metrics", "models", "pipelines", "prompt",
            "raydata", "server", "testing"}  # fmt: skip


if not TYPE_CHECKING:  # a checker sees the modules imported above, and a misspelt name as an error

    def __getattr__(name: str) -> object:
        if name in _MODULES:
            return _import_module(f"qrr.{name}")
        raise AttributeError(f"module 'qrr' has no attribute {name!r}")


def __dir__() -> list[str]:  # tab completion offers the modules before their first use
    # but not one whose extra is missing: help(qrr) and inspect.getmembers(qrr) get every name dir() lists
    return sorted(set(globals()) | {name for name in _MODULES if name != "raydata" or _installed("ray", "pyarrow")})


def _installed(*names: str) -> bool:
    """Whether each of these top-level packages can be imported (looked up, not imported)."""
    try:
        return all(_find_spec(name) is not None for name in names)
    except (ImportError, ValueError):  # a module in sys.modules without a spec
        return False
