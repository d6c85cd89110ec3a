"""GET /openapi.json: a valid OpenAPI 3.1 document that says what the server answers, checked against real answers of
a running server."""

from __future__ import annotations

import jsonschema
import pytest
from openapi_spec_validator import validate

from qrr.server import openapi


@pytest.fixture(scope="module")
def spec(tiny_server):
    with tiny_server.client() as http:
        response = http.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


def conforms(spec: dict, schema: dict, value) -> None:
    """``value`` is valid under ``schema``, whose references point into ``spec``'s components."""
    jsonschema.Draft202012Validator({**schema, "components": spec["components"]}).validate(value)


def schema_of(spec: dict, path: str, method: str, status: str | None = None) -> dict:
    """The schema of a request's body (``status`` None) or of an answer's."""
    operation = spec["paths"][path][method]
    part = operation["requestBody"] if status is None else operation["responses"][status]
    return part["content"]["application/json"]["schema"]


def test_the_document_is_valid_openapi_and_names_the_servers_limits(spec, tiny_model):
    validate(spec)
    assert spec["openapi"] == "3.1.0" and "security" not in spec  # the test server wants no key
    # a generated client's package is named by the title: the same whatever the model
    assert (
        spec["info"]["title"] == "qrr serve"
        and f": {tiny_model}, prompts of at most 2048 tokens" in spec["info"]["description"]
    )
    documents = spec["components"]["schemas"]["RerankRequest"]["properties"]["documents"]
    assert (documents["minItems"], documents["maxItems"]) == (1, 50)  # the server's --max-documents
    assert spec == openapi.document(str(tiny_model), 50, 2048, False)
    operations = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(set(operations)) == len(operations) == 9


def test_every_endpoint_is_described_and_every_one_described_is_served(spec, tiny_server, fake_model):
    from qrr import Reranker
    from qrr.server.app import create_app

    served = {(route.path, method.lower()) for route in create_app(Reranker("fake"), "fake").routes
              for method in route.methods - {"HEAD"}}  # fmt: skip
    assert {(path, method) for path, item in spec["paths"].items() for method in item} == served
    assert len(served) == 9
    with tiny_server.client() as http:
        for path, item in spec["paths"].items():
            for method in item:
                assert http.request(method.upper(), path, json={}).status_code not in (404, 405), path


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/rerank", {"query": "capital?", "documents": ["Paris", {"text": "Beijing", "url": "u"}], "top_n": 1,
                    "return_documents": True, "instruction": "Find the capital"}),
    ("/v2/rerank", {"query": "capital?", "documents": ["Paris", "Beijing"], "max_tokens_per_doc": 8, "model": "m"}),
    ("/rerank", {"query": "capital?", "documents": ["Paris", "Beijing"], "top_n": 0, "use_activation": False}),
    ("/rerank", {"query": "capital?", "texts": ["Paris", "Beijing"], "return_text": True, "raw_scores": True,
                 "truncate": True}),
    ("/score", {"text_1": "capital?", "text_2": ["Paris", "Beijing"]}),
    ("/v1/score", {"text_1": ["a", "b"], "text_2": ["Paris", "Beijing"], "truncate_prompt_tokens": -1}),
    # Cohere v1's documents of fields, scored by rank_fields and returned as given
    ("/v1/rerank", {"query": "capital?", "documents": [{"title": "China", "body": "Beijing"}, {"title": "France"}],
                    "rank_fields": ["title"], "return_documents": True}),
    # LangChain's CohereRerank sends null for what it leaves unset
    ("/v2/rerank", {"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"], "top_n": 3,
                    "max_tokens_per_doc": None}),
    ("/rerank", {"query": "q", "documents": ["a"], "instruction": None, "truncate_prompt_tokens": 2048}),
])  # fmt: skip
def test_real_requests_and_answers_are_as_described(spec, tiny_server, path, body):
    conforms(spec, schema_of(spec, path, "post"), body)
    with tiny_server.client() as http:
        response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    conforms(spec, schema_of(spec, path, "post", "200"), response.json())


def test_refusals_and_the_other_endpoints_answer_as_described(spec, tiny_server):
    with tiny_server.client() as http:
        for path, body in (
            ("/v1/rerank", {"query": "q"}),
            ("/score", {"text_1": 3, "text_2": "d"}),
            ("/rerank", {"query": "q", "documents": []}),
            ("/score", {"text_1": [], "text_2": "d"}),
            ("/v1/rerank", {"query": "q", "documents": ["d"], "truncate_prompt_tokens": 0}),
            ("/v2/rerank", {"query": "q", "documents": [{"a": "d"}], "rank_fields": ["a", "a"]}),
            ("/score", {"text_1": "q", "text_2": "d", "use_activation": False, "activation": {}}),  # every flag said
            ("/rerank", {"query": "q", "texts": ["d"], "truncate": {}}),
            ("/v1/score", {"text_1": "q", "text_2": "d", "model": 3}),  # ignored, but a name
            ("/v1/rerank", {"query": "q", "documents": ["d"], "texts": ["d"]}),  # one API's field or the other's
        ):
            with pytest.raises(jsonschema.ValidationError):  # the schema refuses what the server refuses
                conforms(spec, schema_of(spec, path, "post"), body)
            response = http.post(path, json=body)
            assert response.status_code == 400
            conforms(spec, schema_of(spec, path, "post", "400"), response.json())
        conforms(spec, schema_of(spec, "/health", "get", "200"), http.get("/health").json())
        conforms(spec, schema_of(spec, "/v1/models", "get", "200"), http.get("/v1/models").json())
        assert http.get("/metrics").text.startswith("# HELP")
