"""The GPU check: one prepared run that builds the random 0.6B, 4B and 8B on a CUDA device (nothing downloaded),
checks qrr's fp32 and bf16 scores against the model card's recipe on the same weights, and times qrr (packed and
padded batches, shared prefix on and off, fused RMSNorms on and off, many small groups pooled or not, and last the 0.6B
compiled: its first compile, its steady speed, and a second start, a new process compiling from the first's cache),
sentence-transformers' CrossEncoder and the recipe, side by side.

    benchmarks/gpu_check.sh [--out FILE]          # on a CUDA machine, under 8 minutes on one H100 (the compile
                                                  # step, last, may need more: --no-compile skips it)
    benchmarks/gpu_check.sh --dry-run             # anywhere: a 2-layer model on the CPU, every step, in seconds

Writes one JSON file (default gpu_check.json, or $OUT/gpu_check.json where $OUT is set) and prints a table.
Scores pass where fp32 is within 1e-4 of the recipe in fp32, and bf16's error from the fp32 recipe is at most
twice the recipe's own bf16 error (plus 1e-3): "within bf16 noise".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

# the dry run's stand-in for a size: the 0.6B's shape, cut down
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "initializer_range": 0.2}  # fmt: skip


def plan(dry_run: bool) -> dict:
    """What to run: the sizes, the check's documents, and the timed workloads (documents x tokens)."""
    if dry_run:
        return {"sizes": {"tiny": TINY}, "check_docs": (8, 8, 40), "target": (24, 32), "varied": (24, 8, 40),
                "groups": (6, 4, 8, 40), "repeat": 1, "crossencoder_batches": (8,), "recipe_chunk": 8}  # fmt: skip
    return {"sizes": {"0.6b": {}, "4b": {}, "8b": {}}, "check_docs": (32, 64, 480), "target": (1000, 512),
            "varied": (1000, 80, 350), "groups": (64, 8, 60, 120), "repeat": 3, "crossencoder_batches": (32, 128),
            "recipe_chunk": 32}  # fmt: skip


def timed(fn, repeat: int, sync, warm=None) -> tuple[float, object]:
    """The median seconds of ``repeat`` calls of ``fn`` after one call of ``warm`` (default ``fn``), and the last
    result."""
    (warm or fn)()
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def chunked_recipe(causal, tokenizer, prompts, chunk: int, device) -> list[float]:
    """The card's recipe, ``chunk`` prompts a call: its full-vocabulary logits of 1,000 prompts would not fit."""
    from qrr.bench import recipe_scores

    return [
        s
        for i in range(0, len(prompts), chunk)
        for s in recipe_scores(causal, tokenizer, prompts[i : i + chunk], device)
    ]


