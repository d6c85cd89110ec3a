"""The server's counters in Prometheus' text format: requests by endpoint and status, pairs, tokens, the queue,
a latency histogram, the accelerator's memory, and the process's own (CPU time, memory, file descriptors, start time,
as Prometheus' client libraries name them). Written by hand: a few counters need no client library."""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
import time
from collections import Counter

from qrr.reranker import Stats

# request latency buckets, seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _label(value: str) -> str:
    """A label's value as the text format writes one: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Latency:
    """One histogram of request times."""

    def __init__(self):
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.sum = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for n in range(bisect.bisect_left(BUCKETS, seconds), len(BUCKETS)):
            self.buckets[n] += 1

    def render(self, name: str, labels: str) -> list[str]:
        lines = [f'{name}_bucket{{{labels},le="{bound}"}} {count}' for bound, count in zip(BUCKETS, self.buckets,
                                                                                        strict=True)]  # fmt: skip
        return [*lines, f'{name}_bucket{{{labels},le="+Inf"}} {self.count}', f"{name}_sum{{{labels}}} {self.sum}",
                f"{name}_count{{{labels}}} {self.count}"]  # fmt: skip


class Metrics:
    """Counters updated by request handlers (any thread) and rendered for ``GET /metrics``."""

    def __init__(self, info: dict[str, str] | None = None):
        self._lock = threading.Lock()
        self.info = info or {}  # qrr_info's labels: the release and what it serves
        self.requests: Counter = Counter()  # (endpoint, status) -> count
        self.latency: dict[str, Latency] = {}  # endpoint -> its requests' times

    def request(self, endpoint: str, status: int, seconds: float | None = None) -> None:
        """A request answered; timed (``seconds``) where it was answered with success: an error counts, untimed, so
        that a millisecond's 503 of an overloaded server, or a client's timeout (499), does not pull that endpoint's
        latency down as the load gets worse."""
        with self._lock:
            self.requests[(endpoint, status)] += 1
            if seconds is not None and 200 <= status < 300:
                self.latency.setdefault(endpoint, Latency()).add(seconds)

    def render(self, queue_depth: int, busy: bool, calls: int, device_memory: dict[str, int] | None = None,
               abandoned: int = 0, scored: Stats | None = None) -> str:  # fmt: skip
        """The exposition text (``text/plain; version=0.0.4``). ``device_memory``: bytes of the accelerator's memory
        (``allocated``, ``reserved``, ``peak``), where the model is on one; ``abandoned``: scoring calls stopped
        because every client of theirs had left; ``scored``: what the calls run to their end scored (their clients'
        answers or not: one that left as its call ended was still scored)."""
        scored = scored or Stats()
        with self._lock:
            labels = ",".join(f'{name}="{_label(value)}"' for name, value in self.info.items())
            lines = [
                "# HELP qrr_info The server: qrr's version, the model it serves, on what device, in what dtype and "
                "(on a CPU) on how many threads.",
                "# TYPE qrr_info gauge",
                f"qrr_info{{{labels}}} 1",
                "# HELP qrr_requests_total Requests answered, by endpoint and HTTP status.",
                "# TYPE qrr_requests_total counter",
            ]
            for (endpoint, status), count in sorted(self.requests.items()):
                lines.append(f'qrr_requests_total{{endpoint="{endpoint}",status="{status}"}} {count}')
            lines += [
                "# HELP qrr_pairs_total Query-document pairs scored.",
                "# TYPE qrr_pairs_total counter",
                f"qrr_pairs_total {scored.pairs}",
                "# HELP qrr_tokens_total Prompt tokens scored.",
                "# TYPE qrr_tokens_total counter",
                f"qrr_tokens_total {scored.tokens}",
                "# HELP qrr_truncated_documents_total Documents cut to fit max_length.",
                "# TYPE qrr_truncated_documents_total counter",
                f"qrr_truncated_documents_total {scored.truncated}",
                "# HELP qrr_scoring_calls_total Scoring calls of the model run to their end (requests waiting "
                "together share one).",
                "# TYPE qrr_scoring_calls_total counter",
                f"qrr_scoring_calls_total {calls}",
                "# HELP qrr_scoring_calls_abandoned_total Scoring calls stopped at a forward pass because the client "
                "of every request in them had left (timed out or disconnected).",
                "# TYPE qrr_scoring_calls_abandoned_total counter",
                f"qrr_scoring_calls_abandoned_total {abandoned}",
                "# HELP qrr_queue_depth Requests waiting to begin (not one begun and scored in parts).",
                "# TYPE qrr_queue_depth gauge",
                f"qrr_queue_depth {queue_depth}",
                "# HELP qrr_busy Whether the model is scoring now.",
                "# TYPE qrr_busy gauge",
                f"qrr_busy {int(busy)}",
                "# HELP qrr_request_seconds Time from a request's arrival to its answer, by endpoint, of the requests "
                "answered with success (errors are counted in qrr_requests_total).",
                "# TYPE qrr_request_seconds histogram",
            ]
            for endpoint, latency in sorted(self.latency.items()):
                lines += latency.render("qrr_request_seconds", f'endpoint="{endpoint}"')
        for kind, said in DEVICE_MEMORY.items():
            if device_memory is not None and kind in device_memory:
                lines += [f"# HELP qrr_device_memory_{kind}_bytes {said}",
                          f"# TYPE qrr_device_memory_{kind}_bytes gauge",
                          f"qrr_device_memory_{kind}_bytes {device_memory[kind]}"]  # fmt: skip
        return "\n".join(lines + process_lines()) + "\n"


DEVICE_MEMORY = {
    "allocated": "Bytes of the accelerator's memory that tensors hold now.",
    "reserved": "Bytes of the accelerator's memory that torch's allocator holds (tensors and its cache).",
    "peak": "The most bytes tensors held at once on the accelerator since the process started (the model's load too).",
}


def process_lines() -> list[str]:
    """Prometheus' standard process metrics, each where the system tells it: CPU seconds (everywhere), resident and
    virtual memory, open file descriptors and start time (Linux's ``/proc``), the descriptor limit (Unix)."""
    cpu = time.process_time()  # every thread's
    found: dict[str, tuple[str, str, float | int]] = {
        "process_cpu_seconds_total": ("counter", "Total user and system CPU time spent in seconds.", cpu),
    }
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm", encoding="ascii") as handle:
            virtual, resident = (int(n) * os.sysconf("SC_PAGE_SIZE") for n in handle.read().split()[:2])
        found["process_virtual_memory_bytes"] = ("gauge", "Virtual memory size in bytes.", virtual)
        found["process_resident_memory_bytes"] = ("gauge", "Resident memory size in bytes.", resident)
    with contextlib.suppress(OSError):
        found["process_open_fds"] = ("gauge", "Number of open file descriptors.", len(os.listdir("/proc/self/fd")))
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource  # not on Windows

        found["process_max_fds"] = ("gauge", "Maximum number of open file descriptors.",
                                    resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # fmt: skip
    started = _start_time()
    if started is not None:
        found["process_start_time_seconds"] = ("gauge", "Start time of the process since unix epoch in seconds.",
                                               started)  # fmt: skip
    lines = []
    for name, (kind, said, value) in found.items():
        lines += [f"# HELP {name} {said}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return lines


def _start_time() -> float | None:
    """When this process started (seconds since the epoch), from Linux's ``/proc``; ``None`` elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as handle:
            ticks = int(handle.read().rpartition(")")[2].split()[19])  # starttime, after the command's name
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
