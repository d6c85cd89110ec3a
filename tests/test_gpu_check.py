"""benchmarks/gpu_check.sh and gpu_breakdown.py in their CPU dry runs: every step runs (a 2-layer model), so the
one command a lent GPU machine gets is known to work before it is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import qrr
from qrr import device as devices
from tests.tiny import tokenizer_files

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QRR_TOKENIZER": str(tokenizer_files()), "OUT": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_gpu_check_dry_run_checks_scores_and_times_every_implementation(tmp_path):
    done = run(["bash", "benchmarks/gpu_check.sh", "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["device"] == devices.machine_name(torch.device("cpu"))
    assert report["qrr"] == qrr.__version__
    [check] = report["checks"]
    assert check["ok"], check
    assert check["fp32_max_abs_diff"] <= 1e-4 and "bf16_packed_max_abs_diff" in check
    assert check["packed_computed_tokens"] < check["prompt_tokens"]  # the packed check ran a shared prefix once
    impls = {(r["workload"], r["impl"]) for r in report["timings"]}
    for workload in ("target", "varied"):
        for name in ("packed", "padded", "packed-noshare", "padded-noshare", "packed-plain-norms"):
            assert (workload, f"qrr-{name}") in impls
    assert ("target", "recipe-chunks-of-8") in impls and ("target", "crossencoder-batch-8") in impls
    assert "pooled_error" not in report
    pooled, apart = (r for r in report["timings"] if r["workload"] == "groups")
    assert (pooled["impl"], apart["impl"]) == ("qrr-pooled", "qrr-one-group-a-batch")
    assert apart["max_abs_diff_vs_pooled"] < 0.05  # bf16 on a CPU
    [compiled] = [r for r in report["timings"] if r["impl"] == "qrr-padded-compiled"]  # a CPU pads
    assert "compile_error" not in report and compiled["compile_s"] > 0 and compiled["max_abs_diff_vs_eager"] < 0.05
    assert isinstance(compiled["second_compile_s"], float), compiled["second_compile_s"]  # a new process, warm cache
    assert report["summary"]["checks_ok"] is True and report["summary"]["x_crossencoder"] > 0
    assert f"wrote {tmp_path / 'gpu_check.json'}" in done.stderr


def test_the_gpu_breakdown_dry_run(tmp_path):
    done = run([sys.executable, "benchmarks/gpu_breakdown.py", "--dry-run", "--no-compile"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_breakdown.json").read_text())
    assert report["device"] == devices.machine_name(torch.device("cpu"))
    # a CPU's norms are plain by default, so the breakdown times them fused
    for key in ("encode_s", "forward_s_packed_32768", "forward_s_padded_32768", "forward_s_packed_fused_rmsnorm"):
        assert report[key] > 0
    assert "aten::" in report["profile_top"]
