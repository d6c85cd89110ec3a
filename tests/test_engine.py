"""The engine: scores in input order with the work counted, progress by batch, out-of-memory handling, and (on the
tiny model) the fused norms and compiled layers switched in for qrr's passes only. Where the model does not matter
the fake engine (``qrr.testing``) stands in for it; the plans it runs are tested in test_batching.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from qrr.errors import InputError, OutOfMemoryError
from qrr.testing import FakeEngine, fake_log_odds

SEQUENCES = [[7] * 10 + [n] * (1 + n % 9) for n in range(40)]  # one shared 10-token prefix, rests of 1-9 tokens


def sigmoid(x: float) -> float:
    import math

    return 1 / (1 + math.exp(-x))


def test_scores_come_back_in_input_order_with_the_work_done():
    engine = FakeEngine()
    expected = [sigmoid(fake_log_odds(s)) for s in SEQUENCES]
    scores, work = engine.score(SEQUENCES, batch_tokens=100)
    assert scores == pytest.approx(expected, abs=1e-6)
    assert work.tokens == sum(map(len, SEQUENCES))
    shared, shared_work = engine.score(SEQUENCES, batch_tokens=100, groups=["one"] * len(SEQUENCES))
    assert shared == pytest.approx(expected, abs=1e-6)
    assert shared_work.tokens == work.tokens - 10 * (len(SEQUENCES) - 1)  # the prefix ran once
    assert shared_work.attended < work.attended


def test_sure_scores_stay_apart_below_one():
    """p(yes) is computed in float64: in float32 every log-odds past about 16.6 rounds to 1.0 (the recipe's own
    scores do), which would tie the best documents of a ranking in input order."""

    class Sure(FakeEngine):
        def log_odds(self, rows, prefix=None, prefix_len=0):
            import torch

            return torch.tensor([float(len(r)) for r in rows])  # log-odds: the row's length

    scores, _ = Sure().score([[1] * 17, [1] * 20, [1] * 18, [1] * 3], batch_tokens=100)
    assert scores == [sigmoid(17), sigmoid(20), sigmoid(18), sigmoid(3)]
    assert scores[0] < scores[2] < scores[1] < 1.0


def test_progress_counts_rows_per_batch():
    seen = []
    FakeEngine().score(SEQUENCES, batch_tokens=64, progress=seen.append)
    assert sum(seen) == len(SEQUENCES) and len(seen) > 1


def test_cuda_out_of_memory_halves_the_budget_and_retries(caplog):
    engine = FakeEngine(device="cuda", fits_rows=2)  # a pretend GPU: only its device type is read
    with caplog.at_level("WARNING", logger="qrr"):
        scores, _ = engine.score(SEQUENCES[:8], batch_tokens=10_000)
    record = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert record.getMessage() == "out of memory in a batch of 8 rows; retrying with batch_tokens 5000"  # halved
    assert record.params == ("batch_tokens",)  # a front end says its own name for it
    # every row scored exactly once, in the batches that fit after halving, which halved until they fit
    assert sum(engine.rows) == 8 and max(engine.rows) <= 2 and engine.budget_cap < 10_000
    failed = [n for n in engine.tried if n > 2]
    assert failed == sorted(failed, reverse=True) and failed[0] == 8 and failed[-1] < 8
    assert scores == pytest.approx([sigmoid(fake_log_odds(s)) for s in SEQUENCES[:8]], abs=1e-6)


def test_out_of_memory_on_cpu_or_in_one_row_is_an_error():
    with pytest.raises(OutOfMemoryError, match=r"^out of memory in a batch of 8 rows: lower batch_tokens \(now 999\)"):
        FakeEngine(fits_rows=2).score(SEQUENCES[:8], batch_tokens=999)
    with pytest.raises(OutOfMemoryError, match="^out of memory in a batch of 1 row: lower batch_tokens"):
        FakeEngine(device="cuda", fits_rows=0).score(SEQUENCES[:2], batch_tokens=999)  # a short row: the budget
    budget = min(len(s) for s in SEQUENCES[:2]) - 1
    with pytest.raises(OutOfMemoryError) as caught:  # a prompt alone past the budget: only a shorter one fits
        FakeEngine(device="cuda", fits_rows=0).score(SEQUENCES[:2], batch_tokens=budget)
    assert str(caught.value) in [
        f"out of memory in one prompt of {len(s)} tokens, which runs alone past batch_tokens {budget}: lower max_length"
        for s in SEQUENCES[:2]
    ]
    assert caught.value.params == ("batch_tokens", "max_length")
    # a CPU's allocator raises a plain RuntimeError (a 40,960-token mask once): said as out of memory too
    failed = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: not enough memory: you tried to "
                          "allocate 6700400640 bytes.")  # fmt: skip
    with pytest.raises(OutOfMemoryError, match=r"^out of memory in a batch of 8 rows: lower batch_tokens \(now 999"):
        FakeEngine(interrupt_after=0, raising=failed).score(SEQUENCES[:8], batch_tokens=999)
    # Apple's GPU too, whose advice (a watermark ratio of 0.0) may hang the machine: qrr's is the budget
    failed = RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.2 GB, max allowed: "
                          "18.13 GB). Tried to allocate 256.00 MB on private pool. Use "
                          "PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to disable upper limit for memory allocations (may "
                          "cause system failure).")  # fmt: skip
    with pytest.raises(OutOfMemoryError, match=r"^out of memory in a batch of 8 rows: lower batch_tokens \(now 999"):
        FakeEngine(interrupt_after=0, raising=failed).score(SEQUENCES[:8], batch_tokens=999)

    # CUDA's allocations outside torch's allocator (cuBLAS's workspace, a kernel's) raise plain RuntimeErrors too
    class Plain(FakeEngine):
        def log_odds(self, rows, prefix=None, prefix_len=0):
            if len(rows) > 2:
                raise RuntimeError(self.said)
            return super().log_odds(rows, prefix, prefix_len)

    for Plain.said in ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
                       "CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"):  # fmt: skip
        engine = Plain(device="cuda")
        scores, _ = engine.score(SEQUENCES[:8], batch_tokens=10_000)  # halved until it fits, as torch's own
        assert scores == pytest.approx([sigmoid(fake_log_odds(s)) for s in SEQUENCES[:8]], abs=1e-6)
    with pytest.raises(RuntimeError, match="^something else$"):  # any other RuntimeError is left as it is
        FakeEngine(interrupt_after=0, raising=RuntimeError("something else")).score(SEQUENCES[:8], batch_tokens=999)


def test_a_cpu_budget_that_cannot_fit_is_refused_before_starting(reranker, monkeypatch):
    import qrr.engine

    monkeypatch.setattr(qrr.engine, "available_memory", lambda device: 2**30)  # the machine's free memory
    reranker.engine.check_budget(4096)
    with pytest.raises(InputError, match=r"^batch_tokens 100000000 needs about .* GiB for activations but 1.0 GiB is "
                       r"free; lower batch_tokens \(default 1024 on cpu\)$"):  # fmt: skip
        reranker.engine.check_budget(100_000_000)


def test_fused_norms_run_in_qrr_passes_only_and_score_the_same(tiny_model, tokenizer, monkeypatch):
    """On CUDA qrr's passes take torch's fused RMSNorm; forced here on a CPU: the same scores (fp32), and the model's
    own calls (the recipe) keep transformers' norm."""
    import torch
    from transformers import AutoModelForCausalLM

    from qrr import Reranker
    from qrr.bench import recipe_scores

    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reranker = Reranker.from_model(causal, tokenizer, device="cpu", batch_tokens=64)
    assert not reranker.engine.fuse_norms  # a CPU's default
    pairs = [("capital of China?", f"passage {n} " * n) for n in range(1, 12)]
    plain = reranker.score(pairs)
    calls = []
    fused = torch.nn.functional.rms_norm
    monkeypatch.setattr(torch.nn.functional, "rms_norm", lambda *a, **k: calls.append(1) or fused(*a, **k))
    reranker.engine.fuse_norms = True
    got = reranker.score(pairs)
    assert len(calls) > 0  # the fused kernel ran
    assert max(abs(a - b) for a, b in zip(got, plain, strict=True)) <= 1e-6
    before = len(calls)
    prompts = [e.ids for e in reranker.prompter.encode([(q, d, None) for q, d in pairs])]
    recipe_scores(causal, tokenizer, prompts, torch.device("cpu"))
    assert len(calls) == before  # the model's own forward pass: transformers' norm