def max_diff(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def check_scores(size, causal, tokenizer, reranker, prompts, chunk, device) -> dict:
    """qrr against the recipe on ``prompts``: fp32 (the model converted in place and back), then bf16 packed and
    padded, each compared with the recipe in fp32."""
    import torch

    def recipe():
        return chunked_recipe(causal, tokenizer, prompts, chunk, device)

    work = {}

    def qrr(packed: bool):
        # one group: the prompts' shared prefix runs once wherever the path reuses it (packed does)
        reranker.engine.use_packed(packed)
        scores, work[packed] = reranker.engine.score([list(p) for p in prompts], reranker.batch_tokens,
                                                     groups=[0] * len(prompts))  # fmt: skip
        return scores

    out = {"size": size, "pairs": len(prompts)}
    bf16_recipe = recipe()
    bf16 = {"padded": qrr(False)}
    try:
        bf16["packed"] = qrr(True)
    except Exception as exc:  # a kernel that fails here is reported, and the rest still runs
        out["packed_error"] = f"{type(exc).__name__}: {exc}"[:500]
    causal.float()  # in place: the engine holds the same modules
    fp32_recipe = recipe()
    out["fp32_max_abs_diff"] = max_diff(qrr(False), fp32_recipe)
    causal.to(torch.bfloat16)  # the bf16 weights come back exactly: bf16 -> fp32 -> bf16 is lossless
    out["recipe_bf16_max_abs_diff"] = max_diff(bf16_recipe, fp32_recipe)
    for name, scores in bf16.items():
        out[f"bf16_{name}_max_abs_diff"] = max_diff(scores, fp32_recipe)
    if "packed" in bf16:  # a tighter bar: the same dtype, the same weights, only the batches differ
        out["bf16_packed_vs_padded_max_abs_diff"] = max_diff(bf16["packed"], bf16["padded"])
        out["packed_computed_tokens"] = work[True].tokens
    out["prompt_tokens"] = sum(len(p) for p in prompts)
    out["score_spread"] = max(fp32_recipe) - min(fp32_recipe)
    noise = 2 * out["recipe_bf16_max_abs_diff"] + 1e-3
    bf16_ok = all(out[f"bf16_{n}_max_abs_diff"] <= noise for n in bf16)
    out["ok"] = "packed_error" not in out and out["fp32_max_abs_diff"] <= 1e-4 and bf16_ok
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="a 2-layer model on the CPU, to test this script")
    parser.add_argument("--out", help="the JSON file to write")
    parser.add_argument("--tokenizer", help="a folder with the Qwen3 tokenizer (default: found as qrr bench finds it)")
    parser.add_argument("--sizes", help="a comma-separated subset of the sizes")
    parser.add_argument("--no-compile", action="store_true", help="skip the --compile step (last, on the 0.6B)")
    parser.add_argument("--second-start", action="store_true", help=argparse.SUPPRESS)  # the compile step's child
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import AutoTokenizer
    from workloads import QUERY, make_documents

    from qrr import Reranker, __version__, attention
    from qrr import device as devices
    from qrr.bench import executed_flops, find_tokenizer, make_workload, matmul_peak_tflops, random_causal

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    todo = plan(args.dry_run)
    if args.sizes:
        todo["sizes"] = {s: todo["sizes"][s] for s in args.sizes.split(",")}
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (use --dry-run to test the script on a CPU)")
    out_path = Path(args.out or Path(os.environ.get("OUT", ".")) / "gpu_check.json")
    tokenizer_dir = args.tokenizer or os.environ.get("QRR_TOKENIZER") or find_tokenizer()
    if tokenizer_dir is None:
        sys.exit("gpu_check: no Qwen3 tokenizer: pass --tokenizer DIR")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    bf16 = torch.bfloat16
    if args.second_start:  # a new process compiling again from the compile step's cache: a second start
        first = next(s for s in todo["sizes"] if s in ("0.6b", "tiny"))
        reranker = Reranker.from_model(random_causal("0.6b", bf16, device=device, **todo["sizes"][first]), tokenizer,
                                       device=str(device))  # fmt: skip
        sync()
        start = time.perf_counter()
        reranker.engine.compile()
        sync()
        print(json.dumps({"compile_s": time.perf_counter() - start}))
        return
    report = {
        "date": time.strftime("%Y-%m-%d"), "dry_run": args.dry_run, "qrr": __version__, "torch": torch.__version__,
        "transformers": transformers.__version__, "device": devices.machine_name(device),
        "varlen_kernel": attention.kernel_available(device, bf16),
        "matmul_peak_tflops_bf16": matmul_peak_tflops(device, bf16),
        "checks": [], "timings": [],
    }  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k not in ("checks", "timings")}), file=sys.stderr)

    def record(size, workload, impl, seconds, docs, stats=None, **extra):
        row = {"size": size, "workload": workload, "impl": impl, "seconds": seconds, "pairs_per_s": docs / seconds,
               **extra}  # fmt: skip
        if stats is not None and size in ("0.6b", "4b", "8b"):
            row["tflops"] = executed_flops(size, stats) / seconds / 1e12
            row["peak_fraction"] = row["tflops"] / report["matmul_peak_tflops_bf16"]
        report["timings"].append(row)
        print(f"{size:>5} {workload:<8} {impl:<22} {seconds:8.3f} s {row['pairs_per_s']:9.1f} pairs/s"
              + (f" {row['tflops']:6.1f} TFLOP/s" if "tflops" in row else ""), file=sys.stderr)  # fmt: skip
        out_path.write_text(json.dumps(report, indent=1))  # what is done survives a timeout

    target_docs, target_tokens = todo["target"]
    query, target = make_workload(tokenizer, target_docs, target_tokens, 16)
    n, low, high = todo["varied"]
    varied = make_documents(tokenizer, n, low, high)
    for size, overrides in todo["sizes"].items():
        shape = "0.6b" if size == "tiny" else size
        start = time.perf_counter()
        causal = random_causal(shape, bf16, device=device, **overrides)
        reranker = Reranker.from_model(causal, tokenizer, device=str(device))
        print(f"{size}: built in {time.perf_counter() - start:.1f} s", file=sys.stderr)

        n, low, high = todo["check_docs"]
        documents = make_documents(tokenizer, n, low, high, seed=1)
        prompts = [e.ids for e in reranker.prompter.encode([(QUERY, d, None) for d in documents])]
        check = check_scores(size, causal, tokenizer, reranker, prompts, todo["recipe_chunk"], device)
        report["checks"].append(check)
        print(json.dumps(check), file=sys.stderr)

        smallest = size in ("0.6b", "tiny")  # the others: the target workload, once, the default ways only
        workloads = {"target": (query, target), "varied": (QUERY, varied)} if smallest else {"target": (query, target)}
        for workload, (q, docs) in workloads.items():
            fused = reranker.engine.fuse_norms  # the device's default: fused RMSNorms on CUDA
            variants = [("packed", True, True, fused), ("padded", False, True, fused)]
            if smallest:
                variants += [("packed-noshare", True, False, fused), ("padded-noshare", False, False, fused),
                             ("packed-plain-norms", True, True, False)]  # fmt: skip
            for name, packed, share, fuse in variants:
                if packed and "packed_error" in check:
                    continue
                reranker.engine.use_packed(packed)
                reranker.engine.fuse_norms = fuse
                reranker.share_prefix = share
                seconds, results = timed(lambda r=reranker, q=q, docs=docs: r.rank(q, docs),
                                         todo["repeat"] if smallest else 1, sync,
                                         warm=lambda r=reranker, q=q, docs=docs: r.rank(q, docs[:16]))  # fmt: skip
                record(size, workload, f"qrr-{name}", seconds, len(docs), results.stats,
                       batch_tokens=reranker.batch_tokens)  # fmt: skip
            reranker.share_prefix = True
            reranker.engine.fuse_norms = fused
            reranker.engine.use_packed(attention.kernel_available(device, bf16) and "packed_error" not in check)
            if size in ("0.6b", "tiny") and workload == "target":
                compare_peers(size, causal, tokenizer, reranker, q, docs, todo, device, sync, record, tokenizer_dir)
        if smallest and "packed_error" not in check:
            try:
                pooled_groups(size, reranker, tokenizer, todo, sync, record)
            except Exception as exc:  # noqa: BLE001 - reported in the JSON, the check goes on
                report["pooled_error"] = f"{type(exc).__name__}: {exc}"[:2000]
                print(f"pooled groups failed: {report['pooled_error']}", file=sys.stderr)
        del reranker, causal
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    first = next((s for s in todo["sizes"] if s in ("0.6b", "tiny")), None)
    if first is not None and not args.no_compile:  # last: the slowest step, and the one most likely to fail
        causal = random_causal("0.6b", bf16, device=device, **todo["sizes"][first])
        reranker = Reranker.from_model(causal, tokenizer, device=str(device))
        compiled_variant(first, reranker, query, target, todo, sync, record, report, tokenizer_dir)
    summarize(report)
    out_path.write_text(json.dumps(report, indent=1))
    print(f"wrote {out_path}", file=sys.stderr)


