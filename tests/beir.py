"""A small BEIR dataset folder and a first-stage run over it, built for the tests."""

from __future__ import annotations

import random

import orjson

WORDS = ("gravity planet orbit mass energy light speed capital city river mountain ocean forest desert "
         "China Beijing Paris France atom star").split()  # fmt: skip


def build_beir(folder, queries: int = 5, docs: int = 30, per_query: int = 8, seed: int = 0):
    """corpus.jsonl, queries.jsonl, qrels/test.tsv and bm25.trec (every query, ``per_query`` documents, with a
    tie and a query without qrels) under ``folder``; returns it."""
    rng = random.Random(seed)
    corpus = [{"_id": f"d{n}", "title": rng.choice(["", f"About {rng.choice(WORDS)}"]),
               "text": " ".join(rng.choices(WORDS, k=rng.randint(4, 24)))} for n in range(docs)]  # fmt: skip
    topics = [{"_id": f"q{n}", "text": f"what is {rng.choice(WORDS)}?"} for n in range(queries)]
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in corpus))
    (folder / "queries.jsonl").write_bytes(b"".join(orjson.dumps(q) + b"\n" for q in topics))
    qrels = ["query-id\tcorpus-id\tscore"]
    run = []
    for n, topic in enumerate(topics):
        picked = rng.sample(corpus, per_query)
        for rank, doc in enumerate(picked, 1):
            score = 10.0 if rank <= 2 else 20.0 - rank  # the first two tie
            run.append(f"{topic['_id']} Q0 {doc['_id']} {rank} {score} bm25")
        if n < queries - 1:  # the last query has no qrels
            for doc in rng.sample(corpus, 4):
                qrels.append(f"{topic['_id']}\t{doc['_id']}\t{rng.choice([0, 1, 2])}")
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    (folder / "bm25.trec").write_text("\n".join(run) + "\n")
    return folder
