"""nDCG@10, MRR@10, Recall@100 and MAP against pytrec_eval (trec_eval's own code), to 1e-6."""

from __future__ import annotations

import pytest
import pytrec_eval  # the test-only reference (pytrec-eval-terrier on PyPI)
from hypothesis import given, settings
from hypothesis import strategies as st

from qrr import metrics
from qrr.errors import InputError

# with trec_eval's default cut-offs (5, 10, ..., 100, ..., 1000); its "ndcg" hangs on some judgments, and
# ndcg_cut_1000 is nDCG without a cut-off for these runs of at most 40 documents
TREC_MEASURES = {"ndcg_cut", "recip_rank", "recall", "P", "map", "map_cut", "success", "Rprec", "bpref"}
# every measure qrr has, with and without cut-offs, and the default set among them
ALL = ("ndcg@10", "mrr@10", "recall@100", "map", "ndcg", "ndcg@5", "mrr", "recall@10", "p@5", "map@10", "success@1",
       "success@5", "judged@5", "judged@10", "rprec", "bpref")  # fmt: skip


def reference(qrels, run, level: int = 1) -> dict[str, dict[str, float]]:
    """pytrec_eval's values in qrr's names, for the queries it evaluates (those in both run and qrels)."""
    values = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES, relevance_level=level).evaluate(run)
    # judged@k is P@k where every judged document counts relevant, whatever its judgment (ir_measures' Judged)
    every = {q: dict.fromkeys(docs, 1) for q, docs in qrels.items()}
    judged = pytrec_eval.RelevanceEvaluator(every, {"P"}).evaluate(run)
    return {
        q: {
            "ndcg@10": v["ndcg_cut_10"],
            # trec_eval's recip_rank has no cut-off: 1/rank >= 1/10 is the same as a first relevant rank <= 10
            "mrr@10": v["recip_rank"] if v["recip_rank"] >= 0.1 else 0.0,
            "recall@100": v["recall_100"],
            "map": v["map"],
            "ndcg": v["ndcg_cut_1000"],
            "ndcg@5": v["ndcg_cut_5"],
            "mrr": v["recip_rank"],
            "recall@10": v["recall_10"],
            "p@5": v["P_5"],
            "map@10": v["map_cut_10"],
            "success@1": v["success_1"],
            "success@5": v["success_5"],
            "judged@5": judged[q]["P_5"],
            "judged@10": judged[q]["P_10"],
            "rprec": v["Rprec"],
            "bpref": v["bpref"],
        }
        for q, v in values.items()
    }


def check(qrels, run, level: int = 1):
    ours = metrics.evaluate(qrels, run, measures=ALL, level=level)
    theirs = reference(qrels, run, level)
    for q, values in theirs.items():
        assert ours.per_query[q] == pytest.approx(values, abs=1e-6), q
    # Judged queries the run lacks count 0 (trec_eval -c); pytrec_eval leaves them out, so add them back as zeros.
    for m in ALL:
        assert ours.means[m] == pytest.approx(sum(v[m] for v in theirs.values()) / len(qrels), abs=1e-6), m
    default = metrics.evaluate(qrels, run, level=level)
    assert default.means == {m: ours.means[m] for m in metrics.MEASURES}
    return ours


QRELS = {
    "ties": {"d1": 1, "d2": 0, "d3": 2, "d9": 1},
    "graded": {f"g{n}": n % 4 for n in range(30)},
    "none relevant": {"d1": 0, "d2": 0},
    "negative": {"d1": -1, "d2": 2},
    "missing from the run": {"d1": 1},
    "deep": {"x150": 1, "x5": 1},
}
RUN = {
    "ties": {"d1": 0.5, "d2": 0.5, "d3": 0.5, "d4": 0.9, "d5": 0.5},
    "graded": {f"g{n}": float(n % 7) for n in range(30)} | {f"u{n}": 3.0 for n in range(5)},
    "none relevant": {"d1": 1.0, "d3": 0.2},
    "negative": {"d1": 2.0, "d2": 1.0},
    "deep": {f"x{n}": 1000.0 - n for n in range(200)},
    "not judged": {"d1": 1.0},
}


