"""The Reranker against the oracle (the model card's recipe on the same weights), in float32."""

from __future__ import annotations

import random
import statistics

import pytest

from qrr import Ranked, Reranker
from qrr.errors import InputError

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


def test_default_instruction_matches_oracle(reranker, expected):
    close(reranker.score(PAIRS), expected)


def test_custom_instruction_matches_oracle(reranker, oracle):
    task = "Given a question in any language, find passages in any language that answer it"
    close(reranker.score([(q, d, task) for q, d in PAIRS]), oracle.score(PAIRS, instruction=task))
    # the instruction matters: otherwise this test could not tell it was passed through
    assert reranker.score(PAIRS[:1]) != reranker.score([(*PAIRS[0], task)])


def test_instance_instruction_is_the_fallback(tiny_model, oracle):
    task = "Judge whether the passage is about geography"
    rr = Reranker(str(tiny_model), device="cpu", dtype="fp32", instruction=task)
    close(rr.score(PAIRS), oracle.score(PAIRS, instruction=task))
    close(rr.score([(q, d, None) for q, d in PAIRS]), oracle.score(PAIRS, instruction=task))


@pytest.mark.parametrize("max_length", [120, 200])
def test_truncated_documents_match_oracle(tiny_model, max_length):
    from tests.oracle import Oracle

    rr = Reranker(str(tiny_model), device="cpu", dtype="fp32", max_length=max_length)
    pairs = [("q", "alpha " * 500), ("a longer query here", "beta gamma " * 300), ("short", "fits")]
    close(rr.score(pairs), Oracle(tiny_model, max_length=max_length).score(pairs))
    assert rr.stats.truncated == 2
    assert rr.stats.tokens <= max_length * 3


def test_any_batch_budget_and_order_gives_the_same_scores(tiny_model, expected):
    rng = random.Random(7)
    for budget in (1, 64, 200, 777, 100_000):
        rr = Reranker(str(tiny_model), device="cpu", dtype="fp32", batch_tokens=budget)
        order = list(range(len(PAIRS)))
        rng.shuffle(order)
        scores = rr.score([PAIRS[i] for i in order])
        close([scores[order.index(i)] for i in range(len(PAIRS))], expected)


def test_tied_head_matches_oracle(tiny_tied_model):
    from tests.oracle import Oracle

    rr = Reranker(str(tiny_tied_model), device="cpu", dtype="fp32")
    close(rr.score(PAIRS), Oracle(tiny_tied_model).score(PAIRS))


def test_rank_sorts_best_first_with_ids_and_top_k(reranker, oracle):
    docs = [d for _, d in PAIRS]
    expected = oracle.score([("capital of China", d) for d in docs])
    ranked = reranker.rank("capital of China", docs, ids=[f"d{i}" for i in range(len(docs))])
    assert [r.index for r in ranked] == sorted(range(len(docs)), key=lambda i: -expected[i])
    assert all(isinstance(r, Ranked) and r.id == f"d{r.index}" and r.text == docs[r.index] for r in ranked)
    close([r.score for r in ranked], sorted(expected, reverse=True))
    top = reranker.rank("capital of China", docs, top_k=3)
    assert top == [Ranked(r.index, r.score, None, r.text) for r in ranked[:3]]


def test_rank_ties_keep_input_order(reranker):
    ranked = reranker.rank("q", ["same", "other", "same"])
    same = [r.index for r in ranked if r.text == "same"]
    assert same == [0, 2]


def test_empty_inputs(reranker):
    assert reranker.score([]) == []
    assert reranker.rank("q", []) == []


def test_query_too_long_for_max_length_is_an_error(tiny_model):
    rr = Reranker(str(tiny_model), device="cpu", dtype="fp32", max_length=80)
    with pytest.raises(InputError, match="raise --max-length or shorten the query"):
        rr.score([("a very long query " * 20, "doc")])


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([("only a query",)], "expected \\(query, document\\)"),
        (["a string"], "expected \\(query, document\\)"),
        ([("q", 3)], "document must be a string"),
        ([("q", "d", 5)], "instruction must be a string"),
    ],
)
def test_bad_pairs(reranker, pairs, message):
    with pytest.raises(InputError, match=message):
        reranker.score(pairs)


def test_bad_arguments(reranker, tiny_model):
    with pytest.raises(InputError, match="top-k"):
        reranker.rank("q", ["d"], top_k=0)
    with pytest.raises(InputError, match="ids"):
        reranker.rank("q", ["d"], ids=[1, 2])
    with pytest.raises(InputError, match="batch-tokens"):
        Reranker(str(tiny_model), device="cpu", batch_tokens=0)
    with pytest.raises(InputError, match="leaves no room"):
        Reranker(str(tiny_model), device="cpu", max_length=48)


def test_progress_counts_every_pair(tiny_model):
    rr = Reranker(str(tiny_model), device="cpu", dtype="fp32", batch_tokens=300)
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


def test_untied_lm_head_is_freed_after_loading(tiny_model, monkeypatch):
    import gc
    import weakref

    import transformers

    seen = []
    load = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        model = load(*args, **kwargs)
        seen.append(weakref.ref(model.lm_head.weight))
        return model

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    rr = Reranker(str(tiny_model), device="cpu", dtype="fp32")
    gc.collect()
    assert seen and seen[0]() is None, "the full output head is still in memory"
    assert not rr.engine.head.requires_grad
