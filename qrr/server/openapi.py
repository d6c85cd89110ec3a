"""The server's OpenAPI 3.1 description (``GET /openapi.json``): each endpoint's request and response shapes as
``qrr.server.api`` reads and writes them, for a client written in another language, a tool that imports OpenAPI
(Postman, an SDK generator) or a reader. A test checks real answers against it, and the server's refusals of what it
calls valid."""

from __future__ import annotations

from qrr import __version__

_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_NUMBER = {"type": "number"}
_TEXTS = {"type": "array", "items": _STR}


def _optional(schema: dict) -> dict:
    """An optional field, which may also be null: the server takes null as absent (LangChain sends
    ``"max_tokens_per_doc": null``)."""
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}], **{k: v for k, v in schema.items() if k == "description"}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {"application/json": {"schema": schema}}}
    return answer | ({"headers": {k: {"schema": v[0], "description": v[1]} for k, v in headers.items()}}
                     if headers else {})  # fmt: skip


_ERRORS = {
    "400": _json(_ref("Error"), "a request that is not valid, said in the body"),
    "401": _json(_ref("Error"), "a server started with --api-key: the key is missing or wrong",
                 {"WWW-Authenticate": (_STR, "Bearer")}),
    "500": _json(_ref("Error"), "an unexpected failure (the server's log says more)"),
}  # fmt: skip
_SCORING_ERRORS = {
    **_ERRORS,
    "413": _json(_ref("Error"), "the body is over the server's --max-request-bytes"),
    "415": _json(_ref("Error"), "a compressed body: send it as it is", {"Accept-Encoding": (_STR, "identity")}),
    "503": _json(_ref("Error"), "the queue is full (--max-queue), or the model failed",
                 {"Retry-After": (_INT, "seconds to wait, with a full queue")}),
}  # fmt: skip


def _scoring(operation: str, summary: str, request: dict, response: dict) -> dict:
    """A POST endpoint that scores: its request body, its answer, and the errors every such endpoint gives."""
    return {"post": {
        "operationId": operation, "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {"200": _json(response, "the scores"), **_SCORING_ERRORS},
    }}  # fmt: skip


def _getting(operation: str, summary: str, answer: dict, public: bool = False) -> dict:
    described = {"operationId": operation, "summary": summary, "responses": answer}
    if public:
        described["security"] = []  # no key needed
    else:
        described["responses"] = answer | {k: v for k, v in _ERRORS.items() if k != "400"}
    return {"get": described}


