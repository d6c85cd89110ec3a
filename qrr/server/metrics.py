"""The server's counters in Prometheus' text format: requests by endpoint and status, pairs, tokens, the queue,
and a latency histogram. Written by hand: a few counters need no client library."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

# request latency buckets, seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters updated by request handlers (any thread) and rendered for ``GET /metrics``."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter = Counter()  # (endpoint, status) -> count
        self.pairs = 0
        self.tokens = 0
        self.truncated = 0
        self.latency_buckets = [0] * len(BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency_count += 1
            self.latency_sum += seconds
            at = bisect.bisect_left(BUCKETS, seconds)
            for n in range(at, len(BUCKETS)):
                self.latency_buckets[n] += 1

    def scored(self, stats) -> None:
        with self._lock:
            self.pairs += stats.pairs
            self.tokens += stats.tokens
            self.truncated += stats.truncated

    def render(self, queue_depth: int, busy: bool, calls: int) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        with self._lock:
            lines = [
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
                "# HELP qrr_request_seconds Time from a request's arrival to its answer.",
                "# TYPE qrr_request_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, self.latency_buckets, strict=True):
                lines.append(f'qrr_request_seconds_bucket{{le="{bound}"}} {count}')
            lines += [
                f'qrr_request_seconds_bucket{{le="+Inf"}} {self.latency_count}',
                f"qrr_request_seconds_sum {self.latency_sum}",
                f"qrr_request_seconds_count {self.latency_count}",
            ]
        return "\n".join(lines) + "\n"
