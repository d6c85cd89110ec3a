"""Where a model comes from: aliases and registered names, resolution to a local folder, downloads, folder
checks and the cache listing. Nothing here imports torch."""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from qrr.errors import (
    IncompleteModelError,
    ModelCheckError,
    ModelNameError,
    ModelNotFoundError,
    NotAModelError,
    PickledWeightsError,
    QrrError,
    json_type,
)
from qrr.family import ALIASES as FAMILY_ALIASES
from qrr.family import QWEN3, SEQ_CLS

log = logging.getLogger("qrr")

# alias -> hub repo, for every family's sizes
ALIASES = {alias: size.repo for alias, (_, size) in FAMILY_ALIASES.items()}
DEFAULT_MODEL = "0.6b"
MODEL_ENV = "QRR_MODEL"
# What scoring reads from a model repo; nothing else is fetched.
FILE_PATTERNS = [
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer*",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# what the hub takes as a revision: a commit, a branch or tag (``v1.0``, ``refs/pr/3``)
_REVISION = re.compile(r"^(?!\.\.?(/|$))[\w.-]+(/(?!\.\.?(/|$))[\w.-]+)*$")
# a commit as git shortens it: the hub's cache finds it by its full name only, and the hub downloads none by it
_SHORT_COMMIT = re.compile(r"[0-9a-fA-F]{7,39}")
_TRUE = {"1", "on", "yes", "true"}


# Models registered under a name, looked up before aliases, repo ids and folders: a loader
# ``loader(device, dtype) -> (engine, tokenizer)`` (torch device and dtype) that builds its own engine. Tests
# register fake models here, as plugins register models in simonw/llm.
_REGISTERED: dict[str, Callable[[Any, Any], tuple[Any, Any]]] = {}


def register(name: str, loader: Callable[[Any, Any], tuple[Any, Any]]) -> None:
    """Make ``name`` load through ``loader`` (``loader(device, dtype)`` returns ``(engine, tokenizer)``)."""
    _REGISTERED[name] = loader


def unregister(name: str) -> None:
    """Forget a registered name (no error if it was not registered)."""
    _REGISTERED.pop(name, None)


def registered(name: str | None) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """The loader registered under ``name``, or ``None``."""
    return _REGISTERED.get(name) if name else None


def default_model() -> str:
    """``$QRR_MODEL`` if set (and not blank: ``QRR_MODEL=" "`` as ``QRR_MODEL=``), else ``0.6b``."""
    return (os.environ.get(MODEL_ENV) or "").strip() or DEFAULT_MODEL


def named(model):
    """The model to load: ``model`` (a name, or anything else, such as a loader, as it is), or ``default_model()``
    where it is ``None``. An empty name (an unset variable of the caller's, say) raises ``ModelNameError`` rather
    than loading the default, or a folder named ``""``: the current one."""
    if model is None:
        return default_model()
    if isinstance(model, str) and not model.strip():
        default = f"${MODEL_ENV}, else {DEFAULT_MODEL}"
        raise ModelNameError(f"{{model}} is empty ({model!r}): give {', '.join(ALIASES)}, a hub repo id or a folder, "
                             f"or leave it out for the default ({default})", "model")  # fmt: skip
    return model


def model_key(model) -> str:
    """How a record of a run's settings names ``model`` (``None``: the default): a local folder by its absolute path,
    an alias by its repo id (and ``@REVISION`` where one is named), so that the same model given otherwise (a
    relative path, ``0.6b``) goes on with a run."""
    model = named(model)
    if isinstance(model, str | os.PathLike) and os.path.isdir(os.path.expanduser(model)):
        return os.path.abspath(os.path.expanduser(model))
    if not isinstance(model, str):
        return str(model)
    base, revision = split_revision(model)
    repo = repo_id(base)
    return model if repo is None else repo + (f"@{revision}" if revision else "")


def split_revision(name: str) -> tuple[str, str | None]:
    """``0.6b@COMMIT`` or ``owner/name@COMMIT`` (a branch or tag as well) as ``(name, revision)``; any other name,
    a folder's included, as ``(name, None)``. A revision that the hub could not take raises ``ModelNameError``."""
    base, at, revision = name.partition("@")
    if not at or repo_id(base) is None or os.path.exists(os.path.expanduser(name)):
        return name, None
    if not _REVISION.match(revision):
        said = f"{revision!r} is not a revision" if revision else "no revision after @"
        raise ModelNameError(f"{{model}} {name}: {said} (REPO@REVISION takes a commit, a branch or a tag)", "model")
    return base, revision


def repo_id(name: str) -> str | None:
    """The hub repo id an alias or repo id names; ``None`` when ``name`` is not one."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    # the hub takes a repo id in any case, the cache only as spelt: a second copy, or "not cached" offline
    known = next((repo for repo in ALIASES.values() if repo.lower() == key), None)
    if known:
        return known
    if _REPO_ID.match(name) and not name.startswith((".", "~")):
        return name
    return None


def hub_repo(name: str) -> str:
    """The hub repo id that ``name`` (an alias or repo id) names, or ``ModelNameError`` saying what it is instead."""
    repo = repo_id(name)
    if repo is None and Path(name).expanduser().is_file():
        raise ModelNameError(f"{name}: a file, not a model folder or a hub repo id")
    if repo is None:
        raise ModelNameError(f"{name}: no such folder, and not an alias ({', '.join(ALIASES)}) or a hub repo id "
                             "(owner/name)")  # fmt: skip
    return repo


def alias_of(repo: str) -> str | None:
    """``Qwen/Qwen3-Reranker-4B`` -> ``4b``."""
    return next((alias for alias, r in ALIASES.items() if r == repo), None)


def _offline_variable() -> str:
    """Which variable turned downloads off (huggingface_hub reads TRANSFORMERS_OFFLINE too)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return "HF_HUB_OFFLINE"


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read now, not at import, so a shell or test can change it)."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().lower() in _TRUE
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve(name: str | None = None, offline: bool | None = None) -> Path:
    """The local folder holding the model ``name`` (alias, hub repo id or folder; default ``default_model()``).

    A hub model missing from the local cache is downloaded, unless offline (``offline=True`` or
    ``HF_HUB_OFFLINE=1``), which raises ``ModelNotFoundError`` naming ``qrr download``. The folder is
    checked (``check_folder``, all but the tokenizer, which loading checks anyway) before it is returned.
    """
    asked, name = name, named(name)
    path = Path(name).expanduser()
    if path.is_dir():
        check_folder(path, tokenizer=False)
        return path
    if path.is_file():
        raise ModelNameError(f"{{model}} {name}: a file, not a model folder; give the folder that holds it", "model")
    base, revision = split_revision(name)
    repo = repo_id(base)
    if repo is None:
        raise ModelNameError(
            f"{{model}} {name}: no such folder, and not an alias ({', '.join(ALIASES)}) or a hub repo id (owner/name)",
            "model",
        )
    by_environment = not offline and offline is None and is_offline()  # said so: the run had named no --offline
    offline = offline or by_environment
    cached = cached_snapshot(repo, revision)
    if cached is not None:
        try:
            check_folder(cached, tokenizer=False, repo=repo)
            return cached
        except (IncompleteModelError, PickledWeightsError) as exc:  # another tool's copy: the safetensors are fetched
            if offline:
                raise
            # what an interrupted first use leaves (Ctrl-C in the download): finish that very commit (the
            # snapshot's name), as qrr download would
            said = str(exc).removeprefix(f"{cached}: ").split("; run ")[0]
            if isinstance(exc, PickledWeightsError):
                said = "pickled weights only, which qrr does not load"
            log.warning(f"the cached copy of {repo} is incomplete ({said}); downloading the rest")
            return download(repo, revision=cached.name)
    if revision and _SHORT_COMMIT.fullmatch(revision):
        raise _short_commit(repo, revision)
    # models/reranker where ./models exists: a mistyped folder more likely than a hub repo
    typo = f" (and no folder {name} here)" if path.parent.name and path.parent.is_dir() else ""
    if offline:
        who = "{model}" if asked is not None else "the default model"  # where none was named, "--model X" misleads
        raise ModelNotFoundError(
            f"{who} {repo}{f'@{revision}' if revision else ''}{typo} is not in the local cache and downloads are off ("
            f"{_offline_variable() + ' is set' if by_environment else 'offline'}): run "
            f"`qrr download {alias_of(repo) or repo}{f'@{revision}' if revision else ''}` with a network, "
            "or give {model} a local copy's folder",
            "model",
        )
    try:
        return download(repo, revision=revision)
    except ModelNotFoundError as exc:
        if not typo:
            raise
        raise type(exc)(f"{exc.template}{typo}", *exc.params) from exc


