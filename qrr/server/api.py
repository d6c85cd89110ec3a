"""The request and response shapes of the rerank APIs that clients already speak, with no web framework in them:
Cohere's ``/v1/rerank`` and ``/v2/rerank``, Jina's, vLLM's and text-embeddings-inference's (TEI's) ``/rerank``,
vLLM's ``/score``. Each parser checks a decoded JSON body and returns what to score, or raises ``ApiError`` (a
status, a message naming the field).

qrr's addition to every request: an optional ``instruction``, the task instruction. Scores are p(yes); where a
request asks for raw scores (TEI's ``raw_scores: true``, vLLM's ``use_activation: false``), they are its log-odds,
log(p / (1 - p)): the logit of yes less the logit of no, what a converted classifier (vLLM's, TEI's) outputs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from qrr.engine import log_odds
from qrr.formats.records import json_type
from qrr.reranker import best_first
from qrr.server import printable


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx; 400 for a request that is not valid, as Cohere and vLLM
    answer), a ``message`` that says what is wrong, the ``param``; ``more``: fields the body carries for qrr's own
    client (a query too long for the server's max length: ``setting``, and of a ``/score`` request the ``pair``)."""

    def __init__(self, status: int, message: str, param: str | None = None, headers: dict | None = None,
                 more: dict | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.headers, self.more = status, message, param, headers, more

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        # Cohere's and vLLM's clients read "message", Jina's (LangChain's JinaRerank) "detail"
        body = {"message": self.message, "detail": self.message, "type": kind, "param": self.param, "code": self.status}
        return body | (self.more or {})


@dataclass
class RerankRequest:
    """One query against its documents: the texts to score and what the response repeats."""

    query: str
    texts: list[str]
    documents: list[Any]  # as given: strings or objects
    top_n: int | None
    return_documents: bool
    instruction: str | None
    max_tokens_per_doc: int | None
    raw: bool = False  # log-odds, not p(yes)
    tei: bool = False  # TEI's shape: "texts" in, a bare array of {index, score[, text]} out


@dataclass
class ScoreRequest:
    """vLLM's ``/score``: pairs of ``text_1`` (the query) and ``text_2`` (the document)."""

    queries: list[str]
    texts: list[str]
    instruction: str | None
    raw: bool = False


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, not {json_type(body)}")
    return body


def _string(body: dict, key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f'"{key}" is required', key)
        return None
    if not isinstance(value, str):
        raise ApiError(400, f'"{key}" must be a string, not {json_type(value)}', key)
    return value


def _count(body: dict, key: str, zero_is_all: bool = False) -> int | None:
    """An optional positive whole number (null means absent; with ``zero_is_all``, 0 too: vLLM's default top_n)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 2.0, from a client's arithmetic: pydantic (vLLM) takes it too
    if isinstance(value, bool) or not isinstance(value, int):
        said = orjson.dumps(value).decode() if isinstance(value, float) else json_type(value)  # 2.5: "not a number"
        raise ApiError(400, f'"{key}" must be a whole number, not {said}', key)
    if zero_is_all and value == 0:
        return None
    if value < 1:
        least = "0 (every document) or more" if zero_is_all else "at least 1"
        raise ApiError(400, f'"{key}" must be {least}, not {value}', key)
    return value


def _raw(body: dict) -> bool:
    """Whether the request asks for raw scores: TEI's and infinity's ``raw_scores``, vLLM's ``use_activation`` (and
    its older ``activation``) set false."""
    off = [not _flag(body, key, True) for key in ("use_activation", "activation")]  # each checked: {} is no flag
    return _flag(body, "raw_scores", False) or any(off)


def _no_prompt_cut(body: dict, max_length: int | None) -> None:
    """vLLM's ``truncate_prompt_tokens`` keeps a prompt's last N tokens, which would cut the reranker's own frame:
    refused, rather than ignored, unless it asks for the model's length (-1) or ``max_length`` or more, which
    every prompt fits here (its document cut)."""
    value = body.get("truncate_prompt_tokens")
    if value is None or value == -1:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f'"truncate_prompt_tokens" must be a whole number, not {json_type(value)}',
                       "truncate_prompt_tokens")  # fmt: skip
    if isinstance(value, float) and not value.is_integer():  # 100000.5 was taken as asking for the whole length
        raise ApiError(400, f'"truncate_prompt_tokens" must be a whole number, not {value!r}', "truncate_prompt_tokens")
    if max_length is None or value < max_length:
        within = f" ({max_length} tokens)" if max_length is not None else ""
        raise ApiError(400, f'"truncate_prompt_tokens" {orjson.dumps(value).decode()} is not taken: each document is '
                       f"cut to fit this server's max length{within}; \"max_tokens_per_doc\" cuts each one shorter",
                       "truncate_prompt_tokens")  # fmt: skip


def _flag(body: dict, key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f'"{key}" must be true or false, not {json_type(value)}', key)
    return value


def _check_count(n: int, max_documents: int, key: str = "documents") -> None:
    if n == 0:
        raise ApiError(400, f'"{key}" must hold at least one document', key)
    if n > max_documents:
        raise ApiError(400, f'"{key}" holds {n} documents; this server takes at most {max_documents} a request', key)


def _document_text(item: Any, n: int, rank_fields: list[str] | None) -> str:
    """A document's text: a string, or an object's ``text`` (or, with Cohere's ``rank_fields``, those fields as
    ``field: value`` lines)."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        raise ApiError(400, f'"documents"[{n}] must be a string or an object with "text", not {json_type(item)}',
                       "documents")  # fmt: skip
    if rank_fields:
        for name in rank_fields:
            if item.get(name) is None:
                raise ApiError(400, f'"documents"[{n}] has no field "{printable(name, 100)}", which "rank_fields" '
                               "names", "rank_fields")  # fmt: skip
            if not isinstance(item[name], str):
                raise ApiError(400, f'"documents"[{n}]\'s field "{printable(name, 100)}" of "rank_fields" must be a '
                               f"string, not {json_type(item[name])}", "rank_fields")  # fmt: skip
        return "\n".join(f"{field}: {item[field]}" for field in rank_fields)
    if not isinstance(item.get("text"), str):
        raise ApiError(400, f'"documents"[{n}] must have a string "text"', "documents")
    return item["text"]


