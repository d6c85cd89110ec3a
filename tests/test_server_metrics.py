"""The Prometheus text of qrr serve's counters."""

from __future__ import annotations

from qrr.server.metrics import Metrics, process_lines


def test_info_labels_are_escaped_as_the_text_format_asks():
    # a model folder's name may hold a quote, a backslash or a newline: a scraper refused the whole page
    text = Metrics({"version": "1.0", "model": 'C:\\models\\my "best"\nmodel'}).render(0, False, 0)
    assert '\nqrr_info{version="1.0",model="C:\\\\models\\\\my \\"best\\"\\nmodel"} 1\n' in text
    assert text.startswith("# HELP qrr_info ")


def test_the_accelerators_memory_is_said_where_the_model_is_on_one():
    on_cpu = Metrics().render(0, False, 0)
    assert "qrr_device_memory" not in on_cpu
    text = Metrics().render(0, False, 0, {"allocated": 1_200_000_000, "reserved": 2_097_152_000, "peak": 1_500_000_000})
    assert "\n# TYPE qrr_device_memory_allocated_bytes gauge\nqrr_device_memory_allocated_bytes 1200000000\n" in text
    assert "\nqrr_device_memory_reserved_bytes 2097152000\n" in text
    assert "\nqrr_device_memory_peak_bytes 1500000000\n" in text


def test_the_process_metrics_carry_prometheus_standard_names_and_this_processs_values():
    import resource
    import time

    values = dict(line.split(" ") for line in process_lines() if not line.startswith("#"))
    assert list(values) == ["process_cpu_seconds_total", "process_virtual_memory_bytes",
                            "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                            "process_start_time_seconds"]  # fmt: skip
    assert 0 < float(values["process_cpu_seconds_total"]) <= time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB, updated now and then
    assert 10_000_000 < int(values["process_resident_memory_bytes"]) <= 1.05 * peak
    assert int(values["process_virtual_memory_bytes"]) > int(values["process_resident_memory_bytes"])
    with open(__file__) as handle:  # one more descriptor, counted
        opened = int(dict(line.split(" ") for line in process_lines() if line.startswith("process_open_fds"))[
            "process_open_fds"])  # fmt: skip
        assert handle and opened == int(values["process_open_fds"]) + 1
    assert int(values["process_max_fds"]) == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    started = float(values["process_start_time_seconds"])
    assert time.time() - 24 * 3600 < started < time.time()  # this test session's process: started today
    assert "\n# TYPE process_cpu_seconds_total counter\n" in Metrics().render(0, False, 0)


def test_a_cuda_devices_memory_is_read_from_torchs_allocator(monkeypatch):
    import torch

    from qrr.server.app import device_memory

    assert device_memory(torch.device("cpu")) is None
    asked = []
    said = {"allocated_bytes.all.current": 1, "reserved_bytes.all.current": 2, "allocated_bytes.all.peak": 3,
            "allocated_bytes.all.allocated": 9}  # fmt: skip
    monkeypatch.setattr(torch.cuda, "memory_stats", lambda device: asked.append(device) or said)
    assert device_memory(torch.device("cuda:1")) == {"allocated": 1, "reserved": 2, "peak": 3}
    assert asked == [torch.device("cuda:1")]  # one snapshot


def test_pairs_tokens_and_cut_documents_are_the_scoring_calls_own():
    from qrr.reranker import Stats

    text = Metrics().render(0, False, 2, scored=Stats(pairs=81, tokens=1234, truncated=3, seconds=1.5))
    assert "\n# TYPE qrr_pairs_total counter\nqrr_pairs_total 81\n" in text
    assert "\n# TYPE qrr_tokens_total counter\nqrr_tokens_total 1234\n" in text
    assert "\n# TYPE qrr_truncated_documents_total counter\nqrr_truncated_documents_total 3\n" in text
    assert "\nqrr_pairs_total 0\n" in Metrics().render(0, False, 0)
