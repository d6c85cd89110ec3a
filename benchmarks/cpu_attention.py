"""Packed rows after a shared prefix on a CPU: one flash call a row behind an offset-causal mask (qrr's
``attention.cpu_rows``) against the two calls merged by log-sum-exp that it replaced (``merged_cpu_rows`` here).

Both run in one process on the same loaded model and the same pairs, alternating (A B, B A, A B), so that load and a
busy machine's drift fall on both alike; prints each run's seconds, the ratio of the sums and the largest score
difference between the two.

    python benchmarks/cpu_attention.py /tmp/qwen3-0.6b-random --dtype bf16 --docs 32
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks import workloads  # noqa: E402
from qrr import Reranker  # noqa: E402
from qrr import attention as qrr_attention  # noqa: E402


def merged_cpu_rows(module, query, key, value, scaling, cu_seq_lens, prefix=None):
    """The replaced path: each row's causal attention to itself, one unmasked attention of all tokens to the
    prefix, merged by log-sum-exp."""
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    heads, tokens = query.shape[1], query.shape[2]
    key, value = qrr_attention._grouped(heads, key, value)
    out = query.new_empty(1, tokens, heads, query.shape[3])
    lse = torch.empty(1, tokens, heads, dtype=torch.float32) if prefix is not None else None
    for a, b in itertools.pairwise(cu_seq_lens.tolist()):
        own, own_lse = flash(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], 0.0, True, scale=scaling)
        out[:, a:b] = own.transpose(1, 2)
        if lse is not None:
            lse[:, a:b] = own_lse.transpose(1, 2)
    if prefix is None:
        return out
    keys, values = qrr_attention._grouped(heads, prefix[0][module.layer_idx], prefix[1][module.layer_idx])
    pre, pre_lse = flash(query, keys, values, 0.0, False, scale=scaling)
    return qrr_attention.merge(out, lse, pre.transpose(1, 2), pre_lse.transpose(1, 2)).contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reranker = Reranker(args.model_dir, device="cpu", dtype=args.dtype)
    docs = workloads.make_documents(reranker.tokenizer, args.docs, 80, 350, seed=3)
    pairs = [(workloads.QUERY, d) for d in docs]
    reranker.score(pairs[:4])  # warm-up
    ways = {"masked (qrr)": qrr_attention.cpu_rows, "merged (before)": merged_cpu_rows}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    scores = {}
    for n in range(args.rounds):
        for name in list(ways) if n % 2 == 0 else list(reversed(ways)):
            qrr_attention.cpu_rows = ways[name]
            began = time.perf_counter()
            scores[name] = list(reranker.score(pairs))
            seconds[name].append(time.perf_counter() - began)
            print(f"{name}: {seconds[name][-1]:.2f} s", file=sys.stderr, flush=True)
    masked, merged = (sum(seconds[name]) for name in ways)
    diff = max(abs(a - b) for a, b in zip(*scores.values(), strict=True))
    print(
        f"{args.dtype}, {args.docs} passages, {torch.get_num_threads()} threads: masked {masked:.1f} s, merged "
        f"{merged:.1f} s over {args.rounds} runs each: masked {merged / masked:.3f}x; max |score difference| "
        f"{diff:.1e}"
    )


if __name__ == "__main__":
    main()
