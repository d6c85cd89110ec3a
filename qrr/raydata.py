"""qrr on a cluster, as a Ray Data stage (``pip install 'qrr[ray]'``): one ``Reranker`` per actor, one actor per
GPU (or CPU actors where there is none), streaming reads and writes, and Ray's own retries when an actor dies.

    import ray
    from qrr import raydata

    pairs = raydata.read_pairs("s3://bucket/pairs/")            # JSONL (or TSV, JSON) with qrr's checks; Parquet
    scored = raydata.score(pairs, model="4b", workers=8)        # adds a "score" column; other columns pass through
    scored.write_parquet("s3://bucket/scored/")

``ScoreStage`` is the callable class for ``Dataset.map_batches`` underneath. Scores equal ``Reranker.score``'s on
the same pairs, whatever the batches and the number of actors (rows never depend on their batch).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy
import ray

from qrr import formats
from qrr.errors import InputError
from qrr.pipelines import Job, RunInputs, ranked
from qrr.reranker import CHUNK, Reranker

BLOCK_ROWS = 4096  # rows a read task hands on at a time
SOURCE = "_qrr_source"  # the column read_pairs names each Parquet row's file in


@ray.remote(num_cpus=0)
class ErrorLog:
    """Where read tasks and actors report what ``on_error="skip"`` passes over, and actors the rows they scored;
    the driver reads it at the end."""

    def __init__(self, shown: int = 20):
        self.shown, self.count, self.messages, self.scored = shown, 0, [], 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < self.shown:
            self.messages.append(message)

    def add_scored(self, rows: int) -> None:
        self.scored += rows

    def report(self) -> tuple[int, list[str]]:
        return self.count, self.messages

    def rows(self) -> int:
        return self.scored


def _skip_or_raise(error: InputError, errors) -> None:
    if errors is None:
        raise error
    ray.get(errors.add.remote(str(error)))  # waited for: the driver's count must not race the report


def _datasource():
    from ray.data.datasource import FileBasedDatasource

    class PairsDatasource(FileBasedDatasource):
        """Pair files (JSONL, a JSON array or TSV; gzipped or not; any filesystem Ray reads) parsed by
        ``formats.parse_pairs``, so a bad line gets the same message as without Ray, file and line included. One
        task reads one file, so line numbers hold."""

        def __init__(self, paths, input_format: str = "auto", errors=None, **kwargs):
            super().__init__(paths, **kwargs)
            self.input_format, self.errors = input_format, errors

        def _read_stream(self, f, path: str):
            import pandas

            rows = []
            lines = formats.decode_lines(_lines_of(f), path)
            for item in formats.parse_pairs(lines, path, self.input_format):
                if isinstance(item, InputError):
                    _skip_or_raise(item, self.errors)
                    continue
                rows.append({"query": item.query, "document": item.document, "instruction": item.instruction,
                             **item.ids, **item.other})  # fmt: skip
                if len(rows) >= BLOCK_ROWS:
                    yield pandas.DataFrame(rows)
                    rows = []
            if rows:
                yield pandas.DataFrame(rows)

    return PairsDatasource


def _lines_of(f) -> Iterator[bytes]:
    """The lines of a pyarrow input stream, each with its newline."""
    rest = b""
    while chunk := f.read(1 << 20):
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            yield line + b"\n"
    if rest:
        yield rest


def read_pairs(paths, input_format: str = "auto", errors=None):
    """A dataset of pairs from files or folders (local or remote): Parquet where the paths end in ``.parquet``
    (columns ``query``, ``document``, optional ``instruction``, anything else passed through; rows are checked
    when scored), else qrr's pair formats, checked as they are read. ``errors``: an ``ErrorLog`` to hand bad
    lines to instead of failing."""
    paths = [str(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths)]
    if all(p.rstrip("/").endswith(".parquet") for p in paths):
        dataset = ray.data.read_parquet(paths)
        if "path" not in dataset.schema().names:  # name each row's file, for the messages about bad rows
            dataset = ray.data.read_parquet(paths, include_paths=True).rename_columns({"path": SOURCE})
        return dataset
    return ray.data.read_datasource(_datasource()(paths, input_format=input_format, errors=errors))


class ScoreStage:
    """For ``Dataset.map_batches``: loads one ``Reranker`` (``model`` and ``options`` as ``Reranker`` takes them;
    ``model`` may also be a loader such as ``qrr.testing.FakeModel``) and adds a ``score`` column to each batch of
    ``query`` and ``document`` (and optional ``instruction``) columns; every other column passes through.

    A row whose query or document is not a string raises ``InputError`` (naming its file where ``read_pairs``
    added it as the ``_qrr_source`` column, which is dropped), or with ``skip`` is reported to ``errors`` (an
    ``ErrorLog``, which also counts the rows scored) and left out. ``threads`` sets torch's threads in this
    actor."""

    def __init__(self, model=None, query: str = "query", document: str = "document",
                 instruction: str | None = "instruction", score: str = "score", errors=None, skip: bool = False,
                 threads: int | None = None, **options):  # fmt: skip
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.reranker = Reranker(model, **options)
        self.columns = (query, document, instruction)
        self.score, self.errors, self.skip = score, errors, skip

    def __call__(self, batch: dict[str, numpy.ndarray]) -> dict[str, numpy.ndarray]:
        query, document, instruction = self.columns
        queries, documents = batch[query], batch[document]
        instructions = batch[instruction] if instruction in batch else [None] * len(queries)
        paths = batch.get(SOURCE)
        keep, triples = [], []
        for n, (q, d, i) in enumerate(zip(queries, documents, instructions, strict=True)):
            i = None if i is None or (isinstance(i, float) and i != i) else i  # null (NaN in pandas) means none
            fields = ((query, q), (document, d)) + (((instruction, i),) if i is not None else ())
            bad = next(((name, value) for name, value in fields if not isinstance(value, str)), None)
            if bad is not None:
                where = f"{paths[n]}: " if paths is not None else ""
                message = f'{where}a row\'s "{bad[0]}" is {type(bad[1]).__name__}, not a string'
                _skip_or_raise(InputError(message), self.errors if self.skip else None)
                continue
            keep.append(n)
            triples.append((q, d, i))
        if len(keep) < len(queries):
            batch = {name: column[keep] for name, column in batch.items()}
        batch[self.score] = numpy.asarray(self.reranker.score(triples) if triples else [], dtype=numpy.float64)
        batch.pop(SOURCE, None)  # read_pairs', not the input's
        if self.errors is not None:  # counted before the batch is handed on, so the driver's total is complete
            ray.get(self.errors.add_scored.remote(len(triples)))
        return batch


class RerankStage:
    """For ``Dataset.map_batches`` over a run's queries (rows of ``qid``, ``query``, ``docids``, ``texts``): each
    query's documents scored together and ranked, the best ``top_k`` kept (``docids``, ``scores``)."""

    def __init__(self, model=None, top_k: int | None = None, threads: int | None = None, **options):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.reranker = Reranker(model, **options)
        self.top_k = top_k

    def __call__(self, batch: dict[str, numpy.ndarray]) -> dict[str, numpy.ndarray]:
        pairs = [(q, t) for q, texts in zip(batch["query"], batch["texts"], strict=True) for t in texts]
        scores = self.reranker.score(pairs)
        docids, values, start = [], [], 0
        for ids in batch["docids"]:
            best = ranked(list(ids), scores[start : start + len(ids)])[: self.top_k]
            start += len(ids)
            docids.append([d for d, _ in best])
            values.append([s for _, s in best])
        return {"qid": batch["qid"], "docids": _objects(docids), "scores": _objects(values)}


