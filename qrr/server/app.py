"""The ASGI app (Starlette) and its runner (uvicorn): routes, the API key, limits on requests, the queue, client
disconnects, metrics and a graceful stop. The shapes of requests and responses are ``qrr.server.api``'s; the
scoring is ``qrr.server.batcher``'s."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import os
import signal
import socket
import sys
import threading
import time

import orjson

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route
except ImportError as exc:  # the name kept: qrr serve says which package is missing
    missing = (exc.name or "starlette").partition(".")[0]  # the package, not the module of it asked for
    raise ImportError(f"qrr.server.app needs the serve extra: pip install 'qrr[serve]' ({missing} is missing)",
                      name=exc.name) from exc  # fmt: skip

from qrr import __version__
from qrr.device import dtype_name
from qrr.errors import InputError, QrrError, debugging, plural, warn
from qrr.pipelines import no_room
from qrr.server import BUSY, DRAIN, KEEP_ALIVE, MAX_DOCUMENTS, MAX_QUEUE, MAX_REQUEST_BYTES, openapi, printable
from qrr.server.api import ApiError, parse_rerank, parse_score, rerank_response, score_response
from qrr.server.batcher import Batcher, QueueFull, retry_after
from qrr.server.metrics import Metrics

log = logging.getLogger("qrr")
API_PAGES = {"/docs", "/redoc", "/swagger", "/swagger-ui", "/swagger.json", "/openapi.yaml", "/v1/openapi.json"}
GZIP_FROM = 1024  # bytes of a response from which it is gzipped, where the client accepts it
SAID_EVERY = 60.0  # seconds: a warning of requests refused or left is said at most this often

# the core's messages name its parameters; a client cannot set these, so they are said as the server's flags
SETTINGS = {
    "max_length": "the server's --max-length",
    "batch_tokens": "the server's --batch-tokens",
    "dtype": "the server's --dtype",
}


class Limits:
    """What the server takes: ``max_documents`` a request, ``max_request_bytes`` a body, ``max_queue`` requests
    waiting for the model."""

    def __init__(self, max_documents: int = MAX_DOCUMENTS, max_request_bytes: int = MAX_REQUEST_BYTES,
                 max_queue: int = MAX_QUEUE):  # fmt: skip
        self.max_documents, self.max_request_bytes, self.max_queue = max_documents, max_request_bytes, max_queue


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def device_memory(device) -> dict[str, int] | None:
    """Bytes of a CUDA ``device``'s memory that torch's tensors hold now (``allocated``), that its allocator holds
    (``reserved``) and that tensors held at most (``peak``); ``None`` for another device."""
    if device.type != "cuda":
        return None
    import torch

    stats = torch.cuda.memory_stats(device)  # one snapshot of the allocator's counts
    return {"allocated": stats.get("allocated_bytes.all.current", 0), "reserved": stats.get(
        "reserved_bytes.all.current", 0), "peak": stats.get("allocated_bytes.all.peak", 0)}  # fmt: skip


def create_app(reranker, model_name: str, api_key: str | None = None, limits: Limits | None = None,
               on_request=None) -> Starlette:  # fmt: skip
    """The app serving ``reranker`` as ``model_name``. ``api_key``: every endpoint but ``/health`` requires
    ``Authorization: Bearer KEY``. ``on_request(request, status, seconds)`` is called as each request is answered
    (an access log)."""
    limits = limits or Limits()
    info = {"version": __version__, "model": model_name, "device": str(reranker.device),
            "dtype": dtype_name(reranker.dtype)}  # fmt: skip
    if reranker.device.type == "cpu":  # an operator's sight of a CPU quota's cut (qrr.device.fit_threads)
        import torch

        info["threads"] = str(torch.get_num_threads())
    metrics = Metrics(info)
    batcher = Batcher(reranker, max_queue=limits.max_queue)
    started = int(time.time())
    # said in the log without -v too: a server that refuses or loses requests is no quiet matter to its operator
    refused = _Tally(lambda n, since: (f"the queue was full ({{max_queue}} {limits.max_queue}): {plural(n, 'request')} "
                                       f"refused with 503{since}", "max_queue"))  # fmt: skip
    gone = _Tally(lambda n, since: (f"{plural(n, 'client')} left before {'its' if n == 1 else 'their'} answer{since} "
                                    "(a timeout shorter than the wait?)",))  # fmt: skip

    def answered(request: Request, name: str, status: int, seconds: float | None = None) -> None:
        metrics.request(name, status, seconds)
        if on_request is not None:
            on_request(request, status, seconds or 0.0)

    async def scored(request: Request, triples) -> tuple:
        """The scores and stats of ``triples`` from the batcher; the job is dropped if the client leaves first."""
        try:
            job = batcher.submit(triples)
        except QueueFull:
            refused.saw()
            depth = batcher.depth
            wait = f"{depth} request{'s wait' if depth != 1 else ' waits'}"
            message = f"{BUSY}: {wait} for the model; retry shortly"
            # when the call running now ends, the worker takes waiting requests: a place is free again (unless the
            # next call is a part of a request begun, which frees none: a retry may be refused once more)
            raise ApiError(503, message, headers={"Retry-After": retry_after(batcher.seconds_left())}) from None
        waiting = asyncio.wrap_future(job.future)
        left = asyncio.ensure_future(_client_left(request))
        try:
            done, _ = await asyncio.wait({waiting, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
        if waiting not in done:
            batcher.cancel(job)
            waiting.cancel()  # what it comes to (Abandoned, a failure) is no one's: asyncio logged it as unread
            raise _ClientLeft
        try:
            result = waiting.result()
        except QrrError as exc:
            said = exc.naming(SETTINGS)
            if not isinstance(exc, InputError):  # the model's own failure (out of memory, NaN scores): the log says it
                log.error("%s: %s", request.url.path, said)  # as an unexpected one is, not the client alone
            raise ApiError(400 if isinstance(exc, InputError) else 503, said) from None
        return result

    def endpoint(name: str, handler, public: bool = False):
        async def run(request: Request) -> Response:
            start = time.perf_counter()
            try:
                if not public and not _authorized(request, api_key):
                    raise ApiError(401, "missing or wrong API key: send Authorization: Bearer KEY",
                                   headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
                response = await handler(request)
            except ApiError as exc:
                response = json_response(exc.body(), exc.status, exc.headers)
            except (_ClientLeft, ClientDisconnect):  # waiting for its scores, or still sending its body
                gone.saw()
                response = Response(status_code=499)  # nobody reads it; for the metrics
            except Exception as exc:  # noqa: BLE001  (one line in the log, never a traceback to the client)
                # the traceback in the server's log with QRR_DEBUG=1, as the commands print theirs
                log.error("%s: %s: %s", name, type(exc).__name__, exc, exc_info=debugging())
                response = json_response(ApiError(500, "internal error; the server log says more").body(), 500)
            if request.app.state.stopping:  # a kept-alive client's next request opens a connection the balancer routes
                response.headers["Connection"] = "close"
            answered(request, name, response.status_code, time.perf_counter() - start)
            return response

        return run

    def rerank(version: str | None, return_documents: bool):
        async def handler(request: Request) -> Response:
            # /rerank, vLLM's and Jina's path, is TEI's too
            body = await _read_json(request, limits.max_request_bytes)
            req = parse_rerank(body, limits.max_documents, return_documents, tei=version is None,
                               max_length=reranker.max_length)  # fmt: skip
            queries = [req.query] * len(req.texts)
            triples = await asyncio.to_thread(_prepared, reranker, queries, req.texts, req.instruction,
                                              req.max_tokens_per_doc)  # fmt: skip
            scores, stats = await scored(request, triples)
            return json_response(rerank_response(req, scores, stats, model_name, version))

        return handler

    async def score(request: Request) -> Response:
        body = await _read_json(request, limits.max_request_bytes)
        req = parse_score(body, limits.max_documents, reranker.max_length)
        triples = await asyncio.to_thread(_prepared, reranker, req.queries, req.texts, req.instruction, None, "text_1")
        scores, stats = await scored(request, triples)
        return json_response(score_response(scores, stats, model_name, req.raw))

    async def health(request: Request) -> Response:
        if request.app.state.stopping:  # a stop put off (run's delay): a load balancer's probe sends elsewhere
            return json_response({"status": "stopping", "model": model_name}, 503)
        return json_response({"status": "ok", "model": model_name})

    async def models(request: Request) -> Response:
        return json_response({"object": "list", "data": [_model_card(reranker, model_name, limits, started)]})

    described = openapi.document(model_name, limits.max_documents, reranker.max_length, api_key is not None)

    async def described_api(request: Request) -> Response:
        return json_response(described)

    async def prometheus(request: Request) -> Response:
        text = metrics.render(batcher.depth, batcher.busy, batcher.calls, device_memory(reranker.device),
                              batcher.abandoned, batcher.scored)  # fmt: skip
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for tally in (refused, gone):  # what the last minute counted, before the stop's lines
            tally.flush()
        # uvicorn has answered the requests in flight by now; the worker ends once the queue is empty, or is left in
        # a forward pass no client waits for (a long document's, a minute on a CPU)
        app.state.pass_left = not await asyncio.to_thread(batcher.stop)

    routes = [
        Route("/v1/rerank", endpoint("/v1/rerank", rerank("1", False)), methods=["POST"]),
        Route("/v2/rerank", endpoint("/v2/rerank", rerank("2", False)), methods=["POST"]),
        Route("/rerank", endpoint("/rerank", rerank(None, True)), methods=["POST"]),
        Route("/score", endpoint("/score", score), methods=["POST"]),
        Route("/v1/score", endpoint("/v1/score", score), methods=["POST"]),
        Route("/health", endpoint("/health", health, public=True), methods=["GET"]),
        Route("/v1/models", endpoint("/v1/models", models), methods=["GET"]),
        Route("/metrics", endpoint("/metrics", prometheus), methods=["GET"]),
        Route("/openapi.json", endpoint("/openapi.json", described_api), methods=["GET"]),
    ]

    paths = {route.path for route in routes}

    async def not_found(request: Request, exc) -> Response:
        path = printable(request.url.path)  # an escape sequence, echoed, reached a terminal
        # Starlette would answer a 307 with no body, which clients that follow no redirects show as nothing; a base
        # URL ending in "/" makes LlamaIndex's clients ask for //rerank. Not served as the path it means: a proxy's
        # rule for /metrics would not see //metrics
        meant = "/" + "/".join(part for part in path.split("/") if part)
        hint = f"; did you mean {meant}?" if meant != path and meant in paths else ""
        if meant.lower() in API_PAGES:  # where FastAPI's servers (vLLM's, TEI's) describe their API
            hint = "; GET /openapi.json describes the endpoints (qrr serves no page of its own)"
        answered(request, "other", 404)
        return json_response(ApiError(404, f"no endpoint {path}{hint}").body(), 404)

    async def not_allowed(request: Request, exc) -> Response:
        answered(request, request.url.path, 405)
        allow = {"Allow": exc.headers["Allow"]} if getattr(exc, "headers", None) and "Allow" in exc.headers else None
        return json_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}").body(), 405, allow)

    # responses gzipped for a client that asks (the SDKs' httpx does): /rerank sends every document back by default
    middleware = [Middleware(_PlainPaths), Middleware(GZipMiddleware, minimum_size=GZIP_FROM)]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_allowed},
                    middleware=middleware)  # fmt: skip
    app.router.redirect_slashes = False
    app.state.stopping = False  # set by run() while a stop is put off: /health answers 503, the rest as before
    app.state.pass_left = False  # set as it stops where the model is left in a pass no client waits for
    return app


async def _read_json(request: Request, max_bytes: int):
    """The JSON body of ``request``, of at most ``max_bytes``; ``ApiError`` (413, 415, 400) for what is not."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):  # read as it is, a gzipped body was "not valid UTF-8 (byte 2)"
        raise ApiError(415, f"Content-Encoding {encoding} is not supported: send the body uncompressed",
                       headers={"Accept-Encoding": "identity"})  # fmt: skip
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise ApiError(413, f"the request body is {int(length)} bytes; this server takes at most {max_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, f"the request body is over {max_bytes} bytes; this server takes at most {max_bytes}")
    bom = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    del body[:bom]  # a UTF-8 BOM, as Windows tools write one: RFC 8259 lets a parser ignore it, as the CLI does
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:  # orjson says "surrogates not allowed" of any bad byte
            raise ApiError(400, f"malformed JSON: the body is not valid UTF-8 (byte {bom + bad.start + 1})") from None
        raise ApiError(400, f"malformed JSON: {exc.args[0]}") from None


def _prepared(reranker, queries, texts, instruction, max_tokens_per_doc=None, field="query") -> list[tuple]:
    """The pairs for ``reranker`` to score, each document cut to ``max_tokens_per_doc``; a query that leaves no room
    for a document is refused here, before it reaches the model (``field``: what the request calls it)."""
    prompter = reranker.prompter
    asked = instruction
    instruction = instruction if instruction is not None else reranker.instruction
    for query in dict.fromkeys(queries):
        try:
            prompter.check_room(query, instruction)
        except InputError as exc:
            # said to qrr's client as a setting's fault, and where in the pairs: a run's --on-error skip leaves
            # out that query's pairs, and a message names its line, as with a model loaded there
            more = {"setting": "max_length"} | ({"pair": queries.index(query)} if field == "text_1" else {})
            alone = no_room(reranker, "", asked) if asked is not None else None
            if alone is not None:  # the request's instruction alone is too long: every pair's fault, not one's
                field, more = "instruction", {"setting": "max_length"}
            said = (alone or exc).naming(SETTINGS)
            raise ApiError(400, f'"{field}": {said}', field, more=more) from None
    if max_tokens_per_doc is not None:
        texts = [prompter.cut(t, max_tokens_per_doc) for t in texts]
    return [(q, t, instruction) for q, t in zip(queries, texts, strict=True)]


def _authorized(request: Request, api_key: str | None) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer API_KEY`` (any request, where there is no key)."""
    if api_key is None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # constant time: the comparison does not tell how much of the key was right
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def _model_card(reranker, model_name: str, limits: Limits, started: int) -> dict:
    """``/v1/models``' card of the model served: OpenAI's fields, what scores a request and what the server takes
    (``qrr rank --server`` checks it serves as a local run would)."""
    return {"id": model_name, "object": "model", "created": started, "owned_by": "qrr", "qrr_version": __version__,
            "max_model_len": reranker.max_length, "batch_tokens": reranker.batch_tokens,
            # what a request without its own instruction is scored with, and the prompt's recipe
            "instruction": reranker.instruction if reranker.instruction is not None
            else reranker.prompter.family.default_instruction, "recipe": reranker.recipe,
            "dtype": dtype_name(reranker.dtype), "max_documents": limits.max_documents,
            "max_request_bytes": limits.max_request_bytes,
            # past this many characters nothing of a document reaches its tokens: a client sends no more
            "max_document_chars": reranker.prompter.max_chars}  # fmt: skip


class _Tally:
    """A warning said at once, then, for what comes within ``SAID_EVERY`` seconds of it, once with how many came
    when that time is up: a storm of refusals is a line a minute, and its end is said too. ``message(count,
    since)`` gives the template and its params (``since``: "" said at once, else how long the count took).
    ``later(delay, function)`` calls a function later (by default on the running event loop)."""

    def __init__(self, message, clock=time.monotonic, later=None):
        self._message, self._clock = message, clock
        self._later = later or (lambda delay, function: asyncio.get_running_loop().call_later(delay, function))
        self._lock = threading.Lock()
        self._count, self._said_at, self._pending = 0, None, False  # _said_at: when a line was last said

    def saw(self) -> None:
        with self._lock:
            self._count += 1
            now = self._clock()
            if self._said_at is not None and now - self._said_at < SAID_EVERY:
                if not self._pending:
                    self._pending = True
                    self._later(SAID_EVERY - (now - self._said_at), self.flush)
                return
        self._say(at_once=True)

    def flush(self) -> None:
        """Say what was counted since the last line, if anything (when the minute is up, and as the server stops)."""
        self._say(at_once=False)

    def _say(self, at_once: bool) -> None:
        with self._lock:
            self._pending = False
            if not self._count:
                return
            now = self._clock()
            since = "" if at_once else f" in the last {now - self._said_at:.0f} s"
            first = "" if self._said_at is not None else "; said again at most once a minute"
            count, self._count, self._said_at = self._count, 0, now
        template, *params = self._message(count, since)
        warn(log, template + first, *params)


class _ClientLeft(Exception):
    """The client closed the connection before its scores were ready."""


async def _client_left(request: Request) -> None:
    """Returns once the client has disconnected (the body is read by then, so only that message can come)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free port), so that a port in use fails at once, but not yet
    listening (``listen``): until then a connection is refused rather than left waiting on a model that loads."""
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1], as a URL writes it
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    _reuse_address(sock, True)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        low = ""
        if exc.errno == errno.EACCES and 0 < port < 1024:  # said only "Permission denied"
            low = " (a port below 1024 needs root's rights: give another, such as {port} 8000)"
        elif exc.errno == errno.EADDRINUSE:
            low = "; stop what holds it, or give another {port}"
        raise QrrError(f"cannot listen on {host}:{port}: {exc.strerror}{low}", "port") from None
    # Two sockets with SO_REUSEADDR may both bind a port that neither listens on yet: off while the model loads,
    # another server (qrr's, uvicorn's) fails to bind it; it was on for the bind only, past connections' TIME_WAIT.
    _reuse_address(sock, False)
    return sock


def _reuse_address(sock: socket.socket, on: bool) -> None:
    """SO_REUSEADDR, which lets a port whose last connections linger in TIME_WAIT be bound again at once; only on
    POSIX: on Windows it lets a socket take a port another one listens on (and two servers share it), where a port
    is free again at once without it."""
    if os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(on))


def listen(sock: socket.socket) -> None:
    """Start taking connections on the socket ``bind`` gave, once there is something to answer them."""
    try:
        _reuse_address(sock, True)  # listen checks the port again: TIME_WAIT too
        sock.listen(2048)
    except OSError as exc:  # another process bound the port too, and listened first
        where = sock.getsockname()
        raise QrrError(f"cannot listen on {where[0]}:{where[1]}: {exc.strerror}", "port") from None


def run(app: Starlette, sock: socket.socket, on_stop=None, on_force=None, keep_alive: float = KEEP_ALIVE,
        on_ready=None, drain: float = DRAIN, delay: float = 0.0, on_delay=None) -> bool:  # fmt: skip
    """Serve ``app`` on the bound ``sock`` until SIGINT, SIGTERM or SIGHUP; then refuse new connections, answer the
    requests in flight and return. ``on_ready`` is called once the server takes requests and a signal stops it
    gracefully (one that came before is acted on then); ``on_stop(sig)`` once when the stop begins. A second SIGINT
    (Ctrl-C again: ``on_force("again")``, exit 130), or requests still in flight ``drain`` seconds after the stop
    began (a stalled upload kept a stop waiting forever: ``on_force("timeout")``, exit 130 after SIGINT, else 143)
    end the process at once; the requests in flight are dropped. An idle connection is kept ``keep_alive``
    seconds. With a ``delay``, a SIGTERM or SIGHUP puts the stop off by that many seconds (``on_delay(sig)``), in
    which the server serves on, /health answers 503 and every answer closes its connection, so that a load balancer
    (a Kubernetes Service) stops sending requests before connections are refused; a Ctrl-C stops at once, within the
    delay too. Returns whether the model was left in a forward pass that no client waits for (the process must end
    without Python's finalization: a thread in a torch op aborts it)."""
    # a hang-up stops it too, unless it is ignored (nohup): then the server outlives its terminal, as asked
    sighup = getattr(signal, "SIGHUP", None)  # not on Windows
    hangup = sighup is not None and signal.getsignal(sighup) is not signal.SIG_IGN
    stops = (signal.SIGINT, signal.SIGTERM) + ((sighup,) if hangup else ())
    early: list[int] = []  # a signal before uvicorn takes over: acted on once it has
    previous = {sig: signal.signal(sig, lambda sig, _: early.append(sig)) for sig in stops}
    import threading

    import uvicorn

    def force(reason: str, code: int) -> None:
        # uvicorn's own forced exit cancels handlers mid-request (tracebacks, a plain-text 500) and leaves the model's
        # thread running while Python ends, which aborts the process (exit 134)
        if on_force is not None:
            on_force(reason)
        sys.stderr.flush()
        os._exit(code)

    timers: list[threading.Timer] = []
    app.state.stopping = False
    stop_claimed = threading.Lock()  # the delay's end (its timer's thread) and a Ctrl-C may come at once

    class Server(uvicorn.Server):
        put_off: threading.Timer | None = None  # the stop a SIGTERM put off by ``delay``

        def handle_exit(self, sig, frame):
            if self.should_exit:
                if sig == signal.SIGINT:  # Ctrl-C again: a person, who means it
                    force("again", 130)
                return  # a supervisor's SIGTERM sent twice (to a wrapper and to this process) waits as the first
            if self.put_off is not None:  # within the delay: a Ctrl-C stops now, another SIGTERM waits as the first
                if sig == signal.SIGINT:
                    self.put_off.cancel()
                    self.stop(sig)
                return
            if delay and sig != signal.SIGINT:
                app.state.stopping = True
                self.put_off = threading.Timer(delay, self.stop, (sig,))
                self.put_off.daemon = True
                timers.append(self.put_off)
                self.put_off.start()
                if on_delay is not None:
                    on_delay(sig)
                return
            self.stop(sig)

        def stop(self, sig: int) -> None:
            """Refuse new connections, answer those in flight (for up to ``drain`` seconds), then return."""
            if not stop_claimed.acquire(blocking=False):  # the delay's end raced a Ctrl-C: one stop
                return
            app.state.stopping = True
            super().handle_exit(signal.SIGTERM if sig == sighup else sig, None)  # before a signal within
            timers.append(threading.Timer(drain, force, ("timeout", 130 if sig == signal.SIGINT else 143)))
            timers[-1].daemon = True
            timers[-1].start()
            if on_stop is not None:
                on_stop(sig)

        async def startup(self, sockets=None):
            await super().startup(sockets)
            # uvicorn handles SIGINT and SIGTERM by now; a hang-up (a closed terminal, a supervisor's SIGHUP) stops too
            if hangup:
                signal.signal(sighup, lambda sig, frame: self.handle_exit(sig, frame))
            if on_ready is not None:
                on_ready()
            if early:
                self.handle_exit(early[0], None)

    # the access log is the app's (on_request): uvicorn's went to stdout, without the time or the latency; one worker
    # (uvicorn read $WEB_CONCURRENCY, and failed on a platform's "auto")
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, timeout_keep_alive=keep_alive,
                            workers=1)  # fmt: skip
    server = Server(config)
    # uvicorn raises the signal again once it has stopped; with the handlers above that ends nothing, and the
    # command returns (exit 0)
    try:
        server.run(sockets=[sock])
    finally:
        for timer in timers:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return app.state.pass_left


class _PlainPaths:
    """A path holding what is not printable is routed as written out (``/health%0A``): Starlette's route patterns
    end in ``$``, which matches before a final newline, so ``/metrics%0a`` reached /metrics past a proxy's rule
    for ``/metrics``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not scope["path"].isprintable():
            scope = {**scope, "path": printable(scope["path"])}
        await self.app(scope, receive, send)
