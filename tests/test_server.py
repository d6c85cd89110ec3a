"""``qrr serve`` for real: a subprocess on a loopback port, real HTTP clients (httpx, the Cohere SDK, LangChain)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

import qrr
from qrr.errors import ServerUnavailable
from tests.servers import ROOT, Server

QUERY = "what is the capital of China?"
DOCS = ["The capital of China is Beijing.", "Paris is the capital of France.", "Gravity pulls bodies together.",
        "Beijing hosts the government of China.", ""]  # fmt: skip


def close(a, b, tol=1e-6):
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= tol


def by_index(results, key="relevance_score"):
    return [r[key] for r in sorted(results, key=lambda r: r["index"])]


@pytest.fixture(scope="module")
def http(tiny_server):
    with tiny_server.client() as client:
        yield client


# ------------------------------------------------------------------------------------------------- endpoints


def test_listens_on_loopback_and_says_so(tiny_server):
    assert tiny_server.url.startswith("http://127.0.0.1:")
    assert "loading the model for http://127.0.0.1:" in tiny_server.stderr and "ready: " in tiny_server.stderr


def test_cohere_rerank_v1_and_v2(http, reranker):
    expected = reranker.score([(QUERY, d) for d in DOCS])
    for path in ("/v1/rerank", "/v2/rerank"):
        body = http.post(path, json={"model": "m", "query": QUERY, "documents": DOCS}).json()
        assert [r["index"] for r in body["results"]] == sorted(range(5), key=lambda i: -expected[i])
        close(by_index(body["results"]), expected)
        assert "document" not in body["results"][0] and body["meta"]["api_version"]["version"] == path[2]
    body = http.post("/v1/rerank", json={"query": QUERY, "documents": [{"text": d} for d in DOCS], "top_n": 2,
                                         "return_documents": True}).json()  # fmt: skip
    assert len(body["results"]) == 2 and body["results"][0]["document"] == {"text": DOCS[body["results"][0]["index"]]}


def test_jina_and_vllm_rerank_and_score(http, reranker):
    expected = reranker.score([(QUERY, d) for d in DOCS])
    body = http.post("/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 3}).json()
    assert [r["document"]["text"] for r in body["results"]] == [DOCS[r["index"]] for r in body["results"]]
    assert body["usage"]["total_tokens"] == reranker.score([(QUERY, d) for d in DOCS]).stats.tokens
    close([r["relevance_score"] for r in body["results"]], sorted(expected, reverse=True)[:3])
    for path in ("/score", "/v1/score"):
        body = http.post(path, json={"model": "m", "text_1": QUERY, "text_2": DOCS}).json()
        assert [d["index"] for d in body["data"]] == list(range(5)) and body["object"] == "list"
        close([d["score"] for d in body["data"]], expected)
    body = http.post("/score", json={"text_1": ["q1", "q2"], "text_2": ["a", "b"]}).json()
    close([d["score"] for d in body["data"]], reranker.score([("q1", "a"), ("q2", "b")]))


def test_a_body_opening_with_a_utf8_bom_is_read(http, reranker):
    # Windows tools write one; RFC 8259 lets a parser ignore it (it was "malformed JSON: UTF-8 byte order mark ...")
    body = "\ufeff" + json.dumps({"query": QUERY, "documents": DOCS[:2]})
    response = http.post("/v1/rerank", content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    close(by_index(response.json()["results"]), reranker.score([(QUERY, d) for d in DOCS[:2]]))
    # a bad byte past the BOM is counted from the body's start, as without one (byte 13 there)
    bad = http.post("/v1/rerank", content=b'\xef\xbb\xbf{"query": "q\xff", "documents": ["a"]}',
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert bad.json()["message"] == "malformed JSON: the body is not valid UTF-8 (byte 16)"


def test_tei_rerank_and_raw_scores(http, reranker):
    import math

    expected = reranker.score([(QUERY, d) for d in DOCS])
    order = sorted(range(5), key=lambda i: -expected[i])
    # text-embeddings-inference's body and its answer: a bare array, best first
    body = http.post("/rerank", json={"query": QUERY, "texts": DOCS, "return_text": True, "truncate": True}).json()
    assert [r["index"] for r in body] == order and [r["text"] for r in body] == [DOCS[i] for i in order]
    close(by_index(body, "score"), expected)
    raw = http.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
    assert list(raw[0]) == ["index", "score"]
    close(by_index(raw, "score"), [math.log(p / (1 - p)) for p in expected], 1e-5)
    # vLLM's client defaults (top_n 0: every document) and its raw scores
    body = http.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 0, "use_activation": False})
    close(by_index(body.json()["results"]), [math.log(p / (1 - p)) for p in expected], 1e-5)
    body = http.post("/score", json={"text_1": QUERY, "text_2": DOCS, "use_activation": False}).json()
    close([d["score"] for d in body["data"]], [math.log(p / (1 - p)) for p in expected], 1e-5)


def test_an_instruction_and_max_tokens_per_doc(http, reranker):
    task = "Judge whether the passage names a capital"
    body = http.post("/v2/rerank", json={"query": QUERY, "documents": DOCS, "instruction": task}).json()
    close(by_index(body["results"]), reranker.score([(QUERY, d, task) for d in DOCS]))
    long = "word " * 300
    body = http.post("/v2/rerank", json={"query": QUERY, "documents": [long, "short"], "max_tokens_per_doc": 20})
    cut = reranker.prompter.cut(long, 20)
    assert len(reranker.tokenizer.encode(cut)) == 20
    close(by_index(body.json()["results"]), reranker.score([(QUERY, cut), (QUERY, "short")]))


def test_large_responses_are_gzipped_where_the_client_accepts_it(http):
    body = {"query": "q", "documents": [f"document {n} " * 20 for n in range(20)]}  # /rerank sends them back
    plain = http.post("/rerank", json=body, headers={"Accept-Encoding": "identity"})
    zipped = http.post("/rerank", json=body, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers and zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3
    assert [r["index"] for r in zipped.json()["results"]] == [r["index"] for r in plain.json()["results"]]
    small = http.post("/rerank", json={"query": "q", "documents": ["a"]}, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under a kilobyte: not worth it


def test_health_models_and_metrics(http, tiny_model, tiny_server, reranker):
    from qrr.server.client import RemoteReranker

    assert http.get("/health").json() == {"status": "ok", "model": str(tiny_model)}
    card = http.get("/v1/models").json()["data"][0]
    assert card["id"] == str(tiny_model) and card["max_model_len"] == 2048 and card["dtype"] == "fp32"
    assert card["qrr_version"] == qrr.__version__  # not in /health, which answers without the API key
    assert card["max_document_chars"] == 2048 * reranker.prompter.token_chars  # its --max-length 2048
    # the budget of a forward pass (the CPU's default), which sizes a remote rerank's calls
    assert card["batch_tokens"] == 1024 and RemoteReranker(tiny_server.url).batch_tokens == 1024
    # Reranker's surface: predict, score and rank with batch_size second, an instruction for the call, a repr

    remote, local = RemoteReranker(tiny_server.url), reranker
    pairs = [("q", "a"), ("q", "b", "Judge")]
    close(remote.predict(pairs, 8).tolist(), local.predict(pairs).tolist())
    close([remote.predict(("q", "a"), instruction="Judge")], [local.predict(("q", "a"), instruction="Judge")])
    close(remote.score(pairs, 8, instruction="Judge"), local.score(pairs, instruction="Judge"))
    close(
        [r["score"] for r in remote.rank("q", ["a", "b"], None, False, 8)],
        [r["score"] for r in local.rank("q", ["a", "b"])],
    )
    assert repr(remote) == f"RemoteReranker({tiny_server.url!r})"
    # reached from `import qrr` alone, in a process that imported nothing else of qrr
    code = "import qrr; print(qrr.server.client.RemoteReranker.__name__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout == "RemoteReranker\n"  # fmt: skip
    # what a request without an instruction is scored with (a --resume file keeps it)
    assert RemoteReranker(tiny_server.url).settings() == {
        "model": None,  # not compared: one model may be named two ways
        "instruction": "Given a web search query, retrieve relevant passages that answer the query",
        "max_length": 2048,
        "recipe": "transformers",
        "dtype": "fp32",
    }
    assert RemoteReranker(tiny_server.url, instruction="Judge").settings()["instruction"] == "Judge"  # its own
    http.post("/rerank", json={"query": "q", "documents": ["a", "b"]})
    http.post("/rerank", json={"query": "q", "documents": []})
    text = http.get("/metrics").text
    info = f'qrr_info{{version="{qrr.__version__}",model="{tiny_model}",device="cpu",dtype="fp32",threads="'
    assert re.search("\n" + re.escape(info) + r'[1-9][0-9]*"\} 1\n', text), text  # a CPU quota's cut shows there
    assert 'qrr_requests_total{endpoint="/rerank",status="200"}' in text
    assert 'qrr_requests_total{endpoint="/rerank",status="400"}' in text
    for name in ("qrr_pairs_total ", "qrr_tokens_total ", "qrr_queue_depth 0", "qrr_scoring_calls_total ",
                 'qrr_request_seconds_bucket{endpoint="/rerank",le="0.005"} ', "\nprocess_resident_memory_bytes ",
                 "\nprocess_cpu_seconds_total "):  # fmt: skip
        assert name in text, name
    assert "qrr_device_memory" not in text  # a CPU's memory is the process's

    def value(name: str) -> int:
        return int(text.split(f"\n{name} ")[1].split()[0])

    # each endpoint has its own latency histogram: health probes and scrapes are timed apart from scoring, and an
    # error (the 400) is counted untimed: an overloaded server's quick 503s pulled its latency down
    served = value('qrr_request_seconds_count{endpoint="/rerank"}')
    assert served >= 1 and value('qrr_request_seconds_bucket{endpoint="/rerank",le="+Inf"}') == served
    assert value('qrr_requests_total{endpoint="/rerank",status="200"}') == served
    assert value('qrr_requests_total{endpoint="/rerank",status="400"}') >= 1
    assert value('qrr_request_seconds_count{endpoint="/health"}') >= 1
    assert int(text.split("\nqrr_pairs_total ")[1].split()[0]) >= 2


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"query": "q", "documents": [', 400, "malformed JSON"),
        (b'{"query": "q\xff", "documents": ["a"]}', 400, "malformed JSON: the body is not valid UTF-8 (byte 13)"),
        (b'"just a string"', 400, "the request body must be a JSON object, not a string"),
        (b'{"documents": ["a"]}', 400, '"query" is required'),
        (b'{"query": "q", "documents": []}', 400, '"documents" must hold at least one document'),
        (b'{"query": "q", "documents": ["a"], "top_n": -1}', 400, '"top_n" must be 0 (every document) or more, not -1'),
        (b'{"query": "q", "documents": [' + b'"a",' * 50 + b'"a"]}', 400,
         '"documents" holds 51 documents; this server takes at most 50 a request'),
        (b'{"query": "q", "documents": ["' + b"x" * 30_000 + b'"]}', 413,
         "the request body is 30033 bytes; this server takes at most 20000"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_json_error_and_never_reach_the_model(http, body, status, message):
    response = http.post("/v1/rerank", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()
    assert message in error["message"] and error["code"] == status and "Traceback" not in response.text


def test_a_query_that_leaves_no_room_and_unknown_routes(http):
    long = "word " * 2500
    for body, field in (({"query": long, "documents": ["a"]}, "query"),
                        ({"query": "q", "instruction": long, "documents": ["a"]}, "instruction")):  # fmt: skip
        response = http.post("/rerank", json=body)
        assert response.status_code == 400 and response.json()["param"] == field
        said = "the query and instruction take " if field == "query" else "the instruction takes "  # alone
        assert response.json()["message"].startswith(f'"{field}": {said}')
        # the client cannot change max_length: it is said as the server's flag
        assert f"raise the server's --max-length or shorten the {field}" in response.json()["message"]
        # for qrr's client: a setting's fault (a run's --on-error skip leaves the query out)
        assert response.json()["setting"] == "max_length" and "pair" not in response.json()
    response = http.post("/score", json={"text_1": ["q", "word " * 2500], "text_2": ["a", "b"]})
    assert response.status_code == 400 and response.json()["param"] == "text_1"
    assert (response.json()["setting"], response.json()["pair"]) == ("max_length", 1)  # where in the pairs
    # an instruction too long alone is every pair's fault: no pair named, which a run would leave out one by one
    response = http.post("/score", json={"text_1": ["q", "r"], "text_2": ["a", "b"], "instruction": "word " * 2500})
    assert (response.json()["param"], response.json()["setting"]) == ("instruction", "max_length")
    assert "pair" not in response.json()
    assert http.get("/nothing").status_code == 404 and http.get("/nothing").json()["message"] == "no endpoint /nothing"
    metrics = http.get("/metrics").text
    # counted, but not timed: a 404 or 405 took no endpoint's time
    assert 'qrr_requests_total{endpoint="other",status="404"}' in metrics and 'endpoint="other",le=' not in metrics
    # not a body-less redirect (307), which a client that follows none shows as nothing
    response = http.post("/v1/rerank/", json={"query": "q", "documents": ["a"]})
    assert (response.status_code, response.json()["message"]) == (
        404,
        "no endpoint /v1/rerank/; did you mean /v1/rerank?",
    )
    # a base URL ending in "/" (the client's base_url joining would drop the slash)
    response = httpx.post(f"{str(http.base_url).rstrip('/')}//rerank", json={"query": "q", "documents": ["a"]})
    assert (response.status_code, response.json()["message"]) == (404, "no endpoint //rerank; did you mean /rerank?")
    # the page a FastAPI server (vLLM's) serves
    assert http.get("/docs").json()["message"] == (
        "no endpoint /docs; GET /openapi.json describes the endpoints (qrr serves no page of its own)"
    )
    wrong = http.get("/rerank")
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")
    assert set(http.delete("/health").headers["Allow"].split(", ")) == {"GET", "HEAD"}
    # a gzipped body was read as it came: "not valid UTF-8 (byte 1)"
    response = http.post("/rerank", content=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["message"]) == (
        415,
        "Content-Encoding gzip is not supported: send the body uncompressed",
    )
    assert response.headers["Accept-Encoding"] == "identity"
    for said in ("", "identity"):  # no encoding at all
        body = b'{"query": "q", "documents": ["a"]}'
        assert http.post("/rerank", content=body, headers={"Content-Encoding": said}).status_code == 200
    assert http.post("/rerank", json={"query": "q", "documents": ["a"]}).status_code == 200  # still serving


def test_a_body_of_exactly_the_limit_is_taken(http):
    head, tail = b'{"query": "q", "documents": ["', b'"]}'
    for size, status in ((20_000, 200), (20_001, 413)):
        body = head + b"x" * (size - len(head) - len(tail)) + tail
        response = http.post("/rerank", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
    assert response.json()["message"] == "the request body is 20001 bytes; this server takes at most 20000"


def test_a_body_streamed_past_the_limit_without_a_length(http):
    def chunks():
        yield b'{"query": "q", "documents": ["'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"]}'

    response = http.post("/rerank", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "over 20000 bytes" in response.json()["message"]


# ---------------------------------------------------------------------------------------------------- clients


def test_the_cohere_sdk_by_its_base_url_alone(tiny_server, reranker):
    import cohere

    expected = reranker.score([(QUERY, d) for d in DOCS])
    v1 = cohere.Client(api_key="unused", base_url=tiny_server.url).rerank(
        model="qrr", query=QUERY, documents=DOCS, top_n=2, return_documents=True)  # fmt: skip
    assert [r.document.text for r in v1.results] == [DOCS[r.index] for r in v1.results]
    close([r.relevance_score for r in v1.results], sorted(expected, reverse=True)[:2])
    v2 = cohere.ClientV2(api_key="unused", base_url=tiny_server.url).rerank(model="qrr", query=QUERY, documents=DOCS)
    close([r.relevance_score for r in sorted(v2.results, key=lambda r: r.index)], expected)
    # docs/serving.md's way to send an instruction through the SDK
    asked = cohere.ClientV2(api_key="unused", base_url=tiny_server.url).rerank(
        model="qrr", query=QUERY, documents=DOCS,
        request_options={"additional_body_parameters": {"instruction": "Judge code relevance"}})  # fmt: skip
    judged = reranker.score([(QUERY, d, "Judge code relevance") for d in DOCS])
    assert judged != expected
    close([r.relevance_score for r in sorted(asked.results, key=lambda r: r.index)], judged)


def test_langchains_cohere_rerank(tiny_server, reranker):
    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    compressor = CohereRerank(model="qrr", cohere_api_key="unused", base_url=tiny_server.url, top_n=2)
    kept = compressor.compress_documents([Document(page_content=d) for d in DOCS], QUERY)
    expected = reranker.score([(QUERY, d) for d in DOCS])
    best = sorted(range(5), key=lambda i: -expected[i])[:2]
    assert [d.page_content for d in kept] == [DOCS[i] for i in best]
    close([d.metadata["relevance_score"] for d in kept], [expected[i] for i in best])


def test_haystacks_rankers(tiny_server, reranker, monkeypatch):
    """Haystack's rankers of the four APIs: vLLM's, TEI's, Cohere's and Jina's, each by its base URL alone."""
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")  # read when haystack is imported: no phoning home
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.cohere import CohereRanker
    from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker
    from haystack_integrations.components.rankers.jina import JinaRanker
    from haystack_integrations.components.rankers.vllm import VLLMRanker

    key, url = Secret.from_token("unused"), tiny_server.url
    expected = reranker.score([(QUERY, d) for d in DOCS])
    best = sorted(range(len(DOCS)), key=lambda i: -expected[i])[:2]
    rankers = {
        "vllm": VLLMRanker(model="qrr", api_base_url=f"{url}/v1", api_key=key),
        "tei": HuggingFaceTEIRanker(url=url, token=key),
        "cohere": CohereRanker(model="qrr", api_base_url=url, api_key=key),
        "jina": JinaRanker(model="qrr", base_url=f"{url}/rerank", api_key=key),
    }
    for name, ranker in rankers.items():
        kept = ranker.run(query=QUERY, documents=[Document(content=d) for d in DOCS], top_k=2)["documents"]
        assert [d.content for d in kept] == [DOCS[i] for i in best], name
        close([d.score for d in kept], [expected[i] for i in best], tol=1e-5)
    # docs/serving.md's way to send an instruction: vLLM's ranker passes extra parameters in the body
    judged = reranker.score([(QUERY, d, "Judge code relevance") for d in DOCS])
    asked = VLLMRanker(model="qrr", api_base_url=f"{url}/v1", api_key=key,
                       extra_parameters={"instruction": "Judge code relevance"})  # fmt: skip
    kept = asked.run(query=QUERY, documents=[Document(content=d) for d in DOCS])["documents"]
    close(sorted(d.score for d in kept), sorted(judged), tol=1e-5)
    # qrr's message reaches the user: a query over the prompt's length
    long = "word " * 2100
    with httpx.Client(base_url=url) as http:
        message = http.post("/rerank", json={"query": long, "documents": ["d"]}).json()["message"]
    assert message == ('"query": the query and instruction take 2125 tokens, but the server\'s --max-length 2048 '
                       "leaves 2000 for query, instruction and document together (the prompt frame takes 48); raise "
                       "the server's --max-length or shorten the query")  # fmt: skip
    for name, ranker in rankers.items():
        with pytest.raises(Exception) as caught:
            ranker.run(query=long, documents=[Document(content="d")])
        if name == "cohere":
            assert caught.value.body["message"] == message  # the SDK's BadRequestError
        elif name == "tei":  # its RuntimeError holds the body as sent
            assert f'"message":{json.dumps(message)}' in str(caught.value)
        else:
            assert str(caught.value) == message


