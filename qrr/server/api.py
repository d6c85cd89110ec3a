"""The request and response shapes of the rerank APIs that clients already speak, with no web framework in them:
Cohere's ``/v1/rerank`` and ``/v2/rerank``, Jina's and vLLM's ``/rerank``, vLLM's ``/score``. Each parser checks a
decoded JSON body and returns what to score, or raises ``ApiError`` (a status, a message naming the field).

qrr's addition to every request: an optional ``instruction``, the task instruction.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from qrr.formats.records import json_type
from qrr.reranker import best_first


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx; 400 for a request that is not valid, as Cohere and vLLM
    answer), a ``message`` that says what is wrong, the ``param``."""

    def __init__(self, status: int, message: str, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        # Cohere's and vLLM's clients read "message", Jina's (LangChain's JinaRerank) "detail"
        return {"message": self.message, "detail": self.message, "type": kind, "param": self.param, "code": self.status}


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


@dataclass
class ScoreRequest:
    """vLLM's ``/score``: pairs of ``text_1`` (the query) and ``text_2`` (the document)."""

    queries: list[str]
    texts: list[str]
    instruction: str | None


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


def _count(body: dict, key: str) -> int | None:
    """An optional positive whole number (null means absent)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        said = orjson.dumps(value).decode() if isinstance(value, float) else json_type(value)  # 2.0: "not a number"
        raise ApiError(400, f'"{key}" must be a whole number, not {said}', key)
    if value < 1:
        raise ApiError(400, f'"{key}" must be at least 1, not {value}', key)
    return value


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
                raise ApiError(400, f'"documents"[{n}] has no field "{name}", which "rank_fields" names', "rank_fields")
            if not isinstance(item[name], str):
                raise ApiError(400, f'"documents"[{n}]\'s field "{name}" of "rank_fields" must be a string, not '
                               f"{json_type(item[name])}", "rank_fields")  # fmt: skip
        return "\n".join(f"{field}: {item[field]}" for field in rank_fields)
    if not isinstance(item.get("text"), str):
        raise ApiError(400, f'"documents"[{n}] must have a string "text"', "documents")
    return item["text"]


def parse_rerank(body: Any, max_documents: int, return_documents: bool = False) -> RerankRequest:
    """A Cohere (v1, v2), Jina or vLLM rerank request. ``return_documents`` is the endpoint's default."""
    body = _object(body)
    query = _string(body, "query")
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
    texts = [_document_text(item, n, rank_fields) for n, item in enumerate(documents)]
    return RerankRequest(
        query=query,
        texts=texts,
        documents=documents,
        top_n=_count(body, "top_n"),
        return_documents=_flag(body, "return_documents", return_documents),
        instruction=_string(body, "instruction", required=False),
        max_tokens_per_doc=_count(body, "max_tokens_per_doc"),
    )


def parse_score(body: Any, max_documents: int) -> ScoreRequest:
    """vLLM's ``/score``: ``text_1`` one query (or a list, paired with ``text_2`` item by item) and ``text_2`` one
    text or a list."""
    body = _object(body)
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
    return ScoreRequest(queries, texts, _string(body, "instruction", required=False))


def usage(stats) -> dict:
    """The token count the APIs report, and qrr's count of documents cut to fit."""
    return {"prompt_tokens": stats.tokens, "total_tokens": stats.tokens, "truncated_documents": stats.truncated}


def rerank_response(request: RerankRequest, scores: list[float], stats, model: str, version: str | None) -> dict:
    """The results best first (the best ``top_n``), in the union of the rerank APIs' shapes: Cohere's ``id``,
    ``results`` and ``meta``, Jina's and vLLM's ``model`` and ``usage``."""
    order = best_first(scores)[: request.top_n]
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


def score_response(scores: list[float], stats, model: str) -> dict:
    """vLLM's ``/score`` response: one ``score`` object per pair, in order."""
    return {
        "id": f"score-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": model,
        "data": [{"index": i, "object": "score", "score": s} for i, s in enumerate(scores)],
        "usage": usage(stats),
    }
