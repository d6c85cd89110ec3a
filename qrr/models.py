"""Model aliases and resolution of ``--model`` to a local folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from qrr.errors import ModelNotFoundError

ALIASES = {
    "0.6b": "Qwen/Qwen3-Reranker-0.6B",
    "4b": "Qwen/Qwen3-Reranker-4B",
    "8b": "Qwen/Qwen3-Reranker-8B",
}
DEFAULT_MODEL = "0.6b"
MODEL_ENV = "QRR_MODEL"
# What scoring reads from a model repo; nothing else is fetched or required.
FILE_PATTERNS = [
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer*",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def default_model() -> str:
    """``$QRR_MODEL`` if set, else ``0.6b``."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def repo_id(name: str) -> str | None:
    """The hub repo id an alias or repo id names; ``None`` when ``name`` is not one."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    if _REPO_ID.match(name) and not name.startswith((".", "~")):
        return name
    return None


def resolve(name: str | None = None) -> Path:
    """The local folder holding the model ``name`` (alias, hub repo id or folder; default ``default_model()``).

    Only the local cache is consulted; a model that is not there raises ``ModelNotFoundError`` naming
    the fix.
    """
    name = name or default_model()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{name}: the folder has no config.json, so it is not a model folder")
        return path
    repo = repo_id(name)
    if repo is None:
        raise ModelNotFoundError(
            f"--model {name}: no such folder, and not an alias ({', '.join(ALIASES)}) or a hub repo id (owner/name)"
        )
    cached = _cached_snapshot(repo)
    if cached is None:
        hint = name if name.lower() in ALIASES else repo
        raise ModelNotFoundError(
            f"model {repo} is not in the local cache: run `qrr download {hint}` or pass --model PATH to a local copy"
        )
    return cached


def _cached_snapshot(repo: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo, local_files_only=True, allow_patterns=FILE_PATTERNS))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    return folder if (folder / "config.json").is_file() else None
