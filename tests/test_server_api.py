"""The rerank APIs' request checks and response shapes, without a server."""

from __future__ import annotations

import pytest

from qrr.reranker import Stats
from qrr.server.api import ApiError, parse_rerank, parse_score, rerank_response, score_response


def refused(body, status, message, param=None, parse=parse_rerank):
    with pytest.raises(ApiError) as caught:
        parse(body, 100)
    assert (caught.value.status, caught.value.message, caught.value.param) == (status, message, param)


def test_a_cohere_v1_request_with_objects_and_rank_fields():
    req = parse_rerank({"query": "q", "documents": ["a", {"text": "b"}, {"title": "T", "text": "c"}], "top_n": 2,
                        "return_documents": True, "model": "anything", "max_chunks_per_doc": 3}, 100)  # fmt: skip
    assert (req.query, req.texts, req.top_n, req.return_documents) == ("q", ["a", "b", "c"], 2, True)
    req = parse_rerank({"query": "q", "documents": [{"title": "T", "text": "c"}], "rank_fields": ["title", "text"]}, 9)
    assert req.texts == ["title: T\ntext: c"]


def test_nulls_are_absent_fields():
    # what the Cohere SDK and LangChain send for options left unset
    req = parse_rerank({"query": "q", "documents": ["a"], "top_n": None, "max_tokens_per_doc": None,
                        "return_documents": None, "instruction": None}, 10)  # fmt: skip
    assert (req.top_n, req.max_tokens_per_doc, req.return_documents, req.instruction) == (None, None, False, None)


@pytest.mark.parametrize(
    ("body", "status", "message", "param"),
    [
        ([1, 2], 400, "the request body must be a JSON object, not an array", None),
        ({"documents": ["a"]}, 400, '"query" is required', "query"),
        ({"query": 3, "documents": ["a"]}, 400, '"query" must be a string, not a number', "query"),
        ({"query": "q"}, 400, '"documents" is required: an array of strings or of objects with "text"', "documents"),
        ({"query": "q", "documents": []}, 400, '"documents" must hold at least one document', "documents"),
        ({"query": "q", "documents": ["a"] * 101}, 400,
         '"documents" holds 101 documents; this server takes at most 100 a request', "documents"),
        ({"query": "q", "documents": [3]}, 400,
         '"documents"[0] must be a string or an object with "text", not a number', "documents"),
        ({"query": "q", "documents": [{"body": "x"}]}, 400, '"documents"[0] must have a string "text"', "documents"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, 400, '"top_n" must be at least 1, not 0', "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": "3"}, 400, '"top_n" must be a whole number, not a string',
         "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": True}, 400, '"top_n" must be a whole number, not a boolean',
         "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": 2.0}, 400, '"top_n" must be a whole number, not 2.0', "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": 1e30}, 400, '"top_n" must be a whole number, not 1e+30',
         "top_n"),
        ({"query": "q", "documents": ["a"], "return_documents": "yes"}, 400,
         '"return_documents" must be true or false, not a string', "return_documents"),
        ({"query": "q", "documents": ["a"], "instruction": 7}, 400, '"instruction" must be a string, not a number',
         "instruction"),
        ({"query": "q", "documents": [{"text": "a"}], "rank_fields": ["title"]}, 400,
         '"documents"[0] has no field "title", which "rank_fields" names', "rank_fields"),
        # the field is there, of the wrong type: said so, not "is required" or "has no field"
        ({"query": "q", "documents": [{"title": 3}], "rank_fields": ["title"]}, 400,
         '"documents"[0]\'s field "title" of "rank_fields" must be a string, not a number', "rank_fields"),
        ({"query": "q", "documents": "a"}, 400,
         '"documents" must be an array, not a string: an array of strings or of objects with "text"', "documents"),
    ],
)  # fmt: skip
def test_bad_rerank_requests(body, status, message, param):
    refused(body, status, message, param)


def test_score_pairs_one_query_or_one_each():
    req = parse_score({"text_1": "q", "text_2": ["a", "b"]}, 10)
    assert (req.queries, req.texts) == (["q", "q"], ["a", "b"])
    req = parse_score({"text_1": ["q1", "q2"], "text_2": ["a", "b"], "instruction": "t"}, 10)
    assert (req.queries, req.texts, req.instruction) == (["q1", "q2"], ["a", "b"], "t")
    assert parse_score({"text_1": ["q"], "text_2": "a"}, 10).queries == ["q"]
    message = '"text_1" holds 3 texts and "text_2" 2: give one query, or as many as texts'
    refused({"text_1": ["a", "b", "c"], "text_2": ["x", "y"]}, 400, message, "text_1", parse_score)
    refused({"text_2": ["x"]}, 400, '"text_1" is required: a string or an array of strings', "text_1", parse_score)
    refused({"text_1": "q", "text_2": []}, 400, '"text_2" must hold at least one document', "text_2", parse_score)
    refused({"text_1": 3, "text_2": "a"}, 400, '"text_1" must be a string or an array of strings, not a number',
            "text_1", parse_score)  # fmt: skip
    refused({"text_1": "q", "text_2": ["a", None]}, 400, '"text_2"[1] must be a string, not null', "text_2",
            parse_score)  # fmt: skip


def test_an_error_body_speaks_to_every_apis_clients():
    # Cohere's and vLLM's clients read "message"; Jina's (LangChain's JinaRerank) read "detail"
    body = ApiError(400, '"top_n" must be at least 1, not 0', "top_n").body()
    assert body == {"message": '"top_n" must be at least 1, not 0', "detail": '"top_n" must be at least 1, not 0',
                    "type": "invalid_request_error", "param": "top_n", "code": 400}  # fmt: skip


def test_responses_best_first_in_every_apis_shape():
    req = parse_rerank({"query": "q", "documents": ["a", {"text": "b", "id": 7}, "c"], "top_n": 2,
                        "return_documents": True}, 10)  # fmt: skip
    body = rerank_response(req, [0.2, 0.9, 0.2], Stats(pairs=3, tokens=150, truncated=1), "m", "2")
    assert body["results"] == [{"index": 1, "relevance_score": 0.9, "document": {"text": "b", "id": 7}},
                               {"index": 0, "relevance_score": 0.2, "document": {"text": "a"}}]  # fmt: skip
    assert body["model"] == "m" and body["meta"]["api_version"] == {"version": "2"}
    assert body["usage"] == {"prompt_tokens": 150, "total_tokens": 150, "truncated_documents": 1}
    assert len(body["id"]) == 36
    scored = score_response([0.5, 0.25], Stats(tokens=10), "m")
    assert scored["data"] == [
        {"index": 0, "object": "score", "score": 0.5},
        {"index": 1, "object": "score", "score": 0.25},
    ]
    assert scored["object"] == "list" and scored["usage"]["total_tokens"] == 10
