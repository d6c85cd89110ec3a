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

import contextlib
import itertools
import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator

import orjson

try:
    import numpy
    import pyarrow
    import pyarrow.fs
    import pyarrow.parquet
    import ray
    import ray.data
    from ray.data.datasource import BlockBasedFileDatasink
except ImportError as exc:  # the name kept: the commands say which package is missing
    missing = (exc.name or "ray").partition(".")[0]  # the package, not the module of it asked for
    raise ImportError(f"qrr.raydata needs Ray Data: pip install 'qrr[ray]' ({missing} is missing)",
                      name=exc.name) from exc  # fmt: skip

from qrr import device as devices
from qrr import formats
from qrr.errors import InputError, QrrError, SourceError, check_count, innermost, plural
from qrr.formats import PairRecord
from qrr.pipelines import Job, RunInputs, locked, no_room, ranked, score_records, shown
from qrr.reranker import CHUNK, Reranker, find_framed, spans

# the API (what help shows, and import *); the rest is what qrr score --ray and qrr rerank --ray use
__all__ = ["read_pairs", "score", "rerank", "write", "done_records", "claim_output", "prepare_output", "run_record",
           "rows_at", "ScoreStage", "RerankStage", "ErrorLog", "Placement", "start"]  # fmt: skip

BLOCK_ROWS = 4096  # rows a read task hands on at a time
SOURCE = "_qrr_source"  # the column read_pairs names each Parquet row's file in
# Where each row of qrr's pair files came from: its file, and its place among the file's records (bad lines
# counted). Written with the scores, so that a run can go on from the shards an interrupted one left (done_records).
FROM_FILE, RECORD = "qrr_source", "qrr_record"
SHARD_FORMATS = ("parquet", "jsonl")  # what ``write`` writes
RESTARTS = 3  # an actor that dies (killed, out of memory) is started again this often, and its batches retried


@ray.remote(num_cpus=0)
class ErrorLog:
    """Where read tasks and actors report what is left out (``read_pairs(errors=...)``'s bad lines, and with
    ``skip=True`` the stages' bad rows), and the actors how many rows they scored and documents they cut to
    ``max_length``; the driver reads it as the run goes and at the end. A report made twice (a retried task) counts
    once: one is known by its message, which names its place, or by the ``key`` it comes with."""

    def __init__(self, shown: int = 20):
        self.shown, self.seen, self.messages = shown, set(), []
        self.truncated = self.rows = 0
        self.blank_keys: set[str] = set()
        self.loaded_lines: list[str] = []
        self.blank_places: list[str | None] = []
        self.framed_found: tuple[str, str] | None = None

    def cut_count(self) -> int:
        return self.truncated

    def scored(self, rows: int, truncated: int = 0) -> None:
        """A batch done: its rows scored and the documents it cut (a retried batch counts again)."""
        self.rows += rows
        self.truncated += truncated

    def scored_count(self) -> int:
        """The rows scored so far, for a front end's progress (Ray's own counts blocks)."""
        return self.rows

    def blank(self, keys: list[str], places: list[str | None], shown: int = 3) -> None:
        """Rows scored with a blank query or document (``places``: where each came from, for messages), each known
        by its key: a retried batch's count once."""
        for key, place in zip(keys, places, strict=True):
            if key not in self.blank_keys:
                self.blank_keys.add(key)
                if len(self.blank_places) < shown:
                    self.blank_places.append(place)

    def framed(self, what: str, marker: str) -> None:
        """A query or document (``what``) formatted as the prompt already (``reranker.find_framed``): the first told."""
        self.framed_found = self.framed_found or (what, marker)

    def framed_report(self) -> tuple[str, str] | None:
        """The first query or document told of as formatted as the prompt already, for the driver to warn of
        (``reranker.warn_framed``): an actor's own warning stays in its log."""
        return self.framed_found

    def loaded(self, description: str) -> None:
        """An actor's reranker (``Reranker.description``), told at its first batch."""
        if description not in self.loaded_lines:
            self.loaded_lines.append(description)

    def loaded_report(self) -> list[str]:
        """The rerankers the actors ran (each description once): a front end's ``-v``."""
        return self.loaded_lines

    def blank_report(self) -> tuple[int, list[str | None]]:
        """How many rows were scored with a blank query or document, and where the first few came from."""
        return len(self.blank_keys), self.blank_places

    def add(self, error: InputError, key: str | None = None) -> None:
        key = key or str(error)
        if key not in self.seen:
            self.seen.add(key)
            if len(self.messages) < self.shown:
                self.messages.append(error)

    def report(self) -> tuple[int, list[InputError]]:
        """How many errors were reported, and the first ``shown`` (which a front end says in its own names)."""
        return len(self.seen), self.messages


def _skip_or_raise(error: InputError, errors, key: str | None = None) -> None:
    if errors is None:
        raise error
    ray.get(errors.add.remote(error, key))  # waited for: the driver's count must not race the report


def _digest(columns: tuple) -> str:
    """A batch's values (its ``columns``) in a short digest: a retried batch's is the same."""
    import hashlib

    return hashlib.blake2b(repr(columns).encode(), digest_size=8).hexdigest()


def _batch_reports(errors, *columns: list):
    """``_skip_or_raise`` for one batch (``columns``: its values) whose rows' places may say no more than their
    file (Parquet): the n-th report of a message in the batch is keyed by it, n and the batch's digest, so rows
    alike all count while a retry of the batch counts none again."""
    times: dict[str, int] = {}
    digest = None

    def report(error: InputError) -> None:
        nonlocal digest
        if errors is None:
            raise error
        digest = digest or _digest(columns)
        times[str(error)] = n = times.get(str(error), 0) + 1
        _skip_or_raise(error, errors, f"{error}\n{digest}\n{n}")

    return report


# ----------------------------------------------------------------------------------------------------- reading


def _datasource():
    from ray.data.datasource import FileBasedDatasource

    class PairsDatasource(FileBasedDatasource):
        """Pair files (JSONL, a JSON array or TSV; gzipped or not; any filesystem Ray reads) parsed by
        ``formats.parse_pairs``, so a bad line gets the same message as without Ray, file and line included. One
        task reads one file, so line numbers hold."""

        def __init__(self, paths, input_format: str = "auto", errors=None, done=None, **kwargs):
            super().__init__(paths, **kwargs)
            self.input_format, self.errors, self.done = input_format, errors, done

        def _read_stream(self, f, path: str):
            rows = []
            ref = self.done.get(path) if self.done is not None else None
            done = ray.get(ref) if ref is not None else ()  # sorted
            k = 0
            try:
                items = formats.parse_pairs(formats.decode_lines(_lines_of(f), path), path, self.input_format)
                for record, item in enumerate(items, 1):
                    while k < len(done) and done[k] < record:
                        k += 1
                    if k < len(done) and done[k] == record:
                        continue  # scored by an earlier run
                    if isinstance(item, InputError):
                        _skip_or_raise(item, self.errors)
                        continue
                    rows.append({"query": item.query, "document": item.document, "instruction": item.instruction,
                                 **item.ids, **item.other, FROM_FILE: path, RECORD: record})  # fmt: skip
                    if len(rows) >= BLOCK_ROWS:
                        yield _table(rows, path)
                        rows = []
            except (OSError, EOFError) as exc:  # a cut or corrupt file (gzip), an unreadable one
                raise _unreadable(path, exc) from None
            if rows:
                yield _table(rows, path)

    return PairsDatasource


