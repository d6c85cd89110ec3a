from __future__ import annotations

import io
import re
import subprocess

import numpy
import pytest
import torch
import transformers

import qrr
from qrr import device as dev
from qrr.errors import DeviceError


def test_auto_is_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("mps")


def test_cuda_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dev.resolve_device("cuda:1") == torch.device("cuda:1")
    assert (dev.resolve_device(0), dev.resolve_device(1)) == (torch.device("cuda:0"), torch.device("cuda:1"))
    assert dev.resolve_device(numpy.int64(1)) == torch.device("cuda:1")  # numpy's integers are integers
    with pytest.raises(DeviceError, match="^device '' is unknown: use auto, "):  # blank: refused, not auto
        dev.resolve_device(" ")
    with pytest.raises(DeviceError, match="^device True is unknown: use auto, cpu, mps, cuda or cuda:N$"):
        dev.resolve_device(True)
    with pytest.raises(DeviceError, match="^device '-1' is unknown: use auto, cpu, mps, cuda or cuda:N$"):
        dev.resolve_device(-1)
    with pytest.raises(DeviceError, match="^device cuda:2: this machine has 2 CUDA GPUs: use cuda:0 to cuda:1$"):
        dev.resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match="^device cuda:1: this machine has 1 CUDA GPU: use cuda:0$"):
        dev.resolve_device("cuda:1")
    with pytest.raises(DeviceError, match="^device cuda:1: this machine has 1 CUDA GPU: use cuda:0$"):
        dev.resolve_device(1)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(DeviceError, match="^device mps: Apple MPS is not available on this machine; use cpu, or auto "
                                          "for the best there is$"):  # fmt: skip
        dev.resolve_device("mps")


@pytest.mark.parametrize(
    "name, message",
    [
        ("cuda", "^device cuda: (this torch|CUDA is not available)"),
        ("gpu", "^device .gpu. is unknown"),
        ("mps", "MPS"),
    ],  # fmt: skip
)
def test_unavailable_or_unknown_devices(monkeypatch, name, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(DeviceError, match=message):
        dev.resolve_device(name)


def test_cuda_asked_of_a_cpu_build_of_torch_blames_the_build(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    with pytest.raises(
        DeviceError,
        match=f"^device cuda: this torch \\({re.escape(torch.__version__)}\\) is built "
        "without CUDA; install a CUDA build of torch \\(pytorch.org\\)$",
    ):
        dev.resolve_device("cuda")
    monkeypatch.setattr(torch.version, "hip", "6.2")  # ROCm's build: no CUDA version either
    with pytest.raises(DeviceError, match="^device cuda: CUDA is not available on this machine \\(torch .*, built "
                                          "for ROCm 6.2, finds no GPU\\)$"):  # fmt: skip
        dev.resolve_device("cuda")
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build on a machine without a GPU (or its driver)
    with pytest.raises(
        DeviceError,
        match="^device cuda: CUDA is not available on this machine \\(torch .*, built for CUDA 12.8, finds no GPU\\)$",
    ):
        dev.resolve_device("cuda")


def test_cpu_dtype_follows_native_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: True)
    assert dev.resolve_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: False)
    assert dev.resolve_dtype("auto", cpu) == torch.float32


