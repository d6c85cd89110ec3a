"""The forward pass: running a call's batches (planned by ``qrr.batching``), shared-prefix reuse, out-of-memory
retries, and the yes/no head on the last hidden state.

The full-vocabulary head never runs. ``p(yes) = sigmoid(h . (w_yes - w_no) + b_yes - b_no)`` where ``h`` is
the last real token's final hidden state and the rows come from ``lm_head`` (the 8B does not tie it to the
embeddings), or from a converted checkpoint's one-row ``score`` head. That equals the recipe's
``softmax([logit_no, logit_yes])[1]``: the log-odds in float32, as the recipe computes them, the sigmoid in float64
(in float32 every log-odds past ~16.6 gives 1.0, the recipe's scores included, and the surest documents would tie;
elsewhere the two agree within float32's rounding, 6e-8).

Shared-prefix reuse: sequences of one group (same instruction and query) start with the same tokens. The
longest common prefix of their full token sequences runs once; its key/value cache is shared by every batch of
the group, which then runs only each row's remaining tokens. Rows are right-padded (so causal attention alone
keeps pads out of real tokens) and positions are given explicitly, so a row's score depends neither on its
padding nor on what else is in its batch, but through rounding (a batch's shape picks the kernels' summation order:
up to about 1e-6 in fp32, a few 1e-3 in bf16). Where CUDA's packed kernel runs, groups are pooled: one forward pass runs
the prefixes of a round of groups, and batches mix their rows, each after its own prefix, so many small groups (a
server's requests) fill a GPU's batches.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import itertools
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import NamedTuple

from qrr import compiling
from qrr.batching import (
    WIDTH_MULTIPLE,
    Work,
    plan_batches,
    plan_groups,
    plan_packed,
    round_up,
    work_of,
)
from qrr.errors import InputError, NotAModelError, OutOfMemoryError, QrrError, plural, warn
from qrr.family import SEQ_CLS
from qrr.loading import load_transformer

log = logging.getLogger("qrr")

# Tokens per forward pass, pads included. On CPUs small batches win (measured: 1024 beats 4096 by 20%, 16384 is 2.4x
# slower; elementwise passes stay in cache); GPUs want wide batches.
DEFAULT_BATCH_TOKENS = {"cpu": 1024, "mps": 8192, "cuda": 32768}

Progress = Callable[[int], None]


def _check_numbers(values: list[float], dtype) -> None:
    """Refuse scores that are no number (NaN), which were written as ``null`` and ranked anywhere: fp16's range
    overflows on long inputs (bf16 keeps fp32's), and a checkpoint may hold NaN weights."""
    bad = sum(v != v for v in values)
    if not bad:
        return
    from qrr.device import dtype_name

    name = dtype_name(dtype)
    # bf16 where the device has it: not T4s, V100s or older Macs, which auto gives fp16
    why = ("whose range the model's activations overflow: use {dtype} fp32 (or bf16 where the device has it)"
           if name == "fp16" else "its weights may hold NaN (check the checkpoint)")  # fmt: skip
    raise QrrError(f"the model gave no number (NaN) for {plural(bad, 'pair')} of a batch of {len(values)} in {name}, "
                   f"{why}", "dtype")  # fmt: skip


def _sigmoid(x: float) -> float:
    """p(yes) of log-odds ``x``, in float64, one number at a time: torch's vectorized sigmoid rounds the last bit
    differently by a value's place in its tensor, which would add to a score's dependence on its batch."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def log_odds(p: float) -> float:
    """``_sigmoid``'s inverse: the log-odds of a p(yes), within 1e-7 of those it came from up to 20 (1e-8 up to 18),
    1e-3 at 30; from about 36.7 up, where p rounds to 1 in float64, every one comes out 36.7 (and -690.8 where p
    underflows)."""
    p = min(max(p, 1e-300), 1 - 2**-53)
    return math.log(p) - math.log1p(-p)


def default_batch_tokens(device) -> int:
    """The default token budget (pads included) of one forward pass on ``device``."""
    return DEFAULT_BATCH_TOKENS.get(device.type, 8192)


def _starts(lengths):
    """Where each of rows this long starts when laid end to end, and where the last ends (int32, as flash
    attention's ``cu_seq_lens`` are)."""
    import torch

    return torch.cat([torch.zeros(1, dtype=torch.int32), lengths.cumsum(0).int()])


class Engine:
    """Scores token sequences: token-budget batches, shared-prefix groups, and on CUDA an out-of-memory batch
    retried with half the budget. What a model contributes (running a prefix, the log-odds of a batch, what
    reuse saves and what a batch costs in memory) subclasses give: ``TransformerEngine`` runs the real model,
    ``qrr.testing.FakeEngine`` a stand-in for tests. One engine may score for several threads at once."""

    # whether a process forked after this engine's passes needs torch on one thread (a real model's OpenMP pool)
    guards_forks = False

    def __init__(self, device, dtype):
        self.device = device
        self.dtype = dtype
        # lowered for good when a CUDA batch runs out of memory
        self.budget_cap = 2**62
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ what a model provides

    def prefix_cache(self, prefix: Sequence[int]):
        """Run ``prefix`` once; returns what ``log_odds`` needs to continue rows after it."""
        raise NotImplementedError

    def log_odds(self, rows: Sequence[Sequence[int]], prefix=None, prefix_len: int = 0):
        """``logit_yes - logit_no`` (float32 tensor) for a batch of token id lists, each continuing the cached
        ``prefix`` (from ``prefix_cache``) of ``prefix_len`` tokens when one is given."""
        raise NotImplementedError

    def worth_sharing(self, shared: int, mean_rest: float) -> bool:
        """Whether running ``shared`` prefix tokens once pays, for rests of ``mean_rest`` tokens."""
        return True

    def rounds(self, parts: list[tuple[int, list[int]]], batch_tokens: int) -> list[list[tuple[int, list[int]]]]:
        """``plan_groups``'s parts in rounds: a round's prefixes run first (``prefix_caches``), then its rows in
        batches, which may mix its parts (``mixed_log_odds``). Here one part a round: a batch continues one
        prefix."""
        return [[part] for part in parts]

    def prefix_caches(self, prefixes: Sequence[Sequence[int]]) -> list:
        """``prefix_cache`` of each of a round's prefixes (``None`` for an empty one)."""
        return [self.prefix_cache(prefix) if prefix else None for prefix in prefixes]

    def mixed_log_odds(self, rows: Sequence[Sequence[int]], caches: Sequence, prefix_lens: Sequence[int]):
        """``log_odds`` of a batch whose rows continue different prefixes of one round: row ``i`` continues
        ``caches[i]`` of ``prefix_lens[i]`` tokens (``None``, 0: none). Only engines whose ``rounds`` mix parts
        are asked."""
        raise NotImplementedError

    def compile(self) -> None:
        """Compile the forward passes (``TransformerEngine``: with ``torch.compile``)."""
        raise InputError("{compile}: this model cannot be compiled (only transformers models can)", "compile")

    def activation_bytes(self, batch_tokens: int) -> int:
        """About how much memory one forward pass of ``batch_tokens`` tokens needs besides the weights."""
        return 0

    def plan(self, lengths: Sequence[int], batch_tokens: int, max_rows: int | None) -> list[list[int]]:
        """Batches of rows this long: padded to a multiple of ``WIDTH_MULTIPLE``, ``batch_tokens`` counting pads."""
        return plan_batches([round_up(n, WIDTH_MULTIPLE) for n in lengths], batch_tokens, max_rows)

    # --------------------------------------------------------------------------------------- the batching

    def score(
        self,
        sequences: Sequence[Sequence[int]],
        batch_tokens: int,
        progress: Progress | None = None,
        groups: Sequence[Hashable] | None = None,
        max_rows: int | None = None,
    ) -> tuple[list[float], Work]:
        """p(yes) for each token sequence, in input order, and the work it took.

        ``groups`` gives each sequence a key (such as its instruction and query); members of a group share
        their common token prefix's computation. Without it, nothing is shared. ``max_rows`` caps the rows of
        a batch besides the token budget. ``progress`` is called with the rows each finished batch scored.
        """
        import torch

        self._guard_forks()
        scores = [0.0] * len(sequences)
        parts = plan_groups(sequences, groups, self.worth_sharing)
        rounds = deque(self.rounds(parts, self._budget(batch_tokens)))
        while rounds:
            together = rounds.popleft()
            caches = None  # the last round's prefixes go before this round's run
            try:
                caches = self.prefix_caches([sequences[indices[0]][:shared] for shared, indices in together])
            except RuntimeError as exc:
                if not _out_of_memory(exc):
                    raise
                if len(together) == 1:
                    raise OutOfMemoryError(f"out of memory running a shared prefix of {together[0][0]} tokens (the "
                                           "frame, instruction and query): shorten the query or instruction, or "
                                           "use a smaller model") from exc  # fmt: skip
                torch.cuda.empty_cache()
                rounds.extendleft(reversed([[part] for part in together]))  # its groups one at a time, then on
                continue
            self._run_round(sequences, together, caches, batch_tokens, max_rows, scores, progress)
        return scores, work_of(sequences, parts)

    def _guard_forks(self) -> None:
        if self.guards_forks and self.device.type == "cpu":  # CUDA cannot be used in a forked child at all
            from qrr.device import guard_forks

            guard_forks()

    def _budget(self, batch_tokens: int) -> int:
        return min(batch_tokens, self.budget_cap)

    def _run_round(self, sequences, together, caches, batch_tokens, max_rows, scores, progress) -> None:
        """Score a round's rows (what follows each part's prefix, whose ``caches`` have run) into ``scores``."""

        members = [(i, k) for k, (_, indices) in enumerate(together) for i in indices]  # (sequence, its part)
        rests = [sequences[i][together[k][0] :] for i, k in members]
        lengths = [len(r) for r in rests]
        queue = deque(self.plan(lengths, self._budget(batch_tokens), max_rows))
        while queue:
            batch = queue.popleft()
            parts_of = [members[j][1] for j in batch]
            rows = [rests[j] for j in batch]
            try:
                if len(set(parts_of)) == 1:
                    odds = self.log_odds(rows, caches[parts_of[0]], together[parts_of[0]][0])
                else:
                    odds = self.mixed_log_odds(rows, [caches[k] for k in parts_of],
                                               [together[k][0] for k in parts_of])  # fmt: skip
                # in float64: float32 rounds every log-odds past ~16.6 to 1.0, tying the surest documents
                values = [_sigmoid(x) for x in odds.float().tolist()]
                _check_numbers(values, self.dtype)
            except RuntimeError as exc:
                if not _out_of_memory(exc):
                    raise
                longest = max(len(sequences[members[j][0]]) for j in batch)  # the whole prompt, prefix included
                self._halve_budget(len(batch), longest, self._budget(batch_tokens), exc)
                left = batch + [j for b in queue for j in b]
                queue = deque(
                    [left[k] for k in b] for b in self.plan([lengths[j] for j in left], self.budget_cap, max_rows)
                )
                continue
            for j, value in zip(batch, values, strict=True):
                scores[members[j][0]] = value
            if progress is not None:
                progress(len(batch))

    def _halve_budget(self, rows: int, longest: int, budget: int, exc: BaseException) -> None:
        """After a batch of ``rows`` (the longest prompt ``longest`` tokens) ran out of memory under ``budget``:
        halve the budget for the rest of this engine's life (on CUDA, where a batch of several rows may be
        re-planned), else refuse."""
        import torch

        if rows == 1 and longest > budget:  # a prompt runs alone past the budget: only a shorter one fits
            raise OutOfMemoryError(f"out of memory in one prompt of {longest:,} tokens, which runs alone past "
                                   f"{{batch_tokens}} {budget}: lower {{max_length}}", "batch_tokens",
                                   "max_length") from exc  # fmt: skip
        if self.device.type != "cuda" or rows == 1:
            raise OutOfMemoryError(
                f"out of memory in a batch of {plural(rows, 'row')}: lower {{batch_tokens}} (now {budget})",
                "batch_tokens",
            ) from exc
        torch.cuda.empty_cache()
        with self._lock:
            self.budget_cap = max(1, min(budget, self.budget_cap) // 2)
        warn(
            log,
            f"out of memory in a batch of {plural(rows, 'row')}; retrying with {{batch_tokens}} {self.budget_cap}",
            "batch_tokens",
        )

    def check_budget(self, batch_tokens: int) -> None:
        """Refuse, before any work, a CPU budget whose activations cannot fit in the memory that is free."""
        if self.device.type != "cpu":
            return  # GPUs recover from out-of-memory by halving the budget as they go
        need, free = self.activation_bytes(batch_tokens), available_memory(self.device)
        if free is not None and need > free:
            raise InputError(
                f"{{batch_tokens}} {batch_tokens} needs about {need / 2**30:.1f} GiB for activations but "
                f"{free / 2**30:.1f} GiB is free; lower {{batch_tokens}} (default "
                f"{default_batch_tokens(self.device)} on {self.device.type})",
                "batch_tokens",
            )


class TransformerEngine(Engine):
    """A transformers Qwen3 base model plus the one-row yes-minus-no head (from a causal LM's ``lm_head`` or a
    converted classifier's ``score``)."""

    guards_forks = True

    def __init__(self, body, head, bias: float, device, pad_id: int, packed: bool | None = None):
        from qrr import attention

        super().__init__(device, next(body.parameters()).dtype)
        self.body = body
        self.head = head
        self.bias = bias
        self.pad_id = pad_id
        # qrr's attention (qrr.attention) wraps the model's own, which still answers every other call. A model
        # given with another implementation (flash-attn's) is left as it is, and rows are padded.
        self.attention = None
        if attention.wrappable(body.config._attn_implementation):
            self.attention = attention.register(body.config._attn_implementation)
            try:
                body.set_attn_implementation(self.attention)
            except (AttributeError, ValueError):  # transformers 4.x, or one that checks names against its own list
                body.config._attn_implementation = self.attention
        ours = self.attention is not None
        self._kernel = ours and attention.kernel_available(device, self.dtype)
        # Packed rows compute no pads: on CUDA where torch has the variable-length kernel, and on CPUs, where
        # padding was 7-18% of the tokens of short passages (packed ran 1.08x padded in bf16, 1.19x in fp32).
        default = self._kernel or device.type == "cpu"
        self.packed = ours and (default if packed is None else packed)
        # On a CPU, padded rows after a shared prefix attend to it and to themselves apart, merged exactly.
        self.merge_prefix = ours and device.type == "cpu"
        # Whether packed batches pool groups (None: where the packed kernel runs, see `pooling`)
        self.pool_groups: bool | None = None
        # On a GPU, transformers' RMSNorm (five elementwise passes in float32) took a quarter of the 0.6B's forward
        # passes; torch's fused one made them 1.34x faster on an H200. On CPUs it gained nothing measurable.
        compiling.fuse_norms(body)
        self.fuse_norms = device.type == "cuda"
        self.compiled = False
        # transformers 5 calls the key/value cache argument `cache`; 4.x calls it `past_key_values`.
        params = inspect.signature(body.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # Elsewhere (padded rows on a GPU without the packed kernel, MPS), a cached prefix forces attention through
        # an offset causal mask, which kernels may compute in full instead of skipping the upper triangle (measured
        # 2x the attention time at 2,000 tokens on a CPU). There a prefix is reused only where the work it saves
        # (shared x weights) beats that: rest^2 x heads x head_dim x layers.
        c = body.config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self._attention_width = c.num_attention_heads * head_dim * c.num_hidden_layers
        self._weights_per_token = sum(p.numel() for p in body.layers.parameters())

    def use_packed(self, packed: bool) -> None:
        """Lay a batch's rows end to end with no padding (``qrr.attention``: the default on CPUs, and on CUDA in
        half precision where torch has the variable-length kernel), or pad them to one width. A model qrr could not
        wrap pads."""
        self.packed = packed and self.attention is not None

    @property
    def pooling(self) -> bool:
        """Whether packed batches pool groups (``rounds``): by default where the packed kernel runs (CUDA). There a
        group of a few short rows (a server's request, say) would fill a small part of a batch; pooled, one forward
        pass runs a round's prefixes and batches mix its groups' rows. On CPUs a batch of one group is no slower,
        and its rows attend to one prefix through the CPU's merged attention. ``pool_groups`` overrides it."""
        return self.packed and (self._kernel if self.pool_groups is None else self.pool_groups)

    def rounds(self, parts: list[tuple[int, list[int]]], batch_tokens: int) -> list[list[tuple[int, list[int]]]]:
        """Pooling, as many groups a round as their prefixes fit in a quarter of ``batch_tokens`` (the prefixes'
        keys and values stay for the round); else one a round."""
        if not self.pooling:
            return super().rounds(parts, batch_tokens)
        rounds: list[list[tuple[int, list[int]]]] = []
        prefix_tokens = 0
        for part in parts:
            if not rounds or prefix_tokens + part[0] > max(1, batch_tokens // 4):
                rounds.append([])
                prefix_tokens = 0
            rounds[-1].append(part)
            prefix_tokens += part[0]
        return rounds

    def prefix_caches(self, prefixes: Sequence[Sequence[int]]) -> list:
        """Pooling, all of a round's prefixes in one packed forward pass: each one's place in their keys and
        values."""
        ran = [p for p in prefixes if p]
        if not self.pooling or not ran:
            return super().prefix_caches(prefixes)
        pool = self._prefix_pass(ran)
        offsets = iter(itertools.accumulate([0, *(len(p) for p in ran)]))
        return [_Pooled(pool, next(offsets)) if p else None for p in prefixes]

    def mixed_log_odds(self, rows: Sequence[Sequence[int]], caches: Sequence, prefix_lens: Sequence[int]):
        pool = next((c.pool for c in caches if c is not None), None)
        spans = [(0, 0) if c is None else (c.offset, n) for c, n in zip(caches, prefix_lens, strict=True)]
        return self._packed_log_odds(rows, pool, spans)

    @property
    def _prefix_by_layers(self) -> bool:
        """Whether a shared prefix reaches qrr's attention as each layer's keys and values (packed or merged), not
        as a cache behind an offset mask."""
        return self.packed or self.merge_prefix

    def worth_sharing(self, shared: int, mean_rest: float) -> bool:
        """Whether running ``shared`` prefix tokens once pays for masked attention over rests this long (packed or
        merged, the prefix costs attention nothing more: always; padded on CUDA, never: it was slower on an H200)."""
        if self._prefix_by_layers:
            return True
        if self.device.type == "cuda":
            return False
        return shared * self._weights_per_token > mean_rest**2 * self._attention_width

    def _ours(self) -> None:
        """Refuse to run qrr's calls through an attention that is no longer qrr's: they would score wrong."""
        now = self.body.config._attn_implementation
        if now != self.attention:
            raise QrrError(f"the model's attention implementation became {now!r} after qrr wrapped it as "
                           f"{self.attention!r}; set it back, or build the Reranker again")  # fmt: skip

    def plan(self, lengths: Sequence[int], batch_tokens: int, max_rows: int | None) -> list[list[int]]:
        if self.packed and self.device.type == "cpu":  # within the budget once rounded up (_packed_log_odds)
            return plan_packed(lengths, max(WIDTH_MULTIPLE, batch_tokens // WIDTH_MULTIPLE * WIDTH_MULTIPLE), max_rows)
        if self.packed:
            return plan_packed(lengths, batch_tokens, max_rows)
        return super().plan(lengths, batch_tokens, max_rows)

    @classmethod
    def from_causal(cls, causal, device, yes_id: int, no_id: int, pad_id: int) -> TransformerEngine:
        """Keep a loaded causal LM's base model and the two head rows; the caller may drop the rest."""
        import torch

        output = causal.get_output_embeddings()
        # no_grad: an autograd graph from these rows back to lm_head would keep all of lm_head alive.
        with torch.no_grad():
            head = (output.weight[yes_id].float() - output.weight[no_id].float()).to(device)
            bias = 0.0 if output.bias is None else float(output.bias[yes_id].float() - output.bias[no_id].float())
        return cls(causal.base_model.to(device).eval(), head, bias, device, pad_id)

    @classmethod
    def from_classifier(cls, classifier, device, pad_id: int) -> TransformerEngine:
        """Keep a converted sequence classifier's base model and its one score row (``lm_head[yes] -
        lm_head[no]``)."""
        import torch

        score = classifier.score
        if score.weight.shape[0] != 1:  # row 0 of two is "no"'s, or a label's: scores that mean something else
            raise NotAModelError(
                f"a sequence classifier with {score.weight.shape[0]} score rows; a converted reranker has one "
                "(lm_head[yes] - lm_head[no], num_labels=1)"
            )
        with torch.no_grad():
            head = score.weight[0].float().to(device)
            bias = 0.0 if getattr(score, "bias", None) is None else float(score.bias[0].float())
        return cls(classifier.base_model.to(device).eval(), head, bias, device, pad_id)

    @classmethod
    def load(cls, path: Path, kind: str, device, dtype, yes_id: int, no_id: int, pad_id: int,
             attn: str = "sdpa") -> TransformerEngine:  # fmt: skip
        """Load the checkpoint at ``path`` (``kind`` ``causal`` or ``seq-cls``), keep its base model and the
        yes-minus-no row, drop the rest."""
        model = load_transformer(path, dtype, attn, kind)
        if kind == SEQ_CLS:
            engine, untied = cls.from_classifier(model, device, pad_id), False
        else:
            engine = cls.from_causal(model, device, yes_id, no_id, pad_id)
            untied = model.get_output_embeddings().weight is not model.get_input_embeddings().weight
        # Dropping the wrapper frees an untied lm_head (1.2 GB on 8B), once its reference cycles are collected
        # (0.2 s, skipped where the head is the embeddings and stays anyway).
        del model
        if untied:
            gc.collect()
        return engine

    def prefix_cache(self, prefix: Sequence[int]):
        """Run ``prefix`` once; returns what lends its keys and values to batches of any size: every layer's keys
        and values, stacked, for qrr's attention (packed, merged), else a cache that keeps nothing of the batches."""
        return self._prefix_pass([prefix])

    def _prefix_pass(self, prefixes: Sequence[Sequence[int]]):
        """``prefix_cache`` of ``prefixes`` laid end to end (several only where packed): their keys and values in
        that order."""
        import torch

        packing = {}
        if self._prefix_by_layers:
            self._ours()
        if self.packed:
            lengths = [len(p) for p in prefixes]
            positions = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0)
            packing = {**self._packing(lengths), "position_ids": positions.to(self.device)}
        ids = torch.tensor([[t for p in prefixes for t in p]], device=self.device)
        with torch.inference_mode(), self._fused():
            out = self.body(input_ids=ids, use_cache=True, **packing)
        cache = getattr(out, "cache", None) or out.past_key_values
        return _stacked(cache) if self._prefix_by_layers else _shared_prefix_cache(cache)

    def log_odds(self, rows: Sequence[Sequence[int]], prefix=None, prefix_len: int = 0):
        import torch

        from qrr import attention

        if self.packed:
            if isinstance(prefix, _Pooled):
                return self._packed_log_odds(rows, prefix.pool, [(prefix.offset, prefix_len)] * len(rows))
            return self._packed_log_odds(rows, prefix, [(0, prefix_len)] * len(rows))

        width = round_up(max(len(r) for r in rows), WIDTH_MULTIPLE)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = torch.tensor(row, dtype=torch.long)
        positions = torch.arange(prefix_len, prefix_len + width).expand(len(rows), width)
        last = torch.tensor([len(r) - 1 for r in rows], device=self.device)
        if prefix is None:
            cache = {"use_cache": False}
        elif self.merge_prefix:
            self._ours()
            cache = {"use_cache": False, "qrr_prefix": prefix, "attention_mask": attention.NO_MASKS}
        else:
            cache = {self._cache_kw: prefix, "use_cache": True}
        # after a cached prefix the layers stay eager: its cache holds a list per layer, compiled once per layer
        with torch.inference_mode(), self._fused(rows=prefix is None or self.merge_prefix):
            # No attention mask: rows are right-padded, so causal attention alone keeps every pad out of every
            # real token (pads only follow them), and SDPA can take its faster causal path. After a cached
            # prefix, transformers offsets the causal mask by the prefix length itself.
            out = self.body(input_ids=ids.to(self.device), position_ids=positions.to(self.device), **cache)
            hidden = out.last_hidden_state[torch.arange(len(rows), device=self.device), last].float()
            return hidden @ self.head + self.bias

    def _packed_log_odds(self, rows: Sequence[Sequence[int]], prefix, spans: Sequence[tuple[int, int]]):
        """A packed batch; row ``i`` continues the ``spans[i]`` (offset, length) of ``prefix``'s tokens (every
        layer's keys and values, stacked; ``(0, 0)``: none)."""
        import torch

        self._ours()
        real = len(rows)
        total = sum(len(r) for r in rows)
        if self.device.type == "cpu" and total % WIDTH_MULTIPLE:
            # one row of pads rounds the batch up, as padded widths are: every new shape made oneDNN build and
            # keep kernels for it (memory grew ~1 GB over 1,000 documents)
            rows = [*rows, [self.pad_id] * (round_up(total, WIDTH_MULTIPLE) - total)]
            spans = [*spans, spans[-1]]
        lengths = [len(r) for r in rows]
        ids = torch.tensor([[t for r in rows for t in r]], device=self.device)
        positions = torch.cat([torch.arange(p, p + n) for (_, p), n in zip(spans, lengths, strict=True)]).unsqueeze(0)
        ends = torch.tensor(lengths).cumsum(0)
        packing = self._packing(lengths)
        if prefix is not None:
            packing["qrr_prefix"] = prefix
            pooled = prefix[0].shape[-2]
            # the CPU's attention takes one prefix as it is; elsewhere, or rows after different prefixes of a pool,
            # each row's keys are gathered: its prefix's (at its offset in the pool), then its own after the pool
            if self.device.type != "cpu" or any(span != (0, pooled) for span in spans):
                starts = [int(e) - n for e, n in zip(ends, lengths, strict=True)]
                index = torch.cat([torch.cat([torch.arange(o, o + p), torch.arange(pooled + a, pooled + a + n)])
                                   for (o, p), a, n in zip(spans, starts, lengths, strict=True)])  # fmt: skip
                keys = torch.tensor([p + n for (_, p), n in zip(spans, lengths, strict=True)])
                packing.update(qrr_key_index=index.to(self.device), cu_seq_lens_k=_starts(keys).to(self.device),
                               max_length_k=int(keys.max()))  # fmt: skip
        with torch.inference_mode(), self._fused(rows=True):
            out = self.body(input_ids=ids, position_ids=positions.to(self.device), use_cache=False, **packing)
            hidden = out.last_hidden_state[0, (ends[:real] - 1).to(self.device)].float()
            return hidden @ self.head + self.bias

    def _packing(self, lengths: Sequence[int]) -> dict:
        """The arguments that make qrr's attention take rows of ``lengths`` laid end to end as one batch."""
        import torch

        from qrr import attention

        return {"cu_seq_lens_q": _starts(torch.tensor(lengths)).to(self.device), "max_length_q": max(lengths),
                "attention_mask": attention.NO_MASKS, "qrr_kernel": self._kernel}  # fmt: skip

    @contextlib.contextmanager
    def _fused(self, rows: bool = False):
        # The prefix pass (rows=False) stays eager: it fills a key/value cache, which compiles once per layer.
        with compiling.switched_on(self.fuse_norms, self.compiled and rows):
            yield

    def compile(self, cache_dir: Path | None = None) -> None:
        """Run qrr's row passes through decoder layers compiled by ``torch.compile`` (shapes dynamic; one graph
        serves every layer, and a handful of shapes every batch), then compile them now on small batches, with and
        without a shared prefix, so the first real batch does not wait. Every other call to the model (the prefix
        pass, the recipe, a caller's own) stays eager. Compiled code goes to torch's on-disk caches, under
        ``cache_dir`` (default ``compile_cache_dir()``) unless ``TORCHINDUCTOR_CACHE_DIR`` names a folder other than
        torch's default (in the temporary directory, often wiped), so a later process with the same model shape,
        torch and device skips most of the work.

        Process-wide, as torch.compile's settings are: ``TORCHINDUCTOR_CACHE_DIR`` is set where none was chosen,
        integer attributes of modules are compiled as numbers (``allow_unspec_int_on_nn_module``: a layer's index),
        and the recompile limit is at least 32."""
        import os

        import torch

        from qrr import attention

        chosen = compiling.inductor_cache_chosen()
        cache = os.environ["TORCHINDUCTOR_CACHE_DIR"] if chosen else str(cache_dir or compiling.compile_cache_dir())
        try:
            os.makedirs(cache, exist_ok=True)
            if not os.access(cache, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:  # a container's read-only or missing HOME: torch's own error named no cache
            # the variable is set only for a folder that works: a second try after the fix took qrr's for chosen
            mover = "TORCHINDUCTOR_CACHE_DIR" if chosen else "cache_dir" if cache_dir else "XDG_CACHE_HOME"
            raise QrrError(f"{{compile}}: its cache folder {cache} cannot be written ({exc.strerror}); set {mover} "
                           "to a folder you can write", "compile") from None  # fmt: skip
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        config = torch._dynamo.config
        config.allow_unspec_int_on_nn_module = True
        config.recompile_limit = max(config.recompile_limit, 32)
        attention.settle()
        self._guard_forks()  # the warm-up passes below
        packed = self.packed
        if self.device.type == "cpu":
            self.packed = False  # the CPU's packed attention loops over rows in Python: compiled, rows are padded
        compiling.compile_layers(self.body)
        self.compiled = True
        # Sizes unlike any of the model's own (padded to 96 wide; 13 prefix tokens): a size equal to one of them is
        # compiled as that very size, so every other would compile again later.
        rows = [[self.pad_id] * n for n in (90, 71, 53)]
        try:
            self.log_odds(rows)
            self.log_odds(rows[:1])  # one row: torch.compile specializes a size of 1
            if self._prefix_by_layers:  # after a cached prefix (elsewhere), the passes stay eager
                shared = self.prefix_cache([self.pad_id] * 13)
                self.log_odds(rows, shared, 13)
                self.log_odds(rows[:1], shared, 13)
        except Exception as exc:
            self.compiled, self.packed = False, packed
            compiling.uncompile_layers(self.body)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise QrrError(f"{{compile}}: torch.compile failed here ({first}); run without it", "compile") from exc

    def activation_bytes(self, batch_tokens: int) -> int:
        c = self.body.config
        dtype_bytes = next(self.body.parameters()).element_size()
        return activation_bytes(c.hidden_size, c.intermediate_size, self._attention_width // c.num_hidden_layers,
                                dtype_bytes, batch_tokens)  # fmt: skip


def _out_of_memory(exc: RuntimeError) -> bool:
    """Whether ``exc`` is an allocation that failed: ``torch.OutOfMemoryError``, or a plain ``RuntimeError`` on a
    CPU (``DefaultCPUAllocator: not enough memory: you tried to allocate``), Apple's GPU (``MPS backend out of
    memory ... Tried to allocate``) or CUDA outside torch's allocator (cuBLAS's workspace, ``CUBLAS_STATUS_ALLOC_FAILED
    when calling cublasCreate``; ``CUDA error: out of memory``)."""
    import torch

    said = str(exc).lower()
    return isinstance(exc, torch.OutOfMemoryError) or any(
        mark in said
        for mark in ("cpuallocator", "tried to allocate", "cublas_status_alloc_failed", "error: out of memory")
    )


def activation_bytes(hidden: int, intermediate: int, attention_width: int, dtype_bytes: int, tokens: int) -> int:
    """Memory of one forward pass over ``tokens`` tokens: the residual stream, norms, q/k/v/o and the MLP's three
    intermediate tensors that live at once inside one layer."""
    return tokens * (6 * hidden + 3 * intermediate + 3 * attention_width) * dtype_bytes


def available_memory(device) -> int | None:
    """Bytes free on ``device`` (MemAvailable on Linux CPUs); ``None`` where it cannot be told."""
    if device.type == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


class _Pooled(NamedTuple):
    """A prefix's place among a round's prefixes: their keys and values (``pool``, stacked) from ``offset`` on."""

    pool: tuple
    offset: int


def _layers_of(cache) -> list:
    """Each layer's ``(keys, values)`` in a key/value cache."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))  # transformers 4.x


def _stacked(cache) -> tuple:
    """Every layer's keys, and values, in one tensor each: a layer takes its own by its index, which a compiled
    layer treats as a number like any other (a list of tensors would compile once per layer)."""
    import torch

    layers = _layers_of(cache)
    return torch.stack([k for k, _ in layers]), torch.stack([v for _, v in layers])


def _shared_prefix_cache(cache):
    """Turn a batch-1 ``DynamicCache`` into one whose layers hand every batch ``prefix + new`` keys and values
    without keeping them: a plain cache would hold every layer's keys for the whole batch until the forward
    pass ends (about 0.6 GB for a CPU batch on 0.6B). Its state is untouched (the prefix length sizes the
    attention mask); only ``update`` differs."""
    prefix = _layers_of(cache)
    cache.__class__ = _shared_prefix_class(type(cache))
    cache.prefix = prefix
    return cache


@functools.cache
def _shared_prefix_class(base):
    import torch

    class SharedPrefixCache(base):
        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            keys, values = self.prefix[layer_idx]
            rows = key_states.shape[0]
            # expand() is a view: the prefix is copied into each row only inside this concatenation.
            return (
                torch.cat([keys.expand(rows, -1, -1, -1), key_states], dim=-2),
                torch.cat([values.expand(rows, -1, -1, -1), value_states], dim=-2),
            )

    return SharedPrefixCache
