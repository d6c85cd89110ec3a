"""Retrieval metrics with trec_eval's conventions: nDCG, MRR, recall, precision, MAP and success (trec_eval's
success_k: 1 where a relevant document is in the top k), each with an optional cut-off (``ndcg@10``; by default
nDCG@10, MRR@10, Recall@100 and MAP), and judged@k (ir_measures' Judged@k: the share of the top k that has a
judgment of any relevance: it tells a reranker that is worse from one that brings up documents nobody judged);
without cut-offs, trec_eval's Rprec (precision at R, the query's number of relevant documents) and bpref (how few
judged non-relevant documents rank above each relevant one: unjudged documents play no part).

- A run's documents are ordered by score, descending, equal scores by docid, descending; ranks in the file are
  ignored, and scores compare in single precision (as trec_eval stores them).
- A document is relevant when its judged relevance is at least 1 (``level``: trec_eval's ``-l``, which TREC DL
  sets to 2). nDCG's gain is the relevance itself (0 for unjudged or non-positive), whatever the level, discounted
  by log2(rank + 1); the ideal ranking sorts every positive judgment.
  ``p@k`` and ``judged@k`` divide by k however few documents the run has (trec_eval's P_k); ``map@k`` is
  trec_eval's map_cut_k.
- Scores are averaged over the judged queries (those with at least one line in the qrels). A judged query that a
  run has no results for counts 0, as ``trec_eval -c`` and ir-measures count it; a query with no relevant
  document counts 0 in every metric (but nDCG, where it has a positive judgment below ``level``). Queries of a run
  without qrels are left out, and counted.

Checked against pytrec_eval in the tests. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from qrr.errors import InputError, check_count, plural
from qrr.formats.trec import Qrels, Run

MEASURES = ("ndcg@10", "mrr@10", "recall@100", "map")  # the default
# each measure's name, and the names it is also asked by
KINDS = {"ndcg": ("ndcg",), "mrr": ("mrr", "rr", "recip_rank"), "recall": ("recall", "r"), "p": ("p", "precision"),
         "map": ("map", "ap"), "success": ("success", "hits"), "judged": ("judged",),
         "rprec": ("rprec", "r-prec", "r_prec"), "bpref": ("bpref",)}  # fmt: skip
CUT_NEEDED = {"p": "precision", "judged": "the judged share"}  # measures divided by k
NO_CUT = {"rprec": "Rprec", "bpref": "bpref"}  # measures of the whole ranking, as trec_eval has them
_ALIASES = {alias: kind for kind, aliases in KINDS.items() for alias in aliases}


def measure(name: str) -> str:
    """A measure's canonical name (``nDCG@10`` -> ``ndcg@10``, ``R@100`` -> ``recall@100``, ``P@5`` and trec_eval's
    ``P_5`` and pytrec_eval's ``P.5`` -> ``p@5``); ``InputError`` for a name that is none."""
    if not isinstance(name, str):
        raise InputError(f"{{measures}} must be measure names (ndcg@10), not {type(name).__name__}", "measures")
    said = name.strip().lower()
    # trec_eval's own names (P_5, recall_100, ndcg_cut_10, map_cut_100, success_10), and as pytrec_eval asks for
    # them (P.5); ir_measures' Judged@10 as judged_10 too
    said = re.sub(r"^(ndcg|map)_cut[_.](\w+)$", r"\1@\2", said)
    said = re.sub(r"^(p|recall|success|judged)[_.](\w+)$", r"\1@\2", said)
    kind, at, cut = said.partition("@")
    canonical = _ALIASES.get(kind)
    if canonical is None or (at and not (cut.isascii() and cut.isdigit() and int(cut) >= 1)):
        raise InputError(f"{{measures}} {name!r}: use ndcg, mrr, recall, p, map, success or judged, each with an "
                         "optional @k cut-off (ndcg@10), or rprec or bpref", "measures")  # fmt: skip
    if canonical in CUT_NEEDED and not cut:
        raise InputError(f"{{measures}} {name!r}: {CUT_NEEDED[canonical]} needs a cut-off ({canonical}@10)",
                         "measures")  # fmt: skip
    if canonical in NO_CUT and cut:
        raise InputError(f"{{measures}} {name!r}: {NO_CUT[canonical]} takes no cut-off (it is trec_eval's, of the "
                         "whole ranking)", "measures")  # fmt: skip
    return f"{canonical}@{int(cut)}" if cut else canonical


