"""One row's attention after a shared prefix on a CPU, by row length: the one masked call qrr takes for short rows
(``attention.cpu_rows``) against the two calls merged by log-sum-exp it takes past ``attention.MASKED_ROWS``.

The 0.6B's heads (16 query, 8 key/value, 128 wide) after a 70-token prefix, random tensors; both ways alternate in
one process on the same tensors. Prints each length's milliseconds a call, their ratio and the largest difference.

    python benchmarks/long_rows.py [--rows 128,512,1024,2048,4096] [--dtypes fp32,bf16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from qrr.attention import _after_prefix_mask, _grouped, merge  # noqa: E402

HEADS, KV_HEADS, DIM, PREFIX, SCALE = 16, 8, 128, 70, 128**-0.5


def masked(flash, q, k, v, pk, pv):
    mask = _after_prefix_mask(q.shape[2], pk.shape[2], q.dtype)
    keys, values = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
    return flash(q, keys, values, 0.0, False, attn_mask=mask, scale=SCALE)[0]


def merged(flash, q, k, v, pk, pv):
    own, own_lse = flash(q, k, v, 0.0, True, scale=SCALE)
    pre, pre_lse = flash(q, pk, pv, 0.0, False, scale=SCALE)
    return merge(own, own_lse, pre, pre_lse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="128,512,1024,2048,4096", help="row lengths, in tokens")
    parser.add_argument("--dtypes", default="fp32,bf16")
    args = parser.parse_args()
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    torch.manual_seed(0)
    for dtype in (dtypes[name] for name in args.dtypes.split(",")):
        for rows in (int(n) for n in args.rows.split(",")):
            q = torch.randn(1, HEADS, rows, DIM, dtype=dtype)
            k, v = (torch.randn(1, KV_HEADS, rows, DIM, dtype=dtype) for _ in range(2))
            pk, pv = (torch.randn(1, KV_HEADS, PREFIX, DIM, dtype=dtype) for _ in range(2))
            k, v, pk, pv = _grouped(HEADS, k, v, pk, pv)  # repeated where this torch's kernel cannot group heads
            tensors = (flash, q, k, v, pk, pv)
            diff = (masked(*tensors).float() - merged(*tensors).float()).abs().max().item()
            spent = {masked: 0.0, merged: 0.0}
            calls = max(1, 2048 // rows) * 3
            for _ in range(2):
                for way in (masked, merged):
                    start = time.perf_counter()
                    for _ in range(calls):
                        way(*tensors)
                    spent[way] += time.perf_counter() - start
            ms = {way: spent[way] / (2 * calls) * 1e3 for way in spent}
            print(
                f"{str(dtype).removeprefix('torch.'):9} rows {rows:5}: masked {ms[masked]:8.2f} ms, merged "
                f"{ms[merged]:8.2f} ms, masked/merged {spent[masked] / spent[merged]:.2f}, max diff {diff:.1e}"
            )


if __name__ == "__main__":
    main()
