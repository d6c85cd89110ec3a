"""The server's OpenAPI 3.1 description (``GET /openapi.json``): each endpoint's request and response shapes as
``qrr.server.api`` reads and writes them, for a client written in another language, a tool that imports OpenAPI
(Postman, an SDK generator) or a reader. A test checks real answers against it."""

from __future__ import annotations

from qrr import __version__

_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_TEXTS = {"type": "array", "items": _STR}
_INSTRUCTION = {"type": "string", "description": "qrr's addition: the task instruction for this request's pairs "
                "(default: the server's --instruction, else the model card's)"}  # fmt: skip
_RAW = {
    "raw_scores": {"type": "boolean", "description": "true: log-odds log(p / (1 - p)) in place of p(yes) (TEI's)"},
    "use_activation": {"type": "boolean", "description": "false: log-odds in place of p(yes) (vLLM's)"},
}
_CUT = {"type": "integer", "description": "vLLM's: only -1, or at least the server's max length, is taken (a prompt's "
        "last tokens would cut its frame); each document is cut to fit instead"}  # fmt: skip


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "what is wrong, said in the body")
_UNAUTHORIZED = _json(_ref("Error"), "a server started with --api-key: the key is missing or wrong")
_BUSY = {**_ERROR, "headers": {"Retry-After": {"schema": _INT, "description": "seconds to wait"}},
         "description": "the queue is full (--max-queue), or the model failed"}  # fmt: skip


def _scored(request: dict, response: dict, summary: str) -> dict:
    """A POST endpoint that scores: its request body, its answer, and the errors every such endpoint gives."""
    return {"post": {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {"200": _json(response, "the scores"), "400": _ERROR, "401": _UNAUTHORIZED,
                      "413": _json(_ref("Error"), "the body is over --max-request-bytes"),
                      "415": _json(_ref("Error"), "a compressed body (send it as it is)"), "503": _BUSY},
    }}  # fmt: skip


