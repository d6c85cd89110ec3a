"""What reading a BEIR corpus for a run costs: time and peak RSS, keeping only the run's documents vs all.

    python benchmarks/corpus.py [--docs 1000000] [--keep 30000]

Writes a synthetic BEIR-style corpus (passages of about 45 words, like MS MARCO's) to a temporary folder, then
reads it in two fresh processes, one keeping ``--keep`` documents (what ``qrr rerank`` does: a run's top 100
of 300 queries is 30,000 documents) and one keeping every document, and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

WORDS = ("the of and to in is was for on that with as by at from his her an which were are this be or had "
         "gravity planet orbit mass energy light speed capital city river mountain ocean forest").split()  # fmt: skip

CHILD = """
import json, random, resource, sys, time
from qrr import formats
path, docs, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
wanted = {f"doc{i}" for i in random.Random(1).sample(range(docs), keep)} if keep else None
start = time.perf_counter()
corpus = formats.read_corpus(path, keep=wanted)
seconds = time.perf_counter() - start
print(json.dumps({"kept": len(corpus), "seconds": seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build(path: Path, docs: int) -> None:
    rng = random.Random(0)
    with path.open("wb") as handle:
        for i in range(docs):
            text = " ".join(rng.choices(WORDS, k=45))
            record = {"_id": f"doc{i}", "title": f"Title {rng.choice(WORDS)}", "text": text, "metadata": {}}
            handle.write(orjson.dumps(record) + b"\n")


def measure(path: Path, docs: int, keep: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(docs), str(keep)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--keep", type=int, default=30_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.jsonl"
        build(path, args.docs)
        size = path.stat().st_size / 2**20
        kept, everything = measure(path, args.docs, args.keep), measure(path, args.docs, 0)
    print(f"corpus: {args.docs:,} passages, {size:,.0f} MiB")
    print(f"{'read':<22}{'documents kept':>16}{'seconds':>10}{'peak RSS':>14}")
    for name, row in (("the run's documents", kept), ("every document", everything)):
        print(f"{name:<22}{row['kept']:>16,}{row['seconds']:>10.1f}{row['peak_rss_mib']:>10,.0f} MiB")
    print(f"memory: keeping the run's documents takes {kept['peak_rss_mib'] / everything['peak_rss_mib']:.2f}x "
          f"the peak RSS of keeping all")  # fmt: skip


if __name__ == "__main__":
    main()