def test_qrr_rank_through_the_server_equals_qrr_rank(tiny_server, cli, tiny_model, monkeypatch):
    data = "".join(json.dumps({"id": f"d{i}", "text": d}) + "\n" for i, d in enumerate(DOCS))
    local = cli("rank", "-q", QUERY, "-k", "3", input=data, model=tiny_model)
    remote = cli("rank", "-q", QUERY, "-k", "3", "--server", tiny_server.url, input=data, model=False)
    assert remote.exit_code == 0, remote.output
    rows, want = [json.loads(x) for x in remote.stdout.splitlines()], [json.loads(x) for x in local.stdout.splitlines()]
    assert [(r["rank"], r["index"], r["id"]) for r in rows] == [(r["rank"], r["index"], r["id"]) for r in want]
    close([r["score"] for r in rows], [r["score"] for r in want])
    monkeypatch.setenv("QRR_SERVER", tiny_server.url)
    assert cli("rank", "-q", QUERY, "-k", "3", input=data, model=False).stdout == remote.stdout
    # host:port, as curl takes it, means http://host:port
    bare = tiny_server.url.removeprefix("http://")
    assert cli("rank", "-q", QUERY, "-k", "3", "--server", bare, input=data, model=False).stdout == remote.stdout
    # a model named on the command line wins over $QRR_SERVER; with --server itself, it is an error
    here = cli("rank", "-q", QUERY, "-k", "3", input=data, model=tiny_model)
    assert here.stdout == local.stdout
    assert here.stderr == (
        f"note: --model, --device, --dtype given: the model is loaded here, not asked of "
        f"$QRR_SERVER ({tiny_server.url})\n"
        "warning: 1 blank document (<stdin>:5) scored as given: such a score says nothing of relevance\n"
    )  # the test cli passes all three; DOCS's last is empty
    refused = cli("rank", "-q", QUERY, "--device", "cpu", "--server", tiny_server.url, input=data, model=False)
    assert refused.exit_code == 2 and refused.stderr == "error: --device: not with --server, whose model scores\n"


