"""A bounded load test of `qrr serve` on loopback, and `qrr rank --server` against a plain `qrr rank`.

    python benchmarks/serve.py MODEL_DIR [--requests 24] [--docs 8]

MODEL_DIR: the random 0.6B (`python benchmarks/peers.py --build-random DIR`). The server runs in its own process
with the model's default device and dtype. Each request ranks one query's `--docs` passages of 60-120 tokens
(every request its own query); at concurrency 1, 4 and 16, `--requests` requests are sent by that many clients
and pairs/s and the p50/p95 request latency are measured; then a burst of `--burst` requests sent at one moment to
the idle server, each request's latency (a call takes the waiting requests that fit one forward pass, so they are
answered one after another rather than all at the end). Then `qrr rank --server` and a plain `qrr rank` rank 10
short documents, each as a whole process, and their wall times are compared. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.workloads import make_documents  # noqa: E402
from qrr import device as devices  # noqa: E402
from tests.servers import Server  # noqa: E402

CONCURRENCY = (1, 4, 16)


def load(server: Server, requests: list[dict], clients: int) -> dict:
    """Send every request with ``clients`` threads; pairs/s over the whole, and latencies per request."""
    pending = list(enumerate(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[int] = []

    def client():
        with server.client(timeout=600) as http:
            while True:
                with lock:
                    if not pending:
                        return
                    _, body = pending.pop()
                start = time.perf_counter()
                status = http.post("/rerank", json=body).status_code
                with lock:
                    latencies.append(time.perf_counter() - start)
                    if status != 200:
                        failures.append(status)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    pairs = sum(len(r["documents"]) for r in requests)
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"clients": clients, "requests": len(requests), "pairs": pairs, "seconds": seconds,
            "pairs_per_s": pairs / seconds, "p50_s": statistics.median(ordered), "p95_s": p95,
            "failures": failures}  # fmt: skip


def burst(server: Server, requests: list[dict]) -> list[float]:
    """Send ``requests`` at one moment, each on its own connection; their latencies, in the order sent."""
    latencies = [0.0] * len(requests)
    ready = threading.Barrier(len(requests))

    def client(n: int) -> None:
        with server.client(timeout=600) as http:
            ready.wait()
            start = time.perf_counter()
            assert http.post("/rerank", json=requests[n]).status_code == 200
            latencies[n] = time.perf_counter() - start

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--burst", type=int, default=4)
    args = parser.parse_args()
    if args.requests < max(CONCURRENCY):  # 16 clients with fewer requests are fewer clients: a figure of nothing
        parser.error(f"--requests {args.requests}: give at least {max(CONCURRENCY)}, one for each client of the "
                     "highest level")  # fmt: skip

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    passages = make_documents(tokenizer, args.requests * args.docs, 60, 120, seed=1)
    requests = [{"query": f"what do passages about topic {n} say?",
                 "documents": passages[n * args.docs : (n + 1) * args.docs], "return_documents": False}
                for n in range(args.requests)]  # fmt: skip

    server = Server("--model", args.model, defaults=())
    try:
        load(server, requests[:2], 1)  # warm-up
        rows = [load(server, requests, clients) for clients in CONCURRENCY]
        burst_s = sorted(burst(server, requests[: args.burst]))

        with tempfile.TemporaryDirectory() as folder:
            docs = Path(folder) / "docs.txt"
            docs.write_text("".join(p.split(".")[0][:150] + "\n" for p in passages[:10]))
            query = ["-q", "what is green tea good for?", str(docs)]
            qrr = [sys.executable, "-m", "qrr", "rank"]
            remote = [wall([*qrr, "--server", server.url, *query]) for _ in range(3)]
            plain = [wall([*qrr, "--model", args.model, *query]) for _ in range(2)]
    finally:
        server.stop()

    base = rows[0]["pairs_per_s"]
    cpu = devices.cpu_name()
    print(f"{cpu}; {args.requests} requests of {args.docs} passages (60-120 tokens) a level; {server.url}")
    print(f"{'clients':>8}{'pairs/s':>10}{'x 1 client':>12}{'p50 s':>9}{'p95 s':>9}{'failed':>8}")
    for row in rows:
        print(f"{row['clients']:>8}{row['pairs_per_s']:>10.2f}{row['pairs_per_s'] / base:>12.2f}{row['p50_s']:>9.2f}"
              f"{row['p95_s']:>9.2f}{len(row['failures']):>8}")  # fmt: skip
    print(
        f"a burst of {args.burst} requests at once, answered after {', '.join(f'{s:.1f}' for s in burst_s)} s "
        f"(mean {statistics.mean(burst_s):.1f} s)"
    )
    fast, slow = min(remote), min(plain)
    print(f"qrr rank of 10 short documents: --server {fast:.2f} s, plain {slow:.2f} s: {fast / slow:.1%} of its time")
    summary = {"concurrency_16_vs_1": rows[-1]["pairs_per_s"] / base, "server_vs_plain": fast / slow}
    print(json.dumps({"cpu": cpu, "levels": rows, "burst_s": burst_s, "rank_server_s": remote, "rank_plain_s": plain,
                      **summary}))  # fmt: skip


if __name__ == "__main__":
    main()
