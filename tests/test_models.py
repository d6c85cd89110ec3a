from __future__ import annotations

import pytest

from qrr import models
from qrr.errors import ModelNotFoundError, NotAModelError


def test_aliases_and_repo_ids():
    assert models.repo_id("0.6b") == "Qwen/Qwen3-Reranker-0.6B"
    assert models.repo_id("4B") == "Qwen/Qwen3-Reranker-4B"
    assert models.repo_id("8b") == "Qwen/Qwen3-Reranker-8B"
    assert models.repo_id("someone/my-reranker") == "someone/my-reranker"
    assert models.repo_id("./models/x") is None
    assert models.repo_id("/abs/path") is None


def test_default_model_and_env(monkeypatch):
    assert models.default_model() == "0.6b"
    monkeypatch.setenv("QRR_MODEL", "8b")
    assert models.default_model() == "8b"


def test_local_folder(tiny_model, tmp_path):
    assert models.resolve(str(tiny_model)) == tiny_model
    with pytest.raises(ModelNotFoundError, match="no config.json, so it is not a model folder"):
        models.resolve(str(tmp_path))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache (the hub reads HF_HUB_CACHE once, at import)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def test_missing_model_names_the_fix(hub_cache, monkeypatch):
    with pytest.raises(
        ModelNotFoundError,
        match=r"^model Qwen/Qwen3-Reranker-0.6B .*qrr download 0\.6b.*or give model a local copy's folder$",
    ) as caught:
        models.resolve("0.6b")
    assert caught.value.params == ("model",)
    monkeypatch.delenv("QRR_MODEL", raising=False)
    with pytest.raises(ModelNotFoundError, match=r"^the default model Qwen/Qwen3-Reranker-0.6B is not in the local"):
        models.resolve(None)  # none was named: "model Qwen/..." read as if the user had given it
    with pytest.raises(ModelNotFoundError, match="qrr download someone/reranker"):
        models.resolve("someone/reranker")
    with pytest.raises(ModelNotFoundError, match="^model ./not/here/at/all: no such folder"):
        models.resolve("./not/here/at/all")


def test_check_local_checks_what_needs_no_download(hub_cache, tiny_model, tmp_path, monkeypatch):
    models.check_local(str(tiny_model))
    monkeypatch.chdir(tmp_path)  # a name that is also a folder here is still the registered model
    (tmp_path / "fake-here").mkdir()
    models.register("fake-here", lambda device, dtype: None)
    try:
        models.check_local("fake-here")
    finally:
        models.unregister("fake-here")
    models.check_local("someone/reranker")  # not cached: left to loading, which may download it
    with pytest.raises(NotAModelError, match="no config.json, so it is not a model folder"):
        models.check_local(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="^model ./not/here/at/all: no such folder"):
        models.check_local("./not/here/at/all")


def test_cached_snapshot_is_found(hub_cache, tiny_model):
    # The hub cache layout: models--owner--name/{refs/main, snapshots/<rev>/...}
    repo = hub_cache / "models--Qwen--Qwen3-Reranker-0.6B"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    for f in tiny_model.iterdir():
        (snapshot / f.name).symlink_to(f)
    assert models.resolve("0.6b") == snapshot


def test_registered_names_come_first(fake_model):
    assert models.registered("fake") is fake_model and models.registered("0.6b") is None
    models.register("0.6b-custom", fake_model)
    try:
        from qrr import Reranker

        rr = Reranker("0.6b-custom")
        assert rr.model_path == "0.6b-custom" and rr.score([("q", "d")]).stats.pairs == 1
    finally:
        models.unregister("0.6b-custom")
    assert models.registered("0.6b-custom") is None


def test_checkpoint_kind(tiny_model, tmp_path):
    from tests.tiny import convert_to_seq_cls

    assert models.checkpoint_kind(tiny_model) == "causal"
    assert models.check_folder(convert_to_seq_cls(tiny_model, tmp_path / "seq-cls")) == "seq-cls"


def test_read_config(tiny_model, tmp_path):
    assert models.read_config(tiny_model)["model_type"] == "qwen3"
    with pytest.raises(NotAModelError, match="no config.json, so it is not a model folder"):
        models.read_config(tmp_path)
