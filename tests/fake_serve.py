"""``python -m tests.fake_serve serve --model fake ...``: qrr's CLI with the fake model registered, for server tests
that need a model slow enough to watch (``QRR_FAKE_DELAY`` seconds a batch)."""

from __future__ import annotations

import os
import sys

from qrr import models
from qrr.testing import FakeModel
from tests.tiny import tokenizer_files

if __name__ == "__main__":
    models.register("fake", FakeModel(str(tokenizer_files()), delay=float(os.environ.get("QRR_FAKE_DELAY", "0"))))
    from qrr.cli import app

    app(prog_name="qrr", args=sys.argv[1:])