def _table(rows: list[dict], path: str) -> pyarrow.Table:
    """Rows as an Arrow table: ``query``, ``document`` and ``instruction`` as strings, the other columns as their
    values say (each column must hold one type: Parquet shards and Arrow need it), null where a row lacks the field.
    Every row's fields make columns (Arrow's ``from_pylist`` takes the first row's only: an ``id`` from the second
    row on was dropped)."""
    names = dict.fromkeys(name for row in rows for name in row)
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pyarrow.array(values, pyarrow.string() if name == "instruction" else None)
        except OverflowError:  # an integer past int64, which qrr score copies as it is: unsigned, where it fits
            columns[name] = _unsigned(values, name, path)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError) as exc:
            raise InputError(f"{path}: field {name!r} holds values of different types ({exc}); give each field one "
                             "type") from None  # fmt: skip
    return pyarrow.table(columns)


def _unsigned(values: list, name: str, path: str) -> pyarrow.Array:
    try:
        return pyarrow.array(values, pyarrow.uint64())
    except (OverflowError, pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):
        raise InputError(f"{path}: field {name!r} holds integers past 64 bits, or negative ones beside ones past "
                         "63; give them as strings") from None  # fmt: skip


def _lines_of(f) -> Iterator[bytes]:
    """The lines of a pyarrow input stream, each with its newline (a long line costs its length, not more)."""
    pending: list[bytes] = []
    while chunk := f.read(1 << 20):
        first, *rest = chunk.split(b"\n")
        pending.append(first)
        if rest:
            yield b"".join(pending) + b"\n"
            for line in rest[:-1]:
                yield line + b"\n"
            pending = [rest[-1]]
    if any(pending):
        yield b"".join(pending)


def _absolute(path: str) -> str:
    """A local path as the workers find it (their working folder is not the driver's); a URI as it is."""
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def files_at(path: str) -> list[str] | None:
    """The files at ``path`` (a file, or a folder's files, on any filesystem pyarrow reaches); ``None`` where
    nothing is there."""
    infos = _file_infos(path)
    return None if infos is None else [info.path for info in infos]


def _file_infos(path: str) -> list | None:
    """``files_at``'s files as pyarrow's ``FileInfo`` (path and size), from one listing. A folder's files and
    folders whose names start with ``.`` or ``_`` are left out at every depth (Spark's ``_SUCCESS`` and ``.crc``
    files, a run's ``_qrr_run.json``), where Ray leaves them out of a folder's top level only."""
    listing = _listing(path)
    return None if listing is None else [info for info, hidden in listing if not hidden]


def _listing(path: str) -> list[tuple] | None:
    """Each file at ``path`` (sorted, as Ray orders them) with how it is hidden: ``""`` not, ``"top"`` by a name at
    the folder's top level (which Ray leaves out too), ``"below"`` by one deeper (which Ray would read)."""
    fs, where = pyarrow.fs.FileSystem.from_uri(_absolute(path))
    info = fs.get_file_info(where)
    if info.type == pyarrow.fs.FileType.NotFound:
        return None
    if info.type == pyarrow.fs.FileType.File:
        return [(info, "")]
    selector = pyarrow.fs.FileSelector(where, recursive=True)
    files = sorted((f for f in fs.get_file_info(selector) if f.type == pyarrow.fs.FileType.File), key=lambda f: f.path)
    out = []
    for f in files:
        parts = f.path[len(where.rstrip("/")) + 1 :].split("/")
        hidden = [n for n, part in enumerate(parts) if part.startswith((".", "_"))]
        out.append((f, "" if not hidden else "top" if hidden[0] == 0 else "below"))
    return out


def _input_listing(path: str) -> list[tuple]:
    """``_listing`` of an input, which must hold a file to read."""
    listing = _listing(path)
    if listing is None:
        raise InputError(f"{path}: no such file or folder")
    if all(hidden for _, hidden in listing):
        raise InputError(f"{path}: no files to read (names that start with . or _ are left out)")
    return listing


def _given(paths) -> list[str]:
    """One path or several, as strings."""
    return [str(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths)]


def read_pairs(paths, input_format: str = "auto", errors=None, done: dict | None = None):
    """A dataset of pairs from files or folders, local or remote: Parquet where every file ends in ``.parquet``
    (columns ``query``, ``document``, optional ``instruction``, anything else passed through; rows are checked
    when scored), else qrr's pair formats, checked as they are read, each row with its file and place
    (``qrr_source``, ``qrr_record``). ``errors``: an ``ErrorLog`` to hand bad lines to instead of failing.
    ``done``: the records to leave out, by file (``done_records`` of an earlier run's shards)."""
    given = _given(paths)
    kinds = set()
    paths = []
    for path in given:
        listing = _input_listing(path)
        files = [info.path for info, hidden in listing if not hidden]
        kinds |= {name.endswith(".parquet") for name in files}
        # the folder, which Ray lists once, unless it holds names Ray would read that qrr leaves out: then its files
        below = [info.path for info, hidden in listing if hidden == "below"]
        if below and "://" in path and not path.startswith("file://"):  # a listed remote file loses the URI's host
            raise InputError(f"{path}: {below[0]} would be read as pairs (Ray leaves out names that start with . or _ "
                             "at a folder's top level only): remove such files, or give the folders that hold the "
                             "pairs")  # fmt: skip
        paths += files if below else [_absolute(path)]
    if kinds == {True}:
        if done is not None:
            raise InputError(f"{', '.join(given)}: Parquet rows carry no place in their file to go on from; going on "
                             "reads qrr's pair files (JSONL, TSV)")  # fmt: skip
        dataset = ray.data.read_parquet(paths)
        names = dataset.schema().names
        missing = [c for c in ("query", "document") if c not in names]
        if missing:
            raise InputError(f'{", ".join(given)}: no "{missing[0]}" column in the Parquet input')
        if "path" in names:
            return dataset  # the input's own "path" column: files go unnamed in messages
        return ray.data.read_parquet(paths, include_paths=True).rename_columns({"path": SOURCE})
    if kinds == {True, False}:
        raise InputError(f"{', '.join(given)}: Parquet files among other files; give one kind at a time")
    # each read task fetches its own file's records only
    done = {path: ray.put(numpy.sort(records)) for path, records in done.items()} if done is not None else None
    return ray.data.read_datasource(_datasource()(paths, input_format=input_format, errors=errors, done=done))


