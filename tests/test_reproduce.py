"""benchmarks/reproduce.py's plumbing, offline: a tiny local retrieval task through mteb's BM25 and qrr."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_task():
    """A retrieval task of 40 documents and 5 queries, in memory, in mteb's shape for NFCorpus."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    class TinyCorpus(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name="TinyCorpus", description="a tiny offline retrieval task", reference=None,
            dataset={"path": "local/tiny", "revision": "0"}, type="Retrieval", category="t2t", modalities=["text"],
            eval_splits=["test"], eval_langs=["eng-Latn"], main_score="ndcg_at_10", date=None, domains=None,
            task_subtypes=None, license=None, annotations_creators=None, dialect=None, sample_creation=None,
            bibtex_citation="",
        )  # fmt: skip

        def load_data(self, **kwargs):
            if self.data_loaded:
                return
            docs = [{"id": f"d{i}", "title": f"title {i}", "text": f"a passage about topic{i % 5} and word{i}"}
                    for i in range(40)]  # fmt: skip
            queries = [{"id": f"q{j}", "text": f"topic{j} word{j}"} for j in range(5)]
            self.dataset = {"default": {"test": {
                "corpus": Dataset.from_list(docs), "queries": Dataset.from_list(queries),
                "relevant_docs": {f"q{j}": {f"d{j}": 1, f"d{j + 5}": 1} for j in range(5)}, "top_ranked": None,
            }}}  # fmt: skip
            self.data_loaded = True

    return TinyCorpus


def test_qrr_reranks_through_mteb_as_its_cross_encoder(reproduce, tiny_task):
    import mteb

    from qrr import Reranker

    seen = []

    class Watching(Reranker):
        def predict(self, pairs, *args, **kwargs):
            seen.extend(pairs)
            return super().predict(pairs, *args, **kwargs)

    watching = Watching("fake")
    encoder = reproduce.MtebCrossEncoder(watching)
    assert isinstance(encoder, mteb.CrossEncoderProtocol)
    score = reproduce.rerank_score(encoder, [tiny_task()])
    assert 0.0 <= score <= 1.0
    # mteb handed qrr each query with BM25's top 10: 5 queries x 10 documents, as "title text"
    assert len(seen) == 50 and {q for q, _ in seen} == {f"topic{j} word{j}" for j in range(5)}
    assert all(d.startswith("title ") and " a passage about " in d for _, d in seen)


def test_the_command_prints_the_figure_and_fails_outside_the_tolerance(reproduce, tiny_task, tiny_model, capsys):
    args = ["--model", str(tiny_model), "--device", "cpu", "--dtype", "fp32"]
    assert reproduce.main([*args, "--expected", "2.0"], tasks=[tiny_task()]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "recipe vllm-template; TinyCorpus: mteb 2.8.3 BM25 top 10, reranked" in lines[0]
    assert lines[1].startswith("FAILED: nDCG@10 ") and "published 2.00000" in lines[1] and "outside 0.002" in lines[1]
    score = float(lines[1].split()[2].rstrip(","))
    assert reproduce.main([*args, "--expected", str(score), "--recipe", "vllm-template"], tasks=[tiny_task()]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith(f"ok: nDCG@10 {score:.5f}")


def test_verdict(reproduce):
    assert reproduce.verdict(0.3356, 0.33459, 0.002) == (
        True,
        "ok: nDCG@10 0.33560, published 0.33459, difference +0.00101 (within 0.002)",
    )
    assert reproduce.verdict(0.3300, 0.33459, 0.002)[0] is False
