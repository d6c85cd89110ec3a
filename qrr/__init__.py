"""qrr: exact, fast Qwen3-Reranker scores from the shell or Python.

``from qrr import Reranker`` imports neither typer nor rich; torch and transformers load when a Reranker
is built.
"""

from qrr.errors import QrrError
from qrr.reranker import Reranker, Results, Stats

__version__ = "0.1.0.dev0"
__all__ = ["QrrError", "Reranker", "Results", "Stats", "__version__"]