def check_local(name) -> None:
    """Check now what needs no download, before slower work (a port taken, actors started): a folder, and a name
    that is neither a folder nor a hub repo id. A hub id is left to loading (which checks a cached copy, or
    downloads one); a registered name or a loader passes."""
    name = named(name)
    if not isinstance(name, str) or registered(name):
        return
    if os.path.exists(os.path.expanduser(name)) or repo_id(split_revision(name)[0]) is None:
        resolve(name, offline=True)


def cached_snapshot(repo: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of ``repo``, or ``None``; never touches the network."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo, revision=revision, local_files_only=True, allow_patterns=FILE_PATTERNS))
    except (FileNotFoundError, OSError, ValueError):  # LocalEntryNotFoundError is a FileNotFoundError
        folder = _only_snapshot(repo, revision or "")
        if folder is None:
            return None
    return folder if (folder / "config.json").is_file() else None


def _only_snapshot(repo: str, commit: str = "") -> Path | None:
    """The one snapshot cached for ``repo`` whose commit starts with ``commit``. Without one: where ``refs/main``
    names none (``qrr download --revision COMMIT`` writes none), a name without a revision means that copy; with a
    short commit (``0.6b@1a2b3c4``, as git prints it), the hub's cache finds only the full one. Never a guess among
    several."""
    from huggingface_hub import constants

    if commit and not _SHORT_COMMIT.fullmatch(commit):
        return None
    commit = commit.lower()
    snapshots = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots"
    try:
        found = [p for p in snapshots.iterdir() if p.is_dir() and p.name.startswith(commit)]
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def download(name: str, revision: str | None = None, local_dir: str | Path | None = None) -> Path:
    """Fetch what scoring needs of model ``name`` (alias or repo id) and check it; returns the folder.

    Goes to the standard Hugging Face cache (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_TOKEN`` apply) or
    ``local_dir``. Progress goes to stderr; an interrupted download resumes where it stopped.
    """
    from huggingface_hub import snapshot_download

    name, named_revision = split_revision(name)
    if named_revision and revision and named_revision != revision:
        raise ModelNameError(f"{name}@{named_revision} and {{revision}} {revision}: give the revision once", "revision")
    revision = revision or named_revision
    repo = hub_repo(name)
    if revision and _SHORT_COMMIT.fullmatch(revision) and local_dir is None:  # a cached copy's, or none
        cached = cached_snapshot(repo, revision)
        if cached is None:
            raise _short_commit(repo, revision)
        check_folder(cached, repo=repo)
        return cached
    if local_dir is not None and Path(local_dir).expanduser().is_file():
        raise ModelNameError(f"{{local_dir}} {local_dir}: a file, not a folder", "local_dir")
    if is_offline():  # a cached copy is checked and named, as a provisioning script asks of an offline machine
        cached = _copy_at_hand(repo, revision, local_dir)
        if cached is None:
            where = "the local cache" if local_dir is None else str(local_dir)
            raise ModelNotFoundError(f"cannot download {repo}: it is not in {where} and {_offline_variable()} is set; "
                                     "unset it to download")  # fmt: skip
        check_folder(cached, repo=repo)
        return cached
    why = _hub_unreachable(repo, revision)
    if why is not None:  # snapshot_download would wait forever, or retry for half a minute, printing each try
        cached = _copy_at_hand(repo, revision, local_dir)
        if cached is None:
            raise _unreachable(repo, why)
        check_folder(cached, repo=repo)
        log.warning(f"cannot reach the Hugging Face Hub{why}; using the copy of {repo} at {cached}")
        return cached
    try:
        folder = Path(
            snapshot_download(
                repo,
                revision=revision,
                local_dir=str(local_dir) if local_dir is not None else None,
                allow_patterns=FILE_PATTERNS,
            )
        )
    except Exception as exc:
        raise _download_error(repo, revision, exc) from exc
    check_folder(folder, repo=repo)
    return folder


def _short_commit(repo: str, revision: str) -> ModelNotFoundError:
    return ModelNotFoundError(f"{repo}@{revision}: no cached copy's commit starts with {revision}, and the hub takes a "
                              "commit whole: give all 40 characters of it")  # fmt: skip


def _copy_at_hand(repo: str, revision: str | None, local_dir: str | Path | None) -> Path | None:
    """A copy of ``repo`` on this machine: ``local_dir`` where it holds a config, else the cache's."""
    if local_dir is not None:
        folder = Path(local_dir).expanduser()
        return folder if (folder / "config.json").is_file() else None
    return cached_snapshot(repo, revision)


def _hub_unreachable(repo: str, revision: str | None) -> str | None:
    """``None`` where the hub answers a question about ``repo``; else why not, as a message's aside: ``""`` (no
    connection: no network, no name resolution) or the timeout it took longer than (``HF_HUB_ETAG_TIMEOUT``). The
    hub client asks its first question with no time limit, so a network that drops packets (a firewall, a half-up
    VPN) held every command that downloads silent forever."""
    from huggingface_hub import HfApi, constants

    timeout = float(constants.HF_HUB_ETAG_TIMEOUT)
    try:
        HfApi().repo_info(repo, revision=revision, timeout=timeout)
    except Exception as exc:  # any other failure, snapshot_download meets again and says as it does
        # by name: requests', httpx's and httpx2's classes alike, whichever the installed hub client uses
        names = {cls.__name__ for cls in type(exc).__mro__}
        if any("Timeout" in name for name in names):
            return f" (no answer within {timeout:g} s: HF_HUB_ETAG_TIMEOUT)"
        if names & {"ConnectError", "ConnectionError"}:
            return ""
    return None


def _unreachable(repo: str, why: str = "") -> ModelNotFoundError:
    return ModelNotFoundError(
        f"cannot reach the Hugging Face Hub to download {repo}{why}: check the network (or HF_ENDPOINT, a proxy), "
        "or copy a folder downloaded elsewhere to this machine and give its path as {model}",
        "model",
    )


def _download_error(repo: str, revision: str | None, exc: Exception) -> QrrError:
    from huggingface_hub import errors

    if isinstance(exc, errors.GatedRepoError):
        return ModelNotFoundError(f"{repo} is gated: accept its terms on the Hub and set HF_TOKEN")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return ModelNotFoundError(f"no model {repo} on the Hub (a private one needs HF_TOKEN)")
    if isinstance(exc, errors.RevisionNotFoundError):
        return ModelNotFoundError(f"{repo} has no revision {revision}")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        answered = _http_status(exc)
        if answered is not None:  # the hub was reached, and failed: a network check is not what helps
            return QrrError(f"the Hugging Face Hub answered {answered} to the download of {repo}: try again later "
                            "(or check HF_ENDPOINT, a proxy)")  # fmt: skip
        return _unreachable(repo)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return QrrError(f"download of {repo} failed: {first}")


def _http_status(exc: BaseException) -> str | None:
    """The HTTP status (``500 Internal Server Error``) of a response behind ``exc`` (its causes included), or
    ``None`` where none was answered."""
    seen = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", None) or ""
            return f"{code} {reason}".strip()
        seen = seen.__cause__ or seen.__context__
    return None


# ----------------------------------------------------------------------------------------------- checks


def read_config(path: Path) -> dict:
    """The folder's config.json, parsed (``NotAModelError`` where there is none, or it holds no JSON object)."""
    file = path / "config.json"
    if (path / "adapter_config.json").is_file():
        # an adapter's folder may hold its base's config.json too: its weights say what it is
        whole = ("model.safetensors.index.json", "model*.safetensors", "pytorch_model*.bin")
        if not any(any(path.glob(pattern)) for pattern in whole):
            raise NotAModelError(_adapter_said(path))
        # merged into the weights or not, which cannot be told: transformers applies the adapter where peft is
        # installed (a merged LoRA counted twice) and ignores it where not (an unmerged one lost)
        raise NotAModelError(
            f"{path}: holds whole weights and a PEFT adapter's adapter_config.json: whether the adapter is merged into "
            "them cannot be told (transformers applies it where peft is installed, ignores it where not); keep one "
            "of the two in the folder"
        )
    if not file.exists() and not file.is_symlink() and (path / "modules.json").is_file():
        raise NotAModelError(_sentence_transformers_said(path))
    config = _read_json(file, "config.json")
    if not isinstance(config, dict):  # null, a list: every check after failed on it with an AttributeError
        raise NotAModelError(f"{path / 'config.json'}: holds {json_type(config)}, not a JSON object: not a model's "
                             "config")  # fmt: skip
    return config


def checkpoint_kind(path: Path, config: Mapping | None = None) -> str:
    """``causal`` or ``seq-cls``: which kind of Qwen3-Reranker checkpoint the folder's config.json (or ``config``,
    read from it) describes (``ModelCheckError`` for anything else)."""
    return QWEN3.head(read_config(path) if config is None else config, f"{path}: config.json")


def check_folder(path: Path, tokenizer: bool = True, repo: str | None = None) -> str:
    """Raise ``ModelCheckError`` unless ``path`` holds a Qwen3 causal LM (or converted sequence classifier)
    config, complete safetensors weights and (with ``tokenizer``) a tokenizer with single ``yes`` and ``no``
    tokens, and where it is taken as ``repo``, one of the sizes, that size's shape (``check_size``); returns the
    checkpoint's kind. Reads headers only, never the weights."""
    config = read_config(path)
    if repo is not None:
        check_size(path, repo, config)
    kind = checkpoint_kind(path, config)
    if tokenizer:
        vocab = _vocab(path, repo)
        missing = [t for t in (QWEN3.yes, QWEN3.no) if t not in vocab]
        if missing:
            raise NotAModelError(
                f"{path}: the tokenizer has no single token {' or '.join(repr(t) for t in missing)}: "
                f"not a {QWEN3.name} tokenizer"
            )
    other = _logit_score_tokens(path, repo)  # checked as a model loads too (tokenizer=False)
    if other is not None:  # trained to answer with other words: qrr's p(yes) would be another question's
        raise NotAModelError(
            f"{path}: its sentence-transformers LogitScore scores {other[0]} against {other[1]}, not "
            f"{QWEN3.yes!r} against {QWEN3.no!r} as qrr does"
        )
    names = set()
    for shard in _weight_files(path, repo):
        names |= _check_safetensors(shard)
    # without its head, transformers fills it with random numbers and the scores mean nothing, with no error
    head = "score.weight" if kind == SEQ_CLS else None if config.get("tie_word_embeddings") else "lm_head.weight"
    if head and not any(n == head or n.endswith("." + head) for n in names):
        said = "says the head is not tied to" if "tie_word_embeddings" in config else "does not tie the head to"
        tied = "a tied model's says tie_word_embeddings: true"
        tie = "" if kind == SEQ_CLS else f" (its config {said} the embeddings; {tied})"
        raise ModelCheckError(
            f"{path}: the weights hold no {head} (the {'score' if kind == SEQ_CLS else 'output'} head); an "
            f"incomplete or wrongly converted checkpoint{tie}"
        )
    return kind


def check_size(path: Path, repo: str, config: Mapping | None = None) -> None:
    """``ModelCheckError`` where ``path``, taken as ``repo``, one of the family's sizes, holds another size's shape
    (the 0.6b copied to a folder then named the 8b's, or as its --local-dir): every figure would be the other's."""
    size = next((n for n, s in QWEN3.sizes.items() if s.repo.lower() == repo.lower()), None)
    if size is None:
        return
    config = read_config(path) if config is None else config
    found = QWEN3.size_of(config)
    if found != size:
        want = QWEN3.sizes[size].shape
        held = (f"the {found}'s shape" if found else
                f"hidden size {config.get('hidden_size')} in {config.get('num_hidden_layers')} layers")  # fmt: skip
        raise ModelCheckError(f"{path}: holds {held}, not {repo}'s (hidden size {want['hidden_size']} in "
                              f"{want['num_hidden_layers']} layers): another model's copy")  # fmt: skip


def _adapter_said(path: Path) -> str:
    """What to do with a fine-tune saved as a PEFT (LoRA) adapter, the weights a base model needs added to it."""
    try:
        base = orjson.loads((path / "adapter_config.json").read_bytes()).get("base_model_name_or_path")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        base = None
    of = f" of {base}" if isinstance(base, str) and base else ""
    return (
        f"{path}: a PEFT adapter{of} (adapter_config.json), not a whole model: merge it into its base model (peft's "
        "merge_and_unload(), then save_pretrained(FOLDER) with the tokenizer) and give that folder"
    )


def _st_module(path: Path, kind: str) -> str | None:
    """The folder (within ``path``) of the first sentence-transformers module of ``kind`` (``Transformer``,
    ``LogitScore``) that its modules.json lists, ``""`` for ``path`` itself; ``None`` for none, or no modules.json."""
    try:
        modules = orjson.loads((path / "modules.json").read_bytes())
        return next(str(m.get("path", "")) for m in modules if str(m.get("type", "")).endswith(kind))
    except (OSError, orjson.JSONDecodeError, TypeError, AttributeError, StopIteration):
        return None


def _sentence_transformers_said(path: Path) -> str:
    """What to give for a sentence-transformers folder whose transformers model sits in a folder of its own."""
    sub = _st_module(path, "Transformer")
    if not sub:
        return f"{path}: a sentence-transformers folder (modules.json) without a config.json at its top"
    return f"{path}: a sentence-transformers folder (modules.json); its model is in {path / sub}: give that folder"


def _logit_score_tokens(path: Path, repo: str | None) -> tuple[str, str] | None:
    """The tokens a sentence-transformers ``LogitScore`` module in ``path`` scores (true, false), where they are
    not the family's yes and no; else ``None`` (no such module, the usual case, reads one file's absence)."""
    sub = _st_module(path, "LogitScore")
    if sub is None:
        return None
    try:
        config = orjson.loads((path / sub / "config.json").read_bytes())
        ids = (config["true_token_id"], config["false_token_id"])
    except (OSError, orjson.JSONDecodeError, TypeError, KeyError):
        return None
    vocab = _vocab(path, repo)
    if list(ids) == [vocab.get(QWEN3.yes), vocab.get(QWEN3.no)]:
        return None
    tokens = {i: repr(t) for t, i in vocab.items()}
    false = "nothing (false_token_id null)" if ids[1] is None else tokens.get(ids[1], f"id {ids[1]}")
    return tokens.get(ids[0], f"id {ids[0]}"), false


def _read_json(file: Path, what: str):
    try:
        return orjson.loads(file.read_bytes())
    except FileNotFoundError:
        if file.is_symlink():  # a hub cache's snapshot copied without the blobs its files link to
            raise ModelCheckError(
                f"{file}: a link to {os.readlink(file)}, which is missing; copy a cached snapshot with its files "
                "(cp -rL), or the whole models--* folder"
            ) from None
        raise NotAModelError(f"{file.parent}: no {what}, so it is not a model folder") from None
    except PermissionError:
        raise ModelCheckError(f"{file}: permission denied; make the model folder readable") from None
    except orjson.JSONDecodeError:
        raise ModelCheckError(f"{file}: not valid JSON (an interrupted download? run qrr download again; a folder of "
                              "your own: save or copy it again)") from None  # fmt: skip


def _vocab(path: Path, repo: str | None = None) -> dict:
    if (path / "tokenizer.json").is_file():
        return _read_json(path / "tokenizer.json", "tokenizer.json").get("model", {}).get("vocab", {})
    if (path / "vocab.json").is_file():
        return _read_json(path / "vocab.json", "vocab.json")
    fix = ("run qrr download again to finish the download" if repo else "save it beside the weights "
           "(tokenizer.save_pretrained(FOLDER)) or copy the base model's tokenizer files in (an interrupted "
           "download: run qrr download again)")  # fmt: skip
    raise IncompleteModelError(f"{path}: no tokenizer (tokenizer.json or vocab.json); {fix}")


def _weight_files(path: Path, repo: str | None = None) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(_read_json(index, index.name).get("weight_map", {}).values()))
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            # a folder of one's own (a fine-tune saved, a copy) has no download to finish
            fix = ("run qrr download again to finish the download" if repo else "save or copy the folder again (one "
                   "qrr download wrote: run that again)")  # fmt: skip
            raise IncompleteModelError(
                f"{path}: weight file {missing[0]} is missing ({len(missing)} of {len(names)}); {fix}"
            )
        return [path / n for n in names]
    shards = sorted(path.glob("*.safetensors"))
    pickled = sorted(p.name for p in path.glob("*.bin"))  # pytorch_model.bin: a format, not a download cut short
    if not shards and pickled:
        raise PickledWeightsError(f"{path}: weights in {pickled[0]} (PyTorch's pickle format), which qrr does not "
                                  "load: it loads safetensors (the published sizes have them; a loaded model's "
                                  "save_pretrained(folder) writes them)")  # fmt: skip
    if not shards:
        raise IncompleteModelError(f"{path}: no *.safetensors weights; run qrr download again to finish an interrupted "
                              "download (a copied folder: copy it again)")  # fmt: skip
    return shards