def ranking(docs: dict[str, float]) -> list[str]:
    """A query's docids best first, as trec_eval orders them: by score, descending, and equal scores by docid,
    descending. Scores are compared in single precision, as trec_eval stores them, so scores that differ only
    past a float32's 7 digits tie. The rank column of a run file plays no part, as in trec_eval."""
    single = array("f", docs.values()).tolist()
    return [d for _, d in sorted(zip(single, docs, strict=True), reverse=True)]


def measure_query(judged: dict[str, int], docs: dict[str, float], measures=MEASURES, level: int = 1
                  ) -> dict[str, float]:  # fmt: skip
    """``measures`` (canonical names, see ``measure``) for one query: its judgments ``{docid: relevance}`` and its
    run ``{docid: score}``; a document is relevant from relevance ``level`` up (nDCG takes every positive gain)."""
    order = ranking(docs)
    relevant = sum(1 for r in judged.values() if r >= level)
    grades = [judged.get(d, 0) for d in order]
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
    values = {}
    for name in measures:
        kind, _, cut = name.partition("@")
        k = int(cut) if cut else None
        top = grades[:k]
        if kind == "ndcg":
            values[name] = _dcg(top) / _dcg(ideal[:k]) if ideal else 0.0
        elif kind == "judged":  # of the top k, the share judged at all (0 and below too): unjudged ones score 0
            values[name] = sum(1 for d in order[:k] if d in judged) / k
        elif not relevant:
            values[name] = 0.0
        elif kind == "mrr":
            first = next((n for n, g in enumerate(top) if g >= level), None)
            values[name] = 0.0 if first is None else 1 / (first + 1)
        elif kind == "recall":
            values[name] = sum(1 for g in top if g >= level) / relevant
        elif kind == "p":
            values[name] = sum(1 for g in top if g >= level) / k
        elif kind == "success":
            values[name] = float(any(g >= level for g in top))
        elif kind == "rprec":  # ranks past the run's end count as non-relevant
            values[name] = sum(1 for g in grades[:relevant] if g >= level) / relevant
        elif kind == "bpref":
            nonrelevant = sum(1 for r in judged.values() if 0 <= r < level)
            values[name] = _bpref([judged.get(d) for d in order], relevant, nonrelevant, level)
        else:  # map
            hits, precision_sum = 0, 0.0
            for n, g in enumerate(top):
                if g >= level:
                    hits += 1
                    precision_sum += hits / (n + 1)
            values[name] = precision_sum / relevant
    return values


def _bpref(grades, relevant: int, nonrelevant: int, level: int) -> float:
    """trec_eval's bpref: each relevant document retrieved scores 1 less the share of judged non-relevant ones above
    it (at most R of them, out of min(R, N)); unjudged documents (None) are passed over, and so are negative
    judgments, which trec_eval reads as not in the pool (-1) or unjudged (-2)."""
    total, above = 0.0, 0
    for g in grades:
        if g is None or g < 0:
            continue
        if g < level:
            above += 1
        else:
            total += 1 - min(above, relevant) / min(relevant, nonrelevant) if above else 1.0
    return total / relevant


def _dcg(grades) -> float:
    return sum(max(g, 0) / math.log2(n + 2) for n, g in enumerate(grades))


