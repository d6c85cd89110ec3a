"""How big one scoring call of `qrr score` (and of a rerank) should be: speed against calls' size, side by side.

    python benchmarks/calls.py MODEL_DIR [--docs 48] [--rounds 2] [--batches 2,4,8]

Scores the same short passages (80-350 tokens, one query, real tokenizer) through ``pipelines.score_records``
with one call of them all (as 1,024-pair chunks did) and with calls of each ``--batches`` batches of text
(``pipelines.CALL_BATCHES``), alternating in one process. Prints each run, then each size's best time as a speed
relative to one call, and when its first results came: small calls write sooner (an interruption loses less) but
each runs its query's prefix and a part-filled last batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workloads import QUERY, make_documents  # noqa: E402

from qrr import Reranker, formats, pipelines  # noqa: E402
from qrr.device import cpu_features, machine_name  # noqa: E402
from qrr.reranker import CHUNK  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default="2,4,8")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    reranker = Reranker(args.model, device=args.device)
    records = [formats.PairRecord(QUERY, d) for d in make_documents(reranker.tokenizer, args.docs, 80, 350)]
    print(f"{args.device}: {machine_name(reranker.device)} ({', '.join(cpu_features())}), {reranker.dtype}, "
          f"{args.docs} passages, {reranker.batch_tokens} tokens a batch", flush=True)  # fmt: skip
    reranker.score([(QUERY, records[0].document)])  # warm-up
    ways = [("one call", CHUNK, None)] + [(f"{b} batches", None, int(b)) for b in args.batches.split(",")]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in ways}
    for _ in range(args.rounds):
        for name, chunk, batches in ways:
            if batches:  # where call_room reads it: qrr.pipelines only re-exports it
                pipelines.streams.CALL_BATCHES = batches
            start, first, calls = time.perf_counter(), None, 0
            for _ in pipelines.score_records(reranker, iter(records), chunk=chunk):
                first, calls = first or time.perf_counter() - start, calls + 1
            took = time.perf_counter() - start
            times[name].append((took, first))
            print(f"{name}: {took:.1f} s, {len(records) / took:.2f} pairs/s, {calls} calls, first results after "
                  f"{first:.1f} s", flush=True)  # fmt: skip
    base = min(t for t, _ in times["one call"])
    for name, runs in times.items():
        best, first = min(runs)
        print(f"{name}: best {best:.1f} s, {base / best:.3f}x one call's speed, first results after {first:.1f} s")


if __name__ == "__main__":
    main()
