"""What `--compile` (torch.compile of the decoder layers) costs and gains: both starts and the steady state.

    python benchmarks/compile.py MODEL_DIR [--docs 32] [--dtype auto] [--device auto] [--json out.json]

Two fresh processes share a new, empty compile cache (a temporary folder):
  1. cold: load, compile (nothing cached), then rank the short workload with the eager and the compiled layers in
     turn on the same weights (eager, compiled, eager, compiled: best of two each), and compare their scores;
  2. warm: load, compile again, now reading the cache: the second start.
Ratios only mean something side by side in one run; name the machine with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workloads import QUERY, WORKLOADS, make_documents  # noqa: E402


def child(model_dir: str, dtype: str, device: str, docs: int, steady: bool) -> dict:
    from qrr import Reranker

    start = time.perf_counter()
    rr = Reranker(model_dir, device=device, dtype=dtype)
    out = {"load_s": time.perf_counter() - start}
    start = time.perf_counter()
    rr.engine.compile()
    out["compile_s"] = time.perf_counter() - start
    if not steady:
        return out
    _, low, high = WORKLOADS["short"]
    documents = make_documents(rr.tokenizer, docs, low, high)
    best = {"eager": float("inf"), "compiled": float("inf")}
    scores = {}
    for mode in ("eager", "compiled", "eager", "compiled"):
        rr.engine.compiled = mode == "compiled"
        start = time.perf_counter()
        scores[mode] = rr.score([(QUERY, d) for d in documents])
        best[mode] = min(best[mode], time.perf_counter() - start)
    out.update({f"{mode}_s": seconds for mode, seconds in best.items()})
    out["speedup"] = best["eager"] / best["compiled"]
    out["max_abs_diff"] = max(abs(a - b) for a, b in zip(scores["eager"], scores["compiled"], strict=True))
    out["docs"], out["dtype"], out["device"] = docs, str(rr.dtype), str(rr.device)
    return out


def run_child(args, cache: str, steady: bool) -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
    cmd = [sys.executable, __file__, args.model, "--child", "--docs", str(args.docs), "--dtype", args.dtype,
           "--device", args.device] + (["--steady"] if steady else [])  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steady", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.dtype, args.device, args.docs, args.steady)))
        return
    with tempfile.TemporaryDirectory(prefix="qrr-compile-") as cache:
        cold = run_child(args, cache, steady=True)
        warm = run_child(args, cache, steady=False)
    result = {"cold": cold, "warm": warm}
    print(f"{cold['device']}, {cold['dtype']}, {cold['docs']} short passages (80-350 tokens)")
    print(f"first start:  load {cold['load_s']:.1f} s + compile {cold['compile_s']:.1f} s")
    print(f"second start: load {warm['load_s']:.1f} s + compile {warm['compile_s']:.1f} s (cache read)")
    print(f"steady: eager {cold['eager_s']:.2f} s, compiled {cold['compiled_s']:.2f} s: {cold['speedup']:.2f}x; "
          f"scores differ by at most {cold['max_abs_diff']:.2e}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