def _check_safetensors(file: Path) -> set[str]:
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors it lists; returns their
    names."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > size:
                raise ValueError
            header = orjson.loads(handle.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except PermissionError:  # a folder shared with a service's user: the raw error named no fix
        raise ModelCheckError(f"{file}: permission denied; make the model folder readable") from None
    except (struct.error, ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError):
        raise ModelCheckError(f"{file}: not a readable safetensors file; run qrr download again (a folder of your own: "
                              "save or copy it again)") from None  # fmt: skip
    if 8 + header_len + end > size:
        raise ModelCheckError(
            f"{file}: incomplete ({size} of {8 + header_len + end} bytes); run qrr download again to resume (a "
            "copied folder: copy it again)"
        )
    return {k for k in header if k != "__metadata__"}


# ------------------------------------------------------------------------------------------------ cache


@dataclass(frozen=True)
class CachedModel:
    """One cached revision of a Qwen3 causal LM in the Hugging Face cache."""

    model: str
    revision: str
    refs: tuple[str, ...]
    size_on_disk: int
    path: Path
    problem: str | None = None  # why it would be refused (``check_folder``'s message): None for a usable copy


def cached_models() -> list[CachedModel]:
    """The Qwen3 causal LMs (rerankers included) in the local Hugging Face cache, largest first, each checked as
    ``check_folder`` checks a model before loading it (``problem``: what it found wrong)."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        # Named explicitly: scan_cache_dir's own default is bound when huggingface_hub is imported.
        info = scan_cache_dir(constants.HF_HUB_CACHE)
    except CacheNotFound:  # nothing cached yet: an empty list, not an error
        return []
    except (OSError, ValueError) as exc:  # a file by that name, a folder not to be read: not "no models cached"
        reason = getattr(exc, "strerror", None) or "not a folder"
        raise QrrError(f"{constants.HF_HUB_CACHE}: cannot list the Hugging Face cache ({reason}); set HF_HUB_CACHE "
                       "or HF_HOME to a readable folder") from None  # fmt: skip
    found = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            path = Path(rev.snapshot_path)
            if _is_qwen3(path):
                try:  # headers only: an interrupted download or another size's copy is told before it is used
                    check_folder(path, repo=repo.repo_id)
                    problem = None
                except QrrError as exc:
                    problem = str(exc)
                found.append(CachedModel(repo.repo_id, rev.commit_hash, tuple(sorted(rev.refs)), rev.size_on_disk,
                                         path, problem))  # fmt: skip
    return sorted(found, key=lambda m: (-m.size_on_disk, m.model))


def _is_qwen3(folder: Path) -> bool:
    try:
        return orjson.loads((folder / "config.json").read_bytes()).get("model_type") == QWEN3.model_type
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return False
