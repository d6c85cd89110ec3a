"""qrr serve: a resident rerank server (Cohere, Jina and vLLM rerank APIs) that loads the model once."""

from __future__ import annotations

import math
import os
import signal
import sys
from typing import Annotated

import typer

from qrr.cli.base import (
    BatchTokensOpt,
    CompileOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    MaxLengthOpt,
    ModelOpt,
    OfflineOpt,
    RecipeName,
    RecipeOpt,
    VerboseOpt,
    check_given_texts,
    command,
    core_warnings_to_stderr,
    from_environment,
    given,
    load_reranker,
    model_options,
    stderr,
    to_devnull,
)
from qrr.errors import InputError, QrrError
from qrr.family import DEFAULT_MAX_LENGTH, QWEN3
from qrr.server import API_KEY_ENV, DRAIN, KEEP_ALIVE, MAX_DOCUMENTS, MAX_QUEUE, MAX_REQUEST_BYTES, key_fault, printable

PANEL = "Server"
ServeInstructionOpt = Annotated[
    str | None,
    typer.Option("--instruction", "-i", help="Task instruction of a request that gives none. "
                 f"[dim]\\[default: {QWEN3.default_instruction}][/]"),
]  # fmt: skip


@command(no_args_is_help=False)
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="QRR_HOST",
            show_envvar=True,
            rich_help_panel=PANEL,
            help="Address to listen on; 0.0.0.0 opens it to the network.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port",
            envvar="QRR_PORT",
            show_envvar=True,
            min=0,
            max=65535,
            rich_help_panel=PANEL,
            help="Port; 0 picks a free one. Requests are answered once stderr says [bold]ready: URL[/] (that line "
            "names the port).",
        ),
    ] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            show_envvar=True,
            rich_help_panel=PANEL,
            help="Require Authorization: Bearer KEY on every endpoint but /health; set QRR_API_KEY instead to keep "
            "the key out of ps. Clients (qrr rank --server) send $QRR_API_KEY.",
        ),
    ] = None,  # fmt: skip
    max_documents: Annotated[
        int, typer.Option("--max-documents", min=1, rich_help_panel=PANEL, help="Documents one request may hold.")
    ] = MAX_DOCUMENTS,
    max_request_bytes: Annotated[
        int, typer.Option("--max-request-bytes", min=1, rich_help_panel=PANEL, help="Largest request body.")
    ] = MAX_REQUEST_BYTES,
    max_queue: Annotated[
        int,
        typer.Option(
            "--max-queue",
            min=1,
            rich_help_panel=PANEL,
            help="Requests that may wait to begin (one of many documents, begun, is not counted); more get 503 with "
            "Retry-After.",
        ),
    ] = MAX_QUEUE,  # fmt: skip
    keep_alive: Annotated[
        float,
        typer.Option(
            "--keep-alive",
            metavar="SECONDS",
            min=1,
            rich_help_panel=PANEL,
            help="How long an idle connection is kept open; above a load balancer's idle timeout (60 s for nginx "
            "and AWS ALB), so that it never sends on a connection the server has just closed (a 502).",
        ),
    ] = KEEP_ALIVE,  # fmt: skip
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            "--shutdown-timeout",
            metavar="SECONDS",
            rich_help_panel=PANEL,
            help="How long a stop waits for the requests in flight (a stalled upload among them) before it drops "
            "them and exits, above 0; below a supervisor's grace period (Kubernetes and Docker kill after 30 s).",
        ),
    ] = DRAIN,  # fmt: skip
    shutdown_delay: Annotated[
        float,
        typer.Option(
            "--shutdown-delay",
            metavar="SECONDS",
            min=0,
            rich_help_panel=PANEL,
            help="After SIGTERM or SIGHUP, serve on this long, /health answering 503, before the stop begins: time "
            "for a load balancer or Kubernetes to stop sending requests here, which it does seconds after the "
            "signal (5 is common); the grace period must cover it and --shutdown-timeout. Ctrl-C stops at once.",
        ),
    ] = 0,  # fmt: skip
    served_model_name: Annotated[
        str | None,
        typer.Option(
            "--served-model-name",
            metavar="NAME",
            rich_help_panel=PANEL,
            help="The model's name in responses and /v1/models, as vLLM's flag sets it (default: -m as given, "
            "which for a folder shows its path to every client).",
        ),
    ] = None,  # fmt: skip
    instruction: ServeInstructionOpt = None,
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
    [bold]/score[/] (vLLM), [bold]GET /health[/], [bold]/v1/models[/], [bold]/metrics[/] (Prometheus) and
    [bold]/openapi.json[/] (the OpenAPI description). Any
    request may carry an [bold]"instruction"[/] field. Requests that arrive together are scored together. Ctrl-C,
    SIGTERM or SIGHUP (unless ignored: nohup) stops it gracefully: new requests are refused, those in flight
    answered for up to --shutdown-timeout (a second Ctrl-C stops it at once); behind a load balancer,
    --shutdown-delay serves on a few seconds first. With [bold]-v[/], a line per
    request on stderr (UTC time, client, method, path, status, milliseconds). Needs the serve extra:
    pip install 'qrr\\[serve]'.

    [dim]Examples:[/]
      qrr serve -m 4b --port 8000
      curl -s localhost:8000/v1/rerank \\
        -d '{"query": "capital of China?", "documents": ["Paris", "Beijing"]}'
      qrr rank --server http://localhost:8000 -q "capital of China?" docs.jsonl
    """
    if served_model_name is not None and not served_model_name.strip():
        raise InputError("--served-model-name: give a name that is not empty")
    if given(ctx, "api_key") and not api_key.strip():
        raise InputError("--api-key: give a key that is not empty (or none, for a server without one)")
    if not given(ctx, "api_key") and API_KEY_ENV in os.environ and not os.environ[API_KEY_ENV].strip():
        # an unresolved secret (`docker -e QRR_API_KEY=`) was taken for no key at all: a server open to anyone
        raise InputError("QRR_API_KEY is set but empty: give it a key, or unset it for a server without one")
    if api_key is not None:
        said = "--api-key" if given(ctx, "api_key") else API_KEY_ENV
        if api_key != api_key.strip():  # a secret made from a file ends in a newline: no client could match it
            stderr.print(f"note: the spaces around {said} are left out of the key (a header cannot end in them)",
                         highlight=False, markup=False)  # fmt: skip
            api_key = api_key.strip()
        fault = key_fault(api_key)
        if fault is not None:
            raise InputError(f"{said}: {fault}")
    try:
        from qrr.server import app as server
    except ImportError as exc:
        missing = (exc.name or "starlette").partition(".")[0]  # the package, not the module of it asked for
        raise QrrError(f"qrr serve needs the serve extra: pip install 'qrr[serve]' ({missing} is missing)") from None

    from qrr import models

    if "/" in host or (host.count(":") == 1 and not host.startswith("[")):  # a URL, host:port: names not found
        raise InputError(f"{{host}} {host!r}: give an address or a host name (127.0.0.1, 0.0.0.0), without a "
                         "scheme, path or port (the port is {port})", "host", "port")  # fmt: skip
    if api_key is None and not _loopback(host):
        said = from_environment().get("host", "--host")
        stderr.print(f"warning: {said} {host} opens the server to the network, and without --api-key anyone who "
                     "reaches it may use it", style="yellow", highlight=False, markup=False)  # fmt: skip
    if not math.isfinite(shutdown_timeout) or shutdown_timeout <= 0:
        raise InputError(f"--shutdown-timeout {shutdown_timeout}: give a number of seconds above 0")
    if not math.isfinite(shutdown_delay):
        raise InputError(f"--shutdown-delay {shutdown_delay}: give a number of seconds, 0 or more")
    check_given_texts(None, None, instruction)
    name = models.named(model)
    models.check_local(name)  # a wrong folder fails before the port is taken
    sock = server.bind(host, port)  # before the model loads: a port in use fails at once
    where = sock.getsockname()
    url = f"http://{where[0] if ':' not in where[0] else f'[{where[0]}]'}:{where[1]}"
    sighup = getattr(signal, "SIGHUP", None)  # not on Windows
    hangup = signal.getsignal(sighup) if sighup is not None else signal.SIG_IGN
    try:
        if hangup is not signal.SIG_IGN:  # a hang-up while the model loads stops as SIGTERM does (nohup: ignored)
            signal.signal(sighup, signal.getsignal(signal.SIGTERM))
        stderr.print(f"loading the model for {url} (connections are refused until it has loaded)", highlight=False)
        reranker = load_reranker(instruction=instruction, verbose=verbose, **model_options(ctx))
        reranker.prompter.check_room("", reranker.instruction)  # a default leaving no room fails now, not per request
        name = served_model_name or str(name)  # as given, or the default's alias: never a cache's folder
        limits = server.Limits(max_documents, max_request_bytes, max_queue)
        app = server.create_app(reranker, name, api_key, limits, on_request=_access_line if verbose else None)
    except BaseException as exc:
        if sighup is not None:  # kept up to run(), which sets its own
            signal.signal(sighup, signal.SIG_DFL if hangup is None else hangup)
        if not isinstance(exc, KeyboardInterrupt):
            raise
        stderr.print("stopped before the model was ready", highlight=False)  # Ctrl-C or SIGTERM: a clean stop
        return
    from qrr.device import dtype_name

    sys.stderr = _LogStream(sys.stderr)
    # the core's warnings of what a request sent are the sender's to mend: said of the request's field (set once the
    # model has loaded, whose logging set-up starts them afresh)
    core_warnings_to_stderr({"instruction": 'a request\'s "instruction" field'})
    server.listen(sock)

    def ready() -> None:  # once a signal stops the server gracefully: a supervisor may stop it from this line on
        stderr.print(f"ready: {url} serves {name} on {reranker.device} ({dtype_name(reranker.dtype)}), "
                     f"{reranker.recipe} recipe{'; API key required' if api_key else ''}", highlight=False)  # fmt: skip

    def forced(reason: str) -> None:
        said = "at once" if reason == "again" else f"after --shutdown-timeout {shutdown_timeout:g} s"
        stderr.print(f"stopped {said}: the requests in flight were dropped", highlight=False)

    def put_off(sig: int) -> None:
        stderr.print(f"stopping in {shutdown_delay:g} s (--shutdown-delay): serving on, /health answers 503; Ctrl-C "
                     "stops now", highlight=False)  # fmt: skip

    def stopping(sig: int) -> None:  # a second Ctrl-C forces the stop; a second SIGTERM waits as the first
        then = "Ctrl-C again drops them" if sig == signal.SIGINT else f"for up to {shutdown_timeout:g} s"
        stderr.print(f"stopping: new requests are refused, those in flight answered ({then})", highlight=False)

    pass_left = server.run(
        app,
        sock,
        on_stop=stopping,
        on_force=forced,
        keep_alive=keep_alive,
        on_ready=ready,
        drain=shutdown_timeout,
        delay=shutdown_delay,
        on_delay=put_off,
    )  # fmt: skip
    if not pass_left:
        stderr.print("stopped", highlight=False)
        return
    stderr.print("stopped (not waiting for a forward pass whose client left)", highlight=False)
    sys.stderr.flush()
    os._exit(0)  # the model's thread, still in its pass, aborted the process as Python ended (exit 134)


class _LogStream:
    """stderr while serving: where its reader goes away (``qrr serve 2>&1 | head``, a log pipe restarted), its
    lines go to the null device and the server serves on; the failed write of an access line had turned the request
    it logged into a 500."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (BrokenPipeError, ConnectionResetError):
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (BrokenPipeError, ConnectionResetError):
            self._gone()

    def _gone(self) -> None:
        if not to_devnull(self._stream):
            self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _access_line(request, status: int, seconds: float) -> None:
    """One line on stderr for each request answered (``-v``): when (UTC), who, what, the status and how long it
    took. The path as it was sent, what is not printable escaped: decoded, a client's ``%0a`` forged a line."""
    import time

    # the client as X-Forwarded-For names it (uvicorn trusts it from 127.0.0.1): a forged line, an escape sequence
    client = printable(f"{request.client.host}:{request.client.port}" if request.client else "-")
    sent = request.scope.get("raw_path") or request.url.path.encode()
    path = printable(sent.decode("latin-1"))
    stderr.print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {client} {request.method} {path} {status} "
                 f"{seconds * 1000:.1f} ms", highlight=False, markup=False, soft_wrap=True)  # fmt: skip


def _loopback(host: str) -> bool:
    """Whether ``host`` is reached from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address