def test_compiled_layers_run_in_qrr_passes_only_score_the_same_and_cache_on_disk(
    tiny_model, tokenizer, tmp_path, monkeypatch, request
):
    """`compile`: qrr's row passes (with and without a shared prefix) run the compiled layers and score as the eager
    ones (fp32); the model's own calls (the recipe) stay eager; the compiled code lands in qrr's cache folder."""
    import torch
    from torch._dynamo.utils import counters
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    from transformers import AutoModelForCausalLM

    from qrr import Reranker
    from qrr.bench import recipe_scores
    from qrr.compiling import compile_cache_dir, uncompile_layers

    # what importing torch._dynamo leaves there: torch's default, chosen by no one, so qrr's folder is used
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    real = torch.compile

    def spy(fn, **options):
        compiled = real(fn, **options)
        return lambda *args, **kwargs: calls.append(1) or compiled(*args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reranker = Reranker.from_model(causal, tokenizer, device="cpu", batch_tokens=256)
    request.addfinalizer(lambda: uncompile_layers(causal.model))  # the class is the other tests' too
    pairs = [("capital of China?", f"passage {n} " * n) for n in range(1, 12)]
    pairs += [(f"query {n}", "one passage") for n in range(3)]  # no prefix worth sharing
    assert reranker.engine.packed
    plain = reranker.score(pairs)
    graphs = counters["stats"]["unique_graphs"]
    reranker.engine.compile()
    assert not reranker.engine.packed  # the CPU's packed attention loops over rows: compiled, rows are padded
    # four warm-ups (one row or more, a prefix or none), each one graph for both layers: compiled per layer, or
    # falling back to eager, this count would differ
    assert counters["stats"]["unique_graphs"] - graphs == 4
    assert compile_cache_dir() == tmp_path / "qrr" / "compile"
    assert any(p.is_file() for p in compile_cache_dir().rglob("*"))
    before, graphs = len(calls), counters["stats"]["unique_graphs"]
    got = reranker.score(pairs)
    assert got.stats.computed_tokens < got.stats.tokens  # a shared prefix ran once
    assert len(calls) > before and counters["stats"]["unique_graphs"] == graphs  # other sizes: no new graph
    assert max(abs(a - b) for a, b in zip(got, plain, strict=True)) <= 1e-5
    before = len(calls)
    prompts = [e.ids for e in reranker.prompter.encode([(q, d, None) for q, d in pairs])]
    recipe_scores(causal, tokenizer, prompts, torch.device("cpu"))
    assert len(calls) == before  # the model's own forward pass: eager


def test_a_failed_compile_is_one_line_naming_the_option_and_leaves_the_model_eager(
    tiny_model, tokenizer, tmp_path, monkeypatch
):
    import torch
    from transformers import AutoModelForCausalLM

    from qrr import Reranker
    from qrr.errors import QrrError

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))

    def no_compiler(fn, **options):
        def fail(*args, **kwargs):
            raise RuntimeError("no C++ compiler found\nmore detail")

        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)
    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reranker = Reranker.from_model(causal, tokenizer, device="cpu")
    before = reranker.score([("q", "d")])
    with pytest.raises(QrrError) as raised:
        reranker.engine.compile()
    assert str(raised.value) == "compile: torch.compile failed here (no C++ compiler found); run without it"
    assert not reranker.engine.compiled and "_qrr_compiled" not in vars(type(causal.model.layers[0]))
    assert reranker.score([("q", "d")]) == before
    # a container's missing or read-only HOME: torch's FileNotFoundError named no cache and no option
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/proc/no/cache")
    with pytest.raises(QrrError) as raised:
        reranker.engine.compile()
    assert str(raised.value) == ("compile: its cache folder /proc/no/cache cannot be written (No such file or "
                                 "directory); set TORCHINDUCTOR_CACHE_DIR to a folder you can write")  # fmt: skip
    assert not reranker.engine.compiled
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    for where, mover in ((None, "XDG_CACHE_HOME"), (Path("/proc/no/cache"), "cache_dir")):  # qrr's own default
        monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no")
        with pytest.raises(QrrError, match=f"; set {mover} to a folder you can write$"):
            reranker.engine.compile(where)
        # unset still: a second try, after XDG_CACHE_HOME is mended, took the failed folder for the user's choice
        assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    if not os.access(read_only, os.W_OK):  # (root writes anywhere)
        with pytest.raises(QrrError, match=f"^compile: its cache folder {read_only} cannot be written \\(Permission"):
            reranker.engine.compile(read_only)


def test_a_score_that_is_no_number_is_refused_naming_the_dtype():
    """fp16 overflows on long inputs: NaN scores were written as null and ranked anywhere, exit 0."""
    import torch

    from qrr.errors import QrrError

    class Overflowing(FakeEngine):
        def log_odds(self, rows, prefix=None, prefix_len=0):
            odds = super().log_odds(rows, prefix, prefix_len)
            odds[0] = float("nan")
            return odds

    fp16 = (
        r"^the model gave no number \(NaN\) for 1 pair of a batch of 8 in fp16, whose range the model's "
        r"activations overflow: use dtype fp32 \(or bf16 where the device has it\)$"
    )
    with pytest.raises(QrrError, match=fp16):
        Overflowing(dtype=torch.float16).score(SEQUENCES[:8], batch_tokens=10**6)
    with pytest.raises(QrrError, match=r"^the model gave no number \(NaN\) for 1 pair of a batch of 8 in fp32, its "
                       r"weights may hold NaN \(check the checkpoint\)$"):  # fmt: skip
        Overflowing().score(SEQUENCES[:8], batch_tokens=10**6)
    assert len(FakeEngine(dtype=torch.float16).score(SEQUENCES[:8], batch_tokens=10**6)[0]) == 8  # numbers: scored
