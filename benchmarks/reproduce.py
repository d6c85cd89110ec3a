"""Reproduce a published real-weight figure with qrr: vLLM's MTEB regression check for Qwen3-Reranker-0.6B.

The check: MTEB's NFCorpus task (English, test split) turned into reranking of a BM25 first stage (mteb's
``bm25s``) at top 10, scored through the ``mteb`` package (2.8.3, as vLLM's CI pins it) with the reranker as its
cross-encoder. Its main score, nDCG@10, is 0.33459, and vLLM holds it within 0.002.

The figure assumes vLLM's ``qwen3_reranker.jinja`` template: the model card's transformers prompt (single newlines,
the default instruction) whose suffix ends ``</think>\\n`` (Jinja drops the file's last newline) - qrr's
``vllm-template`` recipe, the default here. mteb hands over documents as ``title + " " + text`` and queries as
their text; no truncation is reached on NFCorpus. The dtype vLLM ran it in is ``auto`` (bf16 on a GPU).

It needs the network once (the model and NFCorpus go to the Hugging Face cache) and ``pip install
'qrr[reproduce]'``::

    python benchmarks/reproduce.py                              # 0.6b, the vllm-template recipe
    python benchmarks/reproduce.py --recipe transformers --dtype fp32

It prints the figure, the published one and the difference, and exits 1 outside the tolerance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

EXPECTED = 0.33459
TOLERANCE = 0.002
TASK = "NFCorpus"
TOP_K = 10


class MtebCrossEncoder:
    """A qrr ``Reranker`` as mteb 2 takes a cross-encoder (``mteb.CrossEncoderProtocol``): ``predict`` over two
    loaders of query and document texts, and a ``mteb_model_meta``. mteb 1 called ``predict`` with a list of
    pairs, as ``Reranker.predict`` takes them; mteb 2 hands over batches of texts instead."""

    def __init__(self, reranker, name: str = "qrr"):
        from mteb.models import ModelMeta

        self.reranker = reranker
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": f"qrr/{name}", "revision": "qrr",
                                                                  "modalities": ["text"]})  # fmt: skip

    def predict(self, inputs1, inputs2, *args, **kwargs):
        queries = [text for batch in inputs1 for text in batch["text"]]
        documents = [text for batch in inputs2 for text in batch["text"]]
        return self.reranker.predict(list(zip(queries, documents, strict=True)), show_progress_bar=False)


def rerank_score(cross_encoder, tasks, top_k: int = TOP_K) -> float:
    """The main score of ``cross_encoder`` reranking the top ``top_k`` of mteb's BM25 on each of ``tasks`` (the
    first task's score)."""
    import mteb

    with tempfile.TemporaryDirectory() as predictions:
        mteb.evaluate(mteb.get_model("baseline/bm25s"), tasks, prediction_folder=predictions, show_progress_bar=False,
                      cache=None, overwrite_strategy="always")  # fmt: skip
        second = [task.convert_to_reranking(predictions, top_k=top_k) for task in tasks]
        results = mteb.evaluate(cross_encoder, second, show_progress_bar=False, cache=None)
    return results[0].scores["test"][0]["main_score"]


def verdict(score: float, expected: float, tolerance: float) -> tuple[bool, str]:
    """Whether ``score`` is within ``tolerance`` of ``expected``, and a line that says so."""
    difference = score - expected
    ok = abs(difference) <= tolerance
    return ok, (f"{'ok' if ok else 'FAILED'}: nDCG@10 {score:.5f}, published {expected:.5f}, difference "
                f"{difference:+.5f} ({'within' if ok else 'outside'} {tolerance})")  # fmt: skip


def main(argv: list[str] | None = None, tasks=None) -> int:
    """Run the check; ``tasks`` replaces NFCorpus (the tests pass a tiny local task)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="0.6b", help="alias, hub repo id or folder (default 0.6b)")
    parser.add_argument("--recipe", default="vllm-template", help="the prompt recipe (default vllm-template)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--expected", type=float, default=EXPECTED)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)

    import mteb

    from qrr import Reranker

    reranker = Reranker(args.model, device=args.device, dtype=args.dtype, recipe=args.recipe)
    if tasks is None:
        tasks = list(mteb.get_tasks(tasks=[TASK], languages=["eng"], eval_splits=["test"]))
    print(f"{args.model} ({reranker.model_path}) on {reranker.device}, {reranker.dtype}, recipe {args.recipe}; "
          f"{', '.join(t.metadata.name for t in tasks)}: mteb {mteb.__version__} BM25 top {TOP_K}, reranked",
          flush=True)  # fmt: skip
    score = rerank_score(MtebCrossEncoder(reranker, str(args.model)), tasks)
    ok, line = verdict(score, args.expected, args.tolerance)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