def parse_rerank(body: Any, max_documents: int, return_documents: bool = False, tei: bool = False,
                 max_length: int | None = None) -> RerankRequest:  # fmt: skip
    """A Cohere (v1, v2), Jina or vLLM rerank request, or with ``tei`` (the endpoint takes TEI's) a TEI one, told by
    its ``texts``. ``return_documents`` is the endpoint's default; ``max_length`` the server's (a prompt's cap)."""
    body = _object(body)
    if body.get("texts") is not None:
        if body.get("documents") is not None:
            raise ApiError(400, '"texts" and "documents" both given: "texts" is text-embeddings-inference\'s field, '
                           '"documents" the others\'; give one', "texts")  # fmt: skip
        if not tei:
            raise ApiError(400, '"documents" is required; "texts" is text-embeddings-inference\'s field, which /rerank '
                           "takes", "documents")  # fmt: skip
        return _parse_tei(body, max_documents)
    query = _string(body, "query")
    _string(body, "model", required=False)  # ignored (the server scores with its own), but a name, as the APIs say
    _no_prompt_cut(body, max_length)
    documents = body.get("documents")
    if not isinstance(documents, list):
        said = "is required" if documents is None else f"must be an array, not {json_type(documents)}"
        raise ApiError(400, f'"documents" {said}: an array of strings or of objects with "text"', "documents")
    _check_count(len(documents), max_documents)
    rank_fields = body.get("rank_fields")
    if rank_fields is not None and (
        not isinstance(rank_fields, list) or not all(isinstance(f, str) for f in rank_fields)
    ):
        raise ApiError(400, '"rank_fields" must be an array of strings', "rank_fields")
    seen: set[str] = set()
    for field in rank_fields or []:
        if field in seen:  # each repeat copied every document's field again: 1 MB of body built 2 GB of text
            raise ApiError(400, f'"rank_fields" names "{printable(field, 100)}" twice', "rank_fields")
        seen.add(field)
    if rank_fields == ["text"]:
        rank_fields = None  # Cohere's default said: the text as it is, not "text: ..."
    texts = [_document_text(item, n, rank_fields) for n, item in enumerate(documents)]
    return RerankRequest(
        query=query,
        texts=texts,
        documents=documents,
        top_n=_top_n(body),
        return_documents=_flag(body, "return_documents", return_documents),
        instruction=_string(body, "instruction", required=False),
        max_tokens_per_doc=_count(body, "max_tokens_per_doc"),
        raw=_raw(body),
    )


def _top_n(body: dict) -> int | None:
    """``top_n``, or ``top_k`` (Voyage's and mixedbread's name for it, and CrossEncoder's: it was ignored, and every
    document answered); both given, they must agree."""
    top_n = _count(body, "top_n", zero_is_all=True)
    if body.get("top_k") is None:
        return top_n
    top_k = _count(body, "top_k")
    if body.get("top_n") is not None and top_n != top_k:
        raise ApiError(400, f'"top_k" {top_k} and "top_n" {body["top_n"]} differ: "top_k" is another API\'s name for '
                       '"top_n"; give one', "top_k")  # fmt: skip
    return top_k


