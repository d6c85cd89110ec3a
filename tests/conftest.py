"""Models for the tests, no network: a tiny random-weight Qwen3 with the real tokenizer (where the model's numbers
matter) and a fake model registered as ``fake`` (``qrr.testing``: the real tokenizer and batching, no
transformer) where they do not."""

from __future__ import annotations

import itertools

import pytest

from tests.tiny import build_tiny_model, tokenizer_files


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("QRR_MODEL", raising=False)
    monkeypatch.delenv("QRR_DEBUG", raising=False)
    # a developer's own settings must not reach the tests
    for name in ("QRR_SERVER", "QRR_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tokenizer():
    """The real Qwen3 tokenizer, loaded once."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_files())


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
    """The tiny model loaded from its folder, as a user loads a model: CPU, float32."""
    from qrr import Reranker

    return Reranker(str(tiny_model), device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def tiny(tiny_model, tokenizer):
    """``tiny(**options)``: a Reranker on the tiny model with other options, without loading it again."""
    import torch
    from transformers import AutoModelForCausalLM

    from qrr import Reranker

    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    return lambda **options: Reranker.from_model(causal, tokenizer, device="cpu", **options)


@pytest.fixture(scope="session")
def oracle(tiny_model):
    from tests.oracle import Oracle

    return Oracle(tiny_model)


@pytest.fixture(scope="session", autouse=True)
def fake_model(tokenizer):
    """The model ``fake``, registered for the whole session: ``Reranker("fake")`` and ``--model fake``."""
    from qrr import models
    from qrr.testing import FakeModel

    loader = FakeModel(tokenizer)
    models.register("fake", loader)
    yield loader
    models.unregister("fake")


_names = itertools.count()


@pytest.fixture
def fake(tokenizer):
    """``fake(**engine_options)`` registers a fake model that fails as asked (see ``qrr.testing.FakeEngine``) for
    this test and returns ``(name, loader)``."""
    from qrr import models
    from qrr.testing import FakeModel

    registered = []

    def register(**options):
        name = f"fake-{next(_names)}"
        loader = FakeModel(tokenizer, **options)
        models.register(name, loader)
        registered.append(name)
        return name, loader

    yield register
    for name in registered:
        models.unregister(name)


@pytest.fixture(scope="session")
def vllm_oracle(oracle):
    """The card's vLLM path on the tiny model, with transformers (sharing the oracle's model)."""
    from tests.oracle import VllmOracle

    return VllmOracle.sharing(oracle)


@pytest.fixture(scope="session")
def beir_dir(tmp_path_factory):
    """A small BEIR folder with a first-stage run, bm25.trec (read-only: copy it to change it)."""
    from tests.beir import build_beir

    return build_beir(tmp_path_factory.mktemp("beir"))


@pytest.fixture
def cli():
    """``cli("rank", ...)`` runs qrr through typer's CliRunner with the fake model on the CPU in float32;
    ``model=`` names another model (a folder of the tiny one, say), ``model=False`` leaves the model options out."""
    from typer.testing import CliRunner

    from qrr.cli import app

    def invoke(*args, input=None, model="fake"):
        extra = ["--model", str(model), "--device", "cpu", "--dtype", "fp32"] if model else []
        # The test's own options come last, so they win over these defaults.
        return CliRunner().invoke(app, [args[0], *extra, *args[1:]], input=input, prog_name="qrr")

    return invoke


@pytest.fixture(scope="session")
def tiny_server(tiny_model):
    """``qrr serve`` on the tiny model in a subprocess (at most 50 documents and 20,000 bytes a request; prompts of
    at most 2,048 tokens)."""
    from tests.servers import Server

    server = Server("--model", str(tiny_model), "--max-documents", "50", "--max-request-bytes", "20000",
                    "--max-length", "2048")  # fmt: skip
    yield server
    assert server.stop() == 0, server.stderr
