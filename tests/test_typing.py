"""What a type checker says of user code: the pairs, devices and results the docs show type-check as they run."""

from __future__ import annotations

import textwrap

USER = """
from typing import Any, NamedTuple, assert_type

import numpy
import pandas as pd

from qrr import Reranker
from qrr.errors import ServerUnavailable
from qrr.formats import PairRecord, read_pairs
from qrr.reranker import RankResult, Results
from qrr.server.client import RemoteReranker


class Pair(NamedTuple):
    query: str
    document: str


rr = Reranker("0.6b", device=1)
as_json: list[list[str]] = [["q", "d"]]
assert_type(rr.score(as_json), Results[float])
assert_type(rr.score([("q", "d"), ("q", "d", "an instruction")]), Results[float])
mixed = [("q", "d"), ("q", "d", "i")]
rr.score(mixed)
rr.score([{"query": "q", "document": "d"}])
rr.score(read_pairs("pairs.jsonl"))
rr.score([PairRecord("q", "d"), Pair("q", "d")])
frame = pd.DataFrame({"query": ["q"], "document": ["d"]})
rr.score(frame)
rr.score(row for _, row in frame.iterrows())
assert_type(rr.predict(["q", "d"]), numpy.float32)
assert_type(rr.predict(("q", "d")), numpy.float32)
assert_type(rr.predict([("q", "d")]), numpy.ndarray)
assert_type(rr.predict([("q", "d")], convert_to_numpy=False), list[float])
assert_type(rr.rank("q", ["d"]), Results[RankResult])
try:
    RemoteReranker("http://127.0.0.1:8000").score([("q", "d")])
except ServerUnavailable:
    pass
rr.score("q d")  # E: a string is no iterable of pairs
rr.score(["q", "d"])  # E: nor a list of texts
Reranker("0.6b", device=1.5)  # E: a device is a name, an int or a torch.device
"""


def test_user_code_type_checks_under_mypy_strict_and_mistakes_do_not(tmp_path):
    from mypy import api

    program = tmp_path / "user.py"
    program.write_text(textwrap.dedent(USER))
    out, err, code = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                              "--hide-error-context", str(program)])  # fmt: skip
    errors = [line for line in out.splitlines() if ": error: " in line]
    expected = [n for n, line in enumerate(USER.splitlines(), 1) if "# E:" in line]
    assert sorted({int(line.split(":")[1]) for line in errors}) == expected, out + err
    assert code == 1