def pooled_groups(size, reranker, tokenizer, todo, sync, record) -> None:
    """Many small groups in one call, as a server's requests come (64 queries of 8 passages each): packed batches
    pooling the groups (the CUDA default) against one group a batch, and their scores' largest difference."""
    from workloads import make_documents

    queries, per, low, high = todo["groups"]
    docs = make_documents(tokenizer, queries * per, low, high, seed=2)
    pairs = [(f"question {q}: which of these passages answers it?", docs[q * per + i])
             for q in range(queries) for i in range(per)]  # fmt: skip
    pairs += [(f"a question of its own, number {n}", d) for n, d in enumerate(docs[:per])]  # groups of one
    engine = reranker.engine
    packed, default = engine.packed, engine.pool_groups
    engine.use_packed(True)
    scores = {}
    for name, pool in (("pooled", True), ("one-group-a-batch", False)):
        engine.pool_groups = pool
        seconds, results = timed(lambda: reranker.score(pairs), todo["repeat"], sync,
                                 warm=lambda: reranker.score(pairs[: 2 * per]))  # fmt: skip
        scores[name] = list(results)
        extra = {"max_abs_diff_vs_pooled": max_diff(scores["pooled"], scores[name])} if name != "pooled" else {}
        record(size, "groups", f"qrr-{name}", seconds, len(pairs), results.stats, **extra)
    engine.use_packed(packed)
    engine.pool_groups = default


