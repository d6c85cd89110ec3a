"""The run around qrr rerank and qrr eval's reranking, as its own parts; the commands' tests run it whole."""

from __future__ import annotations

import pytest

from qrr.cli import runs
from qrr.cli.render import Skipped
from qrr.errors import InputError


def test_a_run_whose_every_query_was_too_long_says_whose_max_length_to_raise():
    """Through a server, --max-length is refused beside --server: the server's is the one to raise."""
    skipped = Skipped("of the run's queries", noun=False)
    skipped.count = 2
    for within in ("--max-length", "the server's --max-length"):
        with pytest.raises(InputError) as caught:
            runs.check_some_reranked(skipped, 2, 0, within)
        assert str(caught.value) == (f"every query of the run leaves no room within {within} (2 skipped): nothing "
                                     f"was reranked; raise {within}, or shorten the instruction (-i)")  # fmt: skip
    runs.check_some_reranked(skipped, 3, 0)  # one query reranked: a run
