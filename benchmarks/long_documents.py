"""Tokenizing long documents for their first tokens: qrr's two cuts (``FIRST_CHARS`` characters a token of the
budget first, ``max_chars`` only where that leaves too few tokens past it) against the one cut at ``max_chars``
that every document took before. The real Qwen3 tokenizer, the default max length (8,192 tokens), documents of
2.3 million characters of prose; each way runs in its own process (for its peak RSS), and the ids must agree.

    python benchmarks/long_documents.py [--docs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def one(way: str, docs: int) -> dict:
    from transformers import AutoTokenizer

    import tests.tiny as tiny
    from qrr import prompt

    if way == "one cut":
        prompt.FIRST_CHARS = 10**9  # the first cut at max_chars, as before
    prompter = prompt.Prompter(AutoTokenizer.from_pretrained(tiny.tokenizer_files()), max_length=8192)
    document = "capital words of a long document " * 70_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    encoded = prompter.encode([("what is the capital", document, None)] * docs)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "added_mib": peak - before, "ids": hash(tuple(encoded[0].ids)),
            "chars": len(document)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.docs)))
        return
    got = {}
    for way in ("two cuts", "one cut"):
        out = subprocess.run([sys.executable, __file__, "--one", way, "--docs", str(args.docs)], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        got[way] = json.loads(out.splitlines()[-1])
    new, old = got["two cuts"], got["one cut"]
    assert new["ids"] == old["ids"], "the two ways gave other ids"
    print(f"{args.docs} document{'s' * (args.docs != 1)} of {new['chars']:,} characters, max length 8192, the same ids")
    for way, r in got.items():
        print(f"  {way:8}  {r['seconds']:6.2f} s  peak {r['peak_mib']:5.0f} MiB, {r['added_mib']:5.0f} MiB of it "
              "while tokenizing")  # fmt: skip
    ratio = old["added_mib"] / new["added_mib"] if new["added_mib"] >= 10 else None  # a few MiB: no ratio to trust
    less = f", {ratio:.0f}x less memory while tokenizing" if ratio else ""
    print(f"  two cuts: {old['seconds'] / new['seconds']:.0f}x faster{less}")


if __name__ == "__main__":
    main()
