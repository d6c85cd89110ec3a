"""qrr download: fetch and check model weights; --list shows the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qrr.cli.base import OutputFormat, command, stderr, stdout_format
from qrr.cli.render import human_bytes, write_rows
from qrr.errors import InputError, ModelNameError


@command(no_args_is_help=False, flags={"model": "MODEL"})
def download(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="MODEL",
            help="Aliases (0.6b, 4b, 8b), hub repo ids (REPO@REVISION pins one), or folders copied here (checked "
            "only).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    all_sizes: Annotated[bool, typer.Option("--all", help="Download 0.6b, 4b and 8b.")] = False,
    revision: Annotated[str | None, typer.Option("--revision", help="A branch, tag or commit.")] = None,
    local_dir: Annotated[  # a string, so that a blank one is refused (as a Path it was ".": here)
        str | None,
        typer.Option("--local-dir", metavar="DIR", help="Download into this folder instead of the Hugging Face cache."),
    ] = None,
    list_cached: Annotated[bool, typer.Option("--list", help="Show the Qwen3 models in the local cache.")] = False,
    fmt: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            rich_help_panel="Output",
            help="With --list. [dim]\\[default: table on a terminal, jsonl otherwise][/]",
        ),
    ] = None,  # fmt: skip
) -> None:
    """Download model weights (default $QRR_MODEL, else 0.6b) and check them; prints each local folder on stdout.

    Only what scoring needs is fetched (config, safetensors weights, tokenizer) into the Hugging Face cache
    (HF_HOME, HF_HUB_CACHE and HF_TOKEN apply) or --local-dir. An interrupted download resumes. A local folder
    (weights copied from another machine, say) is checked as a download is, and nothing is fetched.

    [dim]Examples:[/]
      qrr download              [dim]# Qwen/Qwen3-Reranker-0.6B, about 1.2 GB[/]
      qrr download 4b 8b
      qrr download 0.6b@COMMIT  [dim]# a pinned revision; -m 0.6b@COMMIT scores with it[/]
      qrr download 0.6b --local-dir ./qwen3-reranker-0.6b
      qrr download --list
      qrr download ./qwen3-reranker-0.6b  [dim]# check a copied folder[/]
    """
    from qrr import models

    if list_cached:
        if names or all_sizes or local_dir:
            raise InputError("--list takes no models, --all or --local-dir")
        _render_cached(models.cached_models(), stdout_format(fmt))
        return
    if fmt is not None:
        raise InputError("--format: only with --list (a download prints each folder, one a line)")
    targets = list(models.ALIASES) if all_sizes else (names or [models.default_model()])
    if all_sizes and names:
        raise InputError("give models or --all, not both")
    if local_dir is not None and len(targets) > 1:
        raise InputError("--local-dir takes one model at a time")
    for name in targets:  # every name before any download: a typo in the last is said before gigabytes of the first
        if Path(name).expanduser().is_dir():
            if revision or local_dir:
                raise InputError(f"{name}: a local folder, checked only; --revision and --local-dir are for hub models")
            models.check_folder(Path(name).expanduser())  # cheap: a broken copy is said before any download too
            continue
        try:
            models.hub_repo(models.split_revision(name)[0])
        except ModelNameError as exc:
            if names or all_sizes:
                raise
            raise ModelNameError(f"${models.MODEL_ENV} {exc}") from None  # the default, from the environment
    for name in targets:
        folder = Path(name).expanduser()  # a local folder was checked above
        print(folder.resolve() if folder.is_dir() else models.download(name, revision=revision, local_dir=local_dir),
              flush=True)  # fmt: skip


def _render_cached(cached, fmt: str) -> None:
    from qrr import models

    rows = [
        {"model": m.model, "alias": models.alias_of(m.model), "revision": m.revision, "refs": list(m.refs),
         "size_on_disk": m.size_on_disk, "path": str(m.path), "problem": m.problem}
        for m in cached
    ]  # fmt: skip
    for m in cached:
        if m.problem:
            stderr.print(f"warning: {m.model} {m.revision[:12]} cannot be used: {m.problem}", style="yellow",
                         highlight=False, markup=False)  # fmt: skip
    if not rows:
        from huggingface_hub import constants

        stderr.print(f"no Qwen3 models in the local cache ({constants.HF_HUB_CACHE}): try qrr download",
                     highlight=False)  # fmt: skip
    if fmt != "table":
        write_rows(rows, fmt)
        return
    if not rows:
        return
    table_rows = [
        {"model": r["model"], "revision": r["revision"][:12] + (f" ({', '.join(r['refs'])})" if r["refs"] else ""),
         "size": human_bytes(r["size_on_disk"]), "usable": "no" if r["problem"] else "yes", "path": r["path"]}
        for r in rows
    ]  # fmt: skip
    write_rows(table_rows, "table")