@dataclass
class Evaluation:
    """One run's scores: ``means`` over the ``queries`` evaluated, ``per_query`` values, the judged queries the
    run had no results for (``missing``, counted 0) and how many of its queries had no qrels (``unjudged``,
    left out)."""

    name: str
    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries: int
    missing: list[str] = field(default_factory=list)
    unjudged: int = 0

    def __repr__(self) -> str:  # a notebook showed every query's row
        return (
            f"Evaluation(name={self.name!r}, means={self.means!r}, "
            f"per_query=<{plural(len(self.per_query), 'query', 'queries')}>, queries={self.queries}, "
            f"missing=<{len(self.missing):,}>, unjudged={self.unjudged})"
        )


def evaluate(qrels: Qrels, run: Run, measures: str | Iterable[str] = MEASURES, *, name: str = "run",
             queries: set[str] | None = None, level: int = 1) -> Evaluation:  # fmt: skip
    """Score ``run`` against ``qrels`` over ``queries`` (default: every judged query) by ``measures`` (names as
    ``measure`` takes them, or one string of them with commas, ``"ndcg@10,P@5"``, as pytrec_eval's evaluator
    takes them; ``None``: ``MEASURES``);
    relevant means a judgment of ``level`` or more. ``name`` names the run in the ``Evaluation``."""
    check_count(level, "level")
    qrels, run = _by_string_ids(qrels, "qrels"), _by_string_ids(run, "run")
    if queries is not None:
        queries = {_named_id(q) for q in queries}
    if measures is None:
        measures = MEASURES
    names = measures.split(",") if isinstance(measures, str) else measures
    measures = tuple(dict.fromkeys(measure(m) for m in names))
    if not measures:  # an evaluation of nothing: {} means, read as a run that scored nothing
        raise InputError("{measures}: name at least one measure (ndcg@10, say)", "measures")
    targets = [q for q in qrels if queries is None or q in queries]
    per_query = {q: measure_query(qrels[q], run.get(q, {}), measures, level) for q in targets}
    count = len(targets)
    means = {m: (math.fsum(v[m] for v in per_query.values()) / count if count else 0.0) for m in measures}
    return Evaluation(
        name=name,
        means=means,
        per_query=per_query,
        queries=count,
        missing=[q for q in targets if not run.get(q)],
        unjudged=sum(1 for q in run if q not in qrels),
    )


def paired_t(before: Evaluation, after: Evaluation, measure: str) -> float | None:
    """The two-sided p-value of a paired t-test of ``after``'s per-query ``measure`` against ``before``'s, over the
    queries both were evaluated on (a judged query a run missed counts 0 in it). 1.0 where nothing changed; ``None``
    where the test has no answer: under two queries, every query changed alike (no spread), or a value that is no
    number."""
    diffs = [after.per_query[q][measure] - v[measure] for q, v in before.per_query.items() if q in after.per_query]
    n = len(diffs)
    if n < 2:
        return None
    mean = math.fsum(diffs) / n
    variance = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    if not (math.isfinite(mean) and math.isfinite(variance)):
        return None
    if variance <= (1e-12 * max(1.0, abs(mean))) ** 2:  # alike but for rounding: as scipy, no p (but for no change)
        return 1.0 if abs(mean) <= 1e-12 else None
    t = mean / math.sqrt(variance / n)
    df = n - 1
    return _beta_regularized(df / 2, 0.5, df / (df + t * t))  # Student's t, both tails