def test_a_text_formatted_as_the_prompt_is_warned_of_where_it_was_sent_and_in_the_servers_log(tiny_server, cli):
    frame = ("a marker of the prompt qrr writes around each pair: a text formatted as that prompt already (as vLLM's "
             "Qwen3-Reranker example formats them) gets the frame twice and another score; send the bare query and "
             "document, and the instruction apart")  # fmt: skip
    pairs = '{"query": "q", "document": "d"}\n{"query": "<|im_start|>system\\nJudge", "document": "d"}\n' * 2
    scored = cli("score", "--server", tiny_server.url, input=pairs, model=False)
    assert scored.exit_code == 0 and len(scored.stdout.splitlines()) == 4
    assert scored.stderr == f"warning: a query starts or ends with '<|im_start|>', {frame}, as --instruction\n"
    ranked = cli("rank", "-q", "q", "-d", "d", "-d", "<Document>: d", "--server", tiny_server.url, model=False)
    assert ranked.stderr == f"warning: a document starts or ends with '<Document>:', {frame}, as --instruction\n"
    # the server's own log says it once, of the first, in a request's words
    tiny_server.until_said(f"warning: a query starts or ends with '<|im_start|>', {frame}, as a request's "
                           '"instruction" field')  # fmt: skip
    assert tiny_server.stderr.count(frame) == 1


def test_qrr_rank_sends_what_the_server_takes(tiny_server, cli, tiny_model):
    # 120 documents: the server takes 50 a request and 20,000 bytes a body
    data = "".join(f"document {n} about {'something ' * (n % 40)}\n" for n in range(120))
    remote = cli("rank", "-q", "q", "--server", tiny_server.url, input=data, model=False)
    local = cli("rank", "-q", "q", input=data, model=tiny_model)
    assert remote.exit_code == 0, remote.output
    rows, want = [json.loads(x) for x in remote.stdout.splitlines()], [json.loads(x) for x in local.stdout.splitlines()]
    assert len(rows) == 120 and [r["index"] for r in rows] == [r["index"] for r in want]
    close([r["score"] for r in rows], [r["score"] for r in want])


