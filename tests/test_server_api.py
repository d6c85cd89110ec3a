"""The rerank APIs' request checks and response shapes, without a server."""

from __future__ import annotations

import math
import re

import pytest

from qrr.reranker import Results, Stats
from qrr.server.api import ApiError, log_odds, parse_rerank, parse_score, rerank_response, score_response


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


def test_top_k_is_top_n():
    # Voyage's and mixedbread's name (and CrossEncoder's): it was ignored, and every document answered
    assert parse_rerank({"query": "q", "documents": ["a", "b"], "top_k": 1}, 10).top_n == 1
    assert parse_rerank({"query": "q", "documents": ["a", "b"], "top_k": 1, "top_n": 1}, 10).top_n == 1
    with pytest.raises(ApiError) as caught:
        parse_rerank({"query": "q", "documents": ["a", "b"], "top_k": 1, "top_n": 2}, 10)
    assert (caught.value.status, str(caught.value), caught.value.param) == (
        400,
        '"top_k" 1 and "top_n" 2 differ: "top_k" is another API\'s name for "top_n"; give one',
        "top_k",
    )
    with pytest.raises(ApiError, match='^"top_k" must be at least 1, not 0$'):
        parse_rerank({"query": "q", "documents": ["a"], "top_k": 0}, 10)


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
        ({"query": "q", "documents": ["a"], "top_n": -1}, 400, '"top_n" must be 0 (every document) or more, not -1',
         "top_n"),
        ({"query": "q", "documents": ["a"], "max_tokens_per_doc": 0}, 400,
         '"max_tokens_per_doc" must be at least 1, not 0', "max_tokens_per_doc"),
        ({"query": "q", "documents": ["a"], "top_n": "3"}, 400, '"top_n" must be a whole number, not a string',
         "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": True}, 400, '"top_n" must be a whole number, not a boolean',
         "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": 2.5}, 400, '"top_n" must be a whole number, not 2.5', "top_n"),
        ({"query": "q", "documents": ["a"], "return_documents": "yes"}, 400,
         '"return_documents" must be true or false, not a string', "return_documents"),
        ({"query": "q", "documents": ["a"], "instruction": 7}, 400, '"instruction" must be a string, not a number',
         "instruction"),
        ({"query": "q", "documents": [{"text": "a"}], "rank_fields": ["title"]}, 400,
         '"documents"[0] has no field "title", which "rank_fields" names', "rank_fields"),
        # each repeat copied every document's field again: a 1 MB body built 2 GB of text, on the event loop
        ({"query": "q", "documents": [{"a": "x"}], "rank_fields": ["a", "b", "a"]}, 400,
         '"rank_fields" names "a" twice', "rank_fields"),
        # the field is there, of the wrong type: said so, not "is required" or "has no field"
        ({"query": "q", "documents": [{"title": 3}], "rank_fields": ["title"]}, 400,
         '"documents"[0]\'s field "title" of "rank_fields" must be a string, not a number', "rank_fields"),
        # a field name as the client sent it: escaped and cut, as every echo of what a client sent is
        ({"query": "q", "documents": [{"text": "a"}], "rank_fields": ["x" * 200 + "\x1b[2J"]}, 400,
         f'"documents"[0] has no field "{"x" * 100}...(206 characters)", which "rank_fields" names', "rank_fields"),
        ({"query": "q", "documents": [{"t\x1b": 3}], "rank_fields": ["t\x1b"]}, 400,
         '"documents"[0]\'s field "t%1B" of "rank_fields" must be a string, not a number', "rank_fields"),
        ({"query": "q", "documents": "a"}, 400,
         '"documents" must be an array, not a string: an array of strings or of objects with "text"', "documents"),
        # vLLM's prompt cut would cut the reranker's frame: refused, not ignored
        ({"query": "q", "documents": ["a"], "truncate_prompt_tokens": 2}, 400,
         '"truncate_prompt_tokens" 2 is not taken: each document is cut to fit this server\'s max length; '
         '"max_tokens_per_doc" cuts each one shorter', "truncate_prompt_tokens"),
        ({"query": "q", "documents": ["a"], "truncate_prompt_tokens": "all"}, 400,
         '"truncate_prompt_tokens" must be a whole number, not a string', "truncate_prompt_tokens"),
        ({"query": "q", "documents": ["a"], "truncate_prompt_tokens": 100000.5}, 400,
         '"truncate_prompt_tokens" must be a whole number, not 100000.5', "truncate_prompt_tokens"),
        ({"query": "q", "texts": ["a"], "documents": ["a"]}, 400, '"texts" and "documents" both given: "texts" is '
         'text-embeddings-inference\'s field, "documents" the others\'; give one', "texts"),
        ({"query": "q", "documents": ["a"], "raw_scores": "yes"}, 400, '"raw_scores" must be true or false, not a '
         "string", "raw_scores"),
        # each flag is read, though the first already asks for raw scores
        ({"query": "q", "documents": ["a"], "use_activation": False, "activation": {}}, 400, '"activation" must be '
         "true or false, not an object", "activation"),
        ({"query": "q", "documents": ["a"], "model": ["m"]}, 400, '"model" must be a string, not an array', "model"),
        # TEI's body on a Cohere path
        ({"query": "q", "texts": ["a"]}, 400,
         '"documents" is required; "texts" is text-embeddings-inference\'s field, which /rerank takes', "documents"),
    ],
)  # fmt: skip
def test_bad_rerank_requests(body, status, message, param):
    refused(body, status, message, param)