def first_fields(paths, input_format: str = "auto", files: int = 10, skip: bool = True) -> set[str]:
    """The fields of the input's first record (of the first of its first ``files`` files that holds one; a Parquet
    file's columns), read on the driver: a clash with the score column is found before any actor loads a model.
    Without ``skip``, a file of those ``files`` refused whole (a ``SourceError``: CSV by its name, UTF-16 text, gzip
    data by another name) is raised here, before Ray starts, rather than by a read task once the actors have."""
    fields = None
    for name, path in itertools.islice(((n, p) for p in _given(paths) for n in files_at(p) or []), files):
        fs, _ = pyarrow.fs.FileSystem.from_uri(_absolute(path))  # the given URI's host and options
        try:
            if name.endswith(".parquet"):
                if fields is None:
                    return set(pyarrow.parquet.read_schema(name, filesystem=fs).names)
                continue  # Parquet among other files: read_pairs refuses it
            with fs.open_input_stream(name, compression="detect") as handle, _peeking(fields is not None):
                lines = _lines_of(handle)
                if fields is not None:  # past the first record only a whole file's refusal, which its start says
                    lines = itertools.islice(lines, 2)  # (a JSON array was parsed whole for its first record)
                items = formats.parse_pairs(formats.decode_lines(lines, name), name, input_format)
                try:
                    for item in itertools.islice(items, 100):
                        if isinstance(item, SourceError) and not skip:
                            raise item
                        if not isinstance(item, InputError):
                            fields = fields or {"query", "document", *item.ids, *item.other}
                            break
                except InputError as exc:  # of a file's first lines alone: a JSON array cut short, say
                    if fields is None or isinstance(exc, SourceError) and not skip:
                        raise
        except (OSError, EOFError, pyarrow.ArrowInvalid) as exc:  # a cut or corrupt file (gzip), an unreadable one
            raise _unreadable(name, exc) from None
        if fields is not None and skip:
            return fields
    return fields or set()


@contextlib.contextmanager
def _peeking(quiet: bool):
    """While a file past the first record is looked at for a refusal alone: what its first lines warn of stays
    unsaid, as before there was such a look (the driver reads no more of it)."""
    if not quiet:
        yield
        return
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _unreadable(path: str, exc: BaseException) -> InputError:
    return InputError(f"{path}: cannot read ({exc})")


def clash(column: str, where: str = "") -> InputError:
    """The error for an input that has a field of the score column's name already."""
    return InputError(f'{where}the input has a "{column}" field already: name the column of scores otherwise with '
                      "{score_column}", "score_column")  # fmt: skip


def check_paths(paths, output: str) -> None:
    """``InputError`` for an input that is not there or holds no file to read (said before the output folder is
    made), or an output folder inside an input folder, whose shards a later run would read as input."""
    out = _local(output)
    for path in _given(paths):
        _input_listing(path)
        folder = _local(path)
        if out is None or folder is None or not os.path.isdir(folder):
            continue
        try:
            below = os.path.relpath(out, folder)
        except ValueError:  # another drive (Windows)
            continue
        outside = below == ".." or below.startswith(".." + os.sep)
        if not outside and not any(part.startswith((".", "_")) for part in below.split(os.sep) if part != "."):
            raise InputError(f"{output}: inside the input folder {path}, whose files are read as pairs; give an "
                             "output folder outside it")  # fmt: skip


def _local(path: str) -> str | None:
    """A local path (``file://`` too) as the real path it names; ``None`` for a remote one."""
    if "://" in path and not path.startswith("file://"):
        return None
    return os.path.realpath(_absolute(path.removeprefix("file://")))


# ----------------------------------------------------------------------------------------------------- scoring


def _loaded(model, threads: int | None, options: dict, skip: bool, errors) -> tuple[Reranker | None, Exception | None]:
    """The actor's ``Reranker``, or the error that refused its options (a ``max_length`` leaving no room, a device
    this machine lacks, ``skip`` without ``errors``): raised at the first batch, a task's error that the driver says in
    one line, where raised in the constructor the actor died, was started again and died again, and Ray said it in a
    hundred lines."""
    failed = _skip_error(skip, errors)
    if failed is not None:  # before a model loads (minutes for the 8B) to no end
        return None, failed
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        return Reranker(model, **options), None
    except (QrrError, TypeError) as exc:  # TypeError: an option it does not take, in a map_batches of the user's
        return None, exc