def _beta_regularized(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz's method), on the side
    where it converges fast."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300

    def nonzero(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1 / nonzero(1 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 500):
        for term in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                     -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # fmt: skip
            d = 1 / nonzero(1 + term * d)
            c = nonzero(1 + term / c)
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _by_string_ids(table, param: str) -> dict:
    """``table`` (qrels or a run: ``{qid: {docid: number}}``) checked, its ids as strings: ids read by pandas are
    numbers, and a number never equals the other side's string (every measure was 0, unsaid)."""
    from numbers import Real

    if not isinstance(table, Mapping):
        raise InputError(f"{{{param}}}: expected a mapping {{qid: {{docid: number}}}}, not {type(table).__name__}",
                         param)  # fmt: skip
    plain = True
    for qid, docs in table.items():
        if not isinstance(docs, Mapping):
            raise InputError(f"{{{param}}}: query {qid!r}: expected a mapping {{docid: number}}, not "
                             f"{type(docs).__name__}", param)  # fmt: skip
        first = next(iter(docs.items()), None)
        if first is not None and not (isinstance(first[1], Real) and not isinstance(first[1], bool)):
            raise InputError(f"{{{param}}}: query {qid!r}, document {first[0]!r}: expected a number, not "
                             f"{type(first[1]).__name__} {first[1]!r}", param)  # fmt: skip
        plain = plain and type(qid) is str and (first is None or type(first[0]) is str)
    if plain:  # as read from files: nothing to do (the first docid of each query tells)
        return table
    return {_named_id(q): {_named_id(d): v for d, v in docs.items()} for q, docs in table.items()}


def _named_id(key):
    """An integer id as its string (``1`` -> ``"1"``, numpy's too); any other as it is."""
    from numbers import Integral

    return str(key) if isinstance(key, Integral) and not isinstance(key, bool) else key


def without_relevant(qrels: Qrels, level: int = 1) -> list[str]:
    """The judged queries with no document of relevance ``level`` or more: they count 0 in every run (in nDCG too,
    where they have no positive judgment at all)."""
    return [q for q, judged in qrels.items() if not any(r >= level for r in judged.values())]


def ids_unlike(qrels: Qrels, run: Run, queries: set[str] | None = None,
               enough: int = 10) -> tuple[str, str, str] | None:  # fmt: skip
    """Where a run answers judged queries (of ``queries``) but none of its documents is judged anywhere in
    ``qrels``: ids written otherwise (a leading zero dropped, a number for a string), which score 0 unsaid. A
    query with a docid of the run and one of its qrels, to show; ``None`` where a document is judged, and where
    the ids compare alike neither with leading zeros and case set aside nor over ``enough`` queries (a small run
    may well miss qrels of a judgment or two a query)."""
    judged = {d for docs in qrels.values() for d in docs}
    answered = [q for q, docs in run.items() if docs and q in qrels and (queries is None or q in queries)]
    if not answered or any(not judged.isdisjoint(run[q]) for q in answered):
        return None

    def plain(docid) -> str:
        return str(docid).lstrip("0").lower()

    alike = not {plain(d) for d in judged}.isdisjoint(plain(d) for q in answered for d in run[q])
    if not alike and len(answered) < enough:
        return None
    first = answered[0]
    return first, next(iter(run[first])), next(iter(qrels[first]))


def padded(ours, theirs) -> tuple | None:
    """The first id of ``ours`` that is none of ``theirs`` but one of them with leading zeros set aside, with that
    one (``("59", "059")``): ids that a tool which read them as numbers wrote otherwise; ``None`` where there is
    none."""
    return _Padded(theirs).first(ours)


class _Padded:
    """``theirs`` ids, to find ids written as one of them but with leading zeros dropped or added."""

    def __init__(self, theirs):
        self.theirs = {str(t) for t in theirs}
        self.plain = {t.lstrip("0"): t for t in self.theirs}
        self.zeros = any(t.startswith("0") for t in self.theirs)

    def first(self, ours) -> tuple | None:
        for ours_id in ours:
            said = str(ours_id)
            # without a leading zero on either side, no two ids can match so
            if (self.zeros or said.startswith("0")) and said not in self.theirs and said.lstrip("0") in self.plain:
                return ours_id, self.plain[said.lstrip("0")]
        return None


def padded_ids(qrels: Qrels, run: Run, queries: set[str] | None = None) -> tuple[str, str, str] | None:
    """Where some of a run's documents for judged queries (of ``queries``) are judged nowhere in ``qrels`` but
    match judged ones with leading zeros set aside (``59`` for ``059``: they count as unjudged, and score 0
    unsaid): a query, its docid in the run and the one judged; else ``None``."""
    judged = _Padded(d for docs in qrels.values() for d in docs)
    for q, docs in run.items():
        if q in qrels and (queries is None or q in queries):
            found = judged.first(docs)
            if found is not None:
                return q, *found
    return None
