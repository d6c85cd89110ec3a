"""Choosing the device, the dtype and the attention kernel."""

from __future__ import annotations

import logging
import numbers
import os
import platform
import subprocess
import sys

from qrr.errors import DeviceError, plural, warn

log = logging.getLogger("qrr")

DTYPES = {
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "float16": "float16", "half": "float16",
    "fp32": "float32", "float32": "float32", "float": "float32",
}  # fmt: skip


def resolve_device(name: str | int = "auto"):
    """``auto`` picks cuda, then mps, then cpu; ``cpu``, ``mps``, ``cuda`` and ``cuda:N`` are checked. An integer
    ``N`` is ``cuda:N``, as torch takes one."""
    import torch

    if isinstance(name, bool):
        raise DeviceError(f"{{device}} {name!r} is unknown: use auto, cpu, mps, cuda or cuda:N", "device")
    if isinstance(name, numbers.Integral):  # 0 was falsy, so "auto", while 1 was "unknown"; numpy's too
        name = f"cuda:{int(name)}" if name >= 0 else str(int(name))
    name = "auto" if name is None or name == "" else str(name).strip().lower()  # a torch.device too
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"{{device}} {name!r} is unknown: use auto, cpu, mps, cuda or cuda:N", "device") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:  # the CPU wheel
                raise DeviceError(f"{{device}} {name}: this torch ({torch.__version__}) is built without CUDA; install "
                                  "a CUDA build of torch (pytorch.org)", "device")  # fmt: skip
            built = f"ROCm {torch.version.hip}" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise DeviceError(f"{{device}} {name}: CUDA is not available on this machine (torch "
                              f"{torch.__version__}, built for {built}, finds no GPU)", "device")  # fmt: skip
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise DeviceError(f"{{device}} {name}: this machine has {plural(count, 'CUDA GPU')}: use "
                              f"{'cuda:0' if count == 1 else f'cuda:0 to cuda:{count - 1}'}", "device")  # fmt: skip
    elif device.type == "mps" and not _mps_available():
        raise DeviceError(f"{{device}} {name}: Apple MPS is not available on this machine; use cpu, or auto for the "
                          "best there is", "device")  # fmt: skip
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{{device}} {name!r} is unknown: use auto, cpu, mps, cuda or cuda:N", "device")
    return device


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


# torch's probes of the CPU features that decide its best dtype, most capable first
CPU_FEATURES = (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported"),
                ("AVX-512", "_is_avx512_supported"), ("AVX2", "_is_avx2_supported"))  # fmt: skip
NATIVE_BF16 = ("AMX", "AVX-512 BF16")


def cpu_features() -> list[str]:
    """The CPU's matrix features as torch sees them (AMX, AVX-512 BF16, AVX-512, AVX2)."""
    import torch

    return [name for name, probe in CPU_FEATURES if getattr(torch.cpu, probe, lambda: False)()]


def usable_cpus() -> int:
    """The CPUs this process may use: those it may run on (``affinity_cpus``), fewer where a CPU quota allows less
    time (``cpu_quota``)."""
    cpus, quota = affinity_cpus(), cpu_quota()
    return cpus if quota is None else min(cpus, quota)


def affinity_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: ``taskset``, a cpuset), else all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


CGROUP = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"


