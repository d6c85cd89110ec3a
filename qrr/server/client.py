"""A running qrr server as a ``Reranker`` for ranking and scoring (``--server URL`` of ``qrr rank``, ``score``,
``rerank`` and ``eval``): the same results, with the model loaded once in the server. Standard library HTTP only,
so the client needs no serve extra."""

from __future__ import annotations

import http.client
import itertools
import logging
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import orjson

from qrr import __version__
from qrr.engine import Progress
from qrr.errors import InputError, PairError, QrrError, ServerUnavailable
from qrr.pipelines.files import shown
from qrr.prompt import text_head
from qrr.reranker import (
    Pairs,
    ProgressBar,
    RankResult,
    Results,
    Stats,
    _Predicts,
    check_call,
    check_query,
    peer_keywords,
    rank_chunks,
    say_framed,
    triples,
)
from qrr.server import API_KEY_ENV, BUSY, MAX_DOCUMENTS, MAX_REQUEST_BYTES, key_fault

USER_AGENT = f"qrr/{__version__}"

PROBE_TIMEOUT = 30.0  # seconds the first call (/v1/models) waits: a server's card is quick; scoring may be slow
# seconds a client that the server has answered calls again after it went away (a restart, a redeploy)
RECONNECT_FOR = 60.0
# what a server that comes back must serve as before: another model or set-up would score otherwise
SAME_AFTER = {"id": "model", "instruction": "instruction", "max_model_len": "max length", "recipe": "recipe"}

log = logging.getLogger("qrr")