class ScoreStage:
    """For ``Dataset.map_batches`` (``batch_format="pyarrow"``): loads one ``Reranker`` (``model`` and ``options``
    as ``Reranker`` takes them, ``instruction`` included; ``model`` may also be a loader such as
    ``qrr.testing.FakeModel``) and adds a ``score_column`` to each batch of ``query_column`` and
    ``document_column`` (and ``instruction_column``, which must be there where named; by default an
    ``instruction`` column where there is one); every other column passes through unchanged.

    A row whose query or document is not a string raises ``InputError`` (naming its file where ``read_pairs``
    added it as the ``_qrr_source`` column, which is dropped), or with ``skip`` is reported to ``errors`` (an
    ``ErrorLog``) and left out. ``threads`` sets torch's threads in this actor."""

    def __init__(self, model=None, query_column: str = "query", document_column: str = "document",
                 instruction_column: str | None = None, score_column: str = "score", errors=None,
                 skip: bool = False, threads: int | None = None, **options):  # fmt: skip
        self.reranker, self.failed = _loaded(model, threads, options, skip, errors)
        self.columns = (query_column, document_column, instruction_column)
        self.score_column, self.errors, self.skip = score_column, errors, skip
        self.told = False  # the errors log, of the reranker this actor runs (-v)
        self.framed_told = False

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        if not isinstance(batch, pyarrow.Table):  # Ray's default format: "'dict' object has no attribute ..."
            raise TypeError(f'ScoreStage takes batches as pyarrow tables, not {type(batch).__name__}: give '
                            'map_batches(ScoreStage, batch_format="pyarrow", ...)')  # fmt: skip
        if self.failed is not None:
            raise self.failed
        _tell_loaded(self)
        query, document, instruction = self.columns
        names = batch.column_names
        _check_columns(names, query, document, instruction)
        instruction = instruction or "instruction"
        if self.score_column in names:
            source = next((name for name in (SOURCE, FROM_FILE) if name in names), None)
            # the file of a row that has one: a batch may mix files, and the first row's was named
            held = batch[self.score_column].is_valid().to_pylist()
            where = f"{batch[source][held.index(True) if True in held else 0]}: " if source else ""
            raise clash(self.score_column, where)
        queries, documents = batch[query].to_pylist(), batch[document].to_pylist()
        instructions = batch[instruction].to_pylist() if instruction in names else [None] * len(queries)
        sources = batch[SOURCE].to_pylist() if SOURCE in names else None
        skipped = _batch_reports(self.errors if self.skip else None, queries, documents, instructions)
        keep, triples = [], []
        for n, (q, d, i) in enumerate(zip(queries, documents, instructions, strict=True)):
            fields = ((query, q), (document, d)) + (((instruction, i),) if i is not None else ())
            bad = next(((name, value) for name, value in fields if not isinstance(value, str)), None)
            if bad is not None:
                where = f"{sources[n]}: " if sources else ""
                skipped(InputError(f'{where}a row\'s "{bad[0]}" must be a string, not {formats.json_type(bad[1])}'))
                continue
            keep.append(n)
            triples.append((q, d, i))
        places = _places(batch, keep, sources)
        records = [PairRecord(q, d, i, where=w) for (q, d, i), w in zip(triples, places, strict=True)]
        # a pair whose query leaves its document no room within max_length is skipped as a bad line is
        scored = next(score_records(self.reranker, records, chunk=max(1, len(records)), on_error=skipped), None)
        scores = scored.scores if scored else []
        if scored is None:  # no pair left to score: every row of the batch was skipped
            keep = []
        elif len(scored.indexes) < len(keep):
            keep = [keep[n] for n in scored.indexes]
        if len(keep) < len(queries):
            batch = batch.take(pyarrow.array(keep, pyarrow.int64()))  # typed: an empty list is Arrow's null type
        if SOURCE in names:
            batch = batch.drop_columns([SOURCE])  # read_pairs', not the input's
        if self.errors is not None and scores:  # waited for: the driver reads the count at the end
            ray.get(self.errors.scored.remote(len(scores), scores.stats.truncated))
            _report_blanks(self.errors, [records[n] for n in scored.indexes], queries, documents)
            _tell_framed(self, triples)
        return batch.append_column(self.score_column, pyarrow.array(scores, pyarrow.float64()))


def _report_blanks(errors, scored: list[PairRecord], *columns: list) -> None:
    """Tell ``errors`` of the ``scored`` pairs with a blank query or document (scored as given, whose score says
    nothing of relevance), each keyed by its place in the batch and the batch's digest (``columns``)."""
    blank = [n for n, r in enumerate(scored) if not r.query.strip() or not r.document.strip()]
    if blank:
        digest = _digest(columns)
        ray.get(errors.blank.remote([f"{digest}:{n}" for n in blank], [scored[n].where for n in blank]))


def _tell_loaded(stage) -> None:
    """Once a stage: tell its ``errors`` log (where it has one) what reranker this actor runs."""
    if stage.errors is not None and not stage.told:
        stage.told = True
        ray.get(stage.errors.loaded.remote(stage.reranker.description()))


def _tell_framed(stage, triples) -> None:
    """Once a stage: tell its ``errors`` log of a query or document of ``triples`` formatted as the prompt already."""
    found = None if stage.framed_told else find_framed(triples, stage.reranker.prompter.family)
    if found is not None:
        ray.get(stage.errors.framed.remote(*found))
        stage.framed_told = True


def _places(batch: pyarrow.Table, keep: list[int], sources: list | None) -> list[str | None]:
    """Where each kept row of ``batch`` came from, for messages: its file and record where qrr read it
    (``read_pairs``), a Parquet row's file; ``None`` where the input does not say."""
    names = batch.column_names
    if FROM_FILE in names and RECORD in names:
        files, records = batch[FROM_FILE].to_pylist(), batch[RECORD].to_pylist()
        return [f"{files[n]}: record {records[n]}" for n in keep]
    return [sources[n] if sources else None for n in keep]


class RerankStage:
    """For ``Dataset.map_batches`` over a run's queries (rows of ``qid``, ``query``, ``docids``, ``texts``): each
    query's documents scored together and ranked, the best ``top_k`` kept (``docids``, ``scores``). A query too
    long for ``max_length`` raises ``InputError``, or with ``skip`` is reported to ``errors`` and left out.
    ``errors`` (an ``ErrorLog``) also hears how many documents were cut to ``max_length``, and of a query or document
    formatted as the prompt already, as ``ScoreStage`` tells them."""

    def __init__(self, model=None, top_k: int | None = None, threads: int | None = None, errors=None,
                 skip: bool = False, **options):  # fmt: skip
        self.reranker, self.failed = _loaded(model, threads, options, skip, errors)
        self.top_k, self.errors, self.skip = top_k, errors, skip
        self.told = False  # the errors log, of the reranker this actor runs (-v)
        self.framed_told = False

    def __call__(self, batch: dict[str, numpy.ndarray]) -> dict[str, numpy.ndarray]:
        if self.failed is not None:
            raise self.failed
        _tell_loaded(self)
        keep = []
        for n, (qid, query) in enumerate(zip(batch["qid"], batch["query"], strict=True)):
            error = no_room(self.reranker, query)
            if error is None:
                keep.append(n)
            else:
                _skip_or_raise(InputError(f"query {qid}: {error.template}", *error.params),
                               self.errors if self.skip else None)  # fmt: skip
        if len(keep) < len(batch["qid"]):
            batch = {name: column[keep] for name, column in batch.items()}
        pairs = [(q, t) for q, texts in zip(batch["query"], batch["texts"], strict=True) for t in texts]
        scores = self.reranker.score(pairs)
        if self.errors is not None and pairs:
            ray.get(self.errors.scored.remote(len(pairs), scores.stats.truncated))
            _tell_framed(self, ((q, t, None) for q, t in pairs))
        docids, values = [], []
        for ids, span in zip(batch["docids"], spans(len(ids) for ids in batch["docids"]), strict=True):
            best = ranked(list(ids), scores[span])[: self.top_k]
            docids.append([d for d, _ in best])
            values.append([s for _, s in best])
        return {"qid": batch["qid"], "docids": _objects(docids), "scores": _objects(values)}


def _objects(items: list) -> numpy.ndarray:
    array = numpy.empty(len(items), dtype=object)
    array[:] = items
    return array


