"""`qrr download`, folder checks, the cache listing and first-use downloads; the hub is patched, no network."""

from __future__ import annotations

import json
import shutil

import huggingface_hub
import huggingface_hub.constants
import orjson
import pytest
from huggingface_hub import errors as hub_errors
from typer.testing import CliRunner

from qrr import models
from qrr.cli import app
from qrr.errors import ModelCheckError, ModelNotFoundError
from qrr.models import check_folder

HUB_UNREACHABLE = models._hub_unreachable
REAL_SNAPSHOT_DOWNLOAD = huggingface_hub.snapshot_download
CHECK_SIZE = models.check_size


@pytest.fixture(autouse=True)
def _tiny_stands_for_every_size(monkeypatch):
    """The fake hub serves the tiny model as each size, whose shape is none of theirs: its check is tested alone."""
    monkeypatch.setattr(models, "check_size", lambda path, repo, config=None: None)


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Downloads allowed, an empty cache, and a fake hub that copies the tiny model; records each call."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_hub_unreachable", lambda repo, revision: None)  # no network: the hub answers
    return tmp_path


@pytest.fixture
def fake_hub(online, monkeypatch, tiny_model):
    calls = []

    def snapshot_download(repo_id, *, revision=None, local_dir=None, local_files_only=False, allow_patterns=None,
                          **kwargs):  # fmt: skip
        calls.append({"repo": repo_id, "revision": revision, "local_dir": local_dir, "local": local_files_only,
                      "patterns": allow_patterns})  # fmt: skip
        if local_files_only:
            raise hub_errors.LocalEntryNotFoundError("not cached")
        target = local_dir or str(online / "snap" / repo_id.replace("/", "--"))
        shutil.copytree(tiny_model, target, dirs_exist_ok=True)
        return target

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def run(*args):
    return CliRunner().invoke(app, list(args), prog_name="qrr")


def downloads(calls):
    return [c for c in calls if not c["local"]]


def test_download_alias_prints_the_folder(fake_hub, online):
    result = run("download", "4b")
    assert result.exit_code == 0, result.output
    (call,) = downloads(fake_hub)
    assert call["repo"] == "Qwen/Qwen3-Reranker-4B" and call["revision"] is None
    assert "*.safetensors" in call["patterns"] and "config.json" in call["patterns"]
    assert not any(p in ("*", "*.bin", "*.pt") for p in call["patterns"])
    assert result.stdout.strip() == str(online / "snap" / "Qwen--Qwen3-Reranker-4B")


def test_download_default_all_repo_id_and_revision(fake_hub, monkeypatch):
    assert run("download").exit_code == 0
    assert run("download", "--all").exit_code == 0
    assert run("download", "someone/my-reranker", "--revision", "v2").exit_code == 0
    assert run("download", "4b@v3", "someone/my-reranker@refs/pr/1").exit_code == 0
    said = run("download", "4b@v3", "--revision", "v4").stderr
    assert said == "error: 4b@v3 and --revision v4: give the revision once\n"
    said = run("download", "4b@").stderr
    assert said == "error: MODEL 4b@: no revision after @ (REPO@REVISION takes a commit, a branch or a tag)\n"
    monkeypatch.setenv("QRR_MODEL", "8b")
    assert run("download").exit_code == 0
    monkeypatch.setenv("QRR_MODEL", "./nowhere")  # the default from the environment is said as the variable
    assert (run("download").stderr, run("download", "./nowhere").stderr) == (
        "error: $QRR_MODEL ./nowhere: no such folder, and not an alias (0.6b, 4b, 8b) or a hub repo id (owner/name)\n",
        "error: ./nowhere: no such folder, and not an alias (0.6b, 4b, 8b) or a hub repo id (owner/name)\n",
    )
    assert [(c["repo"], c["revision"]) for c in downloads(fake_hub)] == [
        ("Qwen/Qwen3-Reranker-0.6B", None),
        ("Qwen/Qwen3-Reranker-0.6B", None),
        ("Qwen/Qwen3-Reranker-4B", None),
        ("Qwen/Qwen3-Reranker-8B", None),
        ("someone/my-reranker", "v2"),
        ("Qwen/Qwen3-Reranker-4B", "v3"),
        ("someone/my-reranker", "refs/pr/1"),
        ("Qwen/Qwen3-Reranker-8B", None),
    ]


def test_download_local_dir(fake_hub, tmp_path):
    target = tmp_path / "here"
    result = run("download", "0.6b", "--local-dir", str(target))
    assert result.exit_code == 0, result.output
    assert downloads(fake_hub)[0]["local_dir"] == str(target)
    assert result.stdout.strip() == str(target) and (target / "config.json").is_file()


