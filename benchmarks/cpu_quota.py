"""What torch's thread count costs under a CPU quota (Docker's ``--cpus``, a Kubernetes limit, systemd's
``CPUQuota=``), which torch does not read: ranking with one thread per CPU the machine has against one per CPU of
the quota, alternating in one process.

    # as root on a cgroup v1 machine: a group of 1 CPU's time, and this script in it
    mkdir /sys/fs/cgroup/cpu/qrr-quota && echo 100000 > /sys/fs/cgroup/cpu/qrr-quota/cpu.cfs_quota_us
    sh -c 'echo $$ > /sys/fs/cgroup/cpu/qrr-quota/cgroup.procs; python benchmarks/cpu_quota.py MODEL_DIR'

Prints the quota qrr reads (``qrr.device.cpu_quota``), each round's seconds for both thread counts, and the ratio
of their medians: what a ``Reranker`` paid before it cut torch's threads to the quota (``qrr.device.fit_threads``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workloads import QUERY, make_documents  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    from qrr import Reranker
    from qrr import device as devices

    machine = os.cpu_count() or 1
    quota = devices.cpu_quota()
    if quota is None or quota >= machine:
        sys.exit(f"no CPU quota below this machine's {machine} CPUs binds this process: run it in such a cgroup")
    os.environ["OMP_NUM_THREADS"] = str(machine)  # the Reranker leaves torch's threads to this script
    reranker = Reranker(args.model, device="cpu")
    documents = make_documents(reranker.tokenizer, args.docs, 80, 350)
    reranker.rank(QUERY, documents[:4])  # warm-up
    print(f"{devices.machine_name(reranker.device)}, {machine} CPUs seen, a quota of {quota}; {reranker.dtype}, "
          f"{args.docs} passages of 80-350 tokens")  # fmt: skip
    seconds = {machine: [], quota: []}
    for _ in range(args.rounds):
        for threads in seconds:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            reranker.rank(QUERY, documents)
            seconds[threads].append(time.perf_counter() - start)
    for threads, times in seconds.items():
        print(f"{threads} threads: {', '.join(f'{t:.2f}' for t in times)} s")
    ratio = statistics.median(seconds[machine]) / statistics.median(seconds[quota])
    print(f"{machine} threads (torch's own count) took {ratio:.2f}x as long as {quota} (the quota's)")


if __name__ == "__main__":
    main()