class Placement:
    """Where the stage runs: ``workers`` actors (default one, or one per GPU where there are GPUs), each with
    ``gpus_per_worker`` GPUs (default one where the cluster has GPUs, else none), or on CPUs; ``local``: Ray runs on
    this machine alone, whose cores the actors share. Its ``gpus``, ``cpus`` (reserved a CPU actor) and ``threads``
    (torch's in a CPU actor; ``None``: Ray's) say what it chose."""

    def __init__(self, workers: int | None = None, gpus_per_worker: float | None = None, local: bool = False):
        check_count(workers, "workers")  # 0 ran one actor
        resources = ray.cluster_resources()
        have = resources.get("GPU", 0)
        if gpus_per_worker is None:
            gpus_per_worker = 1 if have else 0
        if gpus_per_worker and workers is None:
            workers = max(1, int(have // gpus_per_worker))
        workers = 1 if workers is None else workers
        if gpus_per_worker and workers * gpus_per_worker > have:
            raise InputError(f"{{workers}} {workers} x {{gpus_per_worker}} {gpus_per_worker:g} GPUs: the Ray cluster "
                             f"has {have:g}", "workers", "gpus_per_worker")  # fmt: skip
        self.workers, self.gpus = workers, float(gpus_per_worker)
        self.cpus = self.threads = None
        if not self.gpus:
            self.cpus = 1
            cpus = resources.get("CPU", 0)
            if not local and workers >= cpus:  # the actors would wait for the reads, and the reads for a CPU: forever
                most = f"at most {int(cpus) - 1}" if cpus >= 2 else "a cluster of more CPUs"
                raise InputError(f"{{workers}} {workers}: each CPU actor takes one of the Ray cluster's {cpus:g} "
                                 f"CPUs, and the input's read tasks need one left; give {most}", "workers")  # fmt: skip
            if local:  # actors on this machine share its cores, and leave a CPU to the read tasks
                self.threads = max(1, devices.usable_cpus() // workers)
                # of the CPUs free now: an earlier run's actors may not be released yet (Ray ends them lazily), and
                # reserving past them starved the read tasks, so the run waited forever
                free = ray.available_resources().get("CPU", resources.get("CPU", 1))
                self.cpus = max(1, min(self.threads, int(free - 1) // workers))

    def describe(self) -> str:
        return plural(self.workers, f"{f'{self.gpus:g} GPU' if self.gpus else 'CPU'} actor")

    def map(self, dataset, stage: type, **arguments):
        """``dataset.map_batches(stage, **arguments)`` on these actors. An error the stage raises reaches the
        driver as Ray's ``RayTaskError`` that is also of its class (``except InputError`` catches it; its ``cause``
        is the error itself, ``qrr.errors.qrr_cause`` finds it): Ray would wrap it in a "UDF failed" without its
        message. That is Ray's ``raise_original_map_exception``, set on the dataset's context, which Ray shares with
        the datasets it was made from (not the session's); in a ``map_batches`` of your own,
        ``dataset.context.raise_original_map_exception = True`` does the same."""
        dataset.context.raise_original_map_exception = True
        with warnings.catch_warnings():
            # Ray 2.60 names no parameter for max_restarts yet, and warns; its default restarts an actor forever
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
            return dataset.map_batches(stage, num_gpus=self.gpus, num_cpus=self.cpus,
                                       compute=ray.data.ActorPoolStrategy(size=self.workers),
                                       max_restarts=RESTARTS, max_task_retries=RESTARTS, **arguments)  # fmt: skip


def score(dataset, model=None, *, workers: int | None = None, gpus_per_worker: float | None = None,
          placement: Placement | None = None, batch_size: int = CHUNK, errors=None, skip: bool = False,
          **options):  # fmt: skip
    """``dataset`` with a score column (lazy: nothing runs until it is consumed), scored on ``workers`` actors of
    ``gpus_per_worker`` GPUs each (default: one per GPU where there are GPUs, else one CPU actor), or where a
    ``placement`` says. ``options`` go to ``ScoreStage`` (column names) and the ``Reranker`` (``instruction``,
    ``device``, ``dtype``, ``recipe``, ...). With ``skip``, a row whose query or document is not a string, or whose
    query leaves no room within ``max_length``, is left out and reported to ``errors`` (an ``ErrorLog``)."""
    _check_model(model)
    _check_skip(skip, errors)
    known = (dataset.schema(fetch_if_missing=False) or _Unknown()).names  # what is known without reading any
    _check_options(options, COLUMN_OPTIONS)
    if known:
        _check_columns(known, options.get("query_column", "query"), options.get("document_column", "document"),
                       options.get("instruction_column"))  # fmt: skip
    score_column = options.get("score_column", "score")
    if score_column in known:
        raise clash(score_column)
    placement = placement or Placement(workers, gpus_per_worker)
    return placement.map(dataset, ScoreStage, batch_size=batch_size, batch_format="pyarrow",
                         fn_constructor_kwargs={"model": model, "errors": errors, "skip": skip,
                                                "threads": placement.threads, **options})  # fmt: skip


COLUMN_OPTIONS = ("query_column", "document_column", "instruction_column", "score_column")  # ScoreStage's


def _check_options(options: dict, stage: tuple[str, ...] = ()) -> None:
    """A ``TypeError`` here for an option that neither the stage (``stage``: its names, and ``threads``) nor
    ``Reranker`` takes: raised in each actor, it killed it, and it was started again and died again."""
    import inspect

    signature = inspect.signature(Reranker)
    taken = [name for name in signature.parameters if name != "model"]
    try:
        signature.bind_partial(**{k: v for k, v in options.items() if k not in (*stage, "threads")})
    except TypeError as exc:
        columns = f" and the columns' ({', '.join(stage)})" if stage else ""
        rays = [name for name in options if name in RAYS_NAMES]  # where the actors go: said in qrr's own words
        ours = f"; where the actors go: {', '.join(RAYS_NAMES[name] for name in rays)}" if rays else ""
        raise TypeError(f"{exc}: the options are Reranker's ({', '.join(taken)}){columns}{ours}") from None


# Ray's map_batches names for what score's and rerank's own parameters say
RAYS_NAMES = {"concurrency": "workers=N", "num_gpus": "gpus_per_worker=G", "compute": "placement=Placement(...)"}


def _check_skip(skip: bool, errors) -> None:
    error = _skip_error(skip, errors)
    if error is not None:
        raise error


def _skip_error(skip: bool, errors) -> InputError | None:
    if skip and errors is None:  # it raised at the first bad row all the same
        return InputError("{skip} needs {errors}, an ErrorLog.remote() that collects what is left out: "
                          "raydata.ErrorLog.remote(), read with ray.get(errors.report.remote())", "skip",
                          "errors")  # fmt: skip
    return None


class _Unknown:
    names: tuple = ()


def _one_machine() -> bool:
    """Whether Ray runs on this machine only: one node, and this process not a client of a remote one."""
    import ray.util.client

    return ray.is_initialized() and not ray.util.client.ray.is_connected() and len(ray.nodes()) == 1


def _check_columns(names, query: str, document: str, instruction: str | None = None) -> None:
    missing = [column for column in (query, document, instruction) if column is not None and column not in names]
    if missing:
        said = f'the input has no "{missing[0]}" column (it has {", ".join(names) or "none"}); name the '
        if missing[0] == instruction:
            raise InputError(said + 'column of instructions with instruction_column (None: an "instruction" column '
                             "where there is one)")  # fmt: skip
        raise InputError(said + "columns to score with query_column and document_column")


def _check_model(model) -> None:
    """On one machine, a ``model`` that names nothing or a folder that holds no model: said here, before actors
    start, fail to load it and are started again. (On a cluster, a path may exist on the workers only.)"""
    from qrr import models

    if model is not None and not isinstance(model, str | os.PathLike) and not callable(model):  # as Reranker says it
        raise InputError(f"{{model}} must be a model name, hub repo id or folder, not {type(model).__name__}", "model")
    model = models.named(model)  # an empty name is said everywhere, a cluster too
    if _one_machine():
        models.check_local(model)


def rerank(inputs: RunInputs, model=None, *, top_k: int | None = None, workers: int | None = None,
           gpus_per_worker: float | None = None, placement: Placement | None = None, errors=None, skip: bool = False,
           **options) -> Iterator[tuple[Job, list[tuple[str, float]]]]:  # fmt: skip
    """Each job of ``inputs`` reranked on Ray, yielded as ``(job, [(docid, score), ...])`` best first, in the
    run's order (as ``pipelines.rerank_jobs`` yields them, for ``pipelines.write_reranked``). A query's documents
    stay together, so the output is the run that reranking without Ray writes. A query too long for
    ``max_length`` raises ``InputError``, or with ``skip`` is reported to ``errors`` (an ``ErrorLog``) and left
    out."""
    _check_model(model)
    _check_options(options)
    _check_skip(skip, errors)
    if placement is None and inputs.jobs:  # its checks (workers, GPUs) at the call
        placement = Placement(workers, gpus_per_worker)
    return _reranked(inputs, model, top_k, placement, (workers, gpus_per_worker), errors, skip, options)


def _reranked(inputs, model, top_k, placement, where, errors, skip, options):
    """``rerank``'s work, a generator: its checks are made at the call, not at the first ``next``. ``where``: the
    workers and GPUs a placement is made of where the call had no jobs to place (``output.prepare`` sets them)."""
    if not inputs.jobs:
        return
    placement = placement or Placement(*where)
    rows = [{"qid": j.qid, "query": j.query, "docids": list(j.docids), "texts": [inputs.corpus[d] for d in j.docids]}
            for j in inputs.jobs]  # fmt: skip
    queries = ray.data.from_items(rows)
    queries.context.execution_options.preserve_order = True  # the run's order, as without Ray
    dataset = placement.map(queries, RerankStage, batch_format="numpy",
                            batch_size=max(1, CHUNK // max(len(j.docids) for j in inputs.jobs)),
                            fn_constructor_kwargs={"model": model, "top_k": top_k, "threads": placement.threads,
                                                   "errors": errors, "skip": skip, **options})  # fmt: skip
    jobs = {j.qid: j for j in inputs.jobs}
    for row in dataset.iter_rows():
        yield jobs[row["qid"]], list(zip(row["docids"], row["scores"], strict=True))


def write(dataset, folder: str, fmt: str = "parquet", note=None) -> int:
    """Write ``dataset`` to ``folder`` as Parquet shards or JSON lines (``.jsonl`` shards, written as ``qrr score``
    writes them: numbers in full, no ``instruction`` where a row has none), beside any shards already there;
    returns how many rows this write added. ``note`` is told where Parquet shards disagree on a column's type."""
    _check_shard_format(fmt)
    folder = _absolute(folder)
    if fmt == "parquet":
        before = parquet_rows(folder) if files_at(folder) else 0
        dataset.write_parquet(folder)
        return parquet_rows(folder, note) - before
    sink = JsonLinesSink(folder)
    dataset.write_datasink(sink)
    return int(sink.rows)


def _check_shard_format(fmt: str) -> None:
    if fmt not in SHARD_FORMATS:  # "csv" wrote JSON lines, and rows_at counted its lines
        raise InputError(f"{{fmt}} {fmt!r}: shards are {' or '.join(SHARD_FORMATS)}", "fmt")


def rows_at(folder: str, fmt: str = "parquet") -> int:
    """The rows that ``write`` left at ``folder`` (after an interruption, say): a Parquet shard without its footer
    counts none, a JSON lines shard its whole lines."""
    _check_shard_format(fmt)
    if fmt == "parquet":
        return parquet_rows(folder)
    fs, _ = pyarrow.fs.FileSystem.from_uri(_absolute(folder))
    rows = 0
    for path in files_at(folder) or []:
        if path.endswith(".jsonl"):
            with fs.open_input_stream(path) as handle:
                while block := handle.read(1 << 20):
                    rows += block.count(b"\n")
    return rows


RUN_FILE = "_qrr_run.json"  # what a folder's shards were scored from and with (readers skip "_" names)
LOCK_FILE = "_qrr.lock"  # what a run locks in its local output folder, from before it reads it until it ends


def claim_output(folder: str):
    """``folder`` (made where it is not) locked for this run alone until the returned handle's ``close``, so that
    a second run on it (a job started again while the first still runs) stops with ``pipelines.OutputBusy`` before
    it reads or writes anything (two runs wrote every row twice, or mixed two inputs' shards). Take it before
    ``prepare_output``. A lock file (``_qrr.lock``) rather than the folder: NFS locks only files open to write.
    ``None`` for a remote folder (s3://), which no lock reaches: run one at a time there."""
    path = _local(folder)
    if path is None or os.path.isfile(path):
        return None  # a file: prepare_output says what is wrong
    names = set(os.listdir(path)) if os.path.isdir(path) else set()
    if names - {LOCK_FILE} and RUN_FILE not in names:
        return None  # a folder of other files: prepare_output refuses it, and no lock file is left among them
    os.makedirs(path, exist_ok=True)
    return locked(open(os.path.join(path, LOCK_FILE), "a"), folder)  # noqa: SIM115 (the caller's to close)


def discard_output(folder: str, made: str | None) -> None:
    """Take back what ``claim_output`` and ``prepare_output`` left in a local ``folder`` that holds no shard (a run
    stopped before its first: a model that cannot run, a Ctrl-C): the run's record, the lock file, and the folders
    the run made (``made``: the first of them, as ``new_folder`` gave it). A folder with shards, or a remote one, is
    left as it is; what cannot be removed (a file held open on Windows) stays."""
    path = _local(folder)
    with contextlib.suppress(OSError):
        if path is None or not os.path.isdir(path) or set(os.listdir(path)) - {RUN_FILE, LOCK_FILE}:
            return
        for name in (RUN_FILE, LOCK_FILE):  # the lock's file unlinked while still held: a run waiting opens a new one
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, name))
        while made is not None:  # a file come in meanwhile: os.rmdir fails, and that folder and those above stay
            os.rmdir(path)
            if path == made:
                break
            path = os.path.dirname(path)


def new_folder(folder: str) -> str | None:
    """The first folder of the local path ``folder`` that is not there yet (``folder`` or one above it), which a
    run that makes it may take back (``discard_output``); ``None`` where it is there, or remote."""
    path = _local(folder)
    if path is None or os.path.exists(path):
        return None
    while not os.path.exists(os.path.dirname(path)) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def prepare_output(folder: str, run: dict, resume: bool, fmt: str = "parquet") -> tuple[dict | None, int, list]:
    """Make ``folder`` ready for a run's shards: new or empty (or, with ``resume``, holding an earlier run's
    shards of the same ``run``: its input files and their sizes, the model and its options, ``run_record``'s
    fields). Returns ``done_records``' answer for the shards there (with ``resume`` and none there: no records;
    without ``resume``: ``None``, nothing to leave out) and writes ``run`` beside the shards, so that a later run
    can go on. ``InputError`` for a folder of other files, or of another run."""
    fs, where = pyarrow.fs.FileSystem.from_uri(_absolute(folder))
    info = fs.get_file_info(where)
    if info.type == pyarrow.fs.FileType.File:
        raise InputError(f"{folder}: a file; the output of --ray is a folder of shards")
    listed = [] if info.type == pyarrow.fs.FileType.NotFound else fs.get_file_info(pyarrow.fs.FileSelector(where))
    # a run that failed before writing a shard (a typo in a path, say) left only its record: the folder is empty
    existing = [f for f in listed if os.path.basename(f.path) not in (RUN_FILE, LOCK_FILE)]
    if existing and not resume:
        raise InputError(f"--output {folder}: the folder holds files already; give a new or empty one, or --resume "
                         f"{folder} to go on with its shards")  # fmt: skip
    if existing:
        names = {os.path.basename(f.path) for f in listed}
        if RUN_FILE not in names:
            raise InputError(f"{folder}: no {RUN_FILE}, so not the shards of a qrr score --ray run (or of an older "
                             "qrr) to go on with; give a new folder")  # fmt: skip
        with fs.open_input_stream(f"{where}/{RUN_FILE}") as handle:
            then = orjson.loads(handle.read())
        differs = next((key for key in run if then.get(key) != run[key]), None)
        if differs == "files" and isinstance(then.get("files"), dict):  # two long lists were shown, alike at first
            said = f"from other input files ({_changed(then['files'], run['files'])})"
        elif differs is not None:
            said = f"with other {differs.replace('_', ' ')} ({shown(then.get(differs))}, not {shown(run[differs])})"
        if differs is not None:
            raise InputError(f"{folder}: its shards were scored {said}; go on with what wrote them, or give a new "
                             "folder")  # fmt: skip
        other = {"parquet": ".jsonl", "jsonl": ".parquet"}[fmt]
        if any(name.endswith(other) for name in names):
            raise InputError(f"{folder}: its shards are {other[1:]}; give --output-format {other[1:]} to go on")
        return done_records(folder, fmt)
    fs.create_dir(where, recursive=True)
    with fs.open_output_stream(f"{where}/{RUN_FILE}") as handle:
        handle.write(orjson.dumps(run))
    return ({} if resume else None), 0, []


def _changed(then: dict, now: dict) -> str:
    """The first way the input files ``now`` (paths to sizes) differ from ``then``'s."""
    new, gone = [p for p in now if p not in then], [p for p in then if p not in now]
    more = lambda paths: f" (and {len(paths) - 1:,} more)" if len(paths) > 1 else ""  # noqa: E731
    if new:
        return f"{new[0]} is new{more(new)}"
    if gone:
        return f"{gone[0]} is gone{more(gone)}"
    path = next(p for p in now if now[p] != then[p])
    return f"{path} is {plural(now[path], 'byte')}, not {then[path]:,}"


def run_record(paths, **settings) -> dict:
    """What a run is scored from and with: its input files with their sizes, and ``settings`` (the model and its
    options, the formats), for ``prepare_output`` to tell whether a folder's shards are this run's."""
    # the sizes come with the listing: a stat a file would be a request a file on S3
    files = {info.path: info.size for path in _given(paths) for info in _file_infos(path) or []}
    return {"files": dict(sorted(files.items())), **settings}


def done_records(folder: str, fmt: str | None = None) -> tuple[dict, int, list[str]]:
    """What the shards at ``folder`` (``write``'s, of qrr's pair files) hold: the records they scored by input file
    (``qrr_source`` to a sorted array of ``qrr_record``), how many, and the shards an interruption left
    half-written (a Parquet file without its footer, JSON lines without their last newline), which this deletes:
    their rows are scored again. ``fmt``: the shards' (``parquet`` or ``jsonl``), by default those the folder holds.
    ``InputError`` for a shard without those columns. A folder that does not exist holds nothing."""
    fs, where = pyarrow.fs.FileSystem.from_uri(_absolute(folder))
    found: dict[str, list] = {}
    rows, removed = 0, []
    files = [f.path for f in fs.get_file_info(pyarrow.fs.FileSelector(where, allow_not_found=True))
             if f.type == pyarrow.fs.FileType.File]  # fmt: skip
    if fmt is None:  # Parquet's was taken for JSON lines' too: a folder of them was found to hold nothing
        kinds = [k for k in SHARD_FORMATS if any(_shard_name(os.path.basename(p), k) for p in files)]
        if len(kinds) > 1:
            raise InputError(f"{folder}: holds shards of both {' and '.join(kinds)}; say which with {{fmt}}", "fmt")
        fmt = kinds[0] if kinds else "parquet"
    _check_shard_format(fmt)
    shards = [path for path in files if _shard_name(os.path.basename(path), fmt)]
    for path in sorted(shards):
        columns = _provenance(fs, path, fmt)
        if columns is None:
            fs.delete_file(path)
            removed.append(path)
            continue
        sources, records = columns
        for n, source in enumerate(sources.dictionary.to_pylist()):
            found.setdefault(source, []).append(records[sources.indices.to_numpy() == n])
        rows += len(records)
    return {source: numpy.sort(numpy.concatenate(parts)) for source, parts in found.items()}, rows, removed


def _shard_name(name: str, fmt: str) -> bool:
    """Whether ``name`` is one that Ray's writes give a shard (``<hex>_000003.jsonl``, ``<id>_<hex>_000000-0.parquet``;
    before Ray 2.48, ``<id>_000003_000000.parquet``): a file of the user's own in the folder is neither read as a
    shard nor, cut short, deleted as one."""
    import re

    shard = re.search(rf"\w_\d{{6}}(_\d{{6}})?(-\d+)?\.{fmt}$", name) is not None
    return shard and not name.startswith((".", "_"))


def _provenance(fs, path: str, fmt: str):
    """A shard's ``qrr_source`` (dictionary-encoded) and ``qrr_record`` (an int64 array); ``None`` where it is not
    whole."""
    missing = InputError(f"{path}: a shard without {FROM_FILE} and {RECORD} (written from Parquet input, or by an "
                         "older qrr), so the run cannot go on from it; give a new folder")  # fmt: skip
    if fmt == "parquet":
        with fs.open_input_file(path) as handle:
            try:
                shard = pyarrow.parquet.ParquetFile(handle)
            except pyarrow.ArrowInvalid:  # a write that was stopped: no footer
                return None
            if not {FROM_FILE, RECORD} <= set(shard.schema_arrow.names):
                raise missing
            table = shard.read(columns=[FROM_FILE, RECORD])
        sources, records = table[FROM_FILE].combine_chunks(), table[RECORD].combine_chunks()
    else:
        sources, records = [], []
        with fs.open_input_stream(path) as handle:
            for number, line in enumerate(_lines_of(handle), 1):
                if not line.endswith(b"\n"):
                    return None  # cut mid-line
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise InputError(f"{path}:{number}: malformed JSON in a shard; give a new folder") from None
                if FROM_FILE not in row or RECORD not in row:
                    raise missing
                sources.append(row[FROM_FILE])
                records.append(row[RECORD])
        sources, records = pyarrow.array(sources, pyarrow.string()), pyarrow.array(records, pyarrow.int64())
    return sources.dictionary_encode(), records.to_numpy(zero_copy_only=False)


def said_plainly(exc: BaseException, paths) -> BaseException:
    """An error that the scoring of ``paths`` met inside Ray, as a user can act on it: rows of different files
    whose field types clash, which Ray meets merging them into one batch, become an ``InputError``; anything else
    stays as it is."""
    said = str(innermost(exc))
    if "Unable to merge" in said:
        merging = said[said.index("Unable to merge") :].splitlines()[0]
        # (rows of one file too, where Ray's blocks of it met: a qid 7 in one block, "q7" in another)
        return InputError(f"{', '.join(map(str, paths))}: rows give a field different types ({merging}); give each "
                          "field one type")  # fmt: skip
    return exc


def parquet_rows(folder: str, note=None) -> int:
    """The rows of the Parquet shards at ``folder``, from their footers, each read with its own schema: rows of
    different files may give a column different types (``id`` 7 in one, "q7" in another), and merging the shards'
    schemas failed after all was written. ``note`` is told of such a column."""
    fs, _ = pyarrow.fs.FileSystem.from_uri(_absolute(folder))
    rows, types = 0, {}
    for path in files_at(folder) or []:
        if not path.endswith(".parquet"):
            continue
        with fs.open_input_file(path) as handle:
            try:
                shard = pyarrow.parquet.ParquetFile(handle)
            except pyarrow.ArrowInvalid:  # not whole: a write that was stopped
                continue
            rows += shard.metadata.num_rows
            for column in shard.schema_arrow:
                types.setdefault(column.name, set()).add(str(column.type))
    mixed = {name: kinds - {"null"} for name, kinds in types.items() if len(kinds - {"null"}) > 1}
    if mixed and note is not None:
        name, kinds = next(iter(mixed.items()))
        note(
            f'the shards\' column "{name}" holds {" in some, ".join(sorted(kinds))} in others (rows of different '
            "files differ): a reader that merges the shards will refuse them; give the column one type"
        )
    return rows


class JsonLinesSink(BlockBasedFileDatasink):
    """JSON lines shards (``.jsonl``), each row as ``qrr score`` writes it; ``rows``: how many, once written."""

    def __init__(self, path: str):
        super().__init__(path, file_format="jsonl")
        self.rows = 0

    def write_block_to_file(self, block, file) -> None:
        rows = block.to_arrow().to_pylist()
        file.write(b"".join(orjson.dumps(_without_null_instruction(r), default=str) + b"\n" for r in rows))

    def on_write_complete(self, write_result) -> None:
        super().on_write_complete(write_result)
        self.rows = write_result.num_rows


def _without_null_instruction(row: dict) -> dict:
    if "instruction" in row and row["instruction"] is None:  # read_pairs' column, not the input's
        del row["instruction"]
    return row


def cluster_address(address: str | None = None) -> str | None:
    """The cluster ``start`` joins: ``address``, else ``$RAY_ADDRESS``; ``None`` where it starts an instance of the
    run's own (``local`` is Ray's word for that)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return None if address == "local" else address


# where Ray says, every run, that a local instance takes its default of token authentication (nothing to act on)
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def _unsaid(logger: str, start: str):
    """The records of ``logger`` whose message starts with ``start`` left out while the body runs."""
    leave_out = lambda record: not record.getMessage().startswith(start)  # noqa: E731
    logging.getLogger(logger).addFilter(leave_out)
    try:
        yield
    finally:
        logging.getLogger(logger).removeFilter(leave_out)


def start(address: str | None = None, workers: int = 1) -> bool:
    """Join the cluster at ``address`` (default ``$RAY_ADDRESS``), or start a local instance of this run's own with
    room for ``workers`` actors and the read tasks beside them (on a few cores, actors of one CPU each would leave
    none for reading), even where one ``ray start`` left runs on this machine. Returns whether Ray runs on this
    machine only. A SIGTERM handler the caller set stays (``ray.init`` would replace it)."""
    address = cluster_address(address)
    if not ray.is_initialized():
        # ray.init makes SIGTERM a silent sys.exit on the driver (which runs Ray's shutdown at exit); a handler of
        # the caller's own (the CLI's: stop as Ctrl-C does, saying how far the run got) stays
        handler = signal.getsignal(signal.SIGTERM)
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": Ray joined the instance `ray start` had left, and then refused num_cpus (a ValueError);
            # Ray's INFO lines left out ("Started a local Ray instance", every run): qrr says where it ran at the end
            with _unsaid(AUTH_LOGGER, "Token authentication is enabled for this Ray cluster."):
                ray.init(address="local", num_cpus=devices.usable_cpus() + workers + 1, include_dashboard=False,
                         log_to_driver=False, logging_level=logging.WARNING)  # fmt: skip
        if handler not in (None, signal.SIG_DFL) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)
    return len(ray.nodes()) == 1 and not address