def test_a_local_folder_is_checked_not_downloaded(fake_hub, folder, tmp_path):
    result = run("download", str(folder))
    assert (result.exit_code, result.stdout) == (0, f"{folder}\n")
    (folder / "model.safetensors").write_bytes(b"\0" * 8)
    result = run("download", str(folder))
    assert result.exit_code == 1 and "model.safetensors: not a readable safetensors file" in result.stderr
    assert "for hub models" in run("download", str(folder), "--revision", "main").stderr
    assert not downloads(fake_hub)


def test_download_usage_errors(fake_hub):
    for args, message in [
        (("download", "4b", "8b", "--local-dir", "x"), "one model at a time"),
        (("download", "4b", "--all"), "not both"),
        (("download", "--list", "4b"), "--list takes no models"),
        (("download", "not a repo!"), "not a repo!: no such folder, and not an alias (0.6b, 4b, 8b) or a hub repo id"),
        # it printed the folder and left -f unused
        (("download", "4b", "-f", "json"), "--format: only with --list (a download prints each folder, one a line)"),
        (("download", __file__), f"{__file__}: a file, not a model folder or a hub repo id"),
    ]:
        result = run(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    assert not downloads(fake_hub)


def test_every_name_is_checked_before_any_download(fake_hub, folder):
    # the first model's gigabytes were fetched before the typo in the last was said
    result = run("download", "4b", "8bb")
    assert result.exit_code == 2 and result.stdout == ""
    said = "error: 8bb: no such folder, and not an alias (0.6b, 4b, 8b) or a hub repo id (owner/name)\n"
    assert result.stderr == said
    result = run("download", "4b", str(folder), "--revision", "main")
    assert result.exit_code == 2 and f"{folder}: a local folder, checked only" in result.stderr
    assert not downloads(fake_hub)
    result = run("download", "4b", str(folder))
    assert (result.exit_code, result.stdout.splitlines()[1]) == (0, str(folder))
    assert [c["repo"] for c in downloads(fake_hub)] == ["Qwen/Qwen3-Reranker-4B"]
    (folder / "model.safetensors").write_bytes(b"\0" * 8)  # a broken copy: said before the 8B's download
    result = run("download", "8b", str(folder))
    assert result.exit_code == 1 and "model.safetensors: not a readable safetensors file" in result.stderr
    assert [c["repo"] for c in downloads(fake_hub)] == ["Qwen/Qwen3-Reranker-4B"] and result.stdout == ""


def _answered(status: int, reason: str) -> Exception:
    """What the hub client raises where the hub answered an error: a LocalEntryNotFoundError from the HTTP one."""
    answered = Exception(f"Server error '{status} {reason}'")
    answered.response = type("Response", (), {"status_code": status, "reason_phrase": reason})()
    error = hub_errors.LocalEntryNotFoundError("An error happened while trying to locate the files on the Hub")
    error.__cause__ = answered
    return error


@pytest.mark.parametrize(
    "error, message",
    [
        (hub_errors.LocalEntryNotFoundError("Connection error"), "cannot reach the Hugging Face Hub"),
        # reached, and failing: it said "cannot reach ... check the network"
        (
            _answered(500, "Internal Server Error"),
            "the Hugging Face Hub answered 500 Internal Server Error to the "
            "download of Qwen/Qwen3-Reranker-0.6B: try again later",
        ),
        (OSError(28, "No space left on device"), "download of Qwen/Qwen3-Reranker-0.6B failed"),
    ],
)
def test_network_and_disk_errors_are_one_line(online, monkeypatch, error, message):
    def snapshot_download(*args, **kwargs):
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    result = run("download")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "--model" not in result.stderr  # download has none: a folder copied here is given as MODEL
    if "cannot reach" in message:
        assert result.stderr.endswith("copy a folder downloaded elsewhere to this machine and give its path as MODEL\n")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.fixture
def silent_hub(online, monkeypatch):
    """A hub on loopback that takes connections and never answers (a firewall dropping packets, a half-up VPN)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_ETAG_TIMEOUT", 0.5)
    monkeypatch.setattr(models, "_hub_unreachable", HUB_UNREACHABLE)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)  # loopback directly, never through a proxy
    huggingface_hub.utils.close_session()  # a client made before would keep the proxies it read

    def cache_only(*args, local_files_only=False, **kwargs):
        assert local_files_only, "snapshot_download asked a hub that never answers: it would wait forever"
        return real(*args, local_files_only=True, **kwargs)

    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download", cache_only)
    yield
    listener.close()


def test_a_hub_that_never_answers_is_one_line_after_the_timeout(silent_hub):
    # huggingface_hub asks its first question with no time limit: every downloading command hung without a word
    result = run("download", "4b")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: cannot reach the Hugging Face Hub to download Qwen/Qwen3-Reranker-4B (no answer within 0.5 s: "
        "HF_HUB_ETAG_TIMEOUT): check the network (or HF_ENDPOINT, a proxy), or copy a folder downloaded elsewhere to "
        "this machine and give its path as MODEL\n"
    )
    result = run("score", "-m", "4b", "-q", "q", "-d", "d")
    assert result.exit_code == 1 and "no answer within 0.5 s" in result.stderr and "--model" in result.stderr


def test_a_hub_that_never_answers_leaves_a_cached_model_in_use(silent_hub, online, tiny_model):
    make_cache(online / "cache", tiny_model)
    result = run("download", "0.6b")
    assert result.exit_code == 0
    assert result.stdout == f"{online / 'cache' / 'models--Qwen--Qwen3-Reranker-0.6B' / 'snapshots' / ('a' * 40)}\n"
    snapshot = online / "cache" / "models--Qwen--Qwen3-Reranker-0.6B" / "snapshots" / ("a" * 40)
    assert result.stderr == (
        "warning: cannot reach the Hugging Face Hub (no answer within 0.5 s: HF_HUB_ETAG_TIMEOUT); using the copy of "
        f"Qwen/Qwen3-Reranker-0.6B at {snapshot}\n"
    )


def test_a_hub_out_of_reach_leaves_a_copy_in_use_without_retries(online, monkeypatch, tiny_model):
    # with a commit pinned, the hub client retried for half a minute, printing each try, before using the cache
    class ConnectError(Exception):  # by name, as requests', httpx's and httpx2's are told apart
        pass

    def no_route(self, repo, **kwargs):
        raise ConnectError("[Errno -2] Name or service not known")

    def no_retries(*args, local_files_only=False, **kwargs):
        assert local_files_only, "the hub was asked again"
        return real(*args, local_files_only=True, **kwargs)

    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(models, "_hub_unreachable", HUB_UNREACHABLE)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", no_route)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_retries)
    result = run("download", "4b")
    assert result.exit_code == 1 and result.stderr.startswith(
        "error: cannot reach the Hugging Face Hub to download Qwen/Qwen3-Reranker-4B: check the network"
    )
    make_cache(online / "cache", tiny_model)
    result = run("download", "0.6b", "--revision", "a" * 40)
    snapshot = online / "cache" / "models--Qwen--Qwen3-Reranker-0.6B" / "snapshots" / ("a" * 40)
    assert (result.exit_code, result.stdout) == (0, f"{snapshot}\n")
    assert (
        result.stderr
        == f"warning: cannot reach the Hugging Face Hub; using the copy of Qwen/Qwen3-Reranker-0.6B at {snapshot}\n"
    )
    local = online / "local"
    shutil.copytree(tiny_model, local)
    result = run("download", "4b", "--local-dir", str(local))  # a copy already there is one too
    assert (result.exit_code, result.stdout) == (0, f"{local}\n")


def test_a_local_dir_that_is_a_file_is_said_before_the_hub_is_asked(fake_hub, tmp_path):
    (tmp_path / "weights").write_text("")
    result = run("download", "0.6b", "--local-dir", str(tmp_path / "weights"))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: --local-dir {tmp_path / 'weights'}: a file, not a folder\n",
    )
    assert not downloads(fake_hub)  # it said "cannot reach the Hugging Face Hub"


def test_a_blank_model_variable_means_the_default(monkeypatch):
    monkeypatch.setenv("QRR_MODEL", " ")  # as QRR_MODEL= does; its error said to leave $QRR_MODEL out
    assert models.default_model() == "0.6b"


def test_hub_http_errors_map_to_clear_messages():
    # Built without __init__: their constructors want a live HTTP response.
    gated = hub_errors.GatedRepoError.__new__(hub_errors.GatedRepoError)
    missing = hub_errors.RepositoryNotFoundError.__new__(hub_errors.RepositoryNotFoundError)
    revision = hub_errors.RevisionNotFoundError.__new__(hub_errors.RevisionNotFoundError)
    assert "gated" in str(models._download_error("a/b", None, gated))
    assert "no model a/b on the Hub" in str(models._download_error("a/b", None, missing))
    assert "has no revision v9" in str(models._download_error("a/b", "v9", revision))


def test_download_offline_names_a_cached_copy_or_refuses(online, monkeypatch, tiny_model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run("download", "8b")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: cannot download Qwen/Qwen3-Reranker-8B: it is not in the local cache and HF_HUB_OFFLINE is set; "
        "unset it to download\n"
    )
    make_cache(online / "cache", tiny_model)  # checked and named, as it is where the hub answers
    result = run("download", "0.6b")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == f"{online / 'cache' / 'models--Qwen--Qwen3-Reranker-0.6B' / 'snapshots' / ('a' * 40)}\n"


def test_a_copy_of_another_size_is_not_taken_for_the_size_asked(online, monkeypatch, tiny_model, tmp_path):
    monkeypatch.setattr(models, "check_size", CHECK_SIZE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the offline machine's set-up: a copy at hand, no hub
    weights = tmp_path / "weights"
    shutil.copytree(tiny_model, weights)
    config = orjson.loads((weights / "config.json").read_bytes())
    config |= {"hidden_size": 1024, "num_hidden_layers": 28, "intermediate_size": 3072}  # the 0.6b's shape
    (weights / "config.json").write_bytes(orjson.dumps(config))
    assert run("download", "0.6b", "--local-dir", str(weights)).stdout == f"{weights}\n"
    result = run("download", "8b", "--local-dir", str(weights))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"error: {weights}: holds the 0.6b's shape, not Qwen/Qwen3-Reranker-8B's (hidden size "
                             "4096 in 36 layers): another model's copy\n")  # it was named the 8b  # fmt: skip
    # the hub out of reach: the copy at hand is checked as well
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(models, "_hub_unreachable", lambda repo, revision: "")
    assert "holds the 0.6b's shape" in run("download", "4b", "--local-dir", str(weights)).stderr
    # in the cache, under another size's name (the tiny model's own shape is no size's)
    make_cache(online / "cache", tiny_model)
    with pytest.raises(ModelCheckError, match="holds hidden size 64 in 2 layers, not Qwen/Qwen3-Reranker-0.6B's"):
        models.resolve("0.6b", offline=True)


# ------------------------------------------------------------------------------------------------ checks


@pytest.fixture
def folder(tiny_model, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model, target)
    return target


def test_the_tiny_model_passes_the_checks(folder):
    check_folder(folder)


def test_pickled_weights_are_said_to_be_a_format_qrr_does_not_load(folder):
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    result = run("download", str(folder))
    # it said to run qrr download again to finish an interrupted download
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {folder}: weights in pytorch_model.bin (PyTorch's pickle format), which qrr does not load: it loads "
        "safetensors (the published sizes have them; a loaded model's save_pretrained(folder) writes them)\n"
    ))  # fmt: skip


def test_folder_without_yes_and_no_tokens(folder):
    tok = orjson.loads((folder / "tokenizer.json").read_bytes())
    del tok["model"]["vocab"]["yes"]
    (folder / "tokenizer.json").write_bytes(orjson.dumps(tok))
    with pytest.raises(ModelCheckError, match="no single token 'yes'"):
        check_folder(folder)
    from qrr import Reranker

    with pytest.raises(ModelCheckError) as caught:  # the tokenizer's load fails: the folder check says why, once
        Reranker(str(folder), device="cpu")
    assert str(caught.value) == f"{folder}: the tokenizer has no single token 'yes': not a Qwen3-Reranker tokenizer"


def test_missing_weight_shard(folder):
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}  # fmt: skip
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelCheckError) as caught:
        check_folder(folder)
    # a folder of one's own has no download to finish
    assert str(caught.value) == (
        f"{folder}: weight file model-00002-of-00002.safetensors is missing (1 of 2); save or copy the folder again "
        "(one qrr download wrote: run that again)"
    )
    with pytest.raises(ModelCheckError, match=r"is missing \(1 of 2\); run qrr download again to finish the download$"):
        check_folder(folder, tokenizer=False, repo="someone/reranker")


def test_truncated_weights(folder):
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelCheckError, match="incomplete"):
        check_folder(folder)


def drop_tensor(file, name):
    from safetensors.torch import load_file, save_file

    weights = load_file(file)
    del weights[name]
    save_file(weights, file, metadata={"format": "pt"})


def test_weights_without_their_head(folder):
    # transformers loads such a folder with a random head: each run scored the same pair otherwise, exit 0
    drop_tensor(folder / "model.safetensors", "lm_head.weight")
    with pytest.raises(ModelCheckError) as caught:
        check_folder(folder)
    assert str(caught.value) == (
        f"{folder}: the weights hold no lm_head.weight (the output head); an incomplete or wrongly converted "
        "checkpoint (its config says the head is not tied to the embeddings; a tied model's says "
        "tie_word_embeddings: true)"
    )
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "tie_word_embeddings"}))
    with pytest.raises(ModelCheckError, match=r"\(its config does not tie the head to the embeddings; "):
        check_folder(folder)  # said as unsaid, not as "says"
    (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": True}))
    check_folder(folder)  # tied: the embeddings are the head


def test_a_classifier_without_its_score_head(tiny_model, tmp_path):
    from tests.tiny import convert_to_seq_cls

    folder = convert_to_seq_cls(tiny_model, tmp_path / "seq-cls")
    drop_tensor(folder / "model.safetensors", "score.weight")
    with pytest.raises(ModelCheckError) as caught:
        check_folder(folder)
    assert str(caught.value) == (
        f"{folder}: the weights hold no score.weight (the score head); an incomplete or wrongly converted checkpoint"
    )


def test_any_tensor_missing_at_load_is_an_error(folder):
    from qrr.loading import load_transformer

    drop_tensor(folder / "model.safetensors", "model.norm.weight")
    check_folder(folder)  # the head is there: only loading sees the rest
    with pytest.raises(ModelCheckError) as caught:
        load_transformer(folder, None)
    assert str(caught.value) == (
        f"{folder}: the weights lack 1 tensor the model needs (model.norm.weight): an incomplete or wrongly "
        "converted checkpoint"
    )
    result = run("score", "-m", str(folder), "-q", "q", "-d", "d")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {caught.value}\n"


def test_weights_saved_from_inside_a_training_wrapper_say_so(folder):
    from safetensors.torch import load_file, save_file

    from qrr.loading import load_transformer

    weights = load_file(folder / "model.safetensors")
    for prefix in ("module.", "module._orig_mod."):  # DistributedDataParallel's, around a compiled model's too
        renamed = {f"{prefix}{k}": v for k, v in weights.items()}
        save_file(renamed, folder / "model.safetensors", metadata={"format": "pt"})
        with pytest.raises(ModelCheckError) as caught:
            load_transformer(folder, None)
        assert str(caught.value).startswith(f"{folder}: the weights lack 25 tensors the model needs (")
        assert str(caught.value).endswith(
            f": its tensors' names start with '{prefix}' (saved from a training wrapper: DistributedDataParallel's "
            "module, torch.compile's _orig_mod): save the model it wraps (model.module, model._orig_mod)"
        )


def test_a_missing_or_broken_tokenizer_is_said_by_loading_as_by_the_check(folder):
    from qrr import Reranker

    tokenizer = (folder / "tokenizer.json").read_bytes()
    (folder / "tokenizer.json").write_bytes(tokenizer[: len(tokenizer) // 2])  # an interrupted copy
    with pytest.raises(ModelCheckError) as caught:
        Reranker(str(folder), device="cpu")
    assert str(caught.value) == (
        f"{folder / 'tokenizer.json'}: not valid JSON (an interrupted download? run qrr download again; a folder of "
        "your own: save or copy it again)"
    )  # it was "JSONDecodeError: Expecting ',' delimiter", naming no file
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (folder / name).unlink()
    with pytest.raises(ModelCheckError) as caught:
        Reranker(str(folder), device="cpu")
    assert str(caught.value) == (  # not "no single token 'yes'"
        f"{folder}: no tokenizer (tokenizer.json or vocab.json); save it beside the weights "
        "(tokenizer.save_pretrained(FOLDER)) or copy the base model's tokenizer files in (an interrupted download: "
        "run qrr download again)"
    )


def test_weights_unlike_the_config_are_one_error(folder):
    from qrr.loading import load_transformer

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 2 * config["intermediate_size"]}))
    with pytest.raises(ModelCheckError) as caught:
        load_transformer(folder, None)  # transformers' own error pointed to a report it had logged
    assert str(caught.value) == (f"{folder}: the weights do not fit the shapes config.json gives: "
                                 "model.layers.0.mlp.down_proj.weight is [64, 128] in the weights, [64, 256] by "
                                 "config.json (and 5 more)")  # fmt: skip


def test_a_mismatch_said_after_a_first_line_is_the_line_said(folder, monkeypatch):
    """transformers 4 opens with "Error(s) in loading state_dict for Linear:", which named no mismatch."""
    import transformers

    from qrr.loading import load_transformer

    asked = []

    def refuse(*args, **kwargs):
        asked.append(kwargs)
        raise RuntimeError("Error(s) in loading state_dict for Linear:\n\tsize mismatch for weight: copying a param "
                           "with shape torch.Size([2, 64]) from checkpoint, the shape in current model is "
                           "torch.Size([4, 64]).")  # fmt: skip

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(transformers, "__version__", "4.57.6")
    with pytest.raises(ModelCheckError) as caught:
        load_transformer(folder, None)
    # transformers 4 lists mismatched tensors without their shapes: its own error, which says them, is kept
    assert asked[0]["ignore_mismatched_sizes"] is False
    assert str(caught.value) == (
        f"{folder}: the weights do not fit the shapes config.json gives (size mismatch for weight: copying a param "
        "with shape torch.Size([2, 64]) from checkpoint, the shape in current model is torch.Size([4, 64]).)"
    )


def test_a_fine_tuners_folders_said_as_what_they_are(folder, tmp_path):
    """A LoRA adapter beside its base's config, a sentence-transformers folder of subfolders, a LogitScore of other
    words (a fine-tuning tour)."""
    from qrr import Reranker

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "config.json").write_bytes((folder / "config.json").read_bytes())  # the base's, saved with it
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "Qwen/Qwen3-Reranker-0.6B"}')
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelCheckError, match=r": a PEFT adapter of Qwen/Qwen3-Reranker-0.6B \(adapter_config.json\)"):
        check_folder(adapter)  # it was "the weights hold no lm_head.weight"
    # a merged model saved where its adapter was: transformers (with peft) applied the adapter again
    (folder / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelCheckError) as caught:
        check_folder(folder)
    assert str(caught.value) == (
        f"{folder}: holds whole weights and a PEFT adapter's adapter_config.json: whether the adapter is merged into "
        "them cannot be told (transformers applies it where peft is installed, ignores it where not); keep one of "
        "the two in the folder"
    )
    (folder / "adapter_config.json").unlink()
    st = tmp_path / "st"
    shutil.copytree(folder, st / "0_Transformer")
    module = {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.base.modules.Transformer"}
    (st / "modules.json").write_text(json.dumps([module]))
    with pytest.raises(ModelCheckError) as caught:
        check_folder(st)
    assert str(caught.value) == (f"{st}: a sentence-transformers folder (modules.json); its model is in "
                                 f"{st / '0_Transformer'}: give that folder")  # fmt: skip
    # sentence-transformers' CrossEncoder saved at the top with a LogitScore of yes and no loads; of other words not
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.Transformer"},
               {"idx": 1, "name": "1", "path": "1_LogitScore",
                "type": "sentence_transformers.cross_encoder.modules.LogitScore"}]  # fmt: skip
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_LogitScore").mkdir()
    vocab = orjson.loads((folder / "tokenizer.json").read_bytes())["model"]["vocab"]
    score = {"true_token_id": vocab["yes"], "false_token_id": vocab["no"]}
    (folder / "1_LogitScore" / "config.json").write_text(json.dumps(score))
    check_folder(folder)
    score = {"true_token_id": vocab["true"], "false_token_id": vocab["false"]}
    (folder / "1_LogitScore" / "config.json").write_text(json.dumps(score))
    with pytest.raises(ModelCheckError) as caught:
        Reranker(str(folder), device="cpu")  # as a model loads, not only as qrr download checks a folder
    assert str(caught.value) == (f"{folder}: its sentence-transformers LogitScore scores 'true' against 'false', not "
                                 "'yes' against 'no' as qrr does")  # fmt: skip
    (folder / "1_LogitScore" / "config.json").write_text(json.dumps({**score, "false_token_id": None}))  # one logit
    with pytest.raises(ModelCheckError, match=r"LogitScore scores 'true' against nothing \(false_token_id null\), "):
        check_folder(folder)


def test_custom_code_is_said_not_to_run(folder, caplog):
    from qrr import Reranker

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "own.Model"}}))
    Reranker(str(folder), device="cpu")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{folder}: config.json names code of its own (auto_map), which qrr does not run: it scores with "
        "transformers' Qwen3"
    ]


def test_not_a_qwen3_model(folder):
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="bert", architectures=["BertModel"])
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelCheckError, match="not a Qwen3-Reranker causal LM or converted sequence classifier"):
        check_folder(folder)


def test_a_failed_check_after_download_is_one_error(fake_hub, monkeypatch):
    monkeypatch.setattr(models, "_vocab", lambda path, repo=None: {})
    result = run("download")
    assert result.exit_code == 2 and "no single token" in result.stderr  # not a usable model, as a folder is not


# ------------------------------------------------------------------------------------------------ --list


def make_cache(cache, tiny_model):
    """A Hugging Face cache with a reranker (two revisions), a non-Qwen3 model and a dataset."""

    def snapshot(repo_dir, rev, files):
        snap = cache / repo_dir / "snapshots" / rev
        snap.mkdir(parents=True)
        (cache / repo_dir / "refs").mkdir(exist_ok=True)
        for name, src in files.items():
            shutil.copy(src, snap / name)
        return snap

    files = {f.name: f for f in tiny_model.iterdir()}
    snapshot("models--Qwen--Qwen3-Reranker-0.6B", "a" * 40, files)
    (cache / "models--Qwen--Qwen3-Reranker-0.6B" / "refs" / "main").write_text("a" * 40)
    snapshot("models--Qwen--Qwen3-Reranker-0.6B", "b" * 40, {"config.json": tiny_model / "config.json"})
    bert = cache / "models--x--bert"
    snapshot("models--x--bert", "c" * 40, {})
    (bert / "snapshots" / ("c" * 40) / "config.json").write_text('{"model_type": "bert"}')
    snapshot("datasets--x--data", "d" * 40, {})
    snapshot("models--me--tiny", "e" * 40, files)  # a name of no size: its shape is its own
    cut = snapshot("models--me--cut", "f" * 40, files)
    for weights in cut.glob("*.safetensors"):
        weights.unlink()


def test_list_shows_cached_qwen3_models(online, tiny_model, monkeypatch):
    monkeypatch.setattr(models, "check_size", CHECK_SIZE)
    make_cache(online / "cache", tiny_model)
    result = run("download", "--list", "-f", "jsonl")
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["model"], r["revision"][0], r["refs"]) for r in rows] == [
        ("Qwen/Qwen3-Reranker-0.6B", "a", ["main"]),
        ("me/tiny", "e", []),
        ("me/cut", "f", []),
        ("Qwen/Qwen3-Reranker-0.6B", "b", []),
    ]
    assert rows[0]["alias"] == "0.6b" and rows[0]["size_on_disk"] > 1_000_000
    assert rows[0]["path"].endswith("a" * 40)
    # each checked as a model is before it loads: the tiny model under the 0.6b's name, a download cut short
    shape = "holds hidden size 64 in 2 layers, not Qwen/Qwen3-Reranker-0.6B's (hidden size 1024 in 28 layers)"
    assert [r["problem"] for r in rows] == [
        f"{rows[0]['path']}: {shape}: another model's copy", None,
        f"{rows[2]['path']}: no *.safetensors weights; run qrr download again to finish an interrupted download (a "
        "copied folder: copy it again)", f"{rows[3]['path']}: {shape}: another model's copy"]  # fmt: skip
    assert result.stderr.splitlines() == [
        f"warning: {r['model']} {r['revision'][:12]} cannot be used: {r['problem']}" for r in rows if r["problem"]
    ]
    table = run("download", "--list", "-f", "table").stdout
    assert "Qwen/Qwen3-Reranker-0.6B" in table and "aaaaaaaaaaaa (main)" in table and "MB" in table
    usable = [line.split("│")[3].strip() for line in table.splitlines() if "│" in line and "/" in line.split("│")[0]]
    assert usable == ["no", "yes", "no", "no"]


def test_list_on_an_empty_cache_says_so_on_stderr(online):
    for fmt, stdout in (("jsonl", ""), ("json", "[]\n"), ("table", ""), ("tsv", "")):
        result = run("download", "--list", "-f", fmt)
        assert result.exit_code == 0 and result.stdout == stdout
        assert result.stderr == f"no Qwen3 models in the local cache ({online / 'cache'}): try qrr download\n"
    # a cache that cannot be listed is said, not taken for an empty one
    (online / "cache").write_text("a file")
    result = run("download", "--list")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", (
        f"error: {online / 'cache'}: cannot list the Hugging Face cache (not a folder); set HF_HUB_CACHE or HF_HOME "
        "to a readable folder\n"))  # fmt: skip


# ------------------------------------------------------------------------------------------- first use


def test_first_use_downloads_then_scores(fake_hub):
    result = run("rank", "-q", "q", "-d", "doc", "--model", "4b", "--device", "cpu", "--dtype", "fp32")
    assert result.exit_code == 0, result.output
    assert [c["repo"] for c in downloads(fake_hub)] == ["Qwen/Qwen3-Reranker-4B"]
    assert orjson.loads(result.stdout)["rank"] == 1
    result = run("rank", "-q", "q", "-d", "doc", "--model", "4b@v2", "--device", "cpu", "--dtype", "fp32")
    assert result.exit_code == 0, result.output
    assert [(c["repo"], c["revision"]) for c in downloads(fake_hub)][1:] == [("Qwen/Qwen3-Reranker-4B", "v2")]


def test_offline_never_downloads(fake_hub, monkeypatch):
    result = run("rank", "-q", "q", "-d", "doc", "--model", "4b", "--offline")
    assert result.exit_code == 1 and "qrr download 4b" in result.stderr and "offline" in result.stderr
    assert result.stderr.startswith("error: --model Qwen/Qwen3-Reranker-4B is not in the local cache")
    monkeypatch.delenv("QRR_MODEL", raising=False)
    result = run("rank", "-q", "q", "-d", "doc", "--offline")  # no --model given: it said "--model Qwen/..."
    assert result.stderr.startswith("error: the default model Qwen/Qwen3-Reranker-0.6B is not in the local cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="qrr download someone/model"):
        models.resolve("someone/model")
    assert not downloads(fake_hub)


@pytest.mark.parametrize("pickled", [False, True])
def test_an_interrupted_first_download_is_finished_on_next_use(fake_hub, online, tiny_model, monkeypatch, caplog,
                                                               pickled):  # fmt: skip
    # Ctrl-C while the weights came in leaves a snapshot with config and tokenizer only; each later use failed on it.
    # Or another tool cached the repo's pickled weights alone: qrr fetches its safetensors.
    snapshot = online / "cache" / "models--Qwen--Qwen3-Reranker-4B" / "snapshots" / ("e" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("e" * 40)
    for f in tiny_model.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, snapshot / f.name)
    if pickled:
        (snapshot / "pytorch_model.bin").write_bytes(b"pickled")
    fake, real = huggingface_hub.snapshot_download, REAL_SNAPSHOT_DOWNLOAD

    def cache_then_fake(*args, local_files_only=False, **kwargs):  # the cache as it is, the hub faked
        return (real if local_files_only else fake)(*args, local_files_only=local_files_only, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", cache_then_fake)
    with pytest.raises(ModelCheckError) as caught:
        models.resolve("4b", offline=True)
    assert str(caught.value).startswith(f"{snapshot}: weights in pytorch_model.bin" if pickled else (
        f"{snapshot}: no *.safetensors weights; run qrr download again to finish an interrupted download (a copied "
        "folder: copy it again)"))  # fmt: skip
    assert not downloads(fake_hub)
    with caplog.at_level("WARNING", logger="qrr"):
        assert models.resolve("4b") == online / "snap" / "Qwen--Qwen3-Reranker-4B"
    # that very commit: a pinned copy finished, not main fetched beside it
    assert [(c["repo"], c["revision"]) for c in downloads(fake_hub)] == [("Qwen/Qwen3-Reranker-4B", "e" * 40)]
    said = "pickled weights only, which qrr does not load" if pickled else "no *.safetensors weights"
    assert caplog.messages == [
        f"the cached copy of Qwen/Qwen3-Reranker-4B is incomplete ({said}); downloading the rest"
    ]


def test_cached_model_is_used_without_the_network(online, tiny_model, monkeypatch):
    make_cache(online / "cache", tiny_model)

    def no_network(*args, local_files_only=False, **kwargs):
        assert local_files_only, "tried the network for a cached model"
        return real(*args, local_files_only=True, **kwargs)

    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    assert models.resolve("0.6b") == online / "cache" / "models--Qwen--Qwen3-Reranker-0.6B" / "snapshots" / ("a" * 40)


def test_serve_names_the_default_model_by_its_alias(online, tiny_model, monkeypatch):
    """Without -m, clients were told the cached snapshot's folder as the model's name."""
    from qrr.server import app as server

    make_cache(online / "cache", tiny_model)
    monkeypatch.delenv("QRR_MODEL", raising=False)
    served = {}
    monkeypatch.setattr(server, "create_app", lambda reranker, name, *args, **kwargs: served.setdefault("name", name))
    monkeypatch.setattr(server, "run", lambda app, sock, on_ready, **kwargs: on_ready())
    result = run("serve", "--port", "0", "--device", "cpu", "--dtype", "fp32")
    assert result.exit_code == 0, result.stderr
    assert served["name"] == "0.6b"
    assert " serves 0.6b on cpu (fp32)" in result.stderr
