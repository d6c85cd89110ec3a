"""qrr against its peers on one workload, each in its own process, side by side.

    python benchmarks/peers.py MODEL_DIR [--workloads short,long] [--dtype bfloat16] [--docs N]
    python benchmarks/peers.py --build-random DIR     # a random-weight 0.6B with the real tokenizer
    python benchmarks/peers.py MODEL_DIR --dtype float32 --isa avx2 --impls recipe,crossencoder,crossencoder-b8,qrr

(a) recipe: the model card's transformers code as written (the whole workload in one call, full logits);
(b) crossencoder: sentence-transformers' CrossEncoder (v6) on the causal LM with a LogitScore head and a chat
    template that renders the same prompt (batch 32; ``crossencoder-bN`` for batch N); (c) qrr, and qrr with
    shared-prefix reuse off; on request (--impls), qrr-padded: rows padded to one width per batch, as qrr did
    on CPUs before it packed them, and qrr-mask: padded rows after the prefix as a cache behind an offset causal
    mask, as qrr did on CPUs before it merged attention; ``qrr-tN``: qrr at ``batch_tokens=N``.
Prints pairs/s, tokens/s (prompt tokens, frame included), peak RSS, the largest score difference from (a),
and the ratios, then one JSON line per implementation on stdout. "× CE" is against the fastest CrossEncoder run.

--isa avx2 runs every implementation on AVX2 kernels only (torch's, oneDNN's and MKL's dispatch capped by their
environment variables), as on a CPU without AVX-512: there bf16 has no native instructions (bf16 matmuls ran 3.5x
slower than fp32 ones on a Zen 4 EPYC so capped, as on the AVX2-only EPYC where they ran 5x slower).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workloads import QUERY, WORKLOADS, make_documents  # noqa: E402

IMPLEMENTATIONS = ("recipe", "crossencoder", "qrr", "qrr-noshare")
# Each library's own switch for the instruction sets it may dispatch to.
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
TASK = "Given a web search query, retrieve relevant passages that answer the query"
# The CrossEncoder formats a pair as messages with roles "query" and "document"; this template renders them
# into exactly the recipe's prompt. It ends in an expression because Jinja drops a template's final newline.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(query='', document='') -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'query' -%}{%- set ns.query = m['content'] -%}"
    "{%- elif m['role'] == 'document' -%}{%- set ns.document = m['content'] -%}{%- endif -%}"
    "{%- endfor -%}"
    + PREFIX
    + "<Instruct>: "
    + TASK
    + "\n<Query>: {{ ns.query }}\n<Document>: {{ ns.document }}"
    + SUFFIX
    + "{{ '' }}"
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------- children


def run_recipe(model_dir, dtype, query, docs):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    max_length = 8192
    prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)

    def score(documents):
        pairs = [f"<Instruct>: {TASK}\n<Query>: {query}\n<Document>: {d}" for d in documents]
        inputs = tokenizer(pairs, padding=False, truncation="longest_first", return_attention_mask=False,
                           max_length=max_length - len(prefix_tokens) - len(suffix_tokens))  # fmt: skip
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
        with torch.no_grad():
            batch_scores = model(**inputs).logits[:, -1, :]
            stacked = torch.stack([batch_scores[:, no], batch_scores[:, yes]], dim=1)
            return torch.nn.functional.log_softmax(stacked, dim=1)[:, 1].exp().tolist()

    return score


def run_crossencoder(model_dir, dtype, query, docs, device="cpu", batch_size=32):
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore

    transformer = Transformer(
        model_dir,
        transformer_task="text-generation",
        model_kwargs={"dtype": dtype},
        modality_config={"text": {"method": "forward", "method_output_name": "logits"},
                         "message": {"method": "forward", "method_output_name": "logits", "format": "flat"}},
        module_output_name="causal_logits",
    )  # fmt: skip
    transformer.tokenizer.chat_template = CHAT_TEMPLATE
    yes, no = (transformer.tokenizer.convert_tokens_to_ids(t) for t in ("yes", "no"))
    model = CrossEncoder(modules=[transformer, LogitScore(true_token_id=yes, false_token_id=no)], device=device)
    # predict() applies a sigmoid to the yes-minus-no log-odds: p(yes), as the recipe gives.
    return lambda documents: [float(s) for s in model.predict([(query, d) for d in documents], batch_size=batch_size)]


def run_qrr(model_dir, dtype, query, docs, share_prefix=True, merge_prefix=True, packed=True, batch_tokens=None):
    from qrr import Reranker

    reranker = Reranker(str(model_dir), device="cpu", dtype=str(dtype).rsplit(".", 1)[-1], share_prefix=share_prefix,
                        batch_tokens=batch_tokens)  # fmt: skip
    # packed=False: rows padded to one width per batch (qrr on CPUs before it packed them); merge_prefix=False
    # with it: the shared prefix as a cache with an offset causal mask (qrr before the merged attention)
    reranker.engine.use_packed(packed)
    reranker.engine.merge_prefix = merge_prefix

    def score(documents):
        return [r["score"] for r in sorted(reranker.rank(query, documents), key=lambda r: r["corpus_id"])]

    return score


def child(impl: str, model_dir: str, dtype_name: str, workload_file: str) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    data = json.loads(Path(workload_file).read_text())
    dtype = getattr(torch, dtype_name)
    start = time.perf_counter()
    make = {"recipe": run_recipe, "crossencoder": run_crossencoder, "qrr": run_qrr,
            "qrr-noshare": lambda *a: run_qrr(*a, share_prefix=False),
            "qrr-padded": lambda *a: run_qrr(*a, packed=False),
            "qrr-mask": lambda *a: run_qrr(*a, merge_prefix=False, packed=False)}.get(impl)  # fmt: skip
    if impl.startswith("crossencoder-b"):
        make = functools.partial(run_crossencoder, batch_size=int(impl.removeprefix("crossencoder-b")))
    if impl.startswith("qrr-t"):
        make = functools.partial(run_qrr, batch_tokens=int(impl.removeprefix("qrr-t")))
    if make is None:
        raise SystemExit(f"no implementation called {impl!r}")
    score = make(model_dir, dtype, data["query"], data["docs"])
    load_s = time.perf_counter() - start
    score(data["docs"][:2])  # warm-up
    start = time.perf_counter()
    scores = score(data["docs"])
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": impl, "load_s": load_s, "seconds": seconds, "scores": scores,
                      "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}))  # fmt: skip


# --------------------------------------------------------------------------------------------- parent


def prompt_tokens(tokenizer, query, docs) -> int:
    frame = len(tokenizer.encode(PREFIX, add_special_tokens=False)) + len(
        tokenizer.encode(SUFFIX, add_special_tokens=False)
    )
    bodies = [f"<Instruct>: {TASK}\n<Query>: {query}\n<Document>: {d}" for d in docs]
    return sum(len(ids) + frame for ids in tokenizer(bodies, add_special_tokens=False)["input_ids"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?")
    parser.add_argument("--workloads", default="short,long")
    parser.add_argument("--impls", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"])
    parser.add_argument("--docs", type=int, help="override the workload's document count")
    parser.add_argument(
        "--isa",
        choices=["native", "avx2"],
        default="native",
        help="avx2: every implementation on AVX2 kernels only, as on a CPU without AVX-512",
    )
    parser.add_argument("--build-random", metavar="DIR", help="build a random-weight 0.6B model here and exit")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "WORKLOAD_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.build_random:
        from qrr.bench import build_random_model
        from tests.tiny import tokenizer_files

        print(build_random_model("0.6b", Path(args.build_random), tokenizer_files()))
        return
    if args.child:
        child(args.child[0], args.model_dir, args.dtype, args.child[1])
        return
    if not args.model_dir:
        parser.error("MODEL_DIR is required (build one with --build-random DIR)")

    import tempfile

    from transformers import AutoTokenizer

    from qrr import device as devices

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    isa = "" if args.isa == "native" else f", {args.isa} kernels only"
    cpu = devices.machine_name(devices.resolve_device("cpu"))
    print(f"# {time.strftime('%Y-%m-%d')}  {cpu}, {args.dtype}{isa}; {devices.software()}", file=sys.stderr)
    env = dict(os.environ, **(AVX2_ONLY if args.isa == "avx2" else {}))
    for workload in args.workloads.split(","):
        n, low, high = WORKLOADS[workload]
        docs = make_documents(tokenizer, args.docs or n, low, high)
        tokens = prompt_tokens(tokenizer, QUERY, docs)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"query": QUERY, "docs": docs}, handle)
        results = {}
        for impl in args.impls.split(","):
            cmd = [sys.executable, __file__, args.model_dir, "--dtype", args.dtype, "--child", impl, handle.name]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                why = "killed (out of memory?)" if out.returncode == -9 else f"exit status {out.returncode}"
                print(f"{impl} failed, {why}:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {workload}/{impl}: {results[impl]['seconds']:.1f} s", file=sys.stderr)
        report(workload, len(docs), tokens, results, args.isa)


def report(workload, n_docs, tokens, results, isa: str = "native") -> None:
    base = results.get("recipe")
    print(f"\n{workload}: {n_docs} documents, {tokens} prompt tokens", file=sys.stderr)
    header = ("impl", "pairs/s", "tokens/s", "peak RSS", "max |Δ| vs recipe", "× recipe", "× CE")
    print("".join(f"{h:{w}}" for h, w in zip(header, ("<16", ">9", ">10", ">11", ">19", ">10", ">7"), strict=True)),
          file=sys.stderr)  # fmt: skip
    ce = min((r for impl, r in results.items() if impl.startswith("crossencoder")), key=lambda r: r["seconds"],
             default=None)  # fmt: skip
    for impl, r in results.items():
        pairs_s = n_docs / r["seconds"]
        diff = max(abs(a - b) for a, b in zip(r["scores"], base["scores"], strict=True)) if base else float("nan")
        vs_recipe = base["seconds"] / r["seconds"] if base else float("nan")
        vs_ce = ce["seconds"] / r["seconds"] if ce else float("nan")
        print(f"{impl:<16}{pairs_s:>9.2f}{tokens / r['seconds']:>10.0f}{r['peak_rss_mb']:>9.0f}MB{diff:>19.2e}"
              f"{vs_recipe:>10.2f}{vs_ce:>7.2f}", file=sys.stderr)  # fmt: skip
        spread = max(r["scores"]) - min(r["scores"])
        print(json.dumps({"workload": workload, "impl": impl, "docs": n_docs, "tokens": tokens,
                          "pairs_per_s": pairs_s, "tokens_per_s": tokens / r["seconds"], "seconds": r["seconds"],
                          "load_s": r["load_s"], "peak_rss_mb": r["peak_rss_mb"], "max_abs_diff_vs_recipe": diff,
                          "speedup_vs_recipe": vs_recipe, "speedup_vs_crossencoder": vs_ce,
                          "score_spread": spread, "isa": isa}))  # fmt: skip


if __name__ == "__main__":
    main()