def test_fixture_with_ties_grades_unjudged_and_missing_queries():
    result = check(QRELS, RUN)
    assert result.queries == len(QRELS)
    assert result.missing == ["missing from the run"]
    assert result.unjudged == 1
    # d1 is judged, at 0: judged@k counts judgments, not relevance
    assert result.per_query["none relevant"] == dict.fromkeys(ALL, 0.0) | {"judged@5": 0.2, "judged@10": 0.1}
    # trec_eval's tie order: d4, then d5 > d3 > d2 > d1 by docid, descending; d3 is the first relevant
    assert result.per_query["ties"]["mrr@10"] == pytest.approx(1 / 3)
    assert result.per_query["deep"]["recall@100"] == pytest.approx(0.5)
    assert metrics.without_relevant(QRELS) == ["none relevant"]


def test_only_the_given_queries_count():
    result = metrics.evaluate(QRELS, RUN, queries={"ties", "deep"})
    assert result.queries == 2 and result.missing == []
    both = reference({q: QRELS[q] for q in ("ties", "deep")}, RUN)
    assert result.means["map"] == pytest.approx((both["ties"]["map"] + both["deep"]["map"]) / 2, abs=1e-9)


def test_an_empty_run_scores_zero():
    result = check(QRELS, {"ties": {}})
    assert result.means == dict.fromkeys(ALL, 0.0)


def test_measure_names():
    assert [metrics.measure(m) for m in ("nDCG@10", " R@100", "P@5", "MRR", "recip_rank@10", "AP", "map@1000")] == [
        "ndcg@10", "recall@100", "p@5", "mrr", "mrr@10", "map", "map@1000"]  # fmt: skip
    # trec_eval's names
    assert [metrics.measure(m) for m in ("P_5", "recall_100", "ndcg_cut_10", "map_cut_100")] == [
        "p@5", "recall@100", "ndcg@10", "map@100"]  # fmt: skip
    for name, message in [("bleu", "'bleu': use ndcg, mrr, recall, p, map, success or judged, each with an optional "
                                   "@k cut-off \\(ndcg@10\\), or rprec or bpref$"),
                          ("judged", "'judged': the judged share needs a cut-off \\(judged@10\\)"),
                          ("ndcg@0", "'ndcg@0': use"), ("ndcg@x", "'ndcg@x': use"), ("map@", "'map@': use"),
                          ("ndcg@\u00b2", "'ndcg@\u00b2': use"), ("P_x", "'P_x': use"),
                          ("p", "'p': precision needs a cut-off \\(p@10\\)"),
                          ("bpref@10", "'bpref@10': bpref takes no cut-off \\(it is trec_eval's, of the whole "
                                       "ranking\\)$"),
                          ("R-prec@5", "'R-prec@5': Rprec takes no cut-off")]:  # fmt: skip
        with pytest.raises(InputError, match=f"^measures {message}") as caught:
            metrics.measure(name)
        assert caught.value.params == ("measures",)
    # none at all: an evaluation of no measure returned {} means, as the command refuses it
    with pytest.raises(InputError, match=r"^measures: name at least one measure \(ndcg@10, say\)$"):
        metrics.evaluate({"q": {"d": 1}}, {"q": {"d": 1.0}}, [])
    # asked twice under two names: once
    assert list(metrics.evaluate(QRELS, RUN, measures=["R@100", "recall@100"]).means) == ["recall@100"]
    assert list(metrics.evaluate(QRELS, RUN, measures="map,P@5").means) == ["map", "p@5"]  # one string: split
    # third, as pytrec_eval's evaluator takes them (it was the run's name: the default measures came back, unsaid)
    assert list(metrics.evaluate(QRELS, RUN, ["P@5"]).means) == ["p@5"]
    # as trec tools name them
    assert [metrics.measure(m) for m in ("P.5", "recall.100", "ndcg_cut.10", "recip_rank", "success_10",
                                         "success.5", "judged_10", "Rprec", "R-prec", "bpref")] == [
        "p@5", "recall@100", "ndcg@10", "mrr", "success@10", "success@5", "judged@10", "rprec", "rprec",
        "bpref"]  # fmt: skip
    with pytest.raises(TypeError):
        metrics.evaluate(QRELS, RUN, ["p@5"], "mine")  # the name by keyword only
    with pytest.raises(InputError, match="^measures must be measure names \\(ndcg@10\\), not int$"):
        metrics.evaluate(QRELS, RUN, [10])