def document(model: str, max_documents: int, max_length: int, secured: bool) -> dict:
    """The OpenAPI document of a server of ``model`` that takes ``max_documents`` documents a request and prompts of
    ``max_length`` tokens; ``secured``: every endpoint but ``/health`` wants ``Authorization: Bearer KEY``."""
    instruction = _optional({**_STR, "description": "qrr's addition: the task instruction for this request's pairs "
                             "(default: the server's --instruction, else the model card's)"})  # fmt: skip
    raw = {
        "raw_scores": _optional({**_BOOL, "description": "true: log-odds, log(p / (1 - p)), in place of p(yes)"}),
        "use_activation": _optional({**_BOOL, "description": "false: log-odds in place of p(yes) (vLLM's)"}),
        "activation": _optional({**_BOOL, "description": "vLLM's older name of use_activation"}),
    }
    cut = _optional({"anyOf": [{"const": -1}, {**_INT, "minimum": max_length}], "description": "vLLM's: only -1, or "
                     f"at least the server's max length ({max_length}), is taken (a prompt's last tokens would cut "
                     "its frame); each document is cut to fit instead"})  # fmt: skip
    ignored = _optional({**_STR, "description": "ignored: the server scores with the model it serves"})
    # what ties one field to another (text, unless rank_fields names others) is said, not a schema: generators and
    # testers (openapi-python-client, schemathesis) take no if/then
    a_document = {"type": "object", "description": "its string text, or with rank_fields the string fields it names; "
                  "other fields are returned as given", "properties": {"text": _STR}}  # fmt: skip
    documents = {"type": "array", "minItems": 1, "maxItems": max_documents, "items": {"oneOf": [_STR, a_document]},
                 "description": "strings, or objects"}  # fmt: skip
    texts = {**_TEXTS, "minItems": 1, "maxItems": max_documents}
    usage = {"type": "object", "required": ["prompt_tokens", "total_tokens"], "properties": {
        "prompt_tokens": _INT, "total_tokens": _INT,
        "truncated_documents": {**_INT, "description": "qrr's: documents cut to fit the max length"}}}  # fmt: skip
    schemas = {
        "Error": {"type": "object", "required": ["message", "detail", "type", "param", "code"], "properties": {
            "message": _STR, "detail": {**_STR, "description": "the message again, where Jina's clients read it"},
            "type": {"enum": ["invalid_request_error", "server_error"]},
            "param": {"type": ["string", "null"], "description": "the request's field at fault"}, "code": _INT,
            "setting": {"enum": ["max_length"], "description": "qrr's: a query too long for the server's setting"},
            "pair": {**_INT, "description": "qrr's, of /score: the place of the pair whose query is too long"}}},
        "RerankRequest": {"type": "object", "required": ["query", "documents"], "properties": {
            "query": _STR, "documents": documents, "model": ignored,
            "top_n": _optional({**_INT, "minimum": 0, "description": "the best n only (0: all, as vLLM's)"}),
            "top_k": _optional({**_INT, "minimum": 1, "description": "top_n, as Voyage and mixedbread name it"}),
            "return_documents": _optional({**_BOOL, "description": "default false; true on /rerank"}),
            "max_tokens_per_doc": _optional({**_INT, "minimum": 1}),
            "rank_fields": _optional({**_TEXTS, "uniqueItems": True, "description": "Cohere's: the fields of object "
                                      "documents scored, as field: value lines"}),
            "instruction": instruction, **raw, "truncate_prompt_tokens": cut,
            "texts": {"type": "null", "description": "TEI's field, on /rerank: give texts or documents"}}},
        "TeiRerankRequest": {"type": "object", "required": ["query", "texts"], "properties": {
            "query": _STR, "texts": texts, "model": ignored, "return_text": _optional(_BOOL), **raw,
            "truncate": _optional({**_BOOL, "description": "taken as true: a document is cut to fit"}),
            "truncation_direction": _optional({"const": "Right"}), "instruction": instruction,
            "documents": {"type": "null", "description": "the other APIs' field: give texts or documents"}}},
        "RerankResponse": {"type": "object", "required": ["id", "model", "results", "usage", "meta"], "properties": {
            "id": _STR, "model": _STR, "usage": usage,
            "results": {"type": "array", "description": "best first", "items": {
                "type": "object", "required": ["index", "relevance_score"], "properties": {
                    "index": {**_INT, "description": "the document's place in the request"},
                    "relevance_score": {**_NUMBER, "description": "p(yes), or log-odds where asked"},
                    "document": {"type": "object", "description": "the document as given ({text} for a string)"}}}},
            "meta": {"type": "object", "properties": {"api_version": {"type": "object"},
                                                      "billed_units": {"type": "object"}}}}},
        "TeiRerankResponse": {"type": "array", "description": "best first", "items": {
            "type": "object", "required": ["index", "score"],
            "properties": {"index": _INT, "score": _NUMBER, "text": _STR}}},
        "ScoreRequest": {"type": "object", "required": ["text_1", "text_2"], "properties": {
            "text_1": {"oneOf": [_STR, {**_TEXTS, "minItems": 1}], "description": "one query, or one for each text "
                       "of text_2"},
            "text_2": {"oneOf": [_STR, texts], "description": "the documents"}, "model": ignored,
            "instruction": instruction, **raw, "truncate_prompt_tokens": cut}},
        "ScoreResponse": {"type": "object", "required": ["id", "object", "created", "model", "data", "usage"],
                          "properties": {
            "id": _STR, "object": {"const": "list"}, "created": _INT, "model": _STR, "usage": usage,
            "data": {"type": "array", "description": "one a pair, in order", "items": {
                "type": "object", "required": ["index", "object", "score"], "properties": {
                    "index": _INT, "object": {"const": "score"}, "score": _NUMBER,
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
    cohere = ("Cohere's rerank", _ref("RerankRequest"), _ref("RerankResponse"))
    score = ("vLLM's pairwise score", _ref("ScoreRequest"), _ref("ScoreResponse"))
    paths = {
        "/v1/rerank": _scoring("rerankV1", *cohere),
        "/v2/rerank": _scoring("rerankV2", *cohere),
        "/rerank": _scoring("rerank", "Jina's and vLLM's rerank, or with texts text-embeddings-inference's",
                            {"oneOf": [_ref("RerankRequest"), _ref("TeiRerankRequest")]},
                            {"oneOf": [_ref("RerankResponse"), _ref("TeiRerankResponse")]}),
        "/score": _scoring("score", *score),
        "/v1/score": _scoring("scoreV1", *score),
        "/health": _getting("health", "whether the server takes requests (no key needed)", {
            "200": _json(_ref("Health"), "serving"), "503": _json(_ref("Health"), "stopping")}, public=True),
        "/v1/models": _getting("models", "the model served, and what a request may hold", {
            "200": _json(_ref("Models"), "one model")}),
        "/metrics": _getting("metrics", "Prometheus metrics", {
            "200": {"description": "Prometheus' text format", "content": {"text/plain": {"schema": _STR}}}}),
        "/openapi.json": _getting("openapi", "this document", {"200": _json({"type": "object"}, "OpenAPI 3.1")}),
    }  # fmt: skip
    spec = {
        "openapi": "3.1.0",
        # a generated client's package is named by the title: the same from every server
        "info": {"title": "qrr serve", "version": __version__,
                 "description": f"Qwen3-Reranker scores, p(yes), in the rerank APIs clients already speak: {model}, "
                                f"prompts of at most {max_length} tokens (cut to fit)."},
        "paths": paths,
        "components": {"schemas": schemas},
    }  # fmt: skip
    if secured:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearer": []}]
    return spec