def test_gpu_dtypes(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert dev.resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert dev.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert dev.resolve_dtype("auto", torch.device("mps")) == torch.float16


def test_explicit_dtypes():
    cpu = torch.device("cpu")
    assert dev.resolve_dtype("bf16", cpu) == torch.bfloat16
    assert dev.resolve_dtype("FP32", cpu) == torch.float32
    assert dev.resolve_dtype("float16", cpu) == torch.float16
    with pytest.raises(DeviceError, match="^dtype .int8. is unknown"):
        dev.resolve_dtype("int8", cpu)
    assert dev.dtype_name(torch.bfloat16) == "bf16"


def test_attention_kernel_is_sdpa_which_qrr_wraps():
    """flash-attn's implementation looks its own name up at run time, so qrr, which renames the model's attention to
    wrap it, loads SDPA on every device, even where flash-attn is installed (packed rows use torch's own flash
    kernel)."""
    assert dev.ATTENTION == "sdpa"


@pytest.mark.parametrize(
    "features, dtype, reason",
    [
        ({"_is_avx2_supported"}, torch.float32,
         "this CPU has no native bf16 (AVX2), where bf16 runs several times slower than fp32"),
        ({"_is_avx512_bf16_supported", "_is_avx512_supported", "_is_avx2_supported"}, torch.bfloat16,
         "this CPU computes bf16 natively (AVX-512 BF16)"),
        ({"_is_amx_tile_supported", "_is_avx512_bf16_supported", "_is_avx2_supported"}, torch.bfloat16,
         "this CPU computes bf16 natively (AMX, AVX-512 BF16)"),
    ],
)  # fmt: skip
def test_the_cpu_dtype_and_why(monkeypatch, features, dtype, reason):
    for _, probe in dev.CPU_FEATURES:
        monkeypatch.setattr(torch.cpu, probe, lambda probe=probe: probe in features, raising=False)
    cpu = torch.device("cpu")
    assert dev.resolve_dtype("auto", cpu) == dtype
    assert dev.dtype_reason("auto", cpu, dtype) == reason
    assert dev.dtype_reason("fp32", cpu, torch.float32) == "as asked"


@pytest.mark.parametrize(
    "features, asked, said",
    [
        ({"_is_avx2_supported"}, torch.bfloat16, "dtype bf16: this CPU has no AVX-512 BF16 or AMX and computes bf16 "
         "many times slower than fp32; dtype auto takes fp32 here"),
        ({"_is_avx512_bf16_supported"}, torch.float16, "dtype fp16: this CPU has no AMX-FP16 and computes fp16 many "
         "times slower than fp32; dtype auto takes bf16 here"),
        ({"_is_avx512_bf16_supported"}, torch.bfloat16, None),
        ({"_is_amx_tile_supported", "_is_amx_fp16_supported"}, torch.float16, None),
        ({"_is_avx2_supported"}, torch.float32, None),
    ],
)  # fmt: skip
def test_a_dtype_this_cpu_computes_slowly_is_warned_of(monkeypatch, caplog, features, asked, said):
    """fp16 took 100x fp32's time in a matmul on an AVX-512 EPYC, without a word."""
    for probe in [p for _, p in dev.CPU_FEATURES] + ["_is_amx_fp16_supported"]:
        monkeypatch.setattr(torch.cpu, probe, lambda probe=probe: probe in features, raising=False)
    dev.slow_dtype_warning(torch.device("cpu"), asked)
    dev.slow_dtype_warning(torch.device("cuda"), asked)  # a GPU's dtypes are its own affair
    assert [r.getMessage() for r in caplog.records] == ([said] if said else [])


def test_the_machine_is_named_by_its_cpu_model_and_the_cpus_this_process_may_use(monkeypatch):
    info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: avx2\n"
    monkeypatch.setattr("builtins.open", lambda *args, **kwargs: io.StringIO(info))
    monkeypatch.setattr(dev.os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    assert dev.machine_name(torch.device("cpu")) == "AMD EPYC 9B14, 2 CPUs"
    assert dev.machine_name(torch.device("mps")) == "Apple GPU (AMD EPYC 9B14, 2 CPUs)"
    monkeypatch.setattr(dev.os, "sched_getaffinity", lambda pid: {0})
    assert dev.machine_name(torch.device("cpu")) == "AMD EPYC 9B14, 1 CPU"


def test_a_cpu_without_a_model_name_is_named_by_its_architecture(monkeypatch):
    def no_file(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr("builtins.open", no_file)  # no /proc (macOS, Windows)
    monkeypatch.setattr(dev.sys, "platform", "linux")
    monkeypatch.setattr(dev.platform, "processor", lambda: "")
    monkeypatch.setattr(dev.platform, "machine", lambda: "aarch64")
    assert dev.cpu_name() == "aarch64"
    monkeypatch.delattr(dev.os, "sched_getaffinity", raising=False)  # macOS: no affinity
    monkeypatch.setattr(dev.os, "cpu_count", lambda: 8)
    assert dev.usable_cpus() == 8
    # Apple's chips: the brand sysctl names
    monkeypatch.setattr(dev.sys, "platform", "darwin")
    answer = subprocess.CompletedProcess([], 0, stdout="Apple M2 Pro\n")
    monkeypatch.setattr(dev.subprocess, "run", lambda *args, **kwargs: answer)
    assert dev.cpu_name() == "Apple M2 Pro"


def test_a_gpu_is_named_by_torch_and_the_software_by_its_versions(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert dev.machine_name(torch.device("cuda")) == "NVIDIA H200"
    versions = f"qrr {qrr.__version__}, torch {torch.__version__}, transformers {transformers.__version__}"
    assert dev.software() == versions


@pytest.mark.parametrize(
    ("groups", "files", "quota"),
    [
        ("0::/\n", {"cpu.max": "250000 100000\n"}, 2),  # Docker's --cpus 2.5: rounded down, as automaxprocs does
        ("0::/\n", {"cpu.max": "50000 100000\n"}, 1),  # half a CPU: still one thread
        ("0::/\n", {"cpu.max": "max 100000\n"}, None),
        ("0::/\n", {"cpu.max": "garbage\n"}, None),
        ("0::/system.slice/qrr.service\n", {"system.slice/qrr.service/cpu.max": "300000 100000\n"}, 3),  # systemd's
        ("2:cpuacct:/\n1:cpu:/\n0::/\n", {"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"},
         4),  # cgroup version 1
        ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ("4:cpu,cpuacct:/job\n", {"cpu,cpuacct/job/cpu.cfs_quota_us": "300000\n",
                                    "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n"}, 3),
        ("0::/\n", {}, None),  # no controller of CPU time
        # Docker on version 1, no cgroup namespace: its own cgroup is the mount's root, its path's folders not there
        ("5:cpu,cpuacct:/docker/3f2a\n", {"cpu,cpuacct/cpu.cfs_quota_us": "200000\n",
                                             "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 2),
        # a slice's quota binds the scopes below it (systemctl set-property user.slice CPUQuota=200%)
        ("0::/user.slice/session-1.scope\n", {"user.slice/cpu.max": "200000 100000\n",
                                               "user.slice/session-1.scope/cpu.max": "max 100000\n"}, 2),
        ("0::/a/b\n", {"a/cpu.max": "300000 100000\n", "a/b/cpu.max": "100000 100000\n"}, 1),  # the smallest
        (None, {"cpu.max": "200000 100000\n"}, 2),  # no /proc/self/cgroup: the root's
    ],
)  # fmt: skip
def test_a_cpu_quota_is_read_from_the_cgroup(tmp_path, monkeypatch, groups, files, quota):
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text)
    monkeypatch.setattr(dev, "CGROUP", str(tmp_path / "fs"))
    monkeypatch.setattr(dev, "SELF_CGROUP", str(tmp_path / "self"))
    if groups is not None:
        (tmp_path / "self").write_text(groups)
    assert dev.cpu_quota() == quota
    monkeypatch.setattr(dev.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert dev.usable_cpus() == (64 if quota is None else quota)


def test_torch_threads_are_cut_to_the_cpu_quota(monkeypatch, caplog, fake_model):
    before = torch.get_num_threads()
    threads = 3
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(dev, "cpu_quota", lambda: 1)
    monkeypatch.setattr(dev, "affinity_cpus", lambda: 3)
    try:
        torch.set_num_threads(threads)  # as torch starts on a machine of 3 CPUs
        assert dev.cpu_threads() == "3 threads for a CPU quota of 1 CPU"
        dev.fit_threads(torch.device("cuda"))  # a GPU's passes: torch's CPU threads left alone
        assert torch.get_num_threads() == threads
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the user's own choice stands, warned of
            monkeypatch.setenv(variable, str(threads))
            caplog.clear()
            dev.fit_threads(torch.device("cpu"))
            assert torch.get_num_threads() == threads
            assert caplog.messages == [f"${variable}=3 runs torch on 3 threads, past the CPU quota of 1 CPU: leave it "
                                       "unset, and qrr runs 1"]  # fmt: skip
            monkeypatch.delenv(variable)
        caplog.clear()
        qrr.Reranker("fake", device="cpu")
        assert torch.get_num_threads() == 1 and not caplog.messages  # said by the -v model line and /metrics
        assert dev.cpu_threads() == "1 thread for a CPU quota of 1 CPU"
        monkeypatch.setattr(dev, "cpu_quota", lambda: None)
        assert dev.cpu_threads() == "1 thread"
    finally:
        torch.set_num_threads(before)


def test_a_process_forked_after_a_pass_scores_on_one_thread_instead_of_hanging(tiny_model):
    # gunicorn --preload with a warm-up call, Celery's prefork pool: the child hung in torch's OpenMP thread pool
    import subprocess
    import sys

    code = f"""
import logging, os, signal, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12's word on fork() with threads
import torch
torch.set_num_threads(2)
from qrr import Reranker
rr = Reranker({str(tiny_model)!r}, device="cpu", dtype="fp32")
pairs = [("q", "d " * 200)] * 8
first = list(rr.score(pairs))
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a hung child dies rather than outlive the test
    logging.basicConfig(format="%(message)s")
    same = list(rr.score(pairs)) == first and list(rr.score(pairs)) == first
    os._exit(0 if same and torch.get_num_threads() == 1 else 3)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), torch.get_num_threads())
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout == "0 2\n", run.stderr  # the parent keeps its threads
    assert run.stderr == (
        "this process was forked after the model ran in its parent: torch runs on one thread here (its thread pool "
        "does not survive a fork); run no pass before the fork (a warm-up call), or use the spawn start method, for "
        "every core\n"
    )  # once, in the child
