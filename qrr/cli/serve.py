"""qrr serve: a resident rerank server (Cohere, Jina and vLLM rerank APIs) that loads the model once."""

from __future__ import annotations

from typing import Annotated

import typer

from qrr.cli.base import (
    BatchTokensOpt,
    CompileOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    InstructionOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    RecipeName,
    RecipeOpt,
    VerboseOpt,
    command,
    load_reranker,
    model_options,
    stderr,
)
from qrr.errors import InputError, QrrError
from qrr.family import DEFAULT_MAX_LENGTH

PANEL = "Server"


@command(no_args_is_help=False)
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option("--host", rich_help_panel=PANEL, help="Address to listen on; 0.0.0.0 opens it to the network."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, rich_help_panel=PANEL, help="Port; 0 picks a free one.")
    ] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="QRR_API_KEY",
            show_envvar=True,
            rich_help_panel=PANEL,
            help="Require Authorization: Bearer KEY on every endpoint but /health.",
        ),
    ] = None,  # fmt: skip
    max_documents: Annotated[
        int, typer.Option("--max-documents", min=1, rich_help_panel=PANEL, help="Documents one request may hold.")
    ] = 1000,
    max_request_bytes: Annotated[
        int, typer.Option("--max-request-bytes", min=1, rich_help_panel=PANEL, help="Largest request body.")
    ] = 10_000_000,
    max_queue: Annotated[
        int,
        typer.Option(
            "--max-queue",
            min=1,
            rich_help_panel=PANEL,
            help="Requests that may wait for the model; more get 503 with Retry-After.",
        ),
    ] = 256,  # fmt: skip
    instruction: InstructionOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    max_length: MaxLengthOpt = DEFAULT_MAX_LENGTH,
    batch_tokens: BatchTokensOpt = None,
    recipe: RecipeOpt = RecipeName.transformers,
    compile: CompileOpt = False,
    offline: OfflineOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Serve the model over HTTP: the Cohere, Jina and vLLM rerank APIs, loaded once.

    Endpoints: [bold]POST /v1/rerank[/] and [bold]/v2/rerank[/] (Cohere), [bold]/rerank[/] (Jina, vLLM),
    [bold]/score[/] (vLLM), [bold]GET /health[/], [bold]/v1/models[/] and [bold]/metrics[/] (Prometheus). Any
    request may carry an [bold]instruction[/]. Requests that arrive together are scored together. Ctrl-C or
    SIGTERM stops it gracefully: new requests are refused, those in flight answered.

    [dim]Examples:[/]
      qrr serve -m 4b --port 8000
      curl -s localhost:8000/v1/rerank \\
        -d '{"query": "capital of China?", "documents": ["Paris", "Beijing"]}'
      qrr rank --server http://localhost:8000 -q "capital of China?" docs.jsonl
    """
    if api_key is not None and not api_key.strip():
        raise InputError("--api-key: give a key that is not empty (or none, for a server without one)")
    try:
        from qrr.server import app as server
    except ImportError as exc:
        raise QrrError(f"qrr serve needs the server extra: pip install 'qrr[serve]' ({exc.name} is missing)") from None

    from qrr import models

    if api_key is None and not _loopback(host):
        stderr.print(f"warning: --host {host} opens the server to the network, and without --api-key anyone who "
                     "reaches it may use it", style="yellow", highlight=False, markup=False)  # fmt: skip
    name = models.named(model)
    models.check_local(name)  # a wrong folder fails before the port is taken
    sock = server.bind(host, port)  # before the model loads: a port in use fails at once
    where = sock.getsockname()
    url = f"http://{where[0] if ':' not in where[0] else f'[{where[0]}]'}:{where[1]}"
    try:
        stderr.print(f"loading the model for {url} (connections are refused until it is ready)", highlight=False)
        reranker = load_reranker(instruction=instruction, verbose=verbose, **model_options(ctx))
        reranker.prompter.check_room("", reranker.instruction)  # a default leaving no room fails now, not per request
        name = str(model or reranker.model_path)
        app = server.create_app(reranker, name, api_key, server.Limits(max_documents, max_request_bytes, max_queue))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM before anything was served: a clean stop, as after
        stderr.print("stopped before the model was ready", highlight=False)
        return
    from qrr.device import dtype_name

    server.listen(sock)
    stderr.print(f"ready: {url} serves {name} on {reranker.device} ({dtype_name(reranker.dtype)}), "
                 f"{reranker.recipe} recipe{'; API key required' if api_key else ''}", highlight=False)  # fmt: skip
    server.run(app, sock, on_stop=lambda: stderr.print("stopping: new requests are refused, those in flight "
                                                       "answered", highlight=False), verbose=verbose)  # fmt: skip
    stderr.print("stopped", highlight=False)


def _loopback(host: str) -> bool:
    """Whether ``host`` is reached from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address