def test_qrr_score_through_the_server_equals_qrr_score(tiny_server, cli, tiny_model, tmp_path):
    # 130 pairs, runs of three instructions (one the default): the server takes 50 a request
    tasks = {n: ["Judge", "Find it"][n // 40 % 2] for n in range(60, 130)}  # the first 60 need two requests
    pairs = [{"id": n, "query": f"query {n % 7}", "document": f"document {n} " + "word " * (n % 30),
              **({"instruction": tasks[n]} if n in tasks else {})} for n in range(130)]  # fmt: skip
    data = "".join(json.dumps(p) + "\n" for p in pairs)
    remote = cli("score", "--server", tiny_server.url, "-i", "Default task", input=data, model=False)
    local = cli("score", "-i", "Default task", input=data, model=tiny_model)
    assert remote.exit_code == 0 and remote.stderr == "", remote.output
    rows, want = [json.loads(x) for x in remote.stdout.splitlines()], [json.loads(x) for x in local.stdout.splitlines()]
    assert [(r["index"], r["id"]) for r in rows] == [(r["index"], r["id"]) for r in want] == list(
        zip(range(130), range(130), strict=True))  # fmt: skip
    close([r["score"] for r in rows], [r["score"] for r in want])
    # a document cut to fit is named as a local run names it (it was not: the server did not say which), at the
    # server's length, which --max-length here does not change
    long = "".join(json.dumps({"query": "q", "document": d}) + "\n" for d in ("short", "word " * 2100, "short"))
    cut = cli("score", "--server", tiny_server.url, input=long, model=False)
    assert cut.stderr == "note: 1 document cut to the server's max length 2048 (<stdin>:2)\n"
    assert cli("score", "--max-length", "2048", input=long, model=tiny_model).stderr == (
        "note: 1 document cut to --max-length 2048 (<stdin>:2)\n")  # fmt: skip
    # -v says what scores, as it says a model loaded here
    said = cli("score", "--server", tiny_server.url, "-v", "-q", "q", "-d", "a", model=False).stderr.splitlines()
    assert said[0] == f"model {tiny_model} at {tiny_server.url}, transformers recipe, max length 2048"
    # a --resume run without -i is the server's instruction's, which the record keeps: another -i is refused
    # (a tour appended another instruction's scores, exit 0; the tiny model's rescoring check let them pass)
    out = tmp_path / "out.jsonl"
    first = cli("score", "--server", tiny_server.url, "--resume", str(out), input=data, model=False)
    assert first.exit_code == 0, first.output
    other = cli("score", "--server", tiny_server.url, "--resume", str(out), "-i", "Judge", input=data + data,
                model=False)  # fmt: skip
    assert (other.exit_code, other.stderr) == (2, f"error: --resume {out} was written with --instruction \"Given a "
                                                  "web search query, retrieve relevant passages that answer the "
                                                  f'query", not "Judge" (as {tmp_path / ".out.jsonl.qrr.json"} keeps); '
                                                  "go on with that, or score into a new file\n")  # fmt: skip
    # as with rank: model options clash with --server itself; --ray reads files, not a server
    refused = cli("score", "--server", tiny_server.url, "--dtype", "fp32", input=data, model=False)
    assert refused.exit_code == 2 and refused.stderr == "error: --dtype: not with --server, whose model scores\n"
    refused = cli("score", "x.jsonl", "--ray", "-o", "out", "--server", tiny_server.url, model=False)
    assert refused.exit_code == 2
    assert refused.stderr == "error: --server: not with --ray, which reads FILEs and writes --output shards\n"


def test_qrr_rerank_and_eval_through_the_server(tiny_server, cli, tiny_model, beir_dir, tmp_path):
    args = [str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "5", "-f", "jsonl"]
    remote = cli("rerank", *args, "--server", tiny_server.url, model=False)
    local = cli("rerank", *args, model=tiny_model)
    assert remote.exit_code == 0, remote.output
    rows, want = [json.loads(x) for x in remote.stdout.splitlines()], [json.loads(x) for x in local.stdout.splitlines()]
    assert [(r["qid"], r["docid"]) for r in rows] == [(r["qid"], r["docid"]) for r in want] and len(rows) == 25
    close([r["score"] for r in rows], [r["score"] for r in want])
    # a --resume file of the server's keeps the set-up the server says it has (its model's name is not compared),
    # so a run without the server goes on with it where instruction, max length and recipe are the same
    out = tmp_path / "out.jsonl"
    resumed = str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "5", "--resume", str(out)
    assert cli("rerank", *resumed, "--server", tiny_server.url, "-i", "Judge", model=False).exit_code == 0
    assert json.loads((tmp_path / ".out.jsonl.qrr.json").read_text()) == {
        "instruction": "Judge",
        "max_length": 2048,
        "recipe": "transformers",
        "dtype": "fp32",
        "depth": 5,
        "keep_rest": False,
        "made_with": [{"qrr": qrr.__version__, "server": tiny_server.url}],  # its releases are its own
        "first": out.read_text().splitlines()[0],
    }
    other = cli("rerank", *resumed, "-i", "Judge it", "--max-length", "2048", model=tiny_model)
    assert other.exit_code == 2 and other.stderr.startswith(
        f'error: --resume {out} was written with --instruction "Judge"'
    )
    other = cli("rerank", *resumed, "-i", "Judge", model=tiny_model)  # the server's --max-length 2048
    assert other.exit_code == 2 and other.stderr.startswith(f"error: --resume {out} was written with --max-length 2048")
    other = cli("rerank", *resumed, "-i", "Judge", "--max-length", "2048", "--dtype", "bf16", model=tiny_model)
    assert other.exit_code == 2 and other.stderr.startswith(f"error: --resume {out} was written in fp32 (as ")
    # the model was the server's, which the record does not know: not checked, as the note says
    assert cli("rerank", *resumed, "-i", "Judge", "--max-length", "2048", model=tiny_model).stderr.endswith(
        "nothing left to rerank (no model was loaded, so its results were not checked against these settings)\n"
    )
    refused = cli("rerank", *args, "--server", tiny_server.url, "--ray", model=False)
    assert (refused.exit_code, refused.stderr) == (2, "error: --server: not with --ray, whose actors load the model\n")
    measured = cli("eval", "--beir", str(beir_dir), "--run", str(beir_dir / "bm25.trec"), "-f", "json",
                   "--server", tiny_server.url, model=False)  # fmt: skip
    assert measured.exit_code == 0, measured.output
    assert [r["run"] for r in json.loads(measured.stdout)] == [str(beir_dir / "bm25.trec"), f"qrr at {tiny_server.url}"]
    # said before any file is read (this folder does not exist)
    clash = cli("eval", "--beir", "nowhere", "--run", "r.trec", "--server", "x:1", "--dtype", "fp32", model=False)
    assert (clash.exit_code, clash.stderr) == (2, "error: --dtype: not with --server, whose model scores\n")
    misplaced = cli("eval", str(beir_dir / "qrels" / "test.tsv"), str(beir_dir / "bm25.trec"), "--server", "x:1",
                    model=False)  # fmt: skip
    assert (misplaced.exit_code, misplaced.stderr) == (2, "error: --server: only with --beir\n")


def test_core_warnings_read_as_without_a_server(tiny_server, cli):
    pairs = [{"query": "q", "document": f"doc {n}", **({"qid": "Q"} if n >= 1030 else {})} for n in range(1040)]
    result = cli("score", "-f", "tsv", "--server", tiny_server.url, input="".join(json.dumps(p) + "\n" for p in pairs),
                 model=False)  # fmt: skip
    assert result.exit_code == 0 and result.stderr == (
        "warning: the 1,031st result has a field the TSV header (from the first results) lacks: qid; it is left out, "
        "here and after (--format jsonl keeps every field)\n")  # fmt: skip


def test_what_a_server_cannot_take_is_said_before_it_is_sent(tiny_server, cli, monkeypatch):
    # the tiny server takes 20,000 bytes a request: one document over that would be refused unread (413)
    result = cli("rank", "-q", "q", "-d", "word " * 5000, "--server", tiny_server.url, model=False)
    said = (
        f"error: a document of 25,003 bytes is over what the server at {tiny_server.url} takes in a request "
        "(its --max-request-bytes 20,000 leaves 19,898 for it): cut it first, or score it with a model loaded here\n"
    )
    assert (result.exit_code, result.stderr) == (2, said)
    # a query (or instruction) alone past it: said of the query, not of a document of a few bytes
    for asked in (["-q", "q" * 20000], ["-q", "q", "-i", "i" * 20000]):
        result = cli("rank", *asked, "-d", "a", "--server", tiny_server.url, model=False)
        assert result.exit_code == 2 and result.stderr.startswith("error: the query and instruction take 20,0")
        assert result.stderr.endswith("bytes, over what the server at " + tiny_server.url + " takes in a request "
                                      "(its --max-request-bytes 20,000): shorten them, or score with a model "
                                      "loaded here\n")  # fmt: skip
    result = cli("score", "--server", tiny_server.url, input=json.dumps({"query": "q" * 20000, "document": "a"}),
                 model=False)  # fmt: skip
    assert result.exit_code == 2 and result.stderr.startswith("error: a query and document of 20,0")
    # an OpenAI-style base URL: the endpoints are below the root
    result = cli("rank", "-q", "q", "-d", "x", "--server", tiny_server.url + "/v1", model=False)
    said = f"error: the server at {tiny_server.url}/v1 answered 404: no endpoint /v1/v1/models (give the server's URL"
    assert (result.exit_code, result.stderr) == (2, said + " without /v1)\n")
    result = cli("rank", "-q", "q", "-d", "x", "--server", tiny_server.url + "/v1/rerank", model=False)
    assert result.stderr.endswith("no endpoint /v1/rerank/v1/models (give the server's URL without /v1/rerank)\n")
    monkeypatch.setenv("QRR_SERVER", "ftp://x")  # from the environment: said as the variable, not a flag
    result = cli("rank", "-q", "q", "-d", "x", model=False)
    assert (result.exit_code, result.stderr) == (2, "error: $QRR_SERVER 'ftp://x': give the server's URL, such as "
                                                    "http://localhost:8000\n")  # fmt: skip
    monkeypatch.delenv("QRR_SERVER")
    # the last two: a ValueError; a space, which the request refused with http.client's InvalidURL
    for url in ("ftp://localhost:1", "localhost:port", "", "18931", "http://[::1", "http://not a url"):
        result = cli("rank", "-q", "q", "-d", "x", "--server", url, model=False)
        assert (result.exit_code, result.stderr) == (2, f"error: --server {url!r}: give the server's URL, such as "
                                                        "http://localhost:8000\n")  # fmt: skip


def test_remote_scores_check_pairs_as_the_reranker_does():
    from qrr.errors import InputError
    from qrr.server.client import RemoteReranker

    remote = RemoteReranker("localhost:9")  # nothing is sent: the pairs fail first
    assert remote.url == "http://localhost:9"
    for pairs, message in ((["ab"], "pair 0: expected"), ([("q", "d"), ("q",)], "pair 1: expected"),
                           ([("q", 3)], "pair 0: document must be a string")):  # fmt: skip
        with pytest.raises(InputError, match=message):
            remote.score(pairs)
    for call, message in (
        (lambda: remote.rank(None, ["d"]), "^query must be a string, not NoneType$"),
        (lambda: remote.rank("q", ["d", {"text": "e"}]), r"^document 1 must be a string, not dict \(pass its 'text'"),
        (lambda: remote.rank("q", ["d"], instruction=5), "^instruction must be a string, not int$"),
        (lambda: remote.rank("q", ["d"], return_documents="no"), "^return_documents must be True or False, not 'no'$"),
    ):
        with pytest.raises(InputError, match=message):
            call()


def test_a_server_that_does_not_answer_in_time():
    from qrr.server.client import RemoteReranker

    with socket.socket() as sock:  # listening, never answering: the connection is made, no answer comes
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # not "cannot reach"; an application falls back on either
        with pytest.raises(ServerUnavailable, match=rf"^the server at {url} did not answer within 0.5 s$"):
            RemoteReranker(url, timeout=0.5).rank("q", ["d"])


def test_a_server_that_never_answers_is_said_in_seconds_and_one_not_qrr_by_what_it_is(monkeypatch):
    """The first call waited the scoring timeout (an hour) on a server that takes connections and never answers (a
    stuck proxy); a login page answering 200 gave a JSONDecodeError naming neither server nor cause."""
    import http.server

    from qrr.errors import InputError, QrrError
    from qrr.server import client

    monkeypatch.setattr(client, "PROBE_TIMEOUT", 0.5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ServerUnavailable, match=rf"^the server at {url} did not answer within 0.5 s$"):
            client.RemoteReranker(url).rank("q", ["d"])  # the default timeout: an hour for scoring
        with pytest.raises(ServerUnavailable, match=rf"^the server at {url} did not answer within 0.5 s$"):
            client.RemoteReranker(url, timeout=None).rank("q", ["d"])  # none for scoring: urllib's way (TypeError)

    agents = []

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            agents.append(self.headers["User-Agent"])
            body = b"<html>Sign in</html>" if self.path == "/v1/models" else b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path == "/v1/models" else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages) as pages:
        threading.Thread(target=pages.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{pages.server_address[1]}"
        with pytest.raises(QrrError, match=rf"^the server at {url} answered /v1/models with text/html, not JSON: is "
                                           r"it a qrr serve\?$"):  # fmt: skip
            client.RemoteReranker(url).rank("q", ["d"])
        assert agents == [f"qrr/{qrr.__version__}"]  # a server's log tells qrr's clients, and their release, apart
        monkeypatch.setattr(Pages, "do_GET", _json_page(b'{"data": []}'))
        with pytest.raises(QrrError, match=rf"^the server at {url} answered /v1/models without a model: is it a qrr "
                                           r"serve\?$"):  # fmt: skip
            client.RemoteReranker(url).rank("q", ["d"])
        pages.shutdown()
    # a URL with a user and password: sent as a host name, and the message echoed the password
    with pytest.raises(InputError) as caught:
        client.RemoteReranker("http://me:s3cret@127.0.0.1:9")
    assert str(caught.value) == ("url 'http://127.0.0.1:9' with a user or password: give the URL without them (qrr "
                                 "sends $QRR_API_KEY as a bearer token)")  # fmt: skip
    # each argument checked as it is given, in the parameter's name (an int's .strip() raised AttributeError)
    timeout = "timeout must be a number of seconds above 0 (or None: no limit), not "
    for args, said in (((123,), "url must be a string such as http://localhost:8000, not int"),
                       (("ftp://x",), "url 'ftp://x': give the server's URL, such as http://localhost:8000"),
                       (("x:1", 5), "api_key must be a string, not int"), (("x:1", None, -1), timeout + "-1"),
                       (("x:1", None, "5"), timeout + "'5'"), (("x:1", None, 0), timeout + "0")):  # fmt: skip
        with pytest.raises(InputError) as caught:
            client.RemoteReranker(*args)
        assert str(caught.value) == said
    assert client.RemoteReranker("x:1", timeout=None).timeout is None
    # an international host name and path, sent as the wire writes them (http.client raised UnicodeEncodeError)
    assert (
        client.RemoteReranker("http://例子.测试:8000/路径").url
        == "http://xn--fsqu00a.xn--0zwm56d:8000/%E8%B7%AF%E5%BE%84"
    )
    assert client.RemoteReranker("bücher.de").url == "http://xn--bcher-kva.de"
    assert client.RemoteReranker("http://[::1]:8000/路径?a=b+c").url == "http://[::1]:8000/%E8%B7%AF%E5%BE%84?a=b+c"
    with pytest.raises(InputError) as caught:
        client.RemoteReranker("http://" + "ü" * 70 + ".de")
    assert str(caught.value) == f"url 'http://{'ü' * 70}.de': its host name is no international domain name"


def test_a_busy_server_is_asked_again_and_a_failing_one_is_not(monkeypatch):
    """A 503 of a full queue (Retry-After) is sent again; a model's own failure (out of memory: no Retry-After) failed
    30 times, a second apart, before the user heard of it."""
    import http.server

    from qrr.server import client

    answers, posts, waits = [], [], []
    monkeypatch.setattr(client.time, "sleep", waits.append)

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            _json_page(b'{"data": [{"id": "m", "max_model_len": 8192}]}')(self)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            posts.append(self.path)
            status, headers, body = answers.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    full = (
        503,
        {"Retry-After": "2"},
        b'{"message": "the server is busy: 3 requests wait for the model; retry shortly"}',
    )
    ok = (200, {}, b'{"results": [{"index": 0, "relevance_score": 0.25}], "usage": {"total_tokens": 9}}')
    notes = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())
    logging.getLogger("qrr").addHandler(handler)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages) as pages:
        threading.Thread(target=pages.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{pages.server_address[1]}"
        answers[:] = [full, (503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, b"{}"), ok]
        try:
            assert client.RemoteReranker(url).rank("q", ["d"])[0]["score"] == 0.25
        finally:
            logging.getLogger("qrr").removeHandler(handler)
        assert (len(posts), waits) == (3, [2.0, 1.0])  # as asked; a date (a proxy's) as a second
        # said once, not at each wait: a run had waited on a busy server in silence
        assert notes == [f"the server at {url} is busy (its queue is full): asking again in 2 s, as it asks, up to 30 "
                         "times"]  # fmt: skip
        # a proxy's 503, its backend away, is asked again as it asks, and said as it is, not as a full queue
        notes.clear()
        logging.getLogger("qrr").addHandler(handler)
        answers[:] = [(503, {"Retry-After": "3"}, b"<html>Service Unavailable</html>"), ok]
        try:
            assert client.RemoteReranker(url).rank("q", ["d"])[0]["score"] == 0.25
        finally:
            logging.getLogger("qrr").removeHandler(handler)
        assert notes == [f"the server at {url} answered 503 (Service Unavailable): asking again in 3 s, as it asks, up "
                         "to 30 times"]  # fmt: skip
        posts.clear()
        answers[:] = [(503, {}, b'{"message": "out of memory in a batch of 2 rows"}'), ok]
        said = rf"^the server at {url} answered 503: out of memory in a batch of 2 rows$"
        with pytest.raises(ServerUnavailable, match=said):
            client.RemoteReranker(url).rank("q", ["d"])
        assert posts == ["/rerank"]  # once
        pages.shutdown()
    import email.message
    import urllib.error

    def asked(value):
        headers = email.message.Message()
        headers["Retry-After"] = value
        return client._retry_after(urllib.error.HTTPError("http://x", 503, "busy", headers, None))

    assert [asked(v) for v in ("0", "-5", "3600", "inf", "nan")] == [0.0, 0.0, 60.0, 1.0, 1.0]  # never past a minute


def test_a_proxys_503_while_the_server_is_away_is_one_more_try_within_the_wait(monkeypatch):
    """A proxy in front of a restarting server answers /v1/models 503 with Retry-After: each probe waited on it, up to
    30 times (30 minutes where it asks a minute), and said the server's queue was full."""
    import http.server

    from qrr.errors import QrrError
    from qrr.server import client

    probes = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            probes.append(self.path)
            if len(probes) == 1:  # the server, before it went away
                _json_page(b'{"data": [{"id": "m", "max_model_len": 8192}]}')(self)
                return
            body = b'{"message": "upstream unavailable"}'
            self.send_response(503)
            self.send_header("Retry-After", "60")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # dropped under the request: the server went away
            self.rfile.read(int(self.headers["Content-Length"]))
            self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, *args):
            pass

    notes = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())
    monkeypatch.setattr(logging.getLogger("qrr"), "handlers", [handler])
    monkeypatch.setattr(client, "RECONNECT_FOR", 1.5)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        remote = client.RemoteReranker(url)
        assert remote.model == "m"
        with pytest.raises(QrrError) as caught:
            remote.predict([("q", "d")])
        assert str(caught.value).startswith(f"the server at {url} went away (")
        assert str(caught.value).endswith(f"did not come back within 1.5 s (last: the server at {url} answered 503: "
                                          "upstream unavailable)")  # fmt: skip
        assert 2 <= len(probes) <= 4  # a try a second within the wait, none on its Retry-After
        assert not [note for note in notes if "busy" in note]  # not qrr serve's full queue
        # a first call answered so is said at once: qrr serve's /v1/models is never busy
        probes.clear()
        probes.append("as if the first")
        with pytest.raises(ServerUnavailable) as caught:
            client.RemoteReranker(url).rank("q", ["d"])
        assert str(caught.value) == f"the server at {url} answered 503: upstream unavailable"
        assert len(probes) == 2
        proxy.shutdown()


