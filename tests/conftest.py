"""One tiny random-weight Qwen3 (real tokenizer) for the whole session; no network."""

from __future__ import annotations

import pytest

from tests.tiny import build_tiny_model


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("QRR_MODEL", raising=False)
    monkeypatch.delenv("QRR_DEBUG", raising=False)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The folder of a tiny untied Qwen3 causal LM (like the 8B: lm_head is not the embeddings)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-untied"), tied=False, seed=0)


@pytest.fixture(scope="session")
def tiny_tied_model(tmp_path_factory):
    """The same with a tied head (like 0.6B and 4B)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-tied"), tied=True, seed=1)


@pytest.fixture(scope="session")
def reranker(tiny_model):
    from qrr import Reranker

    return Reranker(str(tiny_model), device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def oracle(tiny_model):
    from tests.oracle import Oracle

    return Oracle(tiny_model)


@pytest.fixture(scope="session")
def beir_dir(tmp_path_factory):
    """A small BEIR folder with a first-stage run, bm25.trec (read-only: copy it to change it)."""
    from tests.beir import build_beir

    return build_beir(tmp_path_factory.mktemp("beir"))


@pytest.fixture
def cli(tiny_model):
    """``cli("rank", ...)`` runs qrr through typer's CliRunner with the tiny model on the CPU in float32;
    ``model=False`` leaves the model options out and a string names another model."""
    from typer.testing import CliRunner

    from qrr.cli import app

    def invoke(*args, input=None, model=True):
        chosen = str(tiny_model) if model is True else model
        extra = ["--model", chosen, "--device", "cpu", "--dtype", "fp32"] if chosen else []
        # The test's own options come last, so they win over these defaults.
        return CliRunner().invoke(app, [args[0], *extra, *args[1:]], input=input, prog_name="qrr")

    return invoke
