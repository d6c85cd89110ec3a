"""What Ray costs on one machine: `qrr score` in one process against `qrr score --ray` with 1 and 2 actors, on the
same pairs, each a whole process (Ray's start, the actors' model loads and the writing of shards included).

    python benchmarks/ray_scale.py [--pairs 20000] [--hidden 256] [--layers 4]

The model is a random-weight Qwen3 with the real tokenizer, `--layers` layers of width `--hidden` (the 0.6B's
shapes would take hours for 20,000 pairs on a 2-core CPU); pairs are one of 50 queries against a passage of 20-60
words. Prints the times, the overhead of Ray (1 actor against one process) and the scaling from 1 to 2 actors,
then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.workloads import WORDS  # noqa: E402
from qrr import device as devices  # noqa: E402


def build_model(folder: Path, hidden: int, layers: int) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from qrr.family import QWEN3
    from tests.tiny import tokenizer_files

    heads = max(2, hidden // 64)
    config = QWEN3.config("0.6b", hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=64)  # fmt: skip
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).to(torch.float32).save_pretrained(folder)
    for f in tokenizer_files().iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:  # what the run said, not a bare CalledProcessError
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model = str(build_model(root / "model", args.hidden, args.layers))
        pairs = root / "pairs.jsonl"
        with pairs.open("w") as handle:
            for n in range(args.pairs):
                document = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
                handle.write(json.dumps({"id": n, "query": f"what about {rng.choice(WORDS)} {n % 50}?",
                                         "document": document}) + "\n")  # fmt: skip
        qrr = [sys.executable, "-m", "qrr", "score", str(pairs), "--model", model, "--dtype", "fp32"]
        one = timed([*qrr, "--format", "jsonl"])
        ray1 = timed([*qrr, "--ray", "--workers", "1", "--output", str(root / "ray1")])
        ray2 = timed([*qrr, "--ray", "--workers", "2", "--output", str(root / "ray2")])

    cpu = devices.cpu_name()
    print(f"{cpu}; {args.pairs:,} pairs; random Qwen3 of {args.layers} layers x {args.hidden}, fp32")
    for name, seconds in (("one process", one), ("Ray, 1 actor", ray1), ("Ray, 2 actors", ray2)):
        print(f"{name:<15}{seconds:>8.1f} s{args.pairs / seconds:>10.1f} pairs/s")
    print(f"Ray's overhead (1 actor against one process): {ray1 / one - 1:+.1%}; 2 actors against 1: "
          f"{ray1 / ray2:.2f}x")  # fmt: skip
    print(json.dumps({"cpu": cpu, "pairs": args.pairs, "hidden": args.hidden, "layers": args.layers,
                      "one_process_s": one, "ray_1_actor_s": ray1, "ray_2_actors_s": ray2,
                      "overhead": ray1 / one - 1, "speedup_2_actors": ray1 / ray2}))  # fmt: skip


if __name__ == "__main__":
    main()
