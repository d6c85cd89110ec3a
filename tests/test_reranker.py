"""The Reranker against the oracle (the model card's recipe on the same weights), in float32; its
CrossEncoder-shaped API; per-call statistics and threads."""

from __future__ import annotations

import random
import statistics
import threading
from pathlib import Path

import numpy
import pytest

from qrr import Reranker, Results, Stats, pipelines
from qrr.errors import InputError, PairError, QrrError
from qrr.formats import DocRecord, PairRecord

TOL = 1e-5

PAIRS = [
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("Explain gravity", "Gravity is a force that attracts two bodies towards each other. It gives weight to "
     "physical objects and is responsible for the movement of planets around the sun."),
    ("Wie spät ist es?", "Es ist halb drei. Ümlaute, ß und Akzente: café, naïve."),
    ("日本の首都は？", "東京は日本の首都です。🗼 Токио — столица Японии. عاصمة اليابان هي طوكيو"),
    ("empty document", ""),
    ("whitespace", "   \n\t  "),
    ("The query", "The answer starts with The, which merges with the space before it."),
    ("long", " ".join(f"word{i}" for i in range(60))),
]  # fmt: skip


def close(a, b, tol=TOL):
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b, strict=True))
    assert worst <= tol, f"largest difference {worst:.3g} > {tol}"


@pytest.fixture(scope="module")
def expected(oracle):
    return oracle.score(PAIRS)


def test_scores_spread_so_the_oracle_comparison_means_something(reranker):
    scores = reranker.score(PAIRS)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert statistics.pstdev(scores) > 0.05
    assert max(scores) - min(scores) > 0.2


def test_default_instruction_matches_oracle(reranker, tiny, expected):
    close(reranker.score(PAIRS), expected)
    close(tiny().score(PAIRS), expected)  # the model handed over loaded, as the tests' `tiny` does


def test_custom_instruction_matches_oracle(reranker, oracle):
    task = "Given a question in any language, find passages in any language that answer it"
    close(reranker.score([(q, d, task) for q, d in PAIRS]), oracle.score(PAIRS, instruction=task))
    # the instruction matters: otherwise this test could not tell it was passed through
    assert reranker.score(PAIRS[:1]) != reranker.score([(*PAIRS[0], task)])


def test_instance_instruction_is_the_fallback(tiny, oracle):
    task = "Judge whether the passage is about geography"
    rr = tiny(instruction=task)
    close(rr.score(PAIRS), oracle.score(PAIRS, instruction=task))
    close(rr.score([(q, d, None) for q, d in PAIRS]), oracle.score(PAIRS, instruction=task))


@pytest.mark.parametrize("max_length", [120, 200])
def test_truncated_documents_match_oracle(tiny, oracle, max_length):
    rr = tiny(max_length=max_length)
    pairs = [("q", "alpha " * 500), ("a longer query here", "beta gamma " * 300), ("short", "fits")]
    scores = rr.score(pairs)
    close(scores, oracle.with_max_length(max_length).score(pairs))
    assert scores.stats.truncated == 2
    assert scores.stats.tokens <= max_length * 3


def test_a_prompt_is_the_recipes_tokens_and_their_text(tiny, tokenizer, vllm_oracle):
    from tests.oracle import PREFIX, SUFFIX, TASK, recipe_ids, vllm_recipe_ids

    rr = tiny(max_length=120, instruction="Find the capital")
    plain = rr.prompt("capital of China?", "Beijing.")
    body = "<Instruct>: Find the capital\n<Query>: capital of China?\n<Document>: Beijing."
    assert plain.text == f"{PREFIX}{body}{SUFFIX}"
    assert plain.ids == tokenizer.encode(plain.text, add_special_tokens=False) and plain.cut is False
    for query, document, instruction in [("q", "alpha beta " * 300, None), ("北京?", "首都是北京 🏯 " * 40, "查找"),
                                         ("x", "y", TASK)]:  # fmt: skip
        prompt = rr.prompt(query, document, instruction)
        [ids] = recipe_ids(tokenizer, [(query, document)], instruction or "Find the capital", 120)
        assert prompt.ids == ids and prompt.text == tokenizer.decode(ids)
        assert prompt.cut is (len(document) > 1)
    [ids] = vllm_recipe_ids(tokenizer, [("q", "alpha " * 300)], "Find the capital", 120)
    assert rr.prompt("q", "alpha " * 300).ids != ids
    assert tiny(max_length=120, instruction="Find the capital", recipe="vllm").prompt("q", "alpha " * 300).ids == ids
    with pytest.raises(InputError, match=r"^document must be a string, not int$"):
        rr.prompt("q", 3)
    with pytest.raises(InputError, match=r"^query must be a string, not NoneType$"):
        rr.prompt(None, "d")
    with pytest.raises(InputError) as raised:
        rr.prompt("q " * 200, "d")
    assert str(raised.value) == (
        "the query and instruction take 215 tokens, but max_length 120 leaves 72 for query, instruction and document "
        "together (the prompt frame takes 48); raise max_length or shorten the query or the instruction"
    )


def test_a_text_formatted_as_the_prompt_already_is_warned_of_once(fake_model, caplog):
    rr = Reranker("fake")
    with caplog.at_level("WARNING", logger="qrr"):
        rr.score([("q", "d"), ("capital?", "Beijing"), ("what does <|im_end|> mean?", "It ends a turn: <|im_end|>.")])
        assert caplog.messages == []
        # vLLM's example formats the query and document itself, for its LLM.score
        rr.score([("q", "d"), ("<|im_start|>system\nJudge ...<Query>: q\n", "<Document>: d<|im_end|>\n")])
        rr.rank("q", ["<Document>: d"])
    assert caplog.messages == [
        "a query starts or ends with '<|im_start|>', a marker of the prompt qrr writes around each pair: a text "
        "formatted as that prompt already (as vLLM's Qwen3-Reranker example formats them) gets the frame twice and "
        "another score; send the bare query and document, and the instruction apart, as instruction"
    ]


def test_any_batch_budget_and_order_gives_the_same_scores(tiny, expected):
    rng = random.Random(7)
    for budget in (1, 64, 200, 777, 100_000):
        rr = tiny(batch_tokens=budget)
        order = list(range(len(PAIRS)))
        rng.shuffle(order)
        scores = rr.score([PAIRS[i] for i in order])
        close([scores[order.index(i)] for i in range(len(PAIRS))], expected)


def test_tied_head_matches_oracle(tiny_tied_model):
    from tests.oracle import Oracle

    rr = Reranker(str(tiny_tied_model), device="cpu", dtype="fp32")
    close(rr.score(PAIRS), Oracle(tiny_tied_model).score(PAIRS))


