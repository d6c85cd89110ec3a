"""A fake model for tests, as simonw/llm's ``MockModel``: the real tokenizer, prompt and batching, but no
transformer. Register one under a name and every front end loads it by that name::

    from qrr import Reranker, models
    from qrr.testing import FakeModel

    models.register("fake", FakeModel("path/to/tokenizer"))  # a Qwen3 tokenizer's folder, or a tokenizer object
    Reranker("fake").score([("q", "d")])          # or: qrr score --model fake ...

A fake score is a fixed function of every token of the prompt (so it changes with the query, the document, the
instruction and truncation, and never with batching or prefix reuse); it means nothing. The fake can also fail on
purpose: a Ctrl-C after some batches, or out of memory in batches of too many rows (on a pretend CUDA device, the
engine's halving of the budget then runs as it would on a GPU).
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

from qrr.engine import Engine


class FakeEngine(Engine):
    """An ``Engine`` whose forward pass is a checksum of the token ids. ``interrupt_after``: raise ``raising``
    (``KeyboardInterrupt`` unless given) in the batch after that many; ``fits_rows``: raise
    ``torch.OutOfMemoryError`` for a batch of more rows; ``delay``: take that many seconds a batch, as a slow model
    would; ``gate``: a file holding how many batches may run, each further batch waiting until it says more (a
    test's hand on the model, across processes). ``rows`` lists the sizes of the batches run, ``tried`` of every
    batch tried (failed ones too)."""

    def __init__(
        self,
        device="cpu",
        dtype=None,
        interrupt_after: int | None = None,
        raising: BaseException | type[BaseException] = KeyboardInterrupt,
        fits_rows: int | None = None,
        delay: float = 0.0,
        gate: str | os.PathLike | None = None,
    ):
        import torch

        super().__init__(torch.device(device), dtype or torch.float32)
        self.interrupt_after = interrupt_after
        self.raising = raising
        self.fits_rows = fits_rows
        self.delay = delay
        self.gate = gate
        self.rows: list[int] = []
        self.tried: list[int] = []
        self._count = threading.Lock()

    @property
    def batches(self) -> int:
        return len(self.rows)

    def prefix_cache(self, prefix: Sequence[int]):
        return list(prefix)

    def log_odds(self, rows: Sequence[Sequence[int]], prefix=None, prefix_len: int = 0):
        import torch

        with self._count:
            self.tried.append(len(rows))
            if self.interrupt_after is not None and len(self.rows) >= self.interrupt_after:
                raise self.raising
            if self.fits_rows is not None and len(rows) > self.fits_rows:
                raise torch.OutOfMemoryError(f"fake out of memory: {len(rows)} rows > {self.fits_rows}")
            self.rows.append(len(rows))
        if self.delay:
            time.sleep(self.delay)
        if self.gate is not None:
            self._wait_for_gate(len(self.rows))
        return torch.tensor([fake_log_odds([*(prefix or []), *row]) for row in rows], dtype=torch.float32)

    def _wait_for_gate(self, batch: int) -> None:
        while True:
            try:
                allowed = int(Path(self.gate).read_text().strip() or 0)
            except (OSError, ValueError):
                allowed = 0
            if allowed >= batch:
                return
            time.sleep(0.01)


def fake_log_odds(ids: Sequence[int]) -> float:
    """A log-odds in [-6, 6] that depends on every token id and their order."""
    checksum = zlib.crc32(b"".join(i.to_bytes(4, "little") for i in ids))
    return checksum / 2**32 * 12 - 6


class FakeModel:
    """A loader for ``qrr.models.register``: each load builds a ``FakeEngine`` (``engine_options`` as its
    arguments; ``device="cuda"`` pretends to be a GPU) with ``tokenizer`` (an object or a folder). With ``pids``, a
    folder, each load also leaves a file named after its process id there (which processes loaded it: Ray's
    actors, say); ``load_seconds`` makes each load take that long, as a big model's would."""

    def __init__(self, tokenizer, pids: str | os.PathLike | None = None, load_seconds: float = 0.0, **engine_options):
        self.tokenizer = tokenizer
        self.pids = pids
        self.load_seconds = load_seconds
        self.engine_options = engine_options
        self.engines: list[FakeEngine] = []

    def __call__(self, device, dtype):
        if self.pids is not None:
            (Path(self.pids) / str(os.getpid())).touch()
        time.sleep(self.load_seconds)
        if isinstance(self.tokenizer, str | os.PathLike):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer)
        options = {"device": device, "dtype": dtype, **self.engine_options}
        self.engines.append(FakeEngine(**options))
        return self.engines[-1], self.tokenizer
