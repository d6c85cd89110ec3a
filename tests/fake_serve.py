"""``python -m tests.fake_serve serve --model fake ...``: qrr's CLI with the fake model registered, for server tests
that need a model they hold: with ``QRR_FAKE_GATE`` naming a file, batch n runs once the file says n or more;
``QRR_FAKE_LOAD_SECONDS`` makes loading take that long, ``QRR_FAKE_PIDS`` names a folder where a load, as it
starts, leaves a file named after the process, and with ``QRR_FAKE_FAIL`` every forward pass raises a ``KeyError`` of
it (a bug: no ``QrrError``); with ``QRR_FAKE_NO_SIGHUP`` the ``signal`` module has no SIGHUP, as on Windows."""

from __future__ import annotations

import os

from qrr import models
from qrr.testing import FakeModel
from tests.tiny import tokenizer_files

if __name__ == "__main__":
    if os.environ.get("QRR_FAKE_NO_SIGHUP"):
        import signal

        del signal.SIGHUP
    gate = os.environ.get("QRR_FAKE_GATE")  # a file holding how many batches may run
    load_seconds = float(os.environ.get("QRR_FAKE_LOAD_SECONDS", 0))  # a load that takes this long
    pids = os.environ.get("QRR_FAKE_PIDS")  # a folder: the load leaves a file there as it starts
    fail = os.environ.get("QRR_FAKE_FAIL")  # every forward pass raises KeyError(fail)
    failing = {"interrupt_after": 0, "raising": KeyError(fail)} if fail else {}
    models.register("fake", FakeModel(str(tokenizer_files()), pids=pids, load_seconds=load_seconds, gate=gate,
                                      **failing))  # fmt: skip
    from qrr.cli import main

    main()  # as the qrr command runs (its arguments are sys.argv[1:])