def compiled_variant(size, reranker, query, docs, todo, sync, record, report, tokenizer_dir) -> None:
    """qrr with ``--compile``: the first compile (into a new, empty cache), the target workload timed, and its scores
    against the eager ones on the same weights. A failure is recorded, not raised: the rest of the check stands."""
    import tempfile

    sample = docs[:64]
    eager = {r["corpus_id"]: r["score"] for r in reranker.rank(query, sample)}
    with tempfile.TemporaryDirectory(prefix="qrr-gpu-check-compile-") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        _compiled_variant(size, reranker, query, docs, sample, eager, todo, sync, record, report, tokenizer_dir)


def _compiled_variant(size, reranker, query, docs, sample, eager, todo, sync, record, report, tokenizer_dir) -> None:
    try:
        sync()
        start = time.perf_counter()
        reranker.engine.compile()
        sync()
        compile_s = time.perf_counter() - start
        seconds, results = timed(lambda: reranker.rank(query, docs), todo["repeat"], sync,
                                 warm=lambda: reranker.rank(query, docs[:16]))  # fmt: skip
        diff = max(abs(r["score"] - eager[r["corpus_id"]]) for r in reranker.rank(query, sample))
        name = "qrr-packed-compiled" if reranker.engine.packed else "qrr-padded-compiled"
        record(size, "target", name, seconds, len(docs), results.stats, compile_s=compile_s,
               max_abs_diff_vs_eager=diff)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - reported in the JSON, the check goes on
        report["compile_error"] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"compile failed: {report['compile_error']}", file=sys.stderr)
        return
    second = second_start(size == "tiny", tokenizer_dir)
    report["timings"][-1]["second_compile_s"] = second
    print(f"second start: compiled in {second} s from the cache", file=sys.stderr)


def second_start(dry_run: bool, tokenizer_dir) -> float | str:
    """The compile step's second start: a new process compiling the same layers from the cache the first filled
    (``TORCHINDUCTOR_CACHE_DIR``), its seconds (or why it failed). The weights are random again: the cache holds
    code, not weights."""
    import subprocess

    command = [sys.executable, __file__, "--second-start", "--tokenizer", str(tokenizer_dir)] + (
        ["--dry-run"] if dry_run else []
    )
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        return f"failed: {done.stderr.strip()[-2000:]}"
    return round(json.loads(done.stdout.strip().splitlines()[-1])["compile_s"], 2)


def compare_peers(size, causal, tokenizer, reranker, query, docs, todo, device, sync, record, tokenizer_dir):
    """The recipe (in chunks: its full-vocabulary logits of 1,000 documents do not fit) and CrossEncoder (from a
    saved copy of the same weights, at each batch size) on the target workload."""
    import shutil
    import tempfile

    import torch
    from peers import run_crossencoder

    from qrr.bench import TOKENIZER_FILES

    prompts = [e.ids for e in reranker.prompter.encode([(query, d, None) for d in docs])]
    chunk = todo["recipe_chunk"]

    def recipe():
        return chunked_recipe(causal, tokenizer, prompts, chunk, device)

    seconds, _ = timed(recipe, 1, sync)
    record(size, "target", f"recipe-chunks-of-{chunk}", seconds, len(docs))
    with tempfile.TemporaryDirectory() as folder:
        causal.save_pretrained(folder)
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_dir) / name).is_file():
                shutil.copy(Path(tokenizer_dir) / name, Path(folder) / name)
        for batch in todo["crossencoder_batches"]:
            try:
                score = run_crossencoder(folder, torch.bfloat16, query, docs, device=str(device), batch_size=batch)
                seconds, _ = timed(lambda score=score: score(docs), 1, sync)
                record(size, "target", f"crossencoder-batch-{batch}", seconds, len(docs))
            except torch.OutOfMemoryError:
                print(f"crossencoder batch {batch}: out of memory", file=sys.stderr)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()


def summarize(report) -> None:
    """The ratios the issue asks for: qrr's best against CrossEncoder's best and the recipe on the 0.6B."""
    for size in ("0.6b", "tiny"):
        rows = [r for r in report["timings"] if r["size"] == size and r["workload"] == "target"]
        qrr = [r["seconds"] for r in rows if r["impl"].startswith("qrr-")]
        ce = [r["seconds"] for r in rows if r["impl"].startswith("crossencoder")]
        recipe = [r["seconds"] for r in rows if r["impl"].startswith("recipe")]
        if qrr and ce and recipe:
            report["summary"] = {"size": size, "qrr_best_seconds": min(qrr), "x_crossencoder": min(ce) / min(qrr),
                                 "x_recipe": min(recipe) / min(qrr),
                                 "checks_ok": all(c["ok"] for c in report["checks"])}  # fmt: skip
            print(json.dumps(report["summary"]), file=sys.stderr)


if __name__ == "__main__":
    main()
