"""The Prometheus text of qrr serve's counters."""

from __future__ import annotations

from qrr.server.metrics import Metrics


def test_info_labels_are_escaped_as_the_text_format_asks():
    # a model folder's name may hold a quote, a backslash or a newline: a scraper refused the whole page
    text = Metrics({"version": "1.0", "model": 'C:\\models\\my "best"\nmodel'}).render(0, False, 0)
    assert '\nqrr_info{version="1.0",model="C:\\\\models\\\\my \\"best\\"\\nmodel"} 1\n' in text
    assert text.startswith("# HELP qrr_info ")
