"""A real ``qrr serve`` in a subprocess on a free loopback port, for the tests to talk to over HTTP."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """Starts ``qrr serve ARGS --port 0`` (with ``fake``, through ``tests.fake_serve``) and waits until it is
    ready; ``url`` is where it listens, ``stderr`` what it has said so far."""

    def __init__(self, *args: str, fake: bool = False, env: dict | None = None, timeout: float = 120,
                 defaults=("--device", "cpu", "--dtype", "fp32")):  # fmt: skip
        entry = ["-m", "tests.fake_serve"] if fake else ["-m", "qrr"]
        command = [sys.executable, *entry, "serve", "--port", "0", *defaults, *args]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_ready(timeout)

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put("")

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.said.append(line)
            if line == "":
                raise RuntimeError(f"qrr serve stopped before it was ready: {''.join(self.said)}")
            if line.startswith("ready: "):
                return line.split()[1]
        raise RuntimeError(f"qrr serve was not ready in {timeout} s: {''.join(self.said)}")

    @property
    def stderr(self) -> str:
        while not self.lines.empty():
            self.said.append(self.lines.get())
        return "".join(self.said)

    def until_said(self, text: str, timeout: float = 60) -> None:
        """Wait until stderr says ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert time.monotonic() < deadline, f"the server never said {text!r}: {self.stderr}"
            time.sleep(0.02)

    def until_metrics(self, text: str, timeout: float = 60) -> None:
        """Wait until /metrics says ``text`` (``qrr_busy 1``: the fake model's gate holds a request)."""
        deadline = time.monotonic() + timeout
        with self.client() as http:
            while text not in http.get("/metrics").text:
                assert time.monotonic() < deadline, f"the metrics never said {text!r}"
                time.sleep(0.02)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 60, **kwargs})

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        _ = self.stderr  # collect the last lines
        return code
