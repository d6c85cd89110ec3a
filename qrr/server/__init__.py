"""qrr's HTTP front end (``pip install 'qrr[serve]'``): a resident rerank server that speaks the APIs RAG frameworks
already call (Cohere's, Jina's and vLLM's), with dynamic batching. ``qrr serve`` runs it; ``qrr.server.client``
talks to it. Importing this package loads no web framework: ``qrr.server.app`` does."""

from typing import TYPE_CHECKING

# Seconds an idle connection stays open: past the 60 s after which nginx and AWS ALB drop theirs, so that a load
# balancer never sends on a connection the server has just closed (its sporadic 502s; uvicorn's own is 5 s)
KEEP_ALIVE = 75

# Seconds a stop waits for the requests in flight before it drops them: below the 30 s a supervisor (Kubernetes,
# Docker) waits after SIGTERM before it kills, so that the process ends on its own and says so
DRAIN = 25

# A server's limits unless its command says others (a client that asked an older server for none assumes them)
MAX_DOCUMENTS = 1000
MAX_REQUEST_BYTES = 10_000_000
MAX_QUEUE = 256
BUSY = "the server is busy"  # how a full queue's 503 begins: a client tells it from a proxy's

SERVER_ENV = "QRR_SERVER"  # the server a command sends its work to (``--server``)
API_KEY_ENV = "QRR_API_KEY"  # the key a server requires and a client sends


# Characters of what a client sent that a message or log line shows (a 60 KB path was echoed whole)
SHOWN = 512


def printable(text: str, limit: int = SHOWN) -> str:
    """What a client sent (a path, an address it forwarded), for a log line or a message: what is not printable (a
    newline that forges a line, an escape sequence that clears the terminal) or a space written as ``%XX``, and
    past ``limit`` characters cut, with the count said."""
    text = "".join(c if c.isprintable() and c != " " else _percent(c) for c in text)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text):,} characters)"


def key_fault(key: str) -> str | None:
    """What is wrong with an API key (already stripped) for an HTTP header, as a message's end; ``None`` if nothing."""
    if key.isascii() and key.isprintable():
        return None
    # a header carries Latin-1 bytes: a UTF-8 client's key never matched, and an SDK cannot send one at all
    return "give a key of printable ASCII characters (an HTTP header cannot carry others)"


def _percent(c: str) -> str:
    # a character past U+00FF as its UTF-8 bytes: "%202E" read as a space, then 2E
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))


if TYPE_CHECKING:  # what __getattr__ imports when first named, as a type checker sees it
    from qrr.server import app, client  # noqa: F401


if not TYPE_CHECKING:  # a checker sees the modules imported above, and a misspelt name as an error

    def __getattr__(name: str) -> object:
        # qrr.server.client from `import qrr` alone, as qrr's other modules are reached (app imports the web framework)
        if name in ("app", "client"):
            import importlib

            return importlib.import_module(f"qrr.server.{name}")
        raise AttributeError(f"module 'qrr.server' has no attribute {name!r}")