def _json_page(body: bytes):
    def do_get(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    return do_get


def test_qrr_rank_with_no_server_there(cli):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free: nothing listens once the socket closes
    result = cli("rank", "-q", "q", "-d", "x", "--server", f"http://127.0.0.1:{port}", model=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach the server at http://127.0.0.1:{port}: ")
    assert result.stderr.endswith("Connection refused (is it running, or still loading its model?)\n")


def test_concurrent_requests_get_the_scores_they_get_alone(tiny_server, reranker):
    requests = [(f"query {n}", [f"document {n} {i} " * (1 + (n + i) % 7) for i in range(12)]) for n in range(16)]
    alone = [reranker.score([(q, d) for d in docs]) for q, docs in requests]
    answers: dict = {}
    start = threading.Barrier(len(requests))

    def send(n):
        with tiny_server.client() as client:
            start.wait()
            query, docs = requests[n]
            answers[n] = client.post("/score", json={"text_1": query, "text_2": docs}).json()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for n, expected in enumerate(alone):
        close([d["score"] for d in answers[n]["data"]], expected)


# ----------------------------------------------------------------------------------------- auth, load, stop


def test_an_api_key_guards_every_endpoint_but_health(tiny_model, cli, monkeypatch):
    from qrr.errors import QrrError
    from qrr.server.client import RemoteReranker

    server = Server("--model", str(tiny_model), env={"QRR_API_KEY": "s3cret"})
    try:
        assert "API key required" in server.stderr
        with server.client() as http:
            assert http.get("/health").status_code == 200
            for method, path in (("POST", "/v1/rerank"), ("POST", "/v2/rerank"), ("POST", "/rerank"),
                                 ("POST", "/score"), ("POST", "/v1/score"), ("GET", "/v1/models"), ("GET", "/metrics"),
                                 ("GET", "/openapi.json")):  # fmt: skip
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                                {"Authorization": "Basic s3cret"}):  # fmt: skip
                    response = http.request(method, path, json={"query": "q", "documents": ["a"]}, headers=headers)
                    assert response.status_code == 401, (path, headers)
                    assert response.headers["WWW-Authenticate"] == "Bearer"
                    assert response.json()["message"] == "missing or wrong API key: send Authorization: Bearer KEY"
            good = {"Authorization": "Bearer s3cret"}
            assert http.post("/rerank", json={"query": "q", "documents": ["a"]}, headers=good).status_code == 200
            lower = {"Authorization": "bearer s3cret"}  # a scheme's name in any case (RFC 7235)
            assert http.post("/rerank", json={"query": "q", "documents": ["a"]}, headers=lower).status_code == 200
            assert http.get("/metrics", headers=good).status_code == 200
            described = http.get("/openapi.json", headers=good).json()  # it says so
            assert described["security"] == [{"bearer": []}] and described["paths"]["/health"]["get"]["security"] == []
        monkeypatch.delenv("QRR_API_KEY", raising=False)
        refused = cli("rank", "-q", "q", "-d", "x", "--server", server.url, model=False)
        assert (refused.exit_code, refused.stderr) == (2, f"error: the server at {server.url} wants an API key: set "
                                                          "QRR_API_KEY\n")  # fmt: skip
        monkeypatch.setenv("QRR_API_KEY", "")  # `docker -e QRR_API_KEY=`: it said "set QRR_API_KEY", though it was
        refused = cli("rank", "-q", "q", "-d", "x", "--server", server.url, model=False)
        assert refused.stderr == f"error: the server at {server.url} wants an API key: QRR_API_KEY is empty\n"
        monkeypatch.setenv("QRR_API_KEY", "wrong")
        refused = cli("rank", "-q", "q", "-d", "x", "--server", server.url, model=False)
        assert refused.stderr == (f"error: the server at {server.url} refused the API key in QRR_API_KEY: give the key "
                                  "the server was started with\n")  # fmt: skip
        with pytest.raises(QrrError, match=r"refused the API key in api_key: give"):  # in Python: not the variable
            RemoteReranker(server.url, api_key="wrong").score([("q", "a")])
        monkeypatch.setenv("QRR_API_KEY", "s3cret")
        assert cli("rank", "-q", "q", "-d", "x", "--server", server.url, model=False).exit_code == 0
    finally:
        assert server.stop() == 0


def test_the_served_model_name(cli):
    """-m as given is the default name, which for a folder showed its path to every client."""
    server = Server("--model", "fake", "--served-model-name", "qwen3-reranker", fake=True)
    try:
        with server.client() as http:
            assert http.get("/v1/models").json()["data"][0]["id"] == "qwen3-reranker"
            assert http.get("/health").json()["model"] == "qwen3-reranker"
            assert http.post("/v1/rerank", json={"query": "q", "documents": ["a"]}).json()["model"] == "qwen3-reranker"
    finally:
        assert server.stop() == 0
    result = cli("serve", "--served-model-name", " ", model=False)
    assert (result.exit_code, result.stderr) == (2, "error: --served-model-name: give a name that is not empty\n")


def test_a_busy_server_merges_queues_drops_and_stops_gracefully(tmp_path):
    # the fake model runs a batch only once the gate file says so: the test holds the model
    gate = tmp_path / "gate"
    gate.write_text("0")
    server = Server("--model", "fake", "--max-queue", "2", fake=True, env={"QRR_FAKE_GATE": str(gate)})
    body = {"query": "q", "documents": ["a", "b"]}
    results: dict = {}

    def send(name):
        with server.client() as http:
            results[name] = http.post("/rerank", json=body)

    def metrics() -> str:
        with server.client() as http:
            return http.get("/metrics").text

    def start(name) -> threading.Thread:
        thread = threading.Thread(target=send, args=(name,))
        thread.start()
        return thread

    try:
        busy = start("busy")
        server.until_metrics("qrr_busy 1")  # the model holds the first request
        waiting = [start("w0"), start("w1")]
        server.until_metrics("qrr_queue_depth 2")
        with server.client() as http:
            full = http.post("/rerank", json=body)
        assert full.status_code == 503 and full.headers["Retry-After"] == "1"
        assert full.json()["message"].startswith("the server is busy: 2 requests wait for the model")
        gate.write_text("2")
        for t in (busy, *waiting):
            t.join(60)
        assert [results[n].status_code for n in ("busy", "w0", "w1")] == [200, 200, 200]
        assert "qrr_scoring_calls_total 2" in metrics()  # the two waiting requests shared one call

        # a client that leaves has its waiting work dropped
        busy = start("busy2")
        server.until_metrics("qrr_busy 1")
        with pytest.raises(httpx.ReadTimeout), server.client() as http:
            http.post("/rerank", json={"query": "gone", "documents": ["x"] * 3}, timeout=0.5)
        server.until_metrics('qrr_requests_total{endpoint="/rerank",status="499"} 1')
        gate.write_text("3")
        busy.join(60)
        server.until_metrics("qrr_busy 0")
        said = metrics()
        assert "qrr_scoring_calls_total 3" in said and "qrr_pairs_total 8" in said  # "gone" was never scored

        # one that leaves while its request is scored: the work stops at the next forward pass (of two)
        with pytest.raises(httpx.ReadTimeout), server.client() as http:
            http.post("/rerank", json={"query": "left", "documents": [f"d{n}" for n in range(40)]}, timeout=0.5)
        server.until_metrics('qrr_requests_total{endpoint="/rerank",status="499"} 2')
        gate.write_text("4")  # its first pass: a second would wait at the gate, busy
        server.until_metrics("qrr_scoring_calls_abandoned_total 1")
        said = metrics()
        assert "qrr_busy 0" in said and "qrr_scoring_calls_total 3" in said and "qrr_pairs_total 8" in said

        # SIGTERM while a request is in flight: it is answered, new connections are refused, exit 0
        busy = start("last")
        server.until_metrics("qrr_busy 1")
        server.process.send_signal(signal.SIGTERM)
        server.until_said("stopping")
        gate.write_text("5")
        busy.join(60)
        assert results["last"].status_code == 200 and len(results["last"].json()["results"]) == 2
        assert server.process.wait(60) == 0
        with pytest.raises(httpx.ConnectError), server.client() as http:
            http.get("/health")
        assert "stopping: new requests are refused, those in flight answered (for up to 25 s)\n" in server.stderr
        assert server.stderr.rstrip().endswith("stopped")
        # without -v the log says that requests were refused, and that clients left: at once, then what came within
        # a minute when it is up or, here, as the server stops
        warned = [line for line in server.stderr.splitlines() if line.startswith("warning:")]
        assert warned[:2] == [
            "warning: the queue was full (--max-queue 2): 1 request refused with 503; said again at most once a minute",
            "warning: 1 client left before its answer (a timeout shorter than the wait?); said again at most once a "
            "minute",
        ]
        assert len(warned) == 3 and re.fullmatch(r"warning: 1 client left before its answer in the last \d+ s \(a "
                                                 r"timeout shorter than the wait\?\)",
                                                 warned[2]), warned  # fmt: skip
        assert "Traceback" not in server.stderr  # asyncio's of an abandoned request's future, which no one read
    finally:
        gate.write_text("1000")
        server.stop()


def test_a_stop_does_not_wait_on_a_forward_pass_whose_client_left(tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("0")  # the model never ends the pass: a long document's, which cannot be stopped
    server = Server("--model", "fake", fake=True, env={"QRR_FAKE_GATE": str(gate)})
    try:
        with pytest.raises(httpx.ReadTimeout), server.client() as http:
            http.post("/rerank", json={"query": "q", "documents": ["a"]}, timeout=0.5)
        server.until_metrics('qrr_requests_total{endpoint="/rerank",status="499"} 1')
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(20) == 0  # it waited --shutdown-timeout, then said requests were dropped: 143
        assert server.stderr.splitlines()[-1] == "stopped (not waiting for a forward pass whose client left)"
    finally:
        gate.write_text("1000")
        server.stop()


def test_a_warning_of_requests_refused_or_left_is_said_at_most_once_a_minute(monkeypatch):
    from qrr.server import app

    said, now, timers = [], [100.0], []
    monkeypatch.setattr(app, "warn", lambda log, template, *params: said.append(template))
    tally = app._Tally(lambda n, since: (f"{n} refused{since} ({{max_queue}})", "max_queue"), clock=lambda: now[0],
                       later=lambda delay, function: timers.append((now[0] + delay, function)))  # fmt: skip

    def at(moment: float) -> None:  # the timers due by then, then the clock
        while timers and timers[0][0] <= moment:
            now[0], function = timers.pop(0)
            function()
        now[0] = moment

    for moment in (100.0, 130.0, 150.0):  # said at once, then two within its minute
        at(moment)
        tally.saw()
    at(170.0)  # the minute is up: the two are said though no more came
    assert said == ["1 refused ({max_queue}); said again at most once a minute",
                    "2 refused in the last 60 s ({max_queue})"]  # fmt: skip
    at(175.0)
    tally.saw()  # within a minute of that line: said when it is up
    at(300.0)
    tally.saw()  # after a quiet minute: at once
    tally.saw()
    tally.flush()  # the server stops: what its last minute counted
    tally.flush()  # nothing more
    assert said[2:] == ["1 refused in the last 60 s ({max_queue})", "1 refused ({max_queue})",
                        "1 refused in the last 0 s ({max_queue})"]  # fmt: skip


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("0")  # the model holds the request: it is in flight when the signals come
    server = Server("--model", "fake", "-v", fake=True, env={"QRR_FAKE_GATE": str(gate)})
    answers: list = []

    def send():
        with server.client() as http:
            try:
                answers.append(http.post("/rerank", json={"query": "q", "documents": ["a", "b"]}))
            except httpx.HTTPError as exc:
                answers.append(exc)

    try:
        busy = threading.Thread(target=send)
        busy.start()
        server.until_metrics("qrr_busy 1")
        # -v: a line per request, with the time and latency (uvicorn's went to stdout, without them)
        assert re.search(r"\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 127\.0\.0\.1:\d+ GET /metrics 200 \d+\.\d ms\n",
                         server.stderr)  # fmt: skip
        with server.client() as http:  # the path as sent: decoded, its %0a forged a second line
            assert http.get("/x%0a2026-01-01T00:00:00Z 127.0.0.1:1 POST /v1/rerank 200 1.0 ms").status_code == 404
        server.until_said(
            "GET /x%0a2026-01-01T00:00:00Z%20127.0.0.1:1%20POST%20/v1/rerank%20200%201.0%20ms 404 0.0 ms\n"
        )
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as sock:  # a client as X-Forwarded-For names it
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\x1b[2J\r\nConnection: close\r\n\r\n"
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # the escape sequence cleared the terminal of whoever watched
        server.until_said(" 6.6.6.6%1B[2J:0 GET /health 200 ")
        with server.client() as http:
            # Starlette's route patterns end in $, which matches before a final newline: /health%0a was /health
            missing = http.get("/health%0a")
            assert (missing.status_code, missing.json()["message"]) == (404, "no endpoint /health%0A")
            bidi = http.get("/a\u202e")  # past U+00FF as its UTF-8 bytes: "%202E" read as a space and 2E
            assert bidi.json()["message"] == "no endpoint /a%E2%80%AE"
            long = http.get("/" + "a" * 1000)  # echoed whole, in the answer and the log
            assert long.json()["message"] == f"no endpoint /{'a' * 511}...(1,001 characters)"
        server.until_said(f" GET /{'a' * 511}...(1,001 characters) 404 ")
        server.process.send_signal(signal.SIGINT)
        server.until_said("stopping: new requests are refused, those in flight answered (Ctrl-C again drops them)")
        server.process.send_signal(signal.SIGINT)
        # uvicorn's own forced stop sent a plain-text 500, printed tracebacks and aborted (exit 134)
        assert server.process.wait(30) == 130
        busy.join(30)
        assert len(answers) == 1 and isinstance(answers[0], httpx.HTTPError)  # dropped, not answered with a 500
        assert server.stderr.endswith("stopped at once: the requests in flight were dropped\n")
        assert "Traceback" not in server.stderr
    finally:
        gate.write_text("1000")
        server.stop()


def _stalled(url: str, sent: bytes = b'{"query":') -> socket.socket:
    """A connection that sends a request's head and part of its body, then nothing."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
    sock.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100"
                 b"\r\n\r\n" + sent)  # fmt: skip
    return sock


def test_a_stop_waits_for_a_stalled_upload_only_so_long_and_a_client_gone_mid_upload_is_no_500():
    server = Server("--model", "fake", "--shutdown-timeout", "1", fake=True, env={"WEB_CONCURRENCY": "auto"})
    try:
        # a client that leaves while it sends its body is counted as one that leaves while it waits: 499, not 500
        gone = _stalled(server.url)
        time.sleep(0.3)
        gone.close()
        deadline = time.monotonic() + 30
        with server.client() as http:
            while 'status="499"' not in http.get("/metrics").text:
                assert time.monotonic() < deadline, server.stderr
                time.sleep(0.05)
            assert 'status="500"' not in http.get("/metrics").text
        assert "error:" not in server.stderr
        # a stalled upload kept a stop waiting forever (uvicorn drains without a time limit)
        stalled = _stalled(server.url)
        time.sleep(0.3)
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.send_signal(signal.SIGTERM)  # a supervisor's second SIGTERM waits as the first
        assert server.process.wait(30) == 143 and time.monotonic() - began < 15
        assert server.stderr.count("stopping:") == 1
        assert server.stderr.endswith("stopped after --shutdown-timeout 1 s: the requests in flight were dropped\n")
        stalled.close()
    finally:
        server.stop()


@pytest.mark.parametrize("debug", ["0", "true"])
def test_a_bug_is_a_json_500_and_one_log_line_or_with_qrr_debug_its_traceback(debug):
    server = Server("--model", "fake", fake=True, env={"QRR_FAKE_FAIL": "secret-internal", "QRR_DEBUG": debug})
    try:
        with server.client() as http:
            response = http.post("/v1/rerank", json={"query": "q", "documents": ["a"]})
        assert response.status_code == 500 and response.json()["message"] == "internal error; the server log says more"
        assert "secret" not in response.text and "Traceback" not in response.text
        server.until_said("error: /v1/rerank: KeyError: 'secret-internal'", 30)
        assert ("Traceback (most recent call last)" in server.stderr) == (debug == "true")
    finally:
        assert server.stop() == 0


def test_a_hang_up_that_nohup_ignores_is_ignored(cli):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts it: the child inherits the disposition
    try:
        server = Server("--model", "fake", fake=True)
    finally:
        signal.signal(signal.SIGHUP, previous)
    try:
        server.process.send_signal(signal.SIGHUP)
        time.sleep(1)
        with server.client() as http:
            assert http.get("/health").status_code == 200
        assert "stopping" not in server.stderr
    finally:
        assert server.stop() == 0
    for value in ("0", "-1", "inf", "nan"):  # inf failed at the stop, in the timer's thread
        result = cli("serve", "--shutdown-timeout", value, model=False)
        assert (result.exit_code, result.stderr) == (
            2, f"error: --shutdown-timeout {float(value)}: give a number of seconds above 0\n")  # fmt: skip
    # 0 is refused: the help said it was taken
    assert re.search(r"--shutdown-timeout +SECONDS +How long", cli("serve", "-h", model=False).stdout)


def test_a_platform_without_sighup_serves_and_stops():
    """Windows has no SIGHUP: serve failed there at once (AttributeError), before the model loaded."""
    server = Server("--model", "fake", fake=True, env={"QRR_FAKE_NO_SIGHUP": "1"})
    try:
        with server.client() as http:
            assert http.post("/rerank", json={"query": "q", "documents": ["a"]}).status_code == 200
    finally:
        assert server.stop() == 0
    assert server.stderr.endswith("stopped\n")


def test_a_client_goes_on_after_a_server_restart_and_only_with_the_same_set_up(monkeypatch):
    """A server restarted (a redeploy) under a long run stopped it at the first refused connection; a client that
    the server has answered waits for it to come back, as it was, for up to RECONNECT_FOR seconds."""
    import logging

    from qrr.errors import QrrError
    from qrr.server import client
    from qrr.server.client import RemoteReranker

    logged: list[logging.LogRecord] = []
    kept = logging.Handler()
    kept.emit = logged.append
    monkeypatch.setattr(logging.getLogger("qrr"), "handlers", [kept])
    pairs = [("q", "a"), ("q", "b")]
    first = Server("--model", "fake", fake=True)
    port = first.url.rsplit(":", 1)[1]
    remote = RemoteReranker(first.url)
    before = remote.predict(pairs)
    assert first.stop() == 0
    later: list[Server] = []
    starting = threading.Thread(target=lambda: later.append(Server("--model", "fake", "--port", port, fake=True)))
    starting.start()  # while the client's call finds the port closed
    try:
        assert list(remote.predict(pairs)) == list(before)
        assert [(r.levelname, getattr(r, "note", False), r.getMessage()) for r in logged] == [
            ("WARNING", False, f"the server at {first.url} went away ([Errno 111] Connection refused): trying again "
                               "for up to 60 s"),
            ("WARNING", True, f"the server at {first.url} is back: going on"),
        ]  # fmt: skip
    finally:
        starting.join(120)
        assert later and later[0].stop() == 0  # a server that failed to start: said by its own error, above
    # back with another instruction: its scores would not match
    later.clear()
    starting = threading.Thread(target=lambda: later.append(
        Server("--model", "fake", "--port", port, "-i", "Find the opposite", fake=True)))  # fmt: skip
    starting.start()
    try:
        with pytest.raises(QrrError) as caught:
            remote.predict(pairs)
        assert str(caught.value) == (
            f'the server at {first.url} came back serving otherwise (instruction "Given a web search query, retrieve '
            'relevant passages that answer the query" before, "Find the opposite" now), so its scores would not match '
            "those before: start it as it was to go on"
        )
        with pytest.raises(QrrError) as again:  # and says so at every later call, none scored otherwise
            remote.predict(pairs)
        assert str(again.value) == str(caught.value)
    finally:
        starting.join(120)
        assert later and later[0].stop() == 0
    # never back
    monkeypatch.setattr(client, "RECONNECT_FOR", 0.5)
    remote = RemoteReranker(first.url)
    remote.__dict__["_card"] = {"id": "fake", "max_model_len": 8192}  # as if it had answered
    with pytest.raises(ServerUnavailable) as caught:
        remote.predict(pairs)
    assert str(caught.value) == (f"the server at {first.url} went away ([Errno 111] Connection refused) and did not "
                                 f"come back within 0.5 s (last: cannot reach the server at {first.url}: [Errno 111] "
                                 "Connection refused (is it running, or still loading its model?))")  # fmt: skip
    # a client that never reached it is told at once, as before
    with pytest.raises(ServerUnavailable) as caught:
        RemoteReranker(first.url).predict(pairs)
    assert str(caught.value) == (f"cannot reach the server at {first.url}: [Errno 111] Connection refused (is it "
                                 "running, or still loading its model?)")  # fmt: skip


def test_a_request_dropped_by_a_server_that_went_away_is_sent_again_once_it_is_back(tmp_path):
    """The server killed under a request (SIGKILL after a grace period, a crash): the connection is dropped, not
    refused; the request is sent again to the server come back."""
    from qrr.server.client import RemoteReranker

    gate = tmp_path / "gate"
    gate.write_text("0")  # the model holds the request: it is in flight when the server is killed
    first = Server("--model", "fake", fake=True, env={"QRR_FAKE_GATE": str(gate)})
    port = first.url.rsplit(":", 1)[1]
    remote = RemoteReranker(first.url)
    assert remote.max_length  # it has answered
    scores: list = []
    sending = threading.Thread(target=lambda: scores.append(list(remote.predict([("q", "a"), ("q", "b")]))))
    sending.start()
    first.until_metrics("qrr_busy 1")
    first.process.kill()
    first.process.wait(60)
    later = Server("--model", "fake", "--port", port, fake=True)
    try:
        sending.join(120)
        assert len(scores) == 1 and len(scores[0]) == 2
    finally:
        assert later.stop() == 0


def test_a_shutdown_delay_serves_on_with_health_503_until_it_ends_or_a_ctrl_c():
    """Kubernetes sends SIGTERM and removes the pod from its Service a few seconds later, at the same time: a stop
    that refused connections at once turned those seconds' requests into errors (connection refused)."""

    put_off = "stopping in {} s (--shutdown-delay): serving on, /health answers 503; Ctrl-C stops now\n"
    server = Server("--model", "fake", "--shutdown-delay", "60", fake=True)
    try:
        with server.client() as http:  # before the signal, a connection is kept
            assert "Connection" not in http.get("/health").headers
        server.process.send_signal(signal.SIGTERM)
        server.until_said(put_off.format(60))
        with server.client() as http:  # a new connection, within the delay
            answer = http.post("/rerank", json={"query": "q", "documents": ["a", "b"]})
            # and closed after it: a kept-alive client's next request opens one that the balancer routes elsewhere
            assert (answer.status_code, answer.headers["Connection"]) == (200, "close")
            health = http.get("/health")
            assert (health.status_code, health.json()) == (503, {"status": "stopping", "model": "fake"})
        server.process.send_signal(signal.SIGTERM)  # again: waits as the first
        time.sleep(0.3)
        assert server.process.poll() is None
        assert server.stop(signal.SIGINT) == 0  # a person's Ctrl-C: the stop begins now
        assert server.stderr.endswith(put_off.format(60) + "stopping: new requests are refused, those in flight "
                                      "answered (Ctrl-C again drops them)\nstopped\n")  # fmt: skip
    finally:
        server.stop(signal.SIGKILL)
    server = Server("--model", "fake", "--shutdown-delay", "0.5", fake=True)
    try:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0  # the delay's end begins the stop
        assert server.stderr.endswith(put_off.format(0.5) + "stopping: new requests are refused, those in flight "
                                      "answered (for up to 25 s)\nstopped\n")  # fmt: skip
    finally:
        server.stop(signal.SIGKILL)
    result = subprocess.run([sys.executable, "-m", "qrr", "serve", "--shutdown-delay", "inf"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stderr) == (2, "error: --shutdown-delay inf: give a number of seconds, 0 or "
                                                     "more\n")  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_stop_signal_from_the_ready_line_on_is_graceful(sig):
    """A supervisor that stops the server as soon as it says it is ready got exit 143 ("error: terminated") while
    uvicorn was imported; SIGHUP (a closed terminal) ended it without a word."""
    server = Server("--model", "fake", "--host", "[::1]", fake=True)  # an address as a URL writes it
    assert server.url.startswith("http://[::1]:")
    server.process.send_signal(sig)
    assert server.process.wait(30) == 0
    # a second SIGTERM waits as the first: it does not say "Ctrl-C again drops them", which only a Ctrl-C does
    assert server.stderr.endswith("stopping: new requests are refused, those in flight answered (for up to 25 s)\n"
                                  "stopped\n")  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_while_the_model_loads_connections_are_refused_and_a_stop_is_clean(sig, tmp_path):
    """A client (a health probe) is refused at once rather than left waiting on the load; a supervisor stopping
    the server then gets the same clean exit 0 as after."""
    command = [sys.executable, "-m", "tests.fake_serve", "serve", "--port", "0", "--model", "fake", "--device", "cpu"]
    env = {**os.environ, "QRR_FAKE_LOAD_SECONDS": "60", "QRR_FAKE_PIDS": str(tmp_path)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        url = first.split()[4]
        assert first == f"loading the model for {url} (connections are refused until it has loaded)\n"
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health", timeout=5)
        # the signal comes once the load has begun: during the imports before it, a library's bare `except:` may
        # swallow the KeyboardInterrupt it raises (seen once on a busy machine)
        deadline = time.monotonic() + 60
        while not any(tmp_path.iterdir()):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        process.send_signal(sig)
        _, rest = process.communicate(timeout=30)  # a read without one waited forever where the stop went amiss
        assert process.returncode == 0
    finally:
        process.kill()
    assert rest == "stopped before the model was ready\n"


def test_a_port_taken_by_a_server_still_loading_is_taken():
    """A second server on the port of one that loads fails at once, before its own load, not after it."""
    command = [sys.executable, "-m", "tests.fake_serve", "serve", "--model", "fake", "--device", "cpu", "--port"]
    env = {**os.environ, "QRR_FAKE_LOAD_SECONDS": "60"}
    first = subprocess.Popen([*command, "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        url = first.stderr.readline().split()[4]
        port = url.rsplit(":", 1)[1]
        second = subprocess.run([*command, port], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use; stop what holds "
                                 "it, or give another --port\n")  # fmt: skip
    finally:
        first.kill()


def test_idle_connections_outlive_a_load_balancers_and_the_access_log_is_qrrs(cli, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.update(
        keep_alive=self.config.timeout_keep_alive, access_log=self.config.access_log))  # fmt: skip
    result = cli("serve", "--port", "0")
    assert result.exit_code == 0 and result.stderr.endswith("stopped\n")
    # uvicorn's 5 s closed connections that nginx and AWS ALB (60 s) still sent on: their 502s
    assert seen == {"keep_alive": 75, "access_log": False}
    cli("serve", "--port", "0", "--keep-alive", "5")
    assert seen["keep_alive"] == 5


def test_a_log_reader_that_goes_away_stops_the_lines_not_the_server():
    """``qrr serve -v 2>&1 | head``: the access line's failed write turned the request it logged into a 500."""
    command = [sys.executable, "-m", "tests.fake_serve", "serve", "--port", "0", "--model", "fake", "--device", "cpu",
               "-v"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:
            if line.startswith("ready: "):
                url = line.split()[1]
                break
        assert url is not None
        process.stderr.close()  # the reader goes away
        for _ in range(3):
            answer = httpx.post(f"{url}/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=30)
            assert answer.status_code == 200 and len(answer.json()["results"]) == 2
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_reuse_address_only_where_it_does_not_share_a_port_in_use(monkeypatch):
    """On Windows SO_REUSEADDR lets a second socket bind a port another listens on: two servers shared one."""
    from qrr.server import app as server

    sock = server.bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0  # off while the model loads
        server.listen(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0  # POSIX: past TIME_WAIT at once
        set_options = []

        class Windows:
            def setsockopt(self, *option):
                set_options.append(option)

        monkeypatch.setattr(server.os, "name", "nt")
        server._reuse_address(Windows(), True)
        monkeypatch.undo()
        assert set_options == []
    finally:
        sock.close()


def test_a_port_below_1024_without_the_right_says_so(monkeypatch):
    """Port 81 as a user gave "Permission denied", with no word of why."""
    import errno

    from qrr.errors import QrrError
    from qrr.server import app as server

    def refused(self, address):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refused)
    with pytest.raises(QrrError) as caught:
        server.bind("127.0.0.1", 81)
    assert str(caught.value) == ("cannot listen on 127.0.0.1:81: Permission denied (a port below 1024 needs root's "
                                 "rights: give another, such as port 8000)")  # fmt: skip
    with pytest.raises(QrrError, match=r"^cannot listen on 127.0.0.1:8081: Permission denied$"):
        server.bind("127.0.0.1", 8081)


def test_an_api_key_that_no_client_could_send(cli, monkeypatch):
    import uvicorn

    from qrr.server import app as server

    keys, create = [], server.create_app
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    monkeypatch.setattr(server, "create_app", lambda reranker, name, key, *a, **k: keys.append(key) or create(
        reranker, name, key, *a, **k))  # fmt: skip
    # a Kubernetes secret made from a file ends in a newline: the server said "API key required", and no client's
    # "Bearer k8s-secret" matched
    monkeypatch.setenv("QRR_API_KEY", "k8s-secret\n")
    result = cli("serve", "--port", "0")
    assert result.exit_code == 0 and keys == ["k8s-secret"]
    assert result.stderr.startswith("note: the spaces around QRR_API_KEY are left out of the key (a header cannot "
                                    "end in them)\n")  # fmt: skip
    for key in ("clé", "a\tb"):  # a header carries Latin-1: a UTF-8 client's "clé" never matched
        result = cli("serve", "--port", "0", "--api-key", key)
        assert (result.exit_code, result.stderr) == (2, "error: --api-key: give a key of printable ASCII characters "
                                                        "(an HTTP header cannot carry others)\n")  # fmt: skip


def test_a_model_that_fails_gets_503_and_the_server_serves_on(fake, monkeypatch):
    """A runtime failure of the model (out of memory) is the server's trouble, not the request's: 503, not 400; and
    its log says it (an SRE saw 503s in /metrics alone), as a bad request's 400 is not."""
    import logging

    from starlette.testclient import TestClient

    from qrr import Reranker
    from qrr.server.app import create_app

    logged: list[logging.LogRecord] = []
    kept = logging.Handler()
    kept.emit = logged.append  # on qrr's logger, as the CLI's WarningsToStderr is (caplog's root missed it, in a suite)
    monkeypatch.setattr(logging.getLogger("qrr"), "handlers", [kept])
    name, _ = fake(fits_rows=1)  # a batch of two rows runs out of memory on a CPU
    app = create_app(Reranker(name, batch_tokens=999), "fake")
    with TestClient(app) as http:
        response = http.post("/rerank", json={"query": "q", "documents": ["a", "b"]})
        assert (response.status_code, response.json()["type"]) == (503, "server_error")
        assert response.json()["message"].startswith("out of memory in a batch of 2 rows: lower the server's ")
        assert [(r.name, r.levelname, r.getMessage()) for r in logged] == [
            ("qrr", "ERROR", f"/rerank: {response.json()['message']}")]  # fmt: skip
        assert http.post("/rerank", json={"query": "q", "documents": ["a"]}).status_code == 200
        assert http.post("/rerank", json={"query": "q", "documents": []}).status_code == 400
        assert len(logged) == 1
    # a score of no number names the dtype the server was started with
    import torch

    from qrr.engine import _check_numbers
    from qrr.errors import QrrError

    with pytest.raises(QrrError) as caught:
        _check_numbers([float("nan")], torch.float16)
    name, _ = fake(interrupt_after=0, raising=caught.value)
    with TestClient(create_app(Reranker(name), "fake")) as http:
        response = http.post("/rerank", json={"query": "q", "documents": ["a"]})
        assert response.status_code == 503
        assert response.json()["message"] == (
            "the model gave no number (NaN) for 1 pair of a batch of 1 in fp16, whose range the model's activations "
            "overflow: use the server's --dtype fp32 (or bf16 where the device has it)"
        )


def test_a_query_too_long_for_the_server_is_said_and_left_out_as_with_a_model_here(tiny_server, cli, tiny_model,
                                                                                    beir_dir, tmp_path):  # fmt: skip
    from dataclasses import replace

    from qrr import pipelines
    from qrr.errors import InputError, PairError
    from qrr.server.client import RemoteReranker

    long = "word " * 2500  # past the server's --max-length 2048
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"query": q, "document": d}) + "\n" for q, d in
                            (("q", "a"), (long, "b"), ("q", "c"))))  # fmt: skip
    here = cli("score", str(data), "--max-length", "2048", model=tiny_model)
    there = cli("score", str(data), "--server", tiny_server.url, model=False)
    assert here.exit_code == there.exit_code == 2
    said = re.match(rf"error: {re.escape(str(data))}:2: the query and instruction take (\d+) tokens, but ", here.stderr)
    assert said and there.stderr.startswith(f"{said.group(0)}the server's --max-length 2048 leaves "), there.stderr
    assert there.stderr.endswith("raise the server's --max-length or shorten the query\n")
    # --on-error skip leaves the pair out through the server too, where it failed the whole run before
    here = cli("score", str(data), "--max-length", "2048", "--on-error", "skip", model=tiny_model)
    there = cli("score", str(data), "--server", tiny_server.url, "--on-error", "skip", model=False)
    assert here.exit_code == there.exit_code == 0, there.output
    assert [json.loads(line)["index"] for line in there.stdout.splitlines()] == [0, 2]
    close([json.loads(x)["score"] for x in there.stdout.splitlines()],
          [json.loads(x)["score"] for x in here.stdout.splitlines()])  # fmt: skip
    assert f"{data}:2: the query and instruction take" in there.stderr
    # in Python: a PairError at its place in the call's pairs, past the first request (50 documents at most)
    remote = RemoteReranker(tiny_server.url)
    pairs = [("q", f"document {n}") for n in range(60)]
    pairs[55] = (long, "document 55")
    with pytest.raises(PairError, match=r"^pair 55: the query and instruction take \d+ tokens, but the server's") as e:
        remote.score(pairs)
    assert (e.value.pair, e.value.params) == (55, ("max_length",))
    with pytest.raises(InputError, match=r"^the query and instruction take \d+ tokens, but the server's"):
        remote.rank(long, ["a"])  # of no pair: the query's
    # left out after the requests before it were scored: tried again without it, each pair counted once
    counted, skipped = [], []
    pairs = [("q", f"document {n}") for n in range(120)]
    pairs[105] = (long, "document 105")
    chunks = list(pipelines.score_records(remote, pairs, progress=counted.append, on_error=skipped.append))
    assert sum(counted) == 120 and [str(e)[:9] for e in skipped] == ["pair 105:"]  # the bar went to 220 of 120
    assert [n for chunk in chunks for n in chunk.indexes] == [n for n in range(120) if n != 105]
    # an instruction too long alone is every pair's, not left out pair by pair
    short = tmp_path / "short.jsonl"
    short.write_text('{"query": "q", "document": "a"}\n{"query": "q", "document": "b"}\n')
    result = cli("score", str(short), "--server", tiny_server.url, "-i", long, "--on-error", "skip", model=False)
    assert result.exit_code == 2 and result.stderr.startswith("error: the instruction takes "), result.stderr
    # a rerank through the server leaves out the query too long as one here does
    inputs = pipelines.read_run_inputs(str(beir_dir / "bm25.trec"), str(beir_dir / "queries.jsonl"),
                                       str(beir_dir / "corpus.jsonl"), 3)  # fmt: skip
    inputs.jobs[1] = replace(inputs.jobs[1], query=long)
    skipped = []
    done = pipelines.rerank_run(remote, inputs, on_error=lambda error: skipped.append(str(error)))
    assert sorted(done.run) == ["q0", "q2", "q3", "q4"] and len(skipped) == 1
    assert skipped[0].startswith("query q1: the query and instruction take ")
