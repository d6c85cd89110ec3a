"""Where one 0.6B rank's GPU time goes, and two remedies side by side: 1,000 documents of 512 tokens, random bf16
weights. Tokenizing vs forward passes, packed vs padded at three token budgets, the top kernels, RMSNorm the other
way (qrr fuses it on CUDA: ``torch.nn.functional.rms_norm`` in place of transformers' five-op one; the figures of
2026-11-27 measured fused against plain before qrr fused it) and ``torch.compile`` (its first call, then steady
state). Writes gpu_breakdown.json (in $OUT where set) after every step.

    QRR_TOKENIZER=DIR python3 benchmarks/gpu_breakdown.py [--dry-run] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gpu_check import TINY, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import AutoTokenizer

    from qrr import Reranker
    from qrr import device as devices
    from qrr.bench import executed_flops, find_tokenizer, make_workload, random_causal

    transformers.logging.set_verbosity_error()
    device = torch.device("cpu" if args.dry_run else "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    tokenizer = AutoTokenizer.from_pretrained(os.environ.get("QRR_TOKENIZER") or find_tokenizer())
    out_path = Path(os.environ.get("OUT", ".")) / "gpu_breakdown.json"
    docs, tokens = (24, 32) if args.dry_run else (1000, 512)
    causal = random_causal("0.6b", torch.bfloat16, device=device, **(TINY if args.dry_run else {}))
    reranker = Reranker.from_model(causal, tokenizer, device=str(device))
    engine = reranker.engine
    query, documents = make_workload(tokenizer, docs, tokens, 16)
    report: dict = {"device": devices.machine_name(device), "docs": docs, "doc_tokens": tokens,
                    "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM")}  # fmt: skip

    def note(key, value):
        report[key] = value
        print(f"{key}: {value}", file=sys.stderr)
        out_path.write_text(json.dumps(report, indent=1))

    def median_seconds(fn):
        return timed(fn, 2, sync)[0]

    pairs = [(query, d, None) for d in documents]
    reranker.prompter.encode(pairs[:8])
    start = time.perf_counter()
    sequences = [e.ids for e in reranker.prompter.encode(pairs)]
    note("encode_s", time.perf_counter() - start)
    groups = [0] * len(sequences)

    def forward(budget=32768):
        return engine.score(sequences, budget, groups=groups)

    note("rank_s_packed", median_seconds(lambda: reranker.rank(query, documents)))
    stats = reranker.rank(query, documents).stats
    for packed in (True, False):
        engine.use_packed(packed)
        for budget in (16384, 32768, 65536):
            seconds = median_seconds(lambda budget=budget: forward(budget))
            note(f"forward_s_{'packed' if packed else 'padded'}_{budget}", seconds)
    engine.use_packed(True)
    seconds = report["forward_s_packed_32768"]
    note("tflops_packed_32768", executed_flops("0.6b", stats) / seconds / 1e12 if not args.dry_run else None)

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profile:
        forward()
        sync()
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = profile.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=60)
    print(table, file=sys.stderr)
    note("profile_top", table)

    before = forward()[0]
    fused = engine.fuse_norms  # the device's default (fused on CUDA)
    engine.fuse_norms = not fused
    note(f"forward_s_packed_{'plain' if fused else 'fused'}_rmsnorm", median_seconds(forward))
    note("rmsnorm_max_abs_diff", max(abs(a - b) for a, b in zip(forward()[0], before, strict=True)))
    engine.fuse_norms = fused

    if not args.no_compile:
        body = engine.body
        engine.body = torch.compile(body, dynamic=True)
        start = time.perf_counter()
        forward()
        sync()
        note("compile_first_call_s", time.perf_counter() - start)
        note("forward_s_packed_compiled", median_seconds(forward))
        note("compiled_max_abs_diff", max(abs(a - b) for a, b in zip(forward()[0], before, strict=True)))
        engine.body = body


if __name__ == "__main__":
    main()
