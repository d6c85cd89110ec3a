"""What ``qrr score --ray`` and ``qrr rerank --ray`` share: their options, Ray joined or started with the model
checked first, and Ray's own output kept to what a qrr user can act on."""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated

import typer

from qrr.cli.base import given, stderr
from qrr.errors import InputError, QrrError

RAY_PANEL = "Ray (a cluster, or a local instance)"
RayOpt = Annotated[
    bool, typer.Option("--ray", rich_help_panel=RAY_PANEL, help="Score on Ray Data actors (pip install 'qrr\\[ray]').")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", metavar="ADDRESS", rich_help_panel=RAY_PANEL,
                 help="Join this Ray cluster (ray://host:10001, auto; default $RAY_ADDRESS); none starts a local "
                 "instance of the run's own, even beside one that ray start left."),
]  # fmt: skip
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, rich_help_panel=RAY_PANEL,
                 help="Actors, one model each. [dim]\\[default: one per GPU, or 1 on CPUs][/]"),
]  # fmt: skip
GpusOpt = Annotated[
    float | None,
    typer.Option("--gpus-per-worker", min=0, rich_help_panel=RAY_PANEL,
                 help="GPUs each actor takes. [dim]\\[default: 1 where the cluster has GPUs, else 0: CPU actors][/]"),
]  # fmt: skip


def start_ray(address: str | None, workers: int | None, gpus_per_worker: float | None, model, offline, before=None):
    """``qrr.raydata`` with Ray joined or started, where the actors go, and the model they load: checked here on a
    machine of its own, so that a wrong ``--model`` is one line, not an actor failing over and over. An error line
    where Ray is not installed. ``before(raydata)`` checks what it can before Ray starts (seconds, and log lines)."""
    try:
        from qrr import raydata
    except ImportError as exc:
        raise QrrError(f"--ray needs Ray Data: pip install 'qrr[ray]' ({exc.name} is missing)") from None
    from qrr import models

    model = models.named(model)
    if raydata.cluster_address(address) is None:  # a folder on this machine: checked before the output is made
        models.check_local(model)
    if before is not None:
        before(raydata)
    local = raydata.start(address, workers or 1)
    if local and not models.registered(model):
        models.resolve(model, offline=offline)
    # qrr says what went wrong in one line, and its own progress: Ray Data's report of an error (tracebacks) and
    # its status lines (the plan, "execution finished", which also broke a live bar) stay in its session log
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and _ray_warning not in handler.filters:
            handler.addFilter(_ray_warning)
    return raydata, raydata.Placement(workers, gpus_per_worker, local), model


def say_actors(loaded: list[str]) -> None:
    """``-v`` of a --ray run: what reranker its actors ran (``ErrorLog.loaded_report``), as a run here says its own."""
    for description in loaded:
        stderr.print(f"actors: {description}", markup=False, highlight=False)


@contextlib.contextmanager
def without_ray_advice():
    """Ray's advice to a pipeline's author where fewer blocks came than actors (an input short, or all done
    already), which a qrr user can do nothing about, left out while the body runs."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The minimum number of concurrent actors")
        yield


def _ray_warning(record: logging.LogRecord) -> bool:
    """Ray Data's warnings, but the one that qrr's own progress makes it say."""
    return logging.WARNING <= record.levelno < logging.ERROR and "Progress bars disabled" not in record.getMessage()


def ray_only(ctx: typer.Context, ray: bool, *names: str) -> None:
    """Refuse the Ray options given without ``--ray``."""
    given_here = given(ctx, *names)
    if given_here and not ray:
        # --output FILE reads as a file to write: without --ray the results go to stdout, or to --resume OUT
        out = " (without it, results go to stdout: > FILE, or --resume FILE to go on after a stop)" if (
            "--output" in given_here) else ""  # fmt: skip
        raise InputError(f"{', '.join(given_here)}: only with --ray{out}")