def document(model: str, max_documents: int, max_length: int, secured: bool) -> dict:
    """The OpenAPI document of a server of ``model`` that takes ``max_documents`` documents a request and prompts of
    ``max_length`` tokens; ``secured``: every endpoint but ``/health`` wants ``Authorization: Bearer KEY``."""
    documents = {"type": "array", "minItems": 1, "maxItems": max_documents,
                 "items": {"oneOf": [_STR, {"type": "object", "required": ["text"], "properties": {"text": _STR}}]},
                 "description": "strings, or objects with text (other fields are returned as given)"}  # fmt: skip
    texts = {**_TEXTS, "minItems": 1, "maxItems": max_documents}
    usage = {"type": "object", "required": ["prompt_tokens", "total_tokens"], "properties": {
        "prompt_tokens": _INT, "total_tokens": _INT,
        "truncated_documents": {**_INT, "description": "qrr's: documents cut to fit the max length"}}}  # fmt: skip
    schemas = {
        "Error": {"type": "object", "required": ["message", "type", "code"], "properties": {
            "message": _STR, "detail": {**_STR, "description": "the message again, where Jina's clients read it"},
            "type": {"enum": ["invalid_request_error", "server_error"]}, "param": {"type": ["string", "null"]},
            "code": _INT}},
        "RerankRequest": {"type": "object", "required": ["query", "documents"], "properties": {
            "query": _STR, "documents": documents, "model": _STR,
            "top_n": {**_INT, "minimum": 0, "description": "the best n only (0: every document, as vLLM's)"},
            "return_documents": {**_BOOL, "description": "default false; true on /rerank"},
            "max_tokens_per_doc": {**_INT, "minimum": 1},
            "rank_fields": {**_TEXTS, "description": "Cohere's: fields of object documents scored as field: value "
                            "lines"},
            "instruction": _INSTRUCTION, **_RAW, "truncate_prompt_tokens": _CUT}},
        "TeiRerankRequest": {"type": "object", "required": ["query", "texts"], "properties": {
            "query": _STR, "texts": texts, "return_text": _BOOL, "raw_scores": _RAW["raw_scores"],
            "truncate": {**_BOOL, "description": "taken as true: a document is cut to fit"},
            "truncation_direction": {"enum": ["Right"]}, "instruction": _INSTRUCTION}},
        "RerankResponse": {"type": "object", "required": ["id", "model", "results", "usage", "meta"], "properties": {
            "id": _STR, "model": _STR, "usage": usage,
            "results": {"type": "array", "description": "best first", "items": {
                "type": "object", "required": ["index", "relevance_score"], "properties": {
                    "index": {**_INT, "description": "the document's place in the request"},
                    "relevance_score": {"type": "number", "description": "p(yes), or log-odds where asked"},
                    "document": {"type": "object", "required": ["text"], "properties": {"text": _STR}}}}},
            "meta": {"type": "object", "properties": {"api_version": {"type": "object"},
                                                      "billed_units": {"type": "object"}}}}},
        "TeiRerankResponse": {"type": "array", "description": "best first", "items": {
            "type": "object", "required": ["index", "score"],
            "properties": {"index": _INT, "score": {"type": "number"}, "text": _STR}}},
        "ScoreRequest": {"type": "object", "required": ["text_1", "text_2"], "properties": {
            "text_1": {"oneOf": [_STR, _TEXTS], "description": "one query, or one for each text of text_2"},
            "text_2": {"oneOf": [_STR, texts], "description": "the documents"}, "model": _STR,
            "instruction": _INSTRUCTION, **_RAW, "truncate_prompt_tokens": _CUT}},
        "ScoreResponse": {"type": "object", "required": ["id", "object", "created", "model", "data", "usage"],
                          "properties": {
            "id": _STR, "object": {"const": "list"}, "created": _INT, "model": _STR, "usage": usage,
            "data": {"type": "array", "description": "one a pair, in order", "items": {
                "type": "object", "required": ["index", "object", "score"], "properties": {
                    "index": _INT, "object": {"const": "score"}, "score": {"type": "number"},
                    "truncated": {**_BOOL, "description": "qrr's: whether the document was cut to fit"}}}}}},
        "Models": {"type": "object", "required": ["object", "data"], "properties": {
            "object": {"const": "list"}, "data": {"type": "array", "items": {
                "type": "object", "required": ["id", "object", "max_model_len", "instruction", "recipe", "dtype"],
                "properties": {"id": _STR, "object": {"const": "model"}, "created": _INT, "owned_by": _STR,
                               "qrr_version": _STR, "max_model_len": _INT, "batch_tokens": _INT, "instruction": _STR,
                               "recipe": _STR, "dtype": _STR, "max_documents": _INT, "max_request_bytes": _INT,
                               "max_document_chars": {"type": ["integer", "null"]}}}}}},
        "Health": {"type": "object", "required": ["status", "model"],
                   "properties": {"status": {"enum": ["ok", "stopping"]}, "model": _STR}},
    }  # fmt: skip
    rerank = _scored(_ref("RerankRequest"), _ref("RerankResponse"), "Cohere's rerank")
    paths = {
        "/v1/rerank": rerank,
        "/v2/rerank": rerank,
        "/rerank": _scored({"oneOf": [_ref("RerankRequest"), _ref("TeiRerankRequest")]},
                           {"oneOf": [_ref("RerankResponse"), _ref("TeiRerankResponse")]},
                           "Jina's and vLLM's rerank, or with texts text-embeddings-inference's"),
        "/score": _scored(_ref("ScoreRequest"), _ref("ScoreResponse"), "vLLM's pairwise score"),
        "/v1/score": _scored(_ref("ScoreRequest"), _ref("ScoreResponse"), "vLLM's pairwise score"),
        "/health": {"get": {"summary": "whether the server takes requests (no key needed)", "security": [],
                            "responses": {"200": _json(_ref("Health"), "serving"),
                                          "503": _json(_ref("Health"), "stopping")}}},
        "/v1/models": {"get": {"summary": "the model served, and what a request may hold",
                               "responses": {"200": _json(_ref("Models"), "one model"), "401": _UNAUTHORIZED}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": {"description": "Prometheus' text format", "content": {"text/plain": {"schema": _STR}}},
            "401": _UNAUTHORIZED}}},
        "/openapi.json": {"get": {"summary": "this document", "responses": {
            "200": _json({"type": "object"}, "OpenAPI 3.1"), "401": _UNAUTHORIZED}}},
    }  # fmt: skip
    spec = {
        "openapi": "3.1.0",
        "info": {"title": f"qrr serve: {model}", "version": __version__,
                 "description": f"Qwen3-Reranker scores, p(yes), in the rerank APIs clients already speak. Prompts "
                                f"of at most {max_length} tokens (each document cut to fit)."},
        "paths": paths,
        "components": {"schemas": schemas},
    }  # fmt: skip
    if secured:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearer": []}]
    return spec
