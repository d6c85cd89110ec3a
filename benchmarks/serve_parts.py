"""`qrr serve`'s batcher: a request of many documents in parts, with the requests that come meanwhile between two.

    python benchmarks/serve_parts.py MODEL_DIR [--big 160] [--small 10] [--after 1.0]

MODEL_DIR: the random 0.6B (`python benchmarks/peers.py --build-random DIR`), on the default device and dtype. A
request of `--big` passages of 60-120 tokens is submitted to the batcher (in this process, no HTTP), and `--after`
seconds later a request of `--small` passages; each is timed from its submission to its answer. Side by side in one
run, the same with parts of the default size (`PART_PASSES` forward passes), of one forward pass, and as one call
(parts as large as the request: the batcher before parts). Prints a table and one JSON line: the small request's
latency (how long it waited behind the big one) and the big request's pairs/s (what its parts cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.workloads import make_documents  # noqa: E402
from qrr import Reranker  # noqa: E402
from qrr import device as devices  # noqa: E402
from qrr.server.batcher import PART_PASSES, Batcher  # noqa: E402


def run(reranker: Reranker, part_tokens: int, big: list, small: list, after: float) -> dict:
    batcher = Batcher(reranker, part_tokens=part_tokens)
    try:
        start = time.perf_counter()
        first = batcher.submit(big)
        time.sleep(after)
        then = time.perf_counter()
        second = batcher.submit(small)
        second.future.result(3600)
        small_s = time.perf_counter() - then
        first.future.result(3600)
        big_s = time.perf_counter() - start
    finally:
        batcher.stop(60)
    return {"part_tokens": part_tokens, "parts": len(first.parts), "big_s": big_s, "big_pairs_per_s": len(big) / big_s,
            "small_s": small_s}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--big", type=int, default=160)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--after", type=float, default=1.0)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    reranker = Reranker(args.model)
    passages = make_documents(AutoTokenizer.from_pretrained(args.model), args.big + args.small, 60, 120, seed=1)
    big = [("what do passages about green tea say?", p, None) for p in passages[: args.big]]
    small = [("which passage names a river?", p, None) for p in passages[args.big :]]
    reranker.score(big[:8])  # warm-up
    budget = reranker.batch_tokens
    sizes = {"parts (default)": PART_PASSES * budget, "parts of one pass": budget, "one call (before)": 10**9}
    rows = {name: run(reranker, tokens, big, small, args.after) for name, tokens in sizes.items()}

    before = rows["one call (before)"]
    print(f"{devices.cpu_name()}; {reranker.device}, {devices.dtype_name(reranker.dtype)}; a request of {args.big} "
          f"passages (60-120 tokens), {args.after:g} s later one of {args.small}")  # fmt: skip
    print(f"{'batcher':>20}{'parts':>7}{'small s':>9}{'x before':>10}{'big pairs/s':>13}{'x before':>10}")
    for name, row in rows.items():
        speed = row["big_pairs_per_s"]
        print(f"{name:>20}{row['parts']:>7}{row['small_s']:>9.2f}{row['small_s'] / before['small_s']:>10.2f}"
              f"{speed:>13.2f}{speed / before['big_pairs_per_s']:>10.2f}")  # fmt: skip
    print(json.dumps({"cpu": devices.cpu_name(), "device": str(reranker.device), "rows": rows}))


if __name__ == "__main__":
    main()
