"""Memory of `qrr score` over a long stream: RSS over 200,000 pairs on the tiny model.

    python benchmarks/stream.py [--pairs 200000] [--model DIR]

Pairs are generated on the fly into qrr's stdin and results are read from its stdout as they come, so neither
side holds the stream. Prints the RSS after the first chunk of results, the highest RSS after that, and
whether it stayed within 100 MB of the first (the target), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LIMIT_MB = 100


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def feed(stream, pairs: int) -> None:
    try:
        for i in range(pairs):
            stream.write(f"query number {i % 50}\tdocument {i} says something about topic {i % 97}\n".encode())
        stream.close()
    except BrokenPipeError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--model", help="a model folder (default: build the tests' tiny random model)")
    args = parser.parse_args()
    model = args.model
    if model is None:
        from tests.tiny import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    from qrr.reranker import CHUNK

    cmd = [sys.executable, "-m", "qrr", "score", "--model", model, "--device", "cpu", "--dtype", "fp32"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    threading.Thread(target=feed, args=(proc.stdin, args.pairs), daemon=True).start()
    start = time.perf_counter()
    first = peak = 0.0
    samples = []
    count = 0
    for line in proc.stdout:
        count += 1
        if count == CHUNK:
            first = peak = rss_mb(proc.pid)
        elif count > CHUNK and count % 2000 == 0:
            now = rss_mb(proc.pid)
            peak = max(peak, now)
            samples.append((count, now))
        if count == 1:
            assert json.loads(line)["index"] == 0
    code = proc.wait()
    seconds = time.perf_counter() - start
    growth = peak - first
    print(f"{count} results in {seconds:.0f} s ({count / seconds:.0f} pairs/s), exit {code}", file=sys.stderr)
    for n, mb in samples[:: max(1, len(samples) // 10)]:
        print(f"  after {n:>7} results: RSS {mb:7.1f} MB", file=sys.stderr)
    verdict = "within" if growth <= LIMIT_MB else "OVER"
    print(f"RSS after the first chunk {first:.1f} MB, highest after it {peak:.1f} MB: +{growth:.1f} MB, "
          f"{verdict} the {LIMIT_MB} MB target", file=sys.stderr)  # fmt: skip
    print(json.dumps({"pairs": count, "seconds": seconds, "exit": code, "rss_first_chunk_mb": first,
                      "rss_peak_after_mb": peak, "growth_mb": growth, "limit_mb": LIMIT_MB}))  # fmt: skip


if __name__ == "__main__":
    main()
