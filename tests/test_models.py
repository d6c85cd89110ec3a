from __future__ import annotations

from pathlib import Path

import pytest

from qrr import models
from qrr.errors import ModelNameError, ModelNotFoundError, NotAModelError


def test_aliases_and_repo_ids():
    assert models.repo_id("0.6b") == "Qwen/Qwen3-Reranker-0.6B"
    assert models.repo_id("4B") == "Qwen/Qwen3-Reranker-4B"
    assert models.repo_id("8b") == "Qwen/Qwen3-Reranker-8B"
    assert models.repo_id("someone/my-reranker") == "someone/my-reranker"
    assert models.repo_id("qwen/qwen3-reranker-0.6b") == "Qwen/Qwen3-Reranker-0.6B"  # as the cache spells it
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
    """An empty Hugging Face cache (the hub reads HF_HUB_CACHE once, at import), where the tiny model may stand for
    any size (its shape is none of theirs: that check is tested in test_cli_download)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "check_size", lambda path, repo, config=None: None)
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
    # where downloads are off, the message says who turned them off: the environment (a CI job's), or the caller
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    said = r"^model Qwen/Qwen3-Reranker-4B is not in the local cache and downloads are off \(HF_HUB_OFFLINE is set\): "
    with pytest.raises(ModelNotFoundError, match=said + r"run `qrr download 4b` with a network, or give model a "):
        models.resolve("4b")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ModelNotFoundError, match=r" downloads are off \(offline\): run "):
        models.resolve("4b", offline=True)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")  # huggingface_hub reads it too: said as itself
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ModelNotFoundError, match=r" downloads are off \(TRANSFORMERS_OFFLINE is set\): run "):
        models.resolve("4b")


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


def test_a_snapshot_pinned_by_commit_is_the_model_without_a_revision(hub_cache, tiny_model):
    # qrr download 0.6b --revision COMMIT writes no refs/main: -m 0.6b offline said the model was not cached
    repo = hub_cache / "models--Qwen--Qwen3-Reranker-0.6B"
    snapshot = repo / "snapshots" / ("f" * 40)
    snapshot.mkdir(parents=True)
    for f in tiny_model.iterdir():
        (snapshot / f.name).symlink_to(f)
    assert models.resolve("0.6b", offline=True) == snapshot
    (repo / "snapshots" / ("0" * 40)).mkdir()  # two commits and no branch: neither is guessed
    with pytest.raises(ModelNotFoundError, match="is not in the local cache"):
        models.resolve("0.6b", offline=True)


def test_a_revision_after_at_names_that_snapshot(hub_cache, tiny_model, tmp_path, monkeypatch):
    # -m 0.6b@COMMIT scores with that commit whatever refs/main names; offline, a missing one names its download
    repo = hub_cache / "models--Qwen--Qwen3-Reranker-0.6B"
    pinned, latest = (repo / "snapshots" / (c * 40) for c in "ab")
    for snapshot in (pinned, latest):
        snapshot.mkdir(parents=True)
        for f in tiny_model.iterdir():
            (snapshot / f.name).symlink_to(f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("b" * 40)
    assert models.resolve("0.6b", offline=True) == latest
    assert models.resolve("0.6b@" + "a" * 40, offline=True) == pinned
    assert models.resolve("Qwen/Qwen3-Reranker-0.6B@main", offline=True) == latest  # a branch, by its ref
    assert models.resolve("0.6b@aaaaaaa", offline=True) == pinned  # a short commit, as git prints it
    assert models.resolve("0.6b@AAAAAAA") == models.download("0.6b@aaaaaaa") == pinned  # no download: the cache's
    for short in ("0.6b@ccccccc", "0.6b@cccccccc"):  # the hub takes none: said before it is asked, online too
        for call in (models.resolve, models.download):
            with pytest.raises(
                ModelNotFoundError,
                match=r"^Qwen/Qwen3-Reranker-0\.6B@c+: no cached copy's commit "
                r"starts with c+, and the hub takes a commit whole: give all 40 characters of it$",
            ):
                call(short)
    assert models.model_key("0.6b@v1.0") == "Qwen/Qwen3-Reranker-0.6B@v1.0"  # a record's name keeps the revision
    assert models.split_revision("someone/reranker@refs/pr/3") == ("someone/reranker", "refs/pr/3")
    with pytest.raises(
        ModelNotFoundError,
        match=r"^model Qwen/Qwen3-Reranker-0.6B@c{40} is not in the local cache and "
        r"downloads are off \(offline\): run `qrr download 0\.6b@c{40}` with a network",
    ):
        models.resolve("0.6b@" + "c" * 40, offline=True)
    for name, said in [
        ("0.6b@", "no revision after @"),
        ("0.6b@a b", "'a b' is not a revision"),
        ("0.6b@../../x", "'../../x' is not a revision"),
        ("0.6b@refs/./x", "'refs/./x' is not a revision"),
    ]:
        with pytest.raises(ModelNameError, match=f"^model {name}: {said} \\(REPO@REVISION takes a commit, a branch "):
            models.resolve(name)
    (tmp_path / "here" / "Qwen").mkdir(parents=True)  # a folder whose name holds @ stays a folder
    (tmp_path / "here" / "Qwen" / "Qwen3-Reranker-0.6B@mine").symlink_to(tiny_model)
    monkeypatch.chdir(tmp_path / "here")
    assert models.split_revision("Qwen/Qwen3-Reranker-0.6B@mine") == ("Qwen/Qwen3-Reranker-0.6B@mine", None)
    assert models.resolve("Qwen/Qwen3-Reranker-0.6B@mine") == Path("Qwen/Qwen3-Reranker-0.6B@mine")
    with pytest.raises(ModelNameError, match=r"^0\.6b@a{40} and revision b: give the revision once$"):
        models.download("0.6b@" + "a" * 40, revision="b")


def test_a_snapshot_copied_without_its_blobs_is_said_as_such(tmp_path):
    # cp -a of a cache's snapshot keeps links into ../../blobs: "no config.json" while ls shows one
    from qrr.errors import ModelCheckError

    folder = tmp_path / "copied"
    folder.mkdir()
    (folder / "config.json").symlink_to("../../blobs/0123abcd")
    with pytest.raises(ModelCheckError) as caught:
        models.resolve(str(folder))
    assert str(caught.value) == (
        f"{folder / 'config.json'}: a link to ../../blobs/0123abcd, which is missing; copy a cached snapshot with its "
        "files (cp -rL), or the whole models--* folder"
    )


def test_a_name_whose_first_part_is_a_folder_here_is_said_as_a_possible_typo(hub_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelNotFoundError) as caught:
        models.resolve("models/qwen3-reranker", offline=True)
    assert str(caught.value).startswith(
        "model models/qwen3-reranker (and no folder models/qwen3-reranker here) is not in the local cache"
    )
    with pytest.raises(ModelNotFoundError) as caught:
        models.resolve("someone/reranker", offline=True)  # no folder someone/ here: a hub repo id, said as one
    assert str(caught.value).startswith("model someone/reranker is not in the local cache")


def test_an_unreadable_config_is_one_line(tmp_path, monkeypatch):
    from pathlib import Path

    from qrr.errors import ModelCheckError

    (tmp_path / "config.json").write_text("{}")

    def unreadable(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    with pytest.raises(ModelCheckError, match=r"config.json: permission denied; make the model folder readable$"):
        models.read_config(tmp_path)


def test_unreadable_weights_and_a_config_of_no_object_are_one_line(tiny_model, tmp_path, monkeypatch):
    """Weights shared with a service's user (mode 0600) gave a raw PermissionError; a config.json of null, a list
    or a string an AttributeError, and architectures of a string or of numbers a TypeError or its letters."""
    import builtins

    from qrr.errors import ModelCheckError

    for config, held in (("null", "null"), ("[1, 2]", "an array"), ('"x"', "a string")):
        (tmp_path / "config.json").write_text(config)
        with pytest.raises(NotAModelError) as caught:
            models.check_folder(tmp_path)
        assert str(caught.value) == f"{tmp_path / 'config.json'}: holds {held}, not a JSON object: not a model's config"
    for architectures in ('"Qwen3ForCausalLM"', "[1]"):
        (tmp_path / "config.json").write_text(f'{{"model_type": "qwen3", "architectures": {architectures}}}')
        with pytest.raises(NotAModelError, match=r"config.json describes qwen3 \(no architecture\), not a "):
            models.check_folder(tmp_path)
    opened = builtins.open

    def guarded(file, *args, **kwargs):
        if str(file).endswith(".safetensors"):
            raise PermissionError(13, "Permission denied", str(file))
        return opened(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(ModelCheckError) as caught:
        models.check_folder(tiny_model)
    assert str(caught.value) == f"{tiny_model / 'model.safetensors'}: permission denied; make the model folder readable"


def test_a_peft_adapter_folder_is_said_as_one(tmp_path):
    """A LoRA fine-tune saved as its adapter alone: "no config.json" left its owner guessing."""
    (tmp_path / "adapter_config.json").write_text('{"base_model_name_or_path": "Qwen/Qwen3-Reranker-0.6B", "r": 8}')
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    said = (f"{tmp_path}: a PEFT adapter of Qwen/Qwen3-Reranker-0.6B (adapter_config.json), not a whole model: merge "
            "it into its base model (peft's merge_and_unload(), then save_pretrained(FOLDER) with the tokenizer) and "
            "give that folder")  # fmt: skip
    with pytest.raises(NotAModelError) as caught:
        models.check_local(str(tmp_path))
    assert str(caught.value) == said
    (tmp_path / "adapter_config.json").write_text("[]")  # no base named: the rest still said
    with pytest.raises(NotAModelError, match=r"^\S+: a PEFT adapter \(adapter_config.json\), not a whole model: "):
        models.check_local(str(tmp_path))