def cpu_quota() -> int | None:
    """The whole CPUs' time that a CPU quota allows this process (as Docker's ``--cpus``, a Kubernetes limit or
    systemd's ``CPUQuota=`` sets one on its cgroup or a cgroup above it: the smallest binds), rounded down (a thread
    past the quota stalls the rest, so 1.5 CPUs run one) but at least 1; ``None`` without one. Such a quota hides no
    CPU: torch starts a thread per CPU it sees, and the threads past the quota stall all the others."""
    quotas = []
    for quota_file, period_file in _cpu_quota_files():
        try:
            with open(quota_file) as file:
                fields = file.read().split()
            if period_file is not None:
                with open(period_file) as file:
                    fields += file.read().split()
            quota, period = fields
            if quota not in ("max", "-1"):
                quotas.append(max(1, int(quota) // int(period)))
        except (OSError, ValueError, ZeroDivisionError):  # not there at this level, or not a quota
            continue
    return min(quotas, default=None)


def _cpu_quota_files() -> list[tuple[str, str | None]]:
    """Where this process's cgroup and those above it keep their CPU quotas: version 2's ``cpu.max``, version 1's
    quota and period files. A container sees its own cgroup at the mount's root: with a cgroup namespace its path
    is ``/``, without one (Docker on version 1) ``/docker/<id>``, whose folders are not there."""
    try:
        with open(SELF_CGROUP) as file:
            groups = [line.rstrip("\n").split(":", 2) for line in file]
    except OSError:  # no cgroups (macOS, Windows), or no /proc: the root's, where there are
        groups = [["0", "", "/"], ["1", "cpu", "/"]]
    files = []
    for _, controllers, path in (group for group in groups if len(group) == 3):
        parts = [part for part in path.split("/") if part]
        for level in range(len(parts), -1, -1):  # the process's own, then each above it
            below = "".join("/" + part for part in parts[:level])
            if not controllers:  # version 2: one hierarchy
                files.append((f"{CGROUP}{below}/cpu.max", None))
            elif "cpu" in controllers.split(","):
                for mount in ("cpu", "cpu,cpuacct"):
                    base = f"{CGROUP}/{mount}{below}/cpu.cfs_"
                    files.append((base + "quota_us", base + "period_us"))
    return files


def fit_threads(device) -> None:
    """On a CPU, cut torch's threads to ``usable_cpus`` where it runs more (torch reads no quota: it starts a thread
    per core it sees); where ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` chose them, warn instead. A count set by
    ``torch.set_num_threads`` past the quota is cut too: its threads would stall each other as torch's own did."""
    import torch

    if device.type != "cpu":
        return
    cpus, threads = usable_cpus(), torch.get_num_threads()
    if cpus >= threads:
        return
    chosen = next((v for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if os.environ.get(v)), None)
    if chosen is None:
        torch.set_num_threads(cpus)  # said by cpu_threads (qrr's -v model line, /metrics)
    elif cpus < affinity_cpus():  # a quota binds (a base image's $(nproc)): the threads past it stall the rest
        warn(log, f"${chosen}={os.environ[chosen]} runs torch on {plural(threads, 'thread')}, past the CPU quota of "
             f"{plural(cpus, 'CPU')}: leave it unset, and qrr runs {cpus}")  # fmt: skip


def cpu_threads() -> str:
    """torch's CPU threads, as a line says them: ``2 threads``, ``1 thread for a CPU quota of 1 CPU``."""
    import torch

    quota = cpu_quota()
    binds = quota is not None and quota < affinity_cpus()
    return plural(torch.get_num_threads(), "thread") + (f" for a CPU quota of {plural(quota, 'CPU')}" if binds else "")


def cpu_name() -> str:
    """The CPU's model as the system names it (``AMD EPYC 9B14``), else its architecture (``aarch64``)."""
    try:
        with open("/proc/cpuinfo") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        name = ""
    if not name and sys.platform == "darwin":  # Apple's chips: "Apple M2 Pro"
        try:
            name = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            name = ""
    return name or platform.processor() or platform.machine() or "unknown CPU"


def machine_name(device) -> str:
    """What does a device's work, for figures that must name it: a GPU's name (``NVIDIA H200``), or the CPU's model
    and the CPUs this process may use (``AMD EPYC 9B14, 2 CPUs``)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    said = f"{cpu_name()}, {plural(usable_cpus(), 'CPU')}"
    return f"Apple GPU ({said})" if device.type == "mps" else said


def software() -> str:
    """The versions that decide a figure: ``qrr 0.1.0, torch 2.13.0+cpu, transformers 5.24.0``."""
    import torch
    import transformers

    from qrr._version import __version__

    return f"qrr {__version__}, torch {torch.__version__}, transformers {transformers.__version__}"


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is many times slower."""
    return any(f in NATIVE_BF16 for f in cpu_features())


def dtype_reason(name: str, device, dtype) -> str:
    """Why ``resolve_dtype(name, device)`` gave ``dtype``, in a phrase (``qrr bench`` says it)."""
    import torch

    if not isinstance(name, str | None) or (name or "auto").strip().lower() != "auto":
        return "as asked"
    if device.type == "cuda":
        return "this GPU computes bf16" if dtype == torch.bfloat16 else "this GPU has no bf16"
    if device.type == "mps":
        return "half precision on Apple MPS"
    features = cpu_features()
    if dtype == torch.bfloat16:
        return f"this CPU computes bf16 natively ({', '.join(f for f in features if f in NATIVE_BF16)})"
    return (f"this CPU has no native bf16 ({', '.join(features) or 'not even AVX2'}), where bf16 runs several times "
            "slower than fp32")  # fmt: skip


def resolve_dtype(name: str, device):
    """``auto``: bf16 on CUDA where supported else fp16; mps fp16; CPU bf16 where native, else fp32."""
    import torch

    name = (name if isinstance(name, str) else dtype_name(name) if name else "auto").strip().lower()  # torch.float32
    if name != "auto":
        if name not in DTYPES:
            raise DeviceError(f"{{dtype}} {name!r} is unknown: use auto, bf16, fp16 or fp32", "dtype")
        return getattr(torch, DTYPES[name])
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def slow_dtype_warning(device, dtype) -> None:
    """Warn where ``dtype`` is one that this CPU computes many times slower than fp32, which ``auto`` never picks:
    fp16 without AMX-FP16 (about 100x slower on an AVX-512 EPYC), bf16 without native bf16 (about 5x)."""
    import torch

    if device.type != "cpu" or dtype == torch.float32:
        return
    if dtype == torch.float16 and not getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)():
        lacks = "AMX-FP16"
    elif dtype == torch.bfloat16 and not cpu_has_native_bf16():
        lacks = "AVX-512 BF16 or AMX"
    else:
        return
    auto = dtype_name(resolve_dtype("auto", device))
    said = dtype_name(dtype)
    warn(log, f"{{dtype}} {said}: this CPU has no {lacks} and computes {said} many times slower than fp32; "
         f"{{dtype}} auto takes {auto} here", "dtype")  # fmt: skip


# SDPA everywhere: qrr wraps it with its own attention (packed rows on CUDA through torch's variable-length flash
# kernel, and on CPUs through the CPU's flash kernel row by row), which the flash-attn package's implementation
# would not allow.
ATTENTION = "sdpa"


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``bf16``."""
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(dtype).rsplit(".", 1)[-1], str(dtype))


_FORKS = {"watched": False, "child": False, "said": False}


def guard_forks() -> None:
    """Before a forward pass: a process forked after one (gunicorn --preload with a warm-up call, Celery's prefork
    pool) hung on its first pass in torch's OpenMP thread pool, which does not survive a fork; such a child runs
    torch on one thread instead, and says so once."""
    if _FORKS["child"] and not _FORKS["said"]:
        _FORKS["said"] = True
        log.warning("this process was forked after the model ran in its parent: torch runs on one thread here (its "
                    "thread pool does not survive a fork); run no pass before the fork (a warm-up call), or use the "
                    "spawn start method, for every core")  # fmt: skip
    if not _FORKS["watched"] and hasattr(os, "register_at_fork"):
        _FORKS["watched"] = True
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    import torch

    if torch.get_num_threads() > 1:  # one thread never started the pool that hangs
        torch.set_num_threads(1)
        _FORKS["child"], _FORKS["said"] = True, False