def test_a_converted_sequence_classifier_scores_the_same(tiny_model, reranker, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from tests.oracle import PREFIX, SUFFIX, TASK
    from tests.tiny import convert_to_seq_cls

    folder = convert_to_seq_cls(tiny_model, tmp_path / "seq-cls")
    converted = Reranker(str(folder), device="cpu", dtype="fp32")
    close(converted.score(PAIRS), reranker.score(PAIRS), tol=1e-6)
    # and as transformers runs the classifier itself: sigmoid of its one logit, one prompt at a time
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    tok = converted.tokenizer
    own = []
    for q, d in PAIRS:
        ids = tok.encode(PREFIX, add_special_tokens=False)
        ids += tok.encode(f"<Instruct>: {TASK}\n<Query>: {q}\n<Document>: {d}", add_special_tokens=False)
        ids += tok.encode(SUFFIX, add_special_tokens=False)
        with torch.no_grad():
            own.append(torch.sigmoid(classifier(input_ids=torch.tensor([ids])).logits[0, 0]).item())
    close(converted.score(PAIRS), own, tol=1e-6)
    ranked = converted.rank("capital of China", [d for _, d in PAIRS])
    close([r["score"] for r in ranked], [r["score"] for r in reranker.rank("capital of China", [d for _, d in PAIRS])],
          tol=1e-6)  # fmt: skip


def test_checkpoints_that_would_score_something_else_are_refused(tiny_model, tokenizer, tmp_path, monkeypatch):
    """A fine-tuner's checkpoints that loaded and scored wrongly, unsaid (a fine-tuning tour)."""
    import copy
    import json
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, PreTrainedTokenizerFast

    from qrr.engine import TransformerEngine
    from qrr.errors import NotAModelError
    from qrr.prompt import Prompter

    # a classifier of two rows: row 0 ("no"'s, in a two-way conversion) was taken for the score row
    two = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2, dtype=torch.float32)
    with pytest.raises(NotAModelError) as caught:
        Reranker.from_model(two, tokenizer, device="cpu")
    assert str(caught.value) == ("a sequence classifier with 2 score rows; a converted reranker has one "
                                 "(lm_head[yes] - lm_head[no], num_labels=1)")  # fmt: skip
    # a tokenizer that lost its added tokens (saved without tokenizer.json: vocab.json and merges.txt know none)
    spec = json.loads((tiny_model / "tokenizer.json").read_text())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] == "<|endoftext|>"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    bare = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    with pytest.raises(NotAModelError) as caught:
        Prompter(bare)
    pieces = len(bare.encode("<|im_start|>", add_special_tokens=False))
    assert pieces > 1 and str(caught.value) == (
        f"the tokenizer splits '<|im_start|>' into {pieces} tokens: its special tokens are missing (saved without "
        "tokenizer.json?); copy the base model's tokenizer.json and tokenizer_config.json"
    )
    # such a tokenizer in a model's folder: said of the folder
    shutil.copytree(tiny_model, tmp_path / "bare")
    (tmp_path / "bare" / "tokenizer.json").write_text(json.dumps(spec))
    config = json.loads((tmp_path / "bare" / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]  # as transformers 5 writes it: the added tokens in tokenizer.json alone
    (tmp_path / "bare" / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(NotAModelError) as caught:
        Reranker(str(tmp_path / "bare"), device="cpu")
    think = len(bare.encode("<think>", add_special_tokens=False))
    assert str(caught.value) == (
        f"{tmp_path / 'bare'}: the tokenizer splits '<think>' into {think} tokens: its special tokens are missing "
        "(saved without tokenizer.json?); copy the base model's tokenizer.json and tokenizer_config.json"
    )
    # a pad token added without resizing the embeddings: an IndexError in the middle of scoring
    padded = copy.deepcopy(tokenizer)
    padded.add_special_tokens({"pad_token": "[PAD]"})
    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    attention = causal.config._attn_implementation
    with pytest.raises(NotAModelError) as caught:
        Reranker.from_model(causal, padded, device="cpu")
    assert causal.config._attn_implementation == attention  # refused before qrr took the caller's model over
    said = ("the tokenizer has 151,670 tokens, the model's embeddings 151,669 rows: tokens were added to it (a pad "
            "token?) without resize_token_embeddings(len(tokenizer)) before saving")  # fmt: skip
    assert str(caught.value) == said
    # a folder saved so: said from its config before the weights load (minutes, for the 8B)
    shutil.copytree(tiny_model, tmp_path / "padded")
    padded.save_pretrained(tmp_path / "padded")
    monkeypatch.setattr(TransformerEngine, "load", None)
    with pytest.raises(NotAModelError) as caught:
        Reranker(str(tmp_path / "padded"), device="cpu")
    assert str(caught.value) == said


def test_rank_sorts_best_first_with_ids_and_top_k(reranker, oracle):
    docs = [d for _, d in PAIRS]
    expected = oracle.score([("capital of China", d) for d in docs])
    ranked = reranker.rank("capital of China", docs, ids=[f"d{i}" for i in range(len(docs))], return_documents=True)
    order = sorted(range(len(docs)), key=lambda i: -expected[i])
    assert [r["corpus_id"] for r in ranked] == order
    assert all(r["id"] == f"d{r['corpus_id']}" and r["text"] == docs[r["corpus_id"]] for r in ranked)
    close([r["score"] for r in ranked], sorted(expected, reverse=True))
    top = reranker.rank("capital of China", docs, top_k=3)
    assert top == [{"corpus_id": r["corpus_id"], "score": r["score"]} for r in ranked[:3]]


def test_a_query_too_long_is_named_by_its_place_past_the_first_chunk(fake_model):
    pairs = [("q", "d")] * 1030 + [("long " * 200, "d")]  # in the second chunk of 1,024
    with pytest.raises(InputError, match="^pair 1030: the query and instruction take"):
        Reranker("fake", max_length=100).score(pairs)


def test_rank_ties_keep_input_order(reranker):
    ranked = reranker.rank("q", ["same", "other", "same"], return_documents=True)
    assert [r["corpus_id"] for r in ranked if r["text"] == "same"] == [0, 2]


def test_a_registered_model_named_by_the_environment(monkeypatch, fake_model):
    monkeypatch.setenv("QRR_MODEL", "fake")
    assert Reranker().model_path == "fake"


def test_empty_inputs(reranker):
    assert reranker.score([]) == [] and reranker.score([]).stats == Stats()
    assert reranker.rank("q", []) == []


# --------------------------------------------------------------------------------- the CrossEncoder-shaped API


def test_predict_is_crossencoder_shaped(reranker):
    scores = reranker.predict(PAIRS[:3])
    assert isinstance(scores, numpy.ndarray) and scores.dtype == numpy.float32 and scores.shape == (3,)
    close(scores.tolist(), reranker.score(PAIRS[:3]), tol=1e-7)
    one = reranker.predict(PAIRS[0])
    assert isinstance(one, numpy.floating) and one == scores[0]
    assert reranker.predict(list(PAIRS[0])) == scores[0]  # a pair as a list is one pair too
    assert reranker.predict(numpy.array(PAIRS[0])) == scores[0]  # and as a numpy array, as CrossEncoder takes it
    assert reranker.predict(PAIRS[:2], convert_to_numpy=False) == reranker.score(PAIRS[:2])
    tensor = reranker.predict(PAIRS[:2], convert_to_tensor=True)
    assert tensor.shape == (2,) and tensor.tolist() == pytest.approx(scores[:2].tolist())
    assert reranker.predict(PAIRS[:3], batch_size=1).tolist() == pytest.approx(scores.tolist(), abs=1e-6)
    # batch_size second, as predict and CrossEncoder have it (score's progress callback was second)
    assert reranker.score(PAIRS[:3], 1) == reranker.score(PAIRS[:3], batch_size=1)
    assert reranker.predict(PAIRS[:3], 1).tolist() == reranker.predict(PAIRS[:3], batch_size=1).tolist()
    assert reranker.predict([]).shape == (0,)
    # CrossEncoder's prompt: an instruction for the pairs without their own, in predict and score as in rank
    judged = [(q, d, "Judge") for q, d, *_ in PAIRS[:2]]
    assert reranker.predict(PAIRS[:2], instruction="Judge").tolist() == reranker.predict(judged).tolist()
    assert reranker.score(PAIRS[:2], instruction="Judge") == reranker.score(judged)
    with pytest.raises(InputError, match="^instruction must be a string, not int$"):
        reranker.score(PAIRS[:2], instruction=3)
    # one pair with a bad document is said as such (it was taken for a list of pairs: "not str")
    with pytest.raises(PairError, match="^pair 0: document must be a string, not NoneType$"):
        reranker.predict(("q", None))
    # three strings: one pair with its instruction as a tuple; as a list, maybe three documents, so no guess
    assert reranker.predict(("q", "d", "Judge")) == reranker.predict([("q", "d", "Judge")])[0]
    with pytest.raises(PairError) as caught:
        reranker.predict(["a", "b", "c"])
    assert str(caught.value) == (
        "pair 0: expected (query, document) or (query, document, instruction), not str "
        "(a list of texts is no list of pairs: rank(query, documents) takes documents; one pair with its "
        "instruction is a tuple)"
    )


def test_predict_batch_size_caps_the_rows_of_a_forward_pass(fake_model):
    rr = Reranker("fake")
    rr.predict([("q", f"document {i}") for i in range(10)], batch_size=3)
    assert max(fake_model.engines[-1].rows) == 3 and sum(fake_model.engines[-1].rows) == 10
    with pytest.raises(InputError, match="batch_size must be at least 1, not 0"):
        rr.predict([("q", "d")], batch_size=0)


def test_predict_progress_bar_goes_to_stderr(reranker, capsys):
    reranker.predict(PAIRS[:3], show_progress_bar=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "3/3" in captured.err
    assert captured.err.startswith("\rscoring:   0%|          | 0/3 [00:00<?, ?pair/s]")
    reranker.score(PAIRS[:2], show_progress_bar=True)  # score and rank take it too
    reranker.rank("q", ["a", "b", "c", "d"], show_progress_bar=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "2/2" in captured.err and "4/4" in captured.err
    assert "ranking: 100%|██████████| 4/4" in captured.err and "document/s]" in captured.err  # it counts documents
    reranker.score(PAIRS[:2])
    assert capsys.readouterr().err == ""


def test_rank_is_crossencoder_shaped(reranker):
    docs = [d for _, d in PAIRS]
    ranked = reranker.rank("capital of China", docs, top_k=2, return_documents=True)
    assert [set(r) for r in ranked] == [{"corpus_id", "score", "text"}] * 2
    assert [set(r) for r in reranker.rank("capital of China", docs)] == [{"corpus_id", "score"}] * len(docs)
    small, whole = reranker.rank("capital of China", docs, batch_size=2), reranker.rank("capital of China", docs)
    assert [r["corpus_id"] for r in small] == [r["corpus_id"] for r in whole]
    close([r["score"] for r in small], [r["score"] for r in whole], tol=1e-6)


def test_crossencoders_and_flagrerankers_keywords_are_answered_with_qrrs(fake_model):
    """CrossEncoder code that names its keywords: Python's TypeError named a private class (``_Predicts.predict()
    got an unexpected keyword argument 'sentences'``) and no way on."""
    from qrr.errors import PeerKeyword
    from qrr.server.client import RemoteReranker

    rr = Reranker("fake")
    remote = RemoteReranker("http://127.0.0.1:9")  # refused before any request
    for call, said in (
        (lambda: rr.predict(sentences=PAIRS), "predict() takes no sentences=: give the pairs first, by position: "
                                              "predict(pairs)"),
        (lambda: remote.predict(inputs=PAIRS), "predict() takes no inputs=: give the pairs first, by position: "
                                               "predict(pairs)"),
        (lambda: rr.predict(PAIRS, apply_softmax=True), "predict() takes no apply_softmax=: scores are p(yes), from 0 "
                                                        "to 1; the raw scores are their log-odds, log(p / (1 - p))"),
        (lambda: rr.score(PAIRS, normalize=False), "score() takes no normalize=: scores are p(yes), from 0 to 1; the "
                                                   "raw scores are their log-odds, log(p / (1 - p))"),
        (lambda: rr.rank("q", ["d"], prompt="Judge"), "rank() takes no prompt=: qrr's is instruction=, the task's "
                                                      "text"),
        (lambda: remote.rank("q", ["d"], prompt_name="query"), "rank() takes no prompt_name=: qrr's is "
                                                               "instruction=, the task's text"),
        (lambda: Reranker("fake", use_fp16=True), 'Reranker() takes no use_fp16=: qrr\'s is dtype="fp16" '
                                                  '(dtype="auto" picks bf16 where the device computes it)'),
        (lambda: Reranker("fake", trust_remote_code=True), "Reranker() takes no trust_remote_code=: qrr runs Qwen3 "
                                                           "through transformers' own code: there is no remote code "
                                                           "to trust"),
        (lambda: rr.predict(PAIRS, device="cpu"), "predict() takes no device=: the device is the Reranker's, chosen "
                                                   "when it is built: Reranker(model, device=...)"),
        (lambda: Reranker("fake", revision="v1"), 'Reranker() takes no revision=: name it with the model: '
                                                  'Reranker("0.6b@REVISION") (a commit, branch or tag)'),
        (lambda: Reranker("fake", local_files_only=True), "Reranker() takes no local_files_only=: qrr's is "
                                                          "offline=True"),
        # any other: the keywords it takes (Python's own error named the private _Predicts.predict)
        (lambda: rr.predict(PAIRS, bogus=1), "predict() takes no bogus=: it takes pairs, batch_size, "
                                             "show_progress_bar, convert_to_numpy, convert_to_tensor, instruction"),
    ):  # fmt: skip
        with pytest.raises(PeerKeyword) as caught:
            call()
        assert str(caught.value) == said and isinstance(caught.value, TypeError)
    # CrossEncoder's own keywords as before
    assert rr.predict(PAIRS, batch_size=2, convert_to_numpy=False) == pytest.approx(rr.predict(PAIRS), abs=1e-7)


# ---------------------------------------------------------------------------------------- stats and threads


def test_each_call_returns_its_own_stats(tiny):
    rr = tiny(max_length=100)
    short = rr.score([("q", "short"), ("q", "also short")])
    long = rr.rank("q", ["word " * 300, "fits", "x"])
    assert isinstance(short, Results) and isinstance(long, Results)
    assert (short.stats.pairs, short.stats.truncated) == (2, 0)
    assert (long.stats.pairs, long.stats.truncated) == (3, 1)
    assert short.stats.tokens == sum(len(e.ids) for e in rr.prompter.encode([("q", "short", None),
                                                                            ("q", "also short", None)]))  # fmt: skip
    assert 0 < long.stats.computed_tokens < long.stats.tokens  # the shared prefix ran once
    assert short.stats.seconds > 0 and not hasattr(rr, "stats")


def test_one_reranker_serves_two_threads_at_once(reranker):
    work = {
        "a": [(f"query {n}", f"document {n} " * (1 + n % 7)) for n in range(60)],
        "b": [(f"other {n}", f"text {n} " * (1 + n % 5)) for n in range(45)],
    }
    alone = {k: reranker.score(v) for k, v in work.items()}
    together: dict = {}
    start = threading.Barrier(2)

    def run(key):
        start.wait()
        together[key] = reranker.score(work[key])

    threads = [threading.Thread(target=run, args=(k,)) for k in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for key, scores in alone.items():
        close(together[key], scores, tol=1e-6)
        assert together[key].stats.pairs == len(work[key])
        assert together[key].stats.tokens == scores.stats.tokens


# ------------------------------------------------------------------------------------------------- errors


def test_query_too_long_for_max_length_is_an_error(tiny):
    rr = tiny(max_length=80)
    with pytest.raises(PairError, match="^pair 0: the query and instruction take .*raise max_length or shorten the "
                                        "query$") as caught:  # fmt: skip
        rr.score([("a very long query " * 20, "doc")])
    assert caught.value.params == ("max_length",)
    # rank has one query for every pair: no pair to name
    with pytest.raises(InputError, match="^the query and instruction take .*raise max_length or shorten the query$"):
        rr.rank("a very long query " * 20, ["doc", "another"])


def test_an_instruction_of_bytes_that_were_not_utf8_is_refused_before_loading(fake_model, monkeypatch):
    from qrr.server.client import RemoteReranker

    # it was taken, and each call failed in the tokenizer with a TypeError
    for make in (lambda: Reranker("fake", instruction="\udcb1"),
                 lambda: RemoteReranker("http://127.0.0.1:9", instruction="\udcb1")):  # fmt: skip
        with pytest.raises(InputError, match=r"^the instruction is not valid Unicode text \(a lone surrogate at "):
            make()
    # an API key that no HTTP header can carry: said, where the request failed with a bare encoding error
    said = r": give a key of printable ASCII characters \(an HTTP header cannot carry others\)$"  # as qrr serve says
    with pytest.raises(InputError, match="^api_key" + said):
        RemoteReranker("http://127.0.0.1:9", api_key="密钥")
    monkeypatch.setenv("QRR_API_KEY", "密钥")
    with pytest.raises(InputError, match="^QRR_API_KEY" + said):
        RemoteReranker("http://127.0.0.1:9")
    monkeypatch.setenv("QRR_API_KEY", " \n")  # an unresolved secret: no key sent (a 401 says it was empty)
    assert RemoteReranker("http://127.0.0.1:9").api_key is None
    # a secret made from a file ends in a newline: taken without it, as qrr serve takes its own (it was refused)
    assert RemoteReranker("http://127.0.0.1:9", api_key="k8s-secret\n").api_key == "k8s-secret"


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([("only a query",)], r"^pair 0: expected \(query, document\) or \(query, document, instruction\), not tup"),
        (
            ["a string"],
            r"^pair 0: expected .*, not str \(a list of texts is no list of pairs: rank\(query, documents\) "
            r"takes documents; one pair with its instruction is a tuple\)$",
        ),
        ([("q", "d"), 7], "^pair 1: expected .*, not int$"),
        ([("q", 3)], "^pair 0: document must be a string, not int$"),
        ([("q", "d", 5)], "^pair 0: instruction must be a string, not int$"),
        # a mapping reads its fields, never its keys (it once scored "query" against "document")
        ([{"text": "d", "id": 1}], "^pair 0: a record needs the fields query and document, not text, id$"),
        ([{}], "^pair 0: a record needs the fields query and document, and it has none$"),
        (("q", "d"), r"^pairs must be an iterable of pairs, not one pair: \[\(query, document\), \.\.\.\]$"),
        (["q", "d"], r"^pairs must be an iterable of pairs, not one pair: "),
        ([{"query": "q", "document": None}], "^pair 0: document must be a string, not NoneType$"),
        ([("q", float("nan"))], r"^pair 0: document must be a string, not float \(NaN: a missing value, as pandas "),
        # a vector store's hits as documents (it was taken for a DataFrame's (index, row))
        ([("q", {"text": "d", "id": 1})], r"^pair 0: document must be a string, not dict \(pass its 'text' field\)$"),
        ("abc", r"^pairs must be an iterable of \(query, document\) pairs, not one string$"),
        (None, "^pairs must be an iterable of \\(query, document\\) pairs, not NoneType$"),
        ([("q", "a\ud800b")], r"^pair 0: the document is not valid Unicode text \(a lone surrogate at character 2: "),
    ],
)
def test_bad_pairs(reranker, pairs, message):
    with pytest.raises(InputError, match=message) as caught:
        reranker.score(pairs)
    if message.startswith("^pair "):  # catchable as such, with its place
        assert isinstance(caught.value, PairError) and caught.value.pair == int(message.split()[1].rstrip(":"))


def test_records_are_read_by_their_fields(reranker):
    import collections

    pandas = pytest.importorskip("pandas")
    pairs = [("q", "Beijing is the capital."), ("q", "Paris", "Find the city")]
    records = [{"query": "q", "document": "Beijing is the capital.", "qid": 1},
               {"document": "Paris", "query": "q", "instruction": "Find the city"}]  # fmt: skip
    expected = reranker.score(pairs)
    assert reranker.score(records) == expected
    assert list(reranker.predict(records)) == list(reranker.predict(pairs))
    assert reranker.predict(records[0]) == reranker.predict(pairs[0])  # one record is one pair, as one tuple is
    # a pandas row and a named tuple by name, whatever their columns' order (by position they scored the wrong text)
    frame = pandas.DataFrame([{"qid": 1, "document": d, "query": q, "instruction": (i or [None])[0]}
                              for q, d, *i in pairs])  # fmt: skip
    assert reranker.score(row for _, row in frame.iterrows()) == expected
    assert reranker.score(frame.itertuples(index=False)) == expected
    assert reranker.score(frame) == expected  # a DataFrame itself: its rows (iterated, it gives its column names)
    assert list(reranker.predict(frame)) == list(reranker.predict(pairs))
    for rows in (frame.iterrows(), frame.assign(key=["a", "b"]).set_index("key").iterrows()):  # an index of strings
        with pytest.raises(InputError, match=r"^pair 0: an \(index, row\) tuple, as DataFrame.iterrows\(\) gives; "):
            reranker.score(rows)
    # qrr's own records, as formats.read_pairs reads them
    assert reranker.score([PairRecord("q", "Beijing is the capital.", ids={"qid": 1})]) == expected[:1]
    assert reranker.score([PairRecord("q", "Paris", "Find the city")]) == expected[1:]
    Pair = collections.namedtuple("Pair", "id document query")
    assert reranker.score([Pair(1, "Beijing is the capital.", "q")]) == expected[:1]
    Plain = collections.namedtuple("Plain", "q d")  # no field names a query: by position, as a tuple
    assert reranker.score([Plain("q", "Beijing is the capital.")]) == expected[:1]
    assert reranker.score(pandas.DataFrame(pairs[:1])) == expected[:1]  # unnamed columns: by position too
    levels = pandas.DataFrame([["Beijing is the capital.", "q"]], columns=[("t", "document"), ("t", "query")])
    levels.columns = pandas.MultiIndex.from_tuples(levels.columns)
    with pytest.raises(InputError, match="^pairs: a DataFrame with columns of several levels; flatten them"):
        reranker.score(levels)  # by position it scored the document as the query
    # named columns without query and document: by position they scored "passage" as the query, unsaid
    for unnamed in (pandas.DataFrame({"passage": ["Beijing"], "question": ["q"]}), frame.drop(columns="query")):
        for call in (reranker.score, reranker.predict):
            with pytest.raises(
                InputError,
                match="^pairs: a DataFrame needs the columns query and document "
                r"\(and optionally instruction\), not (passage, question|qid, doc)",
            ):
                call(unnamed)


def test_pandas_missing_values_and_a_dataframe_given_to_rank(reranker):
    pandas = pytest.importorskip("pandas")
    expected = reranker.score([("q", "d"), ("q", "e", "judge")])
    # a column of dtype string holds pd.NA where a value is missing: the default instruction, as NaN and None are
    na = pandas.Series([pandas.NA, "judge"], dtype="string")
    frame = pandas.DataFrame({"query": ["q", "q"], "document": ["d", "e"], "instruction": na})
    assert reranker.score(frame) == expected
    assert reranker.score(frame.assign(instruction=[float("nan"), "judge"])) == expected
    assert reranker.score([("q", "d", float("nan")), ("q", "e", "judge")]) == expected  # a tuple's too
    missing = pandas.DataFrame({"query": ["q", "q"], "document": pandas.Series(["d", pandas.NA], dtype="string")})
    with pytest.raises(PairError, match=r"^pair 1: document must be a string, not NAType \(NA: a missing value, as "
                                        r"pandas reads an empty cell\)$"):  # fmt: skip
        reranker.score(missing)
    # iterating a DataFrame gives its column names: rank scored "id" and "document" as two documents
    docs = pandas.DataFrame({"id": ["a", "b", "c"], "document": ["Beijing", "Paris", "Tokyo"]}, index=[5, 6, 7])
    from qrr.server.client import RemoteReranker

    for call in (lambda: reranker.rank("q", docs), lambda: RemoteReranker("localhost:9").rank("q", docs)):
        with pytest.raises(InputError, match=r"^documents must be an iterable of strings, not a DataFrame, whose "
                                             r"column names would be ranked: pass its column of texts, "
                                             r"frame\['document'\] \(and ids=frame.index, "):  # fmt: skip
            call()
    with pytest.raises(InputError, match=r"^records must be an iterable of strings, not a DataFrame, whose column "
                                         r"names would be ranked: pass DocRecords, \[DocRecord\(text, id\) for id, "
                                         r"text in frame\['document'\].items\(\)\]$"):  # fmt: skip
        pipelines.rank_records(reranker, "q", docs)  # which has no ids
    ranked = reranker.rank("q", docs["document"], ids=docs.index)
    assert sorted(r["id"] for r in ranked) == [5, 6, 7] and sorted(r["corpus_id"] for r in ranked) == [0, 1, 2]


def test_settings_set_after_building_are_checked(tiny_model):
    rr = Reranker(str(tiny_model), device="cpu")
    for name, value, message in [
        ("batch_tokens", 0, "^batch_tokens must be at least 1, not 0$"),
        ("batch_tokens", "big", "^batch_tokens must be an integer, not 'big'$"),  # was a TypeError at the next call
        ("batch_tokens", 2**40, "^batch_tokens 1099511627776 needs about "),  # the constructor's memory check
        ("instruction", 5, "^instruction must be a string, not int$"),  # was said as pair 0's fault
        ("instruction", "a\ud800", "^the instruction is not valid Unicode text "),
        ("share_prefix", "no", "^share_prefix must be True or False, not 'no'$"),
        ("max_length", 512, "^max_length is fixed when a Reranker is built; build another for another max_length$"),
        ("device", "cuda", "^device is fixed when a Reranker is built; build another for another device$"),
        ("dtype", "fp32", "^dtype is fixed when a Reranker is built; build another for another dtype$"),
        ("recipe", "vllm", "^recipe is fixed when a Reranker is built; build another for another recipe$"),
        ("tokenizer", None, "^tokenizer is fixed when a Reranker is built; build another for another tokenizer$"),
    ]:
        with pytest.raises(InputError, match=message) as caught:
            setattr(rr, name, value)
        fixed = ("max_length", "device", "dtype", "recipe", "tokenizer")
        assert isinstance(caught.value, AttributeError) == (name in fixed)  # read-only
    assert (rr.batch_tokens, rr.instruction, rr.share_prefix, rr.max_length) == (1024, None, True, 8192)
    assert (str(rr.device), str(rr.dtype)) == ("cpu", str(rr.engine.dtype))
    before = rr.score([("q", "d")])
    rr.batch_tokens, rr.share_prefix = 64, False
    assert (rr.batch_tokens, rr.share_prefix) == (64, False) and rr.score([("q", "d")]) == before
    rr.instruction = "judge"
    assert rr.score([("q", "d")]) == rr.score([("q", "d", "judge")]) != before
    rr.batch_tokens = None  # the device's default, as when building (it was a TypeError)
    assert rr.batch_tokens == 1024


class Node:
    def __init__(self, text):
        self.text = text


class Document:
    def __init__(self, page_content):
        self.page_content, self.metadata = page_content, {}


def test_bad_arguments_name_the_parameter(reranker, tiny_model):
    with pytest.raises(InputError, match="^top_k must be at least 0, not -1$"):
        reranker.rank("q", ["d"], top_k=-1)
    with pytest.raises(InputError, match=r"^documents must be an iterable of strings, not one string \(put it in"):
        reranker.rank("q", "one document")  # not its characters, one by one
    with pytest.raises(InputError, match="^ids: more ids than documents$"):
        reranker.rank("q", ["d"], ids=[1, 2])
    with pytest.raises(InputError, match="^ids: fewer ids than documents$"):
        reranker.rank("q", ["d", "e"], ids=iter([1]))
    with pytest.raises(InputError, match="^batch_tokens must be at least 1, not 0$"):
        Reranker(str(tiny_model), device="cpu", batch_tokens=0)
    with pytest.raises(InputError, match="^max_length 48 leaves no room: the prompt frame alone takes 48 tokens$"):
        Reranker(str(tiny_model), device="cpu", max_length=48)
    # wrong types are said in the parameters' words, not as a TypeError from deep inside
    for call, message in [
        (lambda: reranker.rank("q", ["d"], top_k="2"), "^top_k must be an integer, not '2'$"),
        (lambda: reranker.rank("q", ["d"], top_k=1.5), "^top_k must be an integer, not 1.5$"),
        (lambda: reranker.score([("q", "d")], batch_size=True), "^batch_size must be an integer, not True$"),
        (lambda: reranker.rank("q", None), "^documents must be an iterable of strings, not NoneType$"),
        (lambda: reranker.rank(None, ["d"]), "^query must be a string, not NoneType$"),
        (lambda: reranker.rank("q", ["d", {"text": "e"}]), r"^document 1 must be a string, not dict \(pass its 'text'"),
        (lambda: reranker.rank("q", ["d", {"body": "e"}]), "^document 1 must be a string, not dict$"),
        (lambda: reranker.rank("q", ["d", float("nan")]), r"^document 1 must be a string, not float \(NaN: a missing "),
        (
            lambda: reranker.rank("q", [DocRecord("d", 1)]),
            r"^document 0 must be a string, not DocRecord \(pass its text; qrr.pipelines.rank_records ranks "
            r"DocRecords, keeping their ids\)$",
        ),
        # flags are flags: "no" was true
        (lambda: reranker.rank("q", ["d"], return_documents="no"), "^return_documents must be True or False, not 'no'"),
        (lambda: reranker.score([("q", "d")], show_progress_bar="yes"), "^show_progress_bar must be True or False, "),
        (lambda: reranker.predict([("q", "d")], convert_to_numpy="no"), "^convert_to_numpy must be True or False, "),
        (lambda: reranker.rank("q", ["d"] * 4, ids="abcd"), "^ids must be an iterable of ids, .*, not one string$"),
        # another library's object with a text (a LlamaIndex node, say): not a DocRecord
        (lambda: reranker.rank("q", [Node("d")]), r"^document 0 must be a string, not Node \(pass its \.text\)$"),
        (
            lambda: reranker.rank("q", [Document("d")]),
            r"^document 0 must be a string, not Document \(pass its "
            r"\.page_content\)$",
        ),  # LangChain's
        (lambda: reranker.rank("q", ["d"], instruction=5), "^instruction must be a string, not int$"),
        (lambda: Reranker(str(tiny_model), max_length="100"), "^max_length must be an integer, not '100'$"),
        (lambda: Reranker(str(tiny_model), instruction=5), "^instruction must be a string, not int$"),
        (lambda: Reranker(123), "^model must be a model name, hub repo id or folder, not int$"),
        # an empty name (an unset variable of the caller's) is no request for the default, nor for the folder ""
        (
            lambda: Reranker(""),
            r"^model is empty \(''\): give 0.6b, 4b, 8b, a hub repo id or a folder, or leave it "
            r"out for the default \(\$QRR_MODEL, else 0.6b\)$",
        ),  # fmt: skip
        (lambda: Reranker(" "), r"^model is empty \(' '\)"),
        (lambda: Reranker(reranker.engine.body), r"^model: a loaded model goes to Reranker.from_model\(model, "),
        (
            lambda: Reranker.from_model(str(tiny_model), None),
            "^model: from_model takes a loaded transformers model, not str; a name or folder goes to Reranker",
        ),
        (lambda: reranker.rank("q", ["d"], ids=5), "^ids must be an iterable of ids, one per document, not int$"),
        (lambda: reranker.rank("q", ["d"], top_k=numpy.array([1, 2])), "^top_k must be an integer, not array"),
        (lambda: reranker.rank("a\ud800", ["d"]), "^the query is not valid Unicode text"),
        # a position counts from the input's start, not from the start of a chunk of 1,024
        (lambda: Reranker("fake").rank("q", ["d"] * 1030 + ["a\ud800b"]), "^document 1030 is not valid Unicode "),
        (lambda: Reranker("fake").score([("q", "d")] * 1030 + [("q", "\ud800")]), "^pair 1030: the document is not"),
        (lambda: reranker.predict(None), r"^pairs must be an iterable of \(query, document\) pairs, not NoneType$"),
        # a dict's keys were ranked
        (
            lambda: reranker.rank("q", {"d1": "Beijing", "d2": "Paris"}),
            r"^documents must be an iterable of strings, not a mapping: pass its texts and keys "
            r"\(documents=list\(d.values\(\)\), ids=list\(d\)\)$",
        ),  # fmt: skip
        (lambda: Reranker(str(tiny_model), share_prefix="no"), "^share_prefix must be True or False, not 'no'$"),
        (lambda: Reranker(str(tiny_model), compile=1), "^compile must be True or False, not 1$"),
        (
            lambda: Reranker.from_model(reranker.engine.body, reranker.tokenizer, compile=1),
            "^compile must be True or False, not 1$",
        ),
        (
            lambda: Reranker(str(tiny_model), max_length=50_000),
            r"^max_length 50000 is more than the model's 40960 positions \(max_position_embeddings\): lower it$",
        ),
        (
            lambda: Reranker.from_model(reranker.engine.body, reranker.tokenizer, max_length=50_000),
            r"^max_length 50000 is more than the model's 40960 positions",
        ),
        (
            lambda: Reranker.from_model(reranker.engine.body, None),
            r"^tokenizer: from_model takes a loaded tokenizer \(AutoTokenizer.from_pretrained\(folder\)\), not None",
        ),
        (
            lambda: Reranker.from_model(reranker.engine.body, str(tiny_model)),
            r"^tokenizer: from_model takes a loaded tokenizer .*, not str$",
        ),
    ]:
        with pytest.raises(InputError, match=message):
            call()
    assert reranker.rank("q", ["d"], top_k=numpy.int64(1))[0]["corpus_id"] == 0  # numpy's integers are integers
    assert reranker.rank("q", ["d"], return_documents=numpy.bool_(True))[0]["text"] == "d"  # and its booleans flags


def test_a_bad_text_deep_in_a_list_is_said_before_any_is_scored(fake_model):
    # the 1,024 pairs before it were scored, then lost with the error
    from qrr.errors import PairError

    rr, scored = Reranker("fake"), []
    with pytest.raises(InputError, match="^document 1030 must be a string, not NoneType$"):
        rr.rank("q", ["d"] * 1030 + [None], progress=scored.append)
    with pytest.raises(PairError, match="^pair 1030: document must be a string, not NoneType$"):
        rr.score([("q", "d")] * 1030 + [("q", None)], progress=scored.append)
    for ids, said in ((list(range(1029)), "fewer"), (list(range(1031)), "more")):  # were said once all were scored
        with pytest.raises(InputError, match=f"^ids: {said} ids than documents$"):
            rr.rank("q", ["d"] * 1030, ids=ids, progress=scored.append)
        with pytest.raises(InputError, match=f"^ids: {said} ids than documents$"):
            rr.rank("q", ["d"] * 1030, ids=ids, top_k=0)
    assert scored == []
    assert rr.score([("q", "d")] * 3, progress=scored.append).stats.pairs == 3 and sum(scored) == 3  # it counts


def test_numpy_counts_are_kept_as_ints_and_top_k_0_keeps_none(tiny, fake_model):
    import numpy
    import orjson

    from qrr.server.client import RemoteReranker

    rr = tiny(max_length=numpy.int64(120), batch_tokens=numpy.int32(256))  # settings() was no JSON: numpy's int64
    assert (type(rr.max_length), type(rr.batch_tokens)) == (int, int)
    assert orjson.loads(orjson.dumps(rr.settings()))["max_length"] == 120
    # CrossEncoder's rank slices its results: top_k=min(5, len(hits)) where the first stage found none is []
    for ranker in (Reranker("fake"), RemoteReranker("http://127.0.0.1:9")):  # nothing scored: no request either
        ranked = ranker.rank("q", [], top_k=0)
        assert ranked == [] and ranked.stats.pairs == 0
        assert ranker.rank("q", ["d", "e"], top_k=0) == []


def test_torch_devices_and_dtypes_are_taken_and_repr_says_them(tiny_model, tiny):
    import torch

    rr = Reranker(tiny_model, device=torch.device("cpu"), dtype=torch.float32)  # tiny_model is a Path
    assert (rr.device, rr.dtype) == (torch.device("cpu"), torch.float32)
    assert repr(rr) == f"Reranker('{tiny_model}', device='cpu', dtype='fp32', max_length=8192, recipe='transformers')"
    assert repr(tiny()).startswith("Reranker.from_model(..., device='cpu', dtype='fp32'")
    from qrr.device import cpu_threads

    assert rr.description() == (f"model {tiny_model} on cpu (fp32, {cpu_threads()}), transformers recipe, batch "
                                "budget 1024 tokens")  # fmt: skip
    rr.engine.compiled = True  # as engine.compile() leaves it
    assert rr.description().endswith("batch budget 1024 tokens, compiled")
    with pytest.raises(QrrError, match="^model 0.6b-nowhere: no such folder, and not an alias"):
        Reranker(Path("0.6b-nowhere"))  # a Path that is no folder is a name like any other


def test_from_model_compiles_as_reranker_does(tiny, monkeypatch):
    from qrr.engine import TransformerEngine

    compiled = []
    monkeypatch.setattr(TransformerEngine, "compile", lambda engine: compiled.append(engine))
    assert tiny().engine not in compiled
    rr = tiny(compile=True)  # Reranker(..., compile=True) takes it; from_model did not
    assert compiled == [rr.engine]


def test_from_model_keeps_the_models_device_unless_told(tiny_model, tokenizer, monkeypatch):
    # its default was "auto": a model on cuda:1 (or the CPU, beside a GPU) was moved to cuda
    import torch
    from transformers import AutoModelForCausalLM

    from qrr.errors import PeerKeyword

    causal = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # "auto" would pick a GPU that is not there
    rr = Reranker.from_model(causal, tokenizer)
    assert str(rr.device) == "cpu" and rr.score([("q", "d")]).stats.pairs == 1
    causal.hf_device_map = {"model.layers.0": 0, "model.layers.1": "cpu"}
    with pytest.raises(InputError, match=r"^device: the model is split across devices \(0, cpu\) and qrr scores on "
                       r'one: give the one to move it to, device="cuda:0" say$'):  # fmt: skip
        Reranker.from_model(causal, tokenizer)
    with pytest.raises(PeerKeyword, match=r"^from_model\(\) takes no dtype=: the dtype is the Reranker's, chosen "):
        Reranker.from_model(causal, tokenizer, dtype="fp32")


def test_a_document_over_the_tokenizers_limit_is_cut_without_its_warning(tiny_model):
    import logging

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    class Kept(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    said: list[str] = []
    handler, was = Kept(), hf_logging.get_verbosity()
    hf_logging.get_logger("transformers").addHandler(handler)
    hf_logging.set_verbosity_warning()  # as a user's process has it (the CLI, imported by other tests, lowers it)
    try:
        rr = Reranker(tiny_model, device="cpu", max_length=100)  # a tokenizer of its own: the warning comes once
        huge = "word " * 140_000  # over the tokenizer's model_max_length (131,072)
        assert rr.rank("q", [huge, "small"]).stats.truncated == 1
        assert not [m for m in said if "sequence length" in m]
        AutoTokenizer.from_pretrained(tiny_model)([huge])  # what qrr keeps quiet: the tokenizer's own call warns
        assert [m for m in said if m.startswith("Token indices sequence length is longer than")]
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
        hf_logging.set_verbosity(was)


def test_progress_counts_every_pair(tiny):
    rr = tiny(batch_tokens=300)
    seen = []
    rr.score(PAIRS, progress=seen.append)
    assert sum(seen) == len(PAIRS) and len(seen) > 1


def test_bf16_is_close_to_fp32(tiny_model, expected):
    rr = Reranker(str(tiny_model), device="cpu", dtype="bf16")
    close(rr.score(PAIRS), expected, tol=5e-2)


def test_import_needs_neither_typer_nor_rich():
    import subprocess
    import sys

    code = "import sys, qrr; assert not {'typer', 'rich', 'torch', 'transformers'} & set(sys.modules), sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    # the core's modules come when named, without an import of their own
    code = ("import qrr; print(qrr.pipelines.rerank_run.__name__, qrr.metrics.evaluate.__name__, "
            "qrr.testing.FakeModel.__name__); qrr.zzz")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout == "rerank_run evaluate FakeModel\n"
    assert run.stderr.endswith("AttributeError: module 'qrr' has no attribute 'zzz'\n")


def test_untied_lm_head_is_freed_after_loading(tiny_model, monkeypatch):
    import gc
    import weakref

    import transformers

    seen = []
    load = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        loaded = load(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading info): qrr asks for both
        seen.append(weakref.ref(model.lm_head.weight))
        return loaded

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    gc.disable()  # the load itself must collect the head: a qrr process loads with collections off
    try:
        rr = Reranker(str(tiny_model), device="cpu", dtype="fp32")
        assert seen and seen[0]() is None, "the full output head is still in memory"
    finally:
        gc.enable()
    assert not rr.engine.head.requires_grad


def test_a_cpu_budget_that_cannot_fit_is_refused_before_loading_the_weights(tiny_model, monkeypatch):
    import qrr.engine

    monkeypatch.setattr(qrr.engine, "available_memory", lambda device: 2**30)  # the machine's free memory
    Reranker(str(tiny_model), device="cpu", batch_tokens=4096)
    with pytest.raises(InputError, match=r"^batch_tokens 100000000 needs about .* GiB for activations"):
        Reranker(str(tiny_model), device="cpu", batch_tokens=100_000_000)


def test_streams_of_more_than_a_chunk(reranker, fake_model):
    """Inputs of more than CHUNK pairs are scored a chunk at a time; nothing shifts at the chunk boundary."""
    from qrr.reranker import CHUNK

    pairs = [(f"query {n % 3}", f"document {n} " * (1 + n % 4)) for n in range(CHUNK + 6)]
    scores = reranker.score(iter(pairs))
    assert len(scores) == CHUNK + 6 and scores.stats.pairs == CHUNK + 6
    for n in (0, 500, CHUNK - 1, CHUNK, CHUNK + 5):
        close([scores[n]], reranker.score([pairs[n]]), tol=1e-6)

    # ranking: the same with a generator and ids, top_k across chunks, and ties broken by input order
    fake = Reranker("fake")
    docs = [text for _, text in pairs]
    docs[-1] = docs[0]  # a tie, one in each chunk
    ids = [f"d{n}" for n in range(len(docs))]
    whole = fake.rank("q", docs, ids=ids)
    order = [r["corpus_id"] for r in whole]
    cut = order.index(0) + 1
    assert order[cut] == len(docs) - 1  # tied: the earlier document first
    assert fake.rank("q", iter(docs), ids=iter(ids)) == whole
    for k in (1, cut, cut + 1, len(docs)):  # top_k cut between the tied pair: the later one leaves
        assert fake.rank("q", iter(docs), top_k=k, ids=iter(ids)) == whole[:k]


# -------------------------------------------------------------------------------------------- the vllm recipe


def test_the_two_recipes_score_differently(reranker, tiny):
    vllm = tiny(recipe="vllm")
    assert vllm.recipe == "vllm" and reranker.recipe == "transformers"
    assert max(abs(a - b) for a, b in zip(vllm.score(PAIRS), reranker.score(PAIRS), strict=True)) > 1e-3


def test_vllm_recipe_matches_the_cards_vllm_path(tiny_model, vllm_oracle):
    rr = Reranker(str(tiny_model), device="cpu", dtype="fp32", recipe="vllm")
    close(rr.score(PAIRS), vllm_oracle.score(PAIRS))
    task = "Given a question in any language, find passages in any language that answer it"
    close(rr.score([(q, d, task) for q, d in PAIRS]), vllm_oracle.score(PAIRS, instruction=task))


@pytest.mark.parametrize("max_length", [110, 200])
def test_vllm_recipe_truncates_as_the_card_does(tiny, vllm_oracle, max_length):
    rr = tiny(recipe="vllm", max_length=max_length)
    budget = max_length - len(rr.prompter.suffix_ids)

    def rendered_length(document):
        return len(rr.tokenizer(rr.prompter.render("q", document), add_special_tokens=False)["input_ids"])

    # a document that fits while the user turn's end marker does not: the card cuts the marker, so does qrr
    words = next(n for n in range(1, max_length) if rendered_length("beta " * n) > budget)
    assert rendered_length("beta " * words) - budget <= 2
    pairs = [("q", "alpha " * 500), ("q", "beta " * words), ("a longer query here", "gamma delta " * 300), ("s", "x")]
    scores = rr.score(pairs)
    close(scores, vllm_oracle.with_max_length(max_length).score(pairs))
    encoded = rr.prompter.encode([(q, d, None) for q, d in pairs])
    assert [e.truncated for e in encoded] == [True, True, True, False] and scores.stats.truncated == 3
    assert all(len(e.ids) == max_length for e in encoded[:3]) and encoded[1].ids[-9:] == rr.prompter.suffix_ids
    assert rr.tokenizer.decode(encoded[1].ids).count("beta") == words


def test_vllm_recipe_shares_the_prefix_it_finds_in_the_tokens(tiny, vllm_oracle):
    on, off = tiny(recipe="vllm"), tiny(recipe="vllm", share_prefix=False)
    docs = [d for _, d in PAIRS]
    with_reuse, without = on.rank("The query", docs), off.rank("The query", docs)
    close([r["score"] for r in with_reuse], [r["score"] for r in without])
    assert with_reuse.stats.computed_tokens < without.stats.computed_tokens
    close(sorted(r["score"] for r in with_reuse), sorted(vllm_oracle.score([("The query", d) for d in docs])))


def test_vllm_template_is_the_transformers_prompt_with_one_newline_less(tiny, oracle):
    from tests.oracle import SUFFIX, Oracle

    assert SUFFIX.endswith("</think>\n\n")
    template = Oracle.sharing(oracle)  # the card's transformers recipe with vLLM's template's suffix
    template.suffix_tokens = oracle.tokenizer.encode(SUFFIX[:-1], add_special_tokens=False)
    scores = tiny(recipe="vllm-template").score(PAIRS)
    close(scores, template.score(PAIRS))
    assert max(abs(a - b) for a, b in zip(scores, oracle.score(PAIRS), strict=True)) > 1e-3


def test_an_unknown_recipe_or_a_tokenizer_without_chat_template(tiny_model, tokenizer, tmp_path):
    with pytest.raises(InputError, match="^recipe 'sglang' is unknown: use transformers, vllm or vllm-template$"):
        Reranker(str(tiny_model), device="cpu", recipe="sglang")
    with pytest.raises(InputError, match="^recipe 'sglang' is unknown"):  # said before the model is looked for
        Reranker(str(tmp_path / "nowhere"), device="cpu", recipe="sglang")
    import copy

    plain = copy.copy(tokenizer)
    plain.chat_template = None
    from qrr.prompt import Prompter

    with pytest.raises(InputError) as caught:
        Prompter(plain, recipe="vllm")
    assert str(caught.value) == ("the tokenizer has no chat template, which recipe vllm renders; use recipe "
                                 "transformers or vllm-template, which need none")  # fmt: skip
    # in a model's folder: said of the folder
    import json
    import shutil

    shutil.copytree(tiny_model, tmp_path / "plain")
    config = json.loads((tmp_path / "plain" / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (tmp_path / "plain" / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(InputError) as caught:
        Reranker(str(tmp_path / "plain"), device="cpu", recipe="vllm")
    assert str(caught.value) == (f"{tmp_path / 'plain'}: the tokenizer has no chat template, which recipe vllm "
                                 "renders; use recipe transformers or vllm-template, which need none")  # fmt: skip
    assert caught.value.params == ("recipe",)
    # sentence-transformers' template of query and document roles renders no user message: every document scored
    # alike, unsaid
    other = copy.copy(tokenizer)
    other.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'query' %}<Query>: {{ m['content'] }}{% elif m['role'] == "
        "'document' %}<Document>: {{ m['content'] }}{% endif %}{% endfor %}"
    )
    with pytest.raises(InputError) as caught:
        Prompter(other, recipe="vllm")
    assert str(caught.value) == ("the tokenizer's chat template does not render a user message (one of other roles?), "
                                 "which recipe vllm renders; use recipe transformers or vllm-template")  # fmt: skip
    assert Prompter(other, recipe="vllm-template").suffix_ids  # the recipes written by hand take it as it is


def test_a_reranker_pickled_or_copied_says_to_build_one_per_process(fake_model):
    import copy
    import pickle

    from qrr.errors import QrrError

    message = (
        "a Reranker holds a loaded model and cannot be pickled or copied: build one in each process (in a "
        "multiprocessing Pool's initializer, say) from the same options"
    )
    fake_reranker = Reranker("fake")
    with pytest.raises(QrrError) as pickled:
        pickle.dumps(fake_reranker)
    assert str(pickled.value) == message and isinstance(pickled.value, TypeError)  # as pickle's own refusals
    with pytest.raises(QrrError, match="cannot be pickled or copied"):
        copy.deepcopy(fake_reranker)
    assert pickle.loads(pickle.dumps(fake_reranker.score([("q", "d")]))).stats.pairs == 1  # results travel


def test_the_package_says_it_is_typed():
    from importlib.resources import files

    assert files("qrr").joinpath("py.typed").is_file()  # type checkers read qrr's annotations


def test_max_length_none_is_the_default_as_in_crossencoder(fake_model, tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    assert Reranker("fake", max_length=None).max_length == 8192  # a TypeError from deep inside, before
    causal = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert Reranker.from_model(causal, tokenizer, device="cpu", max_length=None).max_length == 8192


def test_the_public_types_for_a_type_checker():
    import sys
    import typing

    import qrr
    from qrr import pipelines, reranker
    from qrr.errors import FixedSetting, Missing, NotPicklableError, OutputBusy
    from qrr.server.client import RemoteReranker

    assert qrr.Results[float]([0.5]) == [0.5]  # generic, as an annotation names it at run time too
    assert qrr.RankResult.__required_keys__ == {"corpus_id", "score"}
    assert qrr.RankResult.__optional_keys__ == {"id", "text", "fields"}
    # one predict for both kinds, its return told by overloads
    assert Reranker.predict is RemoteReranker.predict
    if sys.version_info >= (3, 11):  # typing.get_overloads is new in 3.11
        assert len(typing.get_overloads(Reranker.predict)) == 7
    # a Scorer is what the pipelines take: both kinds have all it names
    named = {n for n in vars(qrr.Scorer) if not n.startswith("_")}
    assert named == {"max_length", "batch_tokens", "instruction", "settings", "score", "rank"}
    assert all(hasattr(kind, n) or n == "instruction" for kind in (Reranker, RemoteReranker) for n in named)
    # every error class in qrr.errors, and still where it was raised from
    assert (reranker.FixedSetting, reranker.NotPicklableError) == (FixedSetting, NotPicklableError)
    assert (pipelines.Missing, pipelines.OutputBusy) == (Missing, OutputBusy)


def test_a_remote_reranker_sends_no_more_of_a_document_than_can_reach_its_tokens(monkeypatch):
    """A document of 20 MB, which a model loaded here cuts, was refused as over the server's request size; the tail
    past the server's max_document_chars changes no token (tests/test_prompt.py), so it is not sent."""
    from qrr.server.client import RemoteReranker

    remote = RemoteReranker("http://127.0.0.1:9")
    card = {"max_document_chars": 1000, "max_request_bytes": 1_000_000, "max_documents": 100}
    monkeypatch.setitem(remote.__dict__, "_card", card)  # what the server's /v1/models says
    sent = []

    def call(method, path, body=None):
        sent.append(body)
        if path == "/score":
            return {"data": [{"index": i, "score": 0.5} for i in range(len(body["text_2"]))], "usage": {}}
        return {"results": [{"index": i, "relevance_score": 0.5} for i in range(len(body["documents"]))], "usage": {}}

    monkeypatch.setattr(remote, "_call", call)
    long = "x" * 5000
    ranked = remote.rank("q", [long, "short"], return_documents=True)
    assert sent[-1]["documents"] == ["x" * 1000, "short"] and ranked[0]["text"] == long  # the text as given
    remote.score([("q", long)])
    assert sent[-1]["text_2"] == ["x" * 1000]
    marks = "x" * 990 + "a" + "\u0301" * 20 + "y" * 50  # never cut inside a run of combining marks: after it
    remote.score([("q", marks)])
    assert sent[-1]["text_2"] == [marks[:1011]]
    before = len(sent)  # a bad pair in a later run of another instruction: said before any request is sent
    with pytest.raises(InputError, match="^pair 1: document must be a string"):
        remote.score([("q", "a", "Judge"), ("q", 3, "Find")])
    assert len(sent) == before
    card["max_document_chars"] = None  # a server that does not say: sent whole
    remote.score([("q", long)])
    assert sent[-1]["text_2"] == [long]
    # more than the server's max_documents go in the fewest requests, evened out: 102 went as 100 and 2
    before = len(sent)
    remote.rank("q", [f"d{n}" for n in range(102)])
    assert [len(body["documents"]) for body in sent[before:]] == [51, 51]
    remote.score([("q", f"d{n}") for n in range(250)])
    assert [len(body["text_2"]) for body in sent[before + 2 :]] == [84, 84, 82]


def test_an_instruction_that_leaves_no_room_is_refused_when_given(fake_model, cli):
    # it was taken, and every call failed after, said of a query that the user had not written yet
    long = "word " * 200
    said = ("the instruction takes 212 tokens, but {} 128 leaves 80 for query, instruction and document together "
            "(the prompt frame takes 48); raise {} or shorten the instruction")  # fmt: skip
    with pytest.raises(InputError) as caught:
        Reranker("fake", max_length=128, instruction=long)
    assert str(caught.value) == said.format("max_length", "max_length")
    rr = Reranker("fake", max_length=128)
    with pytest.raises(InputError, match="^the instruction takes 212 tokens"):
        rr.instruction = long
    assert rr.instruction is None
    result = cli("rank", "-q", "q", "-d", "a", "-i", long, "--max-length", "128")
    assert (result.exit_code, result.stderr) == (2, "error: " + said.format("--max-length", "--max-length") + "\n")