docids = st.sampled_from([f"d{n:02d}" for n in range(40)])
grades = st.sampled_from([-1, 0, 0, 1, 1, 2, 3])
scores = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(-10, 10, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(
    qrels=st.dictionaries(st.sampled_from("abcdef"), st.dictionaries(docids, grades, min_size=1), min_size=1),
    run=st.dictionaries(st.sampled_from("abcdefgh"), st.dictionaries(docids, scores, min_size=1)),
)
def test_random_runs_agree_with_pytrec_eval(qrels, run):
    check(qrels, run)
    check(qrels, run, level=2)  # trec_eval -l 2: relevant from 2 up; nDCG gains every positive judgment still


def test_a_relevance_level_counts_relevant_from_it_up():
    ours = check(QRELS, RUN, level=2)
    # "ties" has one document judged 2, d3, third (after d4 at 0.9, the ties by docid descending): MRR 1/3, and nDCG
    # as at level 1
    assert ours.per_query["ties"]["mrr@10"] == pytest.approx(1 / 3)
    assert ours.per_query["ties"]["ndcg@10"] == check(QRELS, RUN).per_query["ties"]["ndcg@10"]
    assert metrics.without_relevant(QRELS, 2) == ["none relevant", "missing from the run", "deep"]
    with pytest.raises(InputError, match="^level must be at least 1, not 0$"):
        metrics.evaluate(QRELS, RUN, level=0)


def test_ids_written_unlike_the_qrels_are_found_and_a_sparse_miss_is_not():
    qrels = {f"q{n}": {f"00{n}": 1} for n in range(12)}
    assert metrics.ids_unlike(qrels, {"q1": {"1": 1.0, "7": 0.5}}) == ("q1", "1", "001")  # leading zeros dropped
    assert metrics.ids_unlike(qrels, {"q1": {"1": 1.0}}, queries={"q2"}) is None  # q1 not evaluated
    assert metrics.ids_unlike(qrels, {"q1": {"x": 1.0, "003": 0.5}}) is None  # judged, if for another query
    # a small run that misses qrels of one judgment a query: no sign of ids written otherwise
    assert metrics.ids_unlike(qrels, {"q1": {"d9": 1.0}}) is None
    many = {f"q{n}": {f"d{n}": 1.0} for n in range(10)}
    assert metrics.ids_unlike(qrels, many) == ("q0", "d0", "000")  # ten queries and not one judged document
    assert metrics.ids_unlike(qrels, {"x1": {"1": 1.0}}) is None  # no judged query answered: said elsewhere
    # some found, some written otherwise: those count as unjudged
    assert metrics.padded_ids(qrels, {"q1": {"001": 1.0, "d9": 0.5, "2": 0.1}}) == ("q1", "2", "002")
    assert metrics.padded_ids(qrels, {"q1": {"001": 1.0, "d9": 0.5}}) is None  # unjudged, but like no judged id
    assert metrics.padded_ids(qrels, {"q1": {"2": 1.0}}, queries={"q2"}) is None  # q1 not evaluated
    assert metrics.padded({1: {}, "x": {}}, ["01"]) == (1, "01")  # query ids, numbers too


def test_each_cut_off_counts_only_the_documents_above_it():
    """The random runs rarely put a query's first relevant document past rank 10, where MRR@10 must give 0."""
    run = {"late": {f"d{n:02d}": 100.0 - n for n in range(20)}}  # d10 comes 11th
    found = metrics.evaluate({"late": {"d10": 1}}, run, measures="mrr@10,mrr,ndcg@10,recall@10,recall@11,p@11,map@10")
    assert found.per_query["late"] == {"mrr@10": 0.0, "mrr": 1 / 11, "ndcg@10": 0.0, "recall@10": 0.0,
                                       "recall@11": 1.0, "p@11": 1 / 11, "map@10": 0.0}  # fmt: skip


def test_ids_as_numbers_meet_ids_as_strings_and_a_bad_table_is_an_input_error():
    """Ids from pandas are numbers: a run keyed by 1 against qrels keyed by "1" scored 0 everywhere, unsaid."""
    import numpy

    qrels = {"q1": {"1": 1, "2": 0}}
    want = metrics.evaluate(qrels, {"q1": {"1": 0.9, "2": 0.1}}).means
    assert want["map"] == 1.0
    assert metrics.evaluate(qrels, {"q1": {1: 0.9, 2: 0.1}}).means == want
    assert metrics.evaluate({1: {1: 1, 2: 0}}, {"1": {"1": 0.9, "2": 0.1}}).means == want
    assert metrics.evaluate(qrels, {"q1": {numpy.int64(1): numpy.float32(0.9)}}).means == want
    assert metrics.evaluate({1: {10: 1}}, {1: {10: 0.9}}, queries={1}).queries == 1  # queries as ids too
    assert metrics.ids_unlike(qrels, {"q1": {7: 0.5}}, enough=1) == ("q1", 7, "1")  # it failed on a number
    for judged, run, said in (
        ([("q1", "1", 1)], {}, "qrels: expected a mapping {qid: {docid: number}}, not list"),
        ({"q1": ["1"]}, {}, "qrels: query 'q1': expected a mapping {docid: number}, not list"),
        ({"q1": {"1": "1"}}, {}, "qrels: query 'q1', document '1': expected a number, not str '1'"),
        (qrels, {"q1": {"1": None}}, "run: query 'q1', document '1': expected a number, not NoneType None"),
    ):
        with pytest.raises(InputError) as caught:
            metrics.evaluate(judged, run)
        assert str(caught.value) == said


def test_an_evaluation_shows_its_means_not_every_query():
    shown = repr(metrics.evaluate({f"q{n}": {"d": 1} for n in range(500)}, {"q1": {"d": 1.0}}))
    assert shown == ("Evaluation(name='run', means={'ndcg@10': 0.002, 'mrr@10': 0.002, 'recall@100': 0.002, 'map': "
                     "0.002}, per_query=<500 queries>, queries=500, missing=<499>, unjudged=0)")  # fmt: skip


@settings(max_examples=200, deadline=None)
# values on a grid, as a measure's are (MRR 1/3, P@10 0.3): a spread is nothing or more than rounding
@given(st.lists(st.tuples(*[st.integers(0, 30).map(lambda v: v / 30)] * 2), min_size=2, max_size=80))
def test_paired_t_agrees_with_scipy(pairs):
    from scipy import stats

    before = metrics.Evaluation("a", {}, {str(n): {"m": a} for n, (a, _) in enumerate(pairs)}, len(pairs))
    after = metrics.Evaluation("b", {}, {str(n): {"m": b} for n, (_, b) in enumerate(pairs)}, len(pairs))
    ours = metrics.paired_t(before, after, "m")
    diffs = [b - a for a, b in pairs]
    if max(diffs) - min(diffs) < 1e-9:  # no spread: scipy says nan; no answer, unless nothing changed
        assert ours == (1.0 if max(map(abs, diffs)) <= 1e-12 else None)
    else:
        assert ours == pytest.approx(stats.ttest_rel([b for _, b in pairs], [a for a, _ in pairs]).pvalue, abs=1e-9)


def test_paired_t_needs_two_queries_in_both():
    one = metrics.Evaluation("a", {}, {"q1": {"m": 0.5}}, 1)
    assert metrics.paired_t(one, one, "m") is None
    two = metrics.Evaluation("b", {}, {"q1": {"m": 0.5}, "q2": {"m": 0.1}}, 2)
    assert metrics.paired_t(two, one, "m") is None  # paired over the queries both have
    nan = metrics.Evaluation("c", {}, {"q1": {"m": float("nan")}, "q2": {"m": 0.1}}, 2)
    assert metrics.paired_t(two, nan, "m") is None  # it was nan, shown as "<0.001"