def test_what_vllm_clients_send_by_default_and_for_raw_scores():
    # vLLM's RerankRequest sends top_n 0 for every document; 2.0 is a whole number, as pydantic takes it
    body = {"query": "q", "documents": ["a", "b"], "top_n": 0, "truncate_prompt_tokens": -1, "use_activation": True}
    req = parse_rerank(body, 10)
    assert (req.top_n, req.raw) == (None, False)
    assert parse_rerank({**body, "top_n": 2.0, "max_tokens_per_doc": 7.0}, 10).top_n == 2
    assert parse_rerank({**body, "top_n": 2.0, "max_tokens_per_doc": 7.0}, 10).max_tokens_per_doc == 7
    assert parse_rerank({**body, "top_n": 1e300}, 10).top_n == int(1e300)  # every document, as a large int is
    # a prompt cap the server's max length keeps anyway: taken; a shorter one would cut the prompt's frame
    assert parse_score({"text_1": "q", "text_2": "a", "truncate_prompt_tokens": 8192}, 10, 8192).texts == ["a"]
    refused({"query": "q", "documents": ["a"], "truncate_prompt_tokens": 512}, 400, '"truncate_prompt_tokens" 512 is '
            "not taken: each document is cut to fit this server's max length (8192 tokens); \"max_tokens_per_doc\" "
            "cuts each one shorter", "truncate_prompt_tokens",
            parse=lambda body, n: parse_rerank(body, n, max_length=8192))  # fmt: skip
    # raw scores asked for in each API's words: log-odds, the logit of yes less that of no
    for asked in ({"use_activation": False}, {"activation": False}, {"raw_scores": True}):
        req = parse_rerank({"query": "q", "documents": ["a", "b"], **asked}, 10)
        assert req.raw
        body = rerank_response(req, [0.2, 0.9], Stats(), "m", None)
        assert [r["relevance_score"] for r in body["results"]] == pytest.approx([math.log(9), math.log(0.25)])
        assert parse_score({"text_1": "q", "text_2": "a", **asked}, 10).raw
    body = score_response([0.5, 1.0, 0.0], Stats(), "m", raw=True)
    assert [d["score"] for d in body["data"]] == pytest.approx([0.0, 36.7368005696771, -690.7755278982137])
    assert log_odds(1 / (1 + math.exp(-3.25))) == pytest.approx(3.25, abs=1e-12)


def test_rank_fields_of_text_alone_is_the_default():
    # Cohere's default said out loud scores as leaving it out does (it scored "text: a")
    documents = [{"text": "a", "title": "T"}]
    assert parse_rerank({"query": "q", "documents": documents, "rank_fields": ["text"]}, 9).texts == ["a"]
    assert parse_rerank({"query": "q", "documents": documents, "rank_fields": ["title"]}, 9).texts == ["title: T"]


def test_a_tei_request_and_its_response():
    body = {"query": "q", "texts": ["a", "b", "c"], "raw_scores": False, "return_text": True, "truncate": True,
            "truncation_direction": "Right"}  # fmt: skip
    req = parse_rerank(body, 10, tei=True)
    assert (req.query, req.texts, req.tei, req.raw, req.return_documents) == ("q", ["a", "b", "c"], True, False, True)
    assert rerank_response(req, [0.2, 0.9, 0.5], Stats(), "m", None) == [
        {"index": 1, "score": 0.9, "text": "b"}, {"index": 2, "score": 0.5, "text": "c"},
        {"index": 0, "score": 0.2, "text": "a"}]  # fmt: skip
    req = parse_rerank({"query": "q", "texts": ["a", "b"], "raw_scores": True}, 10, tei=True)
    assert rerank_response(req, [0.2, 0.9], Stats(), "m", None) == [
        {"index": 1, "score": pytest.approx(math.log(9))},
        {"index": 0, "score": pytest.approx(math.log(0.25))},
    ]
    for bad, message in (({"query": "q", "texts": ["a"], "truncation_direction": "Left"},
                          '"truncation_direction" "Left" is not taken: documents are cut at their end ("Right")'),
                         ({"query": "q", "texts": "a"}, '"texts" must be an array of strings, not a string'),
                         ({"query": "q", "texts": ["a", 3]}, '"texts"[1] must be a string, not a number'),
                         ({"query": "q", "texts": []}, '"texts" must hold at least one document'),
                         ({"texts": ["a"]}, '"query" is required'),
                         # taken as true, and ignored, but each a flag and a name (schemathesis sent {})
                         ({"query": "q", "texts": ["a"], "truncate": {}}, '"truncate" must be true or false, not an '
                          "object"),
                         ({"query": "q", "texts": ["a"], "model": 3}, '"model" must be a string, not a number'),
                         ({"query": "q", "texts": ["a"], "raw_scores": True, "use_activation": "no"},
                          '"use_activation" must be true or false, not a string')):  # fmt: skip
        with pytest.raises(ApiError, match=f"^{re.escape(message)}$"):
            parse_rerank(bad, 10, tei=True)


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
    refused({"text_1": "q", "text_2": "a", "model": 3}, 400, '"model" must be a string, not a number', "model",
            parse_score)  # fmt: skip
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
        {"index": 0, "object": "score", "score": 0.5, "truncated": False},
        {"index": 1, "object": "score", "score": 0.25, "truncated": False},
    ]
    cut = Results([0.5, 0.25])
    cut.pair_cut = [False, True]  # which documents were cut to fit: a client names them (qrr score --server does)
    assert [item["truncated"] for item in score_response(cut, Stats(tokens=10, truncated=1), "m")["data"]] == [
        False, True]  # fmt: skip
    assert scored["object"] == "list" and scored["usage"]["total_tokens"] == 10