def _objects(items: list) -> numpy.ndarray:
    array = numpy.empty(len(items), dtype=object)
    array[:] = items
    return array


def resources(workers: int | None, gpus_per_worker: float | None) -> tuple[int, float, float | None]:
    """Actors, GPUs and CPUs each: one actor per GPU where the cluster has GPUs, else one CPU actor."""
    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_worker is None:
        gpus_per_worker = 1 if gpus else 0
    if workers is None:
        workers = max(1, int(gpus // gpus_per_worker)) if gpus_per_worker else 1
    return workers, gpus_per_worker, None if gpus_per_worker else 1


def score(dataset, model=None, *, workers: int | None = None, gpus_per_worker: float | None = None,
          batch_size: int = CHUNK, errors=None, skip: bool = False, threads: int | None = None,
          **options):  # fmt: skip
    """``dataset`` with a ``score`` column (lazy: nothing runs until it is consumed), scored on ``workers`` actors
    of ``gpus_per_worker`` GPUs each (defaults: one actor per GPU where there are GPUs, else one CPU actor).
    ``options`` go to ``ScoreStage`` and the ``Reranker`` (``device``, ``dtype``, ``recipe``, column names...)."""
    workers, gpus, cpus = resources(workers, gpus_per_worker)
    cpus = threads if threads and not gpus else cpus  # a CPU actor reserves the cores its threads use
    return dataset.map_batches(ScoreStage, fn_constructor_kwargs={"model": model, "errors": errors, "skip": skip,
                                                                  "threads": threads, **options},
                               batch_size=batch_size, batch_format="numpy", num_gpus=gpus, num_cpus=cpus,
                               compute=ray.data.ActorPoolStrategy(size=workers))  # fmt: skip


def rerank(inputs: RunInputs, model=None, *, top_k: int | None = None, workers: int | None = None,
           gpus_per_worker: float | None = None, threads: int | None = None,
           **options) -> Iterator[tuple[Job, list[tuple[str, float]]]]:  # fmt: skip
    """Each job of ``inputs`` reranked on Ray, yielded as ``(job, [(docid, score), ...])`` best first, in the
    run's order (as ``pipelines.rerank_jobs`` yields them, for ``pipelines.write_reranked``). A query's documents
    stay together, so the output is the run that reranking without Ray writes."""
    if not inputs.jobs:
        return
    workers, gpus, cpus = resources(workers, gpus_per_worker)
    cpus = threads if threads and not gpus else cpus
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    rows = [{"qid": j.qid, "query": j.query, "docids": list(j.docids), "texts": [inputs.corpus[d] for d in j.docids]}
            for j in inputs.jobs]  # fmt: skip
    dataset = ray.data.from_items(rows).map_batches(
        RerankStage, fn_constructor_kwargs={"model": model, "top_k": top_k, "threads": threads, **options},
        batch_size=max(1, CHUNK // max(1, max(len(j.docids) for j in inputs.jobs))), batch_format="numpy",
        num_gpus=gpus, num_cpus=cpus, compute=ray.data.ActorPoolStrategy(size=workers),
    )  # fmt: skip
    jobs = {j.qid: j for j in inputs.jobs}
    for row in dataset.iter_rows():
        yield jobs[row["qid"]], list(zip(row["docids"], row["scores"], strict=True))


def start(address: str | None = None, workers: int = 1) -> None:
    """Join the cluster at ``address``, or start a local instance with room for ``workers`` actors and the read
    tasks beside them (on a few cores, actors of one CPU each would leave none for reading)."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=(os.cpu_count() or 1) + workers + 1, include_dashboard=False, log_to_driver=False)
