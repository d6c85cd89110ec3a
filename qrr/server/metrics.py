"""The server's counters in Prometheus' text format: requests by endpoint and status, pairs, tokens, the queue,
and a latency histogram. Written by hand: a few counters need no client library."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

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
        self.pairs = 0
        self.tokens = 0
        self.truncated = 0
        self.latency: dict[str, Latency] = {}  # endpoint -> its requests' times

    def request(self, endpoint: str, status: int, seconds: float | None = None) -> None:
        """A request answered; ``seconds`` where it reached an endpoint (a 404 or 405 did not: it counts, untimed,
        so that it does not pull that endpoint's latency down)."""
        with self._lock:
            self.requests[(endpoint, status)] += 1
            if seconds is not None:
                self.latency.setdefault(endpoint, Latency()).add(seconds)

    def scored(self, stats) -> None:
        with self._lock:
            self.pairs += stats.pairs
            self.tokens += stats.tokens
            self.truncated += stats.truncated

    def render(self, queue_depth: int, busy: bool, calls: int) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
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
                f"qrr_pairs_total {self.pairs}",
                "# HELP qrr_tokens_total Prompt tokens scored.",
                "# TYPE qrr_tokens_total counter",
                f"qrr_tokens_total {self.tokens}",
                "# HELP qrr_truncated_documents_total Documents cut to fit max_length.",
                "# TYPE qrr_truncated_documents_total counter",
                f"qrr_truncated_documents_total {self.truncated}",
                "# HELP qrr_scoring_calls_total Scoring calls of the model (requests waiting together share one).",
                "# TYPE qrr_scoring_calls_total counter",
                f"qrr_scoring_calls_total {calls}",
                "# HELP qrr_queue_depth Requests waiting for the model.",
                "# TYPE qrr_queue_depth gauge",
                f"qrr_queue_depth {queue_depth}",
                "# HELP qrr_busy Whether the model is scoring now.",
                "# TYPE qrr_busy gauge",
                f"qrr_busy {int(busy)}",
                "# HELP qrr_request_seconds Time from a request's arrival to its answer, by endpoint.",
                "# TYPE qrr_request_seconds histogram",
            ]
            for endpoint, latency in sorted(self.latency.items()):
                lines += latency.render("qrr_request_seconds", f'endpoint="{endpoint}"')
        return "\n".join(lines) + "\n"