class RemoteReranker(_Predicts):
    """Ranks and scores through the ``/rerank`` and ``/score`` endpoints of the server at ``url`` (``host:port``
    means ``http://host:port``; ``api_key``: default ``$QRR_API_KEY``), with ``Reranker``'s ``predict``,
    ``score`` and ``rank``; ``batch_size`` is taken but the server sets its own batches. Where a server that has
    answered goes away (a restart: the connection refused or dropped), a call waits up to ``RECONNECT_FOR`` seconds
    for it to answer again, serving as before (model, instruction, max length, recipe), then goes on; the ``qrr``
    logger says so."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float | None = 3600.0,
                 instruction: str | None = None):  # fmt: skip
        if api_key is not None and not isinstance(api_key, str):
            raise InputError(f"{{api_key}} must be a string, not {type(api_key).__name__}", "api_key")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or not 0 < timeout < math.inf):  # fmt: skip
            raise InputError(f"{{timeout}} must be a number of seconds above 0 (or None: no limit), not {timeout!r}",
                             "timeout")  # fmt: skip
        self.url = checked_url(url)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        # where a 401 sends the user: the argument, or the variable (the command line's only way)
        self._key_from = "api_key" if api_key is not None else API_KEY_ENV
        key = key.strip() if key is not None else None  # as qrr serve takes it: a secret from a file ends in a newline
        self._key_empty = key == ""  # no key is sent (`docker -e QRR_API_KEY=`); a 401 says it was empty
        self.api_key = key or None
        fault = key_fault(key) if key else None
        if fault is not None:  # the request failed with an encoding error that blamed nothing
            said = ("{api_key}", "api_key") if api_key is not None else (API_KEY_ENV,)
            raise InputError(f"{said[0]}: {fault}", *said[1:])
        self.timeout = timeout
        check_call(instruction=instruction)  # a string of valid Unicode, checked before any request, as Reranker's
        self.instruction = instruction
        self._changed: str | None = None  # why the server, come back after it went away, is not scored with
        self._said_busy = False  # a busy server's waits are said once: a run waited on them in silence
        self._framed_said = False  # said here, to whoever sent the texts, and not only in the server's log

    def __repr__(self) -> str:
        return f"RemoteReranker({self.url!r})"

    @property
    def model_path(self) -> str:
        return f"{self.model} at {self.url}"

    @cached_property
    def _card(self) -> dict:
        # the first call: a server that takes connections and never answers (a stuck proxy) is said in seconds, and a
        # proxy's 503 at once (qrr serve's /v1/models is never busy): waiting on its Retry-After took up to 30 minutes
        return self._card_of(self._call("GET", "/v1/models", retries=0, timeout=self._probe_timeout))

    @property
    def _probe_timeout(self) -> float:
        """What a call for the server's card waits: ``PROBE_TIMEOUT``, or the client's own ``timeout`` if shorter."""
        return PROBE_TIMEOUT if self.timeout is None else min(self.timeout, PROBE_TIMEOUT)  # None: urllib's none

    def _card_of(self, answer) -> dict:
        try:
            card = answer["data"][0]
            card["id"], card["max_model_len"]  # noqa: B018 - what every call reads
        except (KeyError, IndexError, TypeError):
            raise QrrError(f"the server at {self.url} answered /v1/models without a model: is it a qrr "
                           "serve?") from None  # fmt: skip
        return card

    @property
    def model(self) -> str:
        return self._card["id"]

    @property
    def max_length(self) -> int:
        return self._card["max_model_len"]

    def settings(self) -> dict[str, Any]:
        """How this client's calls are scored, as ``Reranker.settings`` says it: the instruction (this client's, else
        the server's own: what a request without one is scored with), max length and recipe, as the server's
        ``/v1/models`` says (``None`` where an older qrr's server does not say), and dtype; its model is not compared
        (``None``: one model may be named two ways)."""
        said = {key: self._card.get(name) for key, name in
                (("instruction", "instruction"), ("max_length", "max_model_len"), ("recipe", "recipe"),
                 ("dtype", "dtype"))}  # fmt: skip
        if self.instruction is not None:
            said["instruction"] = self.instruction
        return {"model": None, **said}

    @property
    def batch_tokens(self) -> int:
        """The server's token budget of a forward pass (how much work one call should bring)."""
        return self._card.get("batch_tokens", 8192)

    @peer_keywords
    def rank(
        self,
        query: str,
        documents: Iterable[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        *,
        ids: Iterable[Any] | None = None,
        instruction: str | None = None,
        progress: Progress | None = None,
    ) -> Results[RankResult]:
        """As ``Reranker.rank``: dicts with ``corpus_id``, ``score``, ``id`` (with ``ids``) and ``text`` (with
        ``return_documents``), best first; sent a chunk of documents a request."""
        check_call(batch_size, show_progress_bar)
        check_query(query, instruction)
        instruction = instruction if instruction is not None else self.instruction
        head = {"query": query, "return_documents": False}
        if instruction is not None:
            head["instruction"] = instruction

        def score(start: int, chunk: list[str]) -> tuple[list[float], Stats]:
            if not self._framed_said:
                self._framed_said = say_framed((query, d, None) for d in chunk)
            began = time.perf_counter()
            scores: list[float] = []
            stats = Stats()
            for part in self._requests(head, [self._cut(d) for d in chunk]):
                answer = self._call("POST", "/rerank", {**head, "documents": part})
                found = [0.0] * len(part)
                for result in answer["results"]:
                    found[result["index"]] = result["relevance_score"]
                scores += found
                stats += _used(answer, len(part))
                if advance is not None:
                    advance(len(part))
            stats.seconds = time.perf_counter() - began
            return scores, stats

        total = len(documents) if hasattr(documents, "__len__") else None
        with ProgressBar(total, show_progress_bar, progress, "ranking", "document") as advance:
            return rank_chunks(score, documents, top_k, return_documents, ids)

    @peer_keywords
    def score(self, pairs: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None, *,
              instruction: str | None = None, progress: Progress | None = None) -> Results[float]:  # fmt: skip
        """As ``Reranker.score`` (the server sets its own batches): p(yes) for each ``(query, document)`` or
        ``(query, document, instruction)``, in input order, with the call's ``stats``; pairs of one instruction in a
        row go in one request (or as many as the server takes)."""
        check_call(batch_size, show_progress_bar, instruction)
        began = time.perf_counter()
        results: Results[float] = Results()
        total = len(pairs) if hasattr(pairs, "__len__") else None
        default = instruction if instruction is not None else self.instruction
        with ProgressBar(total, show_progress_bar, progress) as advance:
            checked = list(triples(pairs, default))  # every pair, before any request
            if not self._framed_said:
                self._framed_said = say_framed(checked)
            sent = 0
            for instruction, run in itertools.groupby(checked, key=lambda t: t[2]):
                head = {} if instruction is None else {"instruction": instruction}
                for part in self._requests(head, [(q, self._cut(d)) for q, d, _ in run]):
                    body = {**head, "text_1": [q for q, _ in part], "text_2": [d for _, d in part]}
                    try:
                        answer = self._call("POST", "/score", body)
                    except PairError as exc:  # its place in the request's pairs: in the call's, as Reranker says
                        if not 0 <= exc.pair < len(part):  # not a place of this request's: said of none
                            raise InputError(exc.text, *exc.params) from None
                        raise exc.shifted(sent) from None
                    sent += len(part)
                    data = sorted(answer["data"], key=lambda item: item["index"])
                    results += [item["score"] for item in data]
                    results.pair_cut += [bool(item.get("truncated")) for item in data]  # an older server: unsaid
                    results.stats += _used(answer, len(part))
                    if advance is not None:
                        advance(len(part))
        results.stats.seconds = time.perf_counter() - began
        return results

    def _cut(self, document: str) -> str:
        """``document`` without the tail that cannot reach its tokens on the server (its ``max_document_chars``): the
        same score, in a request the server takes (a document of 20 MB, which a model loaded here cuts, was over
        its --max-request-bytes)."""
        most = self._card.get("max_document_chars")
        return text_head(document, most) if isinstance(most, int) else document

    def _requests(self, head: dict, items: list):
        """``items`` (documents, or pairs) in parts the server takes: at most its ``max_documents`` a request, and
        bodies within its ``max_request_bytes``. Parts of about equal size: 1,024 documents went as 1,000 and 24, the
        24 a forward pass of their own."""
        most = self._card.get("max_documents", MAX_DOCUMENTS)
        most = -(-len(items) // -(-len(items) // most)) if items else most  # the fewest parts, evened out
        limit = self._card.get("max_request_bytes", MAX_REQUEST_BYTES)
        room = limit - len(orjson.dumps(head)) - 64
        # the server would refuse the request (413) before reading it: said before it is sent, of what is too long
        where = f"over what the server at {self.url} takes in a request (its --max-request-bytes {limit:,}"
        if room < 4:  # not even an empty document fits beside them
            what = "the query and instruction take" if "query" in head else "the instruction takes"
            raise InputError(f"{what} {len(orjson.dumps(head)):,} bytes, {where}): shorten them, or score with a "
                             "model loaded here")  # fmt: skip
        part: list = []
        size = 0
        for item in items:
            length = len(orjson.dumps(item)) + 1
            if length > room:
                what = "a query and document" if isinstance(item, tuple) else "a document"
                raise InputError(f"{what} of {length:,} bytes is {where} leaves {room:,} for it): cut it first, or "
                                 "score it with a model loaded here")  # fmt: skip
            if part and (len(part) == most or size + length > room):
                yield part
                part, size = [], 0
            part.append(item)
            size += length
        if part:
            yield part

    def _call(self, method: str, path: str, body: dict | None = None, retries: int = 30,
              timeout: float | None = None, reconnect: bool = True) -> dict:  # fmt: skip
        if self._changed is not None:  # a server come back otherwise: every call says so, none scores
            raise QrrError(self._changed)
        # urllib's own agent would name Python alone: a server's log tells qrr's clients, and their release, apart
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        timeout = self.timeout if timeout is None else timeout
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = response.read()
                kind = response.headers.get_content_type()
            try:
                return orjson.loads(answer)
            except orjson.JSONDecodeError:  # a login page, a captive portal, another server: it named neither
                raise QrrError(f"the server at {self.url} answered {path} with {kind}, not JSON: is it a qrr "
                               "serve?") from None  # fmt: skip
        except urllib.error.HTTPError as exc:
            wait = _retry_after(exc) if exc.code == 503 and retries > 0 else None
            if wait is not None:  # busy: wait as the server asks, then again
                if not self._said_busy:
                    self._said_busy = True
                    said, _ = _message(exc)  # a proxy's, its backend away, is no full queue
                    why = "is busy (its queue is full)" if said.startswith(BUSY) else f"answered 503 ({said})"
                    log.warning("the server at %s %s: asking again in %g s, as it asks, up to %d times", self.url, why,
                                wait, retries, extra={"note": True})  # fmt: skip
                time.sleep(wait)
                return self._call(method, path, body, retries - 1, timeout, reconnect)
            message, body = _message(exc)
            if exc.code == 400 and body.get("setting") == "max_length":  # a query too long: said as one of ours is
                text = message.removeprefix(f'"{body.get("param")}": ')
                pair = body.get("pair")
                raise (PairError(pair, text, "max_length") if type(pair) is int else InputError(text, "max_length")
                       ) from None  # fmt: skip
            if exc.code == 401:
                said = f"refused the API key in {self._key_from}: give the key the server was started with"
                if not self.api_key:
                    said = (
                        f"wants an API key: {self._key_from} is empty"
                        if self._key_empty
                        else f"wants an API key: set {API_KEY_ENV}"
                    )
                raise InputError(f"the server at {self.url} {said}") from None  # the key is the user's to mend: usage
            error = (
                InputError if 400 <= exc.code < 500 else ServerUnavailable if exc.code in (502, 503, 504) else QrrError
            )
            below = urllib.parse.urlsplit(self.url).path
            # an OpenAI-style base URL (/v1) or an endpoint's (/v1/rerank): qrr's endpoints are below the root
            below = below.rstrip("/")
            if exc.code == 404 and below.endswith(("/v1", "/v2", "/rerank", "/score")):
                message += f" (give the server's URL without {below})"
            raise error(f"the server at {self.url} answered {exc.code}: {message}") from None
        except TimeoutError:  # reached, but no answer in time (one not reached in time is a URLError)
            within = f" within {timeout:g} s" if isinstance(timeout, int | float) else " in time"
            raise ServerUnavailable(f"the server at {self.url} did not answer{within}") from None
        except (urllib.error.URLError, OSError, http.client.IncompleteRead) as exc:
            reason = getattr(exc, "reason", exc)
            # refused, or dropped under the request (in the middle of its answer too)
            gone = isinstance(reason, ConnectionError | http.client.IncompleteRead)
            if gone and reconnect and "_card" in self.__dict__:  # it answered before: a restart, a redeploy
                self._wait_for_return(reason)
                try:
                    return self._call(method, path, body, retries, timeout, reconnect=False)
                except _Gone as again:  # dropped under the same request twice: maybe what stops it (out of memory)
                    if isinstance(reason, ConnectionRefusedError):
                        raise
                    raise ServerUnavailable(f"{again}; it went away under this request before too, which may be "
                                            "what stops it") from None  # fmt: skip
            # a qrr serve that is still loading its model refuses connections too
            refused = isinstance(reason, ConnectionRefusedError)
            hint = " (is it running, or still loading its model?)" if refused else ""
            raise (_Gone if gone else ServerUnavailable)(
                f"cannot reach the server at {self.url}: {reason}{hint}"
            ) from None

    def _wait_for_return(self, reason: BaseException) -> None:
        """Wait up to ``RECONNECT_FOR`` seconds for the server, which answered before, to answer again, and check that
        it serves as before (``SAME_AFTER``); ``QrrError`` where it does not come back or comes back otherwise, which
        every later call says again."""
        log.warning("the server at %s went away (%s): trying again for up to %g s", self.url, reason, RECONNECT_FOR)
        deadline = time.monotonic() + RECONNECT_FOR
        probe = self._probe_timeout
        while True:
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
            try:
                # a proxy's 503 (its backend restarting) is one more try, not a wait on its Retry-After past the end
                waits = max(1.0, min(probe, deadline - time.monotonic()))
                answer = self._call("GET", "/v1/models", retries=0, timeout=waits, reconnect=False)
                card = self._card_of(answer)
                break
            except InputError:  # it answered, and refuses (another API key): said as it is
                raise
            except QrrError as exc:  # not back yet: refused, a name not found, a proxy's 502, a page not JSON
                if time.monotonic() >= deadline:
                    raise ServerUnavailable(f"the server at {self.url} went away ({reason}) and did not come back "
                                            f"within {RECONNECT_FOR:g} s (last: {exc})") from None  # fmt: skip
        before = self._card
        same = SAME_AFTER if self.instruction is None else {k: v for k, v in SAME_AFTER.items() if k != "instruction"}
        changed = [(said, before.get(key), card.get(key)) for key, said in same.items()
                   if card.get(key) != before.get(key)]  # fmt: skip
        if changed:
            said = "; ".join(f"{what} {shown(then)} before, {shown(now)} now" for what, then, now in changed)
            self._changed = (f"the server at {self.url} came back serving otherwise ({said}), so its scores would not "
                             "match those before: start it as it was to go on")  # fmt: skip
            raise QrrError(self._changed)
        self.__dict__["_card"] = card  # its limits (documents, bytes, characters) as it serves now
        log.warning("the server at %s is back: going on", self.url, extra={"note": True})


class _Gone(ServerUnavailable):
    """The server refused the connection, or dropped it under a request."""


def checked_url(url: str, param: str = "url") -> str:
    """A server's base URL: ``host:port`` means ``http://host:port``; anything but an HTTP(S) URL with a host and
    a numeric port (if any) is an ``InputError`` of ``param``."""
    if not isinstance(url, str):
        raise InputError(f"{{{param}}} must be a string such as http://localhost:8000, not {type(url).__name__}",
                         param)  # fmt: skip
    sent, given = url, url.strip()
    url = (given if "://" in given else "http://" + given).rstrip("/")
    try:
        parts = urllib.parse.urlsplit(url)  # raises on a bracketed IPv6 host left open
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        parts = None
    if any(c.isspace() or not c.isprintable() for c in url):  # urlsplit keeps them; the request refused them
        parts = None
    if parts is not None and (parts.username is not None or parts.password is not None):
        # sent as a host name (the lookup failed), and the message echoed the password into logs
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        raise InputError(f"{{{param}}} {shown!r} with a user or password: give the URL without them (qrr sends "
                         f"${API_KEY_ENV} as a bearer token)", param)  # fmt: skip
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.hostname.isdigit():
        raise InputError(f"{{{param}}} {sent!r}: give the server's URL, such as http://localhost:8000", param)
    if not url.isascii():  # http.client sends ASCII only (a UnicodeEncodeError): the host in IDNA, the path escaped
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise InputError(f"{{{param}}} {sent!r}: its host name is no international domain name", param) from None
        host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        url = parts._replace(netloc=netloc, path=urllib.parse.quote(parts.path, safe="/%"),
                             query=urllib.parse.quote(parts.query, safe="=&%+")).geturl()  # fmt: skip
    return url


def _used(answer: dict, pairs: int) -> Stats:
    """What a server's answer for ``pairs`` pairs says it took."""
    usage = answer.get("usage", {})
    return Stats(pairs=pairs, tokens=usage.get("total_tokens", 0), truncated=usage.get("truncated_documents", 0))


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """The seconds a 503's ``Retry-After`` asks to wait (a full queue's); ``None`` without it: a model's own failure
    (out of memory) fails again, and was sent 30 times a second apart."""
    said = exc.headers.get("Retry-After")
    if said is None:
        return None
    try:
        seconds = float(said)
    except ValueError:  # an HTTP date (a proxy's): a second, as the server's own
        return 1.0
    return min(max(seconds, 0.0), 60.0) if math.isfinite(seconds) else 1.0


def _message(exc: urllib.error.HTTPError) -> tuple[str, dict]:
    """What an error answer says, and its JSON body (empty where it is not qrr's)."""
    try:
        body = orjson.loads(exc.read())
        return str(body["message"]), body
    except Exception:  # noqa: BLE001  (not qrr's JSON: say what there is)
        return exc.reason, {}