def _parse_tei(body: dict, max_documents: int) -> RerankRequest:
    """text-embeddings-inference's ``/rerank``: ``query``, ``texts``, ``raw_scores``, ``return_text``. Its
    ``truncate`` is taken as always true: a document is cut to fit the server's --max-length, at its end (a
    ``truncation_direction`` of ``Left`` is refused)."""
    query = _string(body, "query")
    _string(body, "model", required=False)
    _flag(body, "truncate", True)  # taken as true whatever it says, but a flag
    direction = body.get("truncation_direction")
    if direction is not None and direction != "Right":
        raise ApiError(400, f'"truncation_direction" {orjson.dumps(direction).decode()} is not taken: documents are '
                       'cut at their end ("Right")', "truncation_direction")  # fmt: skip
    texts = body.get("texts")
    if not isinstance(texts, list):
        raise ApiError(400, f'"texts" must be an array of strings, not {json_type(texts)}', "texts")
    wrong = next((n for n, t in enumerate(texts) if not isinstance(t, str)), None)
    if wrong is not None:
        raise ApiError(400, f'"texts"[{wrong}] must be a string, not {json_type(texts[wrong])}', "texts")
    _check_count(len(texts), max_documents, "texts")
    return RerankRequest(query=query, texts=texts, documents=texts, top_n=None,
                         return_documents=_flag(body, "return_text", False),
                         instruction=_string(body, "instruction", required=False), max_tokens_per_doc=None,
                         raw=_raw(body), tei=True)  # fmt: skip


def parse_score(body: Any, max_documents: int, max_length: int | None = None) -> ScoreRequest:
    """vLLM's ``/score``: ``text_1`` one query (or a list, paired with ``text_2`` item by item) and ``text_2`` one
    text or a list."""
    body = _object(body)
    _string(body, "model", required=False)
    _no_prompt_cut(body, max_length)
    sides = []
    for key in ("text_1", "text_2"):
        value = body.get(key)
        if isinstance(value, str):
            value = [value]
        if value is None:
            raise ApiError(400, f'"{key}" is required: a string or an array of strings', key)
        if not isinstance(value, list):
            raise ApiError(400, f'"{key}" must be a string or an array of strings, not {json_type(value)}', key)
        wrong = next((n for n, v in enumerate(value) if not isinstance(v, str)), None)
        if wrong is not None:
            raise ApiError(400, f'"{key}"[{wrong}] must be a string, not {json_type(value[wrong])}', key)
        sides.append(value)
    queries, texts = sides
    _check_count(len(texts), max_documents, "text_2")
    if len(queries) == 1:
        queries = queries * len(texts)
    elif len(queries) != len(texts):
        raise ApiError(400, f'"text_1" holds {len(queries)} texts and "text_2" {len(texts)}: give one query, or as '
                       "many as texts", "text_1")  # fmt: skip
    return ScoreRequest(queries, texts, _string(body, "instruction", required=False), _raw(body))


def usage(stats) -> dict:
    """The token count the APIs report, and qrr's count of documents cut to fit."""
    return {"prompt_tokens": stats.tokens, "total_tokens": stats.tokens, "truncated_documents": stats.truncated}


def rerank_response(request: RerankRequest, scores: list[float], stats, model: str, version: str | None
                    ) -> dict | list:  # fmt: skip
    """The results best first (the best ``top_n``), in the union of the rerank APIs' shapes: Cohere's ``id``,
    ``results`` and ``meta``, Jina's and vLLM's ``model`` and ``usage``; or TEI's array."""
    order = best_first(scores)[: request.top_n]
    if request.raw:
        scores = [log_odds(s) for s in scores]
    if request.tei:
        return [{"index": i, "score": scores[i], **({"text": request.texts[i]} if request.return_documents else {})}
                for i in order]  # fmt: skip
    results = []
    for i in order:
        result = {"index": i, "relevance_score": scores[i]}
        if request.return_documents:
            item = request.documents[i]
            result["document"] = item if isinstance(item, dict) else {"text": item}
        results.append(result)
    body = {"id": str(uuid.uuid4()), "model": model, "results": results, "usage": usage(stats)}
    body["meta"] = {"api_version": {"version": version or "1"}, "billed_units": {"search_units": 1}}
    return body


def score_response(scores: list[float], stats, model: str, raw: bool = False) -> dict:
    """vLLM's ``/score`` response: one ``score`` object per pair, in order (``raw``: log-odds), each with whether its
    document was cut to fit (``truncated``, qrr's own field: ``scores``' ``pair_cut``)."""
    cut = getattr(scores, "pair_cut", None) or [False] * len(scores)
    if raw:
        scores = [log_odds(s) for s in scores]
    return {
        "id": f"score-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": model,
        "data": [
            {"index": i, "object": "score", "score": s, "truncated": c}
            for i, (s, c) in enumerate(zip(scores, cut, strict=True))
        ],
        "usage": usage(stats),
    }
