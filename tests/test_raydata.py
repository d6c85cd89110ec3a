"""qrr as a Ray Data stage, on a local Ray instance the tests start (2 cores, more logical CPUs so the read tasks
run beside two actors): scores, pass-through columns, a killed actor, bad rows, empty input, and the CLI."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import sys
import threading
import time

import numpy
import pyarrow
import pyarrow.compute
import pyarrow.parquet
import pytest

from qrr import Reranker, models
from qrr import device as devices
from qrr.errors import InputError
from qrr.family import QWEN3

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def cpus_free_again():
    """After each test, its runs' actors gone before the next test's: a failed run's traceback (which the CLI
    runner keeps) holds Ray's executor and its actors, and a second run once waited forever for the CPUs they held.
    A real qrr exits."""
    yield
    gc.collect()
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def raydata():
    from qrr import raydata

    return raydata


PAIRS = [{"id": n, "query": f"query {n % 7}", "document": f"document {n} " * (1 + n % 5), "extra": {"n": n},
          "tag": f"t{n % 3}"} for n in range(3000)]  # fmt: skip


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def close_by_id(rows, expected: dict, tol=1e-6):
    got = {r["id"]: r["score"] for r in rows}
    assert sorted(got) == sorted(expected)
    assert max(abs(got[i] - expected[i]) for i in expected) <= tol


@pytest.fixture(scope="module")
def expected(reranker):
    scores = reranker.score([(p["query"], p["document"]) for p in PAIRS])
    return {p["id"]: s for p, s in zip(PAIRS, scores, strict=True)}


def test_starting_ray_keeps_the_callers_sigterm_handler(raydata, monkeypatch):
    """ray.init makes SIGTERM a silent ``sys.exit`` on the driver; a handler of the caller's (the CLI's: stop as
    Ctrl-C does) stays."""

    def init(**options):  # what ray.init does to the driver's handler (ray._private.worker.init)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)

    def mine(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        raydata.start(workers=1)
        assert signal.getsignal(signal.SIGTERM) is mine
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # no handler of the caller's: Ray's exit (and shutdown) stays
        raydata.start(workers=1)
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, mine)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_without_an_address_a_run_starts_its_own_instance_even_beside_one_left_running(raydata, monkeypatch):
    """Ray's init without an address joins the instance `ray start` left on the machine (and then refused
    ``num_cpus``: every run failed on a cluster's head node); $RAY_ADDRESS still names one to join."""
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **options: calls.append(options))
    monkeypatch.setattr(ray, "nodes", lambda: [{}])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert raydata.start(workers=1) is True
    assert calls[-1]["address"] == "local" and calls[-1]["num_cpus"] == devices.usable_cpus() + 2
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert raydata.start(workers=1) is False
    assert calls[-1] == {"address": "ray://head:10001", "log_to_driver": False}
    assert raydata.start("auto", workers=1) is False and calls[-1]["address"] == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "local")  # Ray's word for a new local instance: the run's own, as without
    assert raydata.start(workers=1) is True and calls[-1]["num_cpus"] == devices.usable_cpus() + 2


def test_a_runs_own_instance_starts_without_rays_lines_of_every_run(raydata, monkeypatch, caplog):
    """Each run began with Ray's "Started a local Ray instance" and its warning that token authentication, its
    default, is on: nothing to act on, every time. Ray's other warnings still show."""
    import logging

    calls = []

    def init(**options):
        calls.append(options)
        said = logging.getLogger(raydata.AUTH_LOGGER)
        said.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.")
        said.warning("Token authentication is disabled for this Ray cluster. Anyone with network access ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "nodes", lambda: [{}])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with caplog.at_level(logging.WARNING):
        raydata.start(workers=1)
    assert calls[-1]["logging_level"] == logging.WARNING  # Ray's INFO lines, "Started a local Ray instance", unsaid
    assert [r.getMessage()[:45] for r in caplog.records] == ["Token authentication is disabled for this Ray"]
    assert logging.getLogger(raydata.AUTH_LOGGER).filters == []  # left out while Ray starts only
    import importlib.util

    assert importlib.util.find_spec(raydata.AUTH_LOGGER) is not None  # Ray's module of it, as this Ray names it


def test_rays_advice_on_fewer_blocks_than_actors_is_left_out_of_a_qrr_run():
    import warnings

    from qrr.cli.onray import without_ray_advice

    advice = (
        "The minimum number of concurrent actors for 'MapBatches(ScoreStage)' is set to 2, but the operator "
        "only received 1 input(s)."
    )  # as Ray's actor pool gives it, when an input is short or all done
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(advice, stacklevel=1)
        with without_ray_advice():
            warnings.warn(advice, stacklevel=1)
            warnings.warn("another", stacklevel=1)
    assert [str(w.message) for w in caught] == [advice, "another"]


def test_local_actors_reserve_only_cpus_that_are_free(raydata):
    """An earlier run's actors can outlive it a while: reserving past them left no CPU to the read tasks, and a
    run in the same process (the tests', a notebook's) waited forever."""

    @ray.remote(num_cpus=2)
    class Lingering:
        def ping(self) -> int:
            return 1

    held = Lingering.remote()
    try:
        ray.get(held.ping.remote())  # 2 of the 4 CPUs held
        placement = raydata.Placement(1, local=True)
        assert (placement.threads, placement.cpus) == (devices.usable_cpus(), 1)  # one left to the reads
    finally:
        ray.kill(held)


def test_two_actors_score_as_one_process_with_every_column_passed_through(raydata, tiny_model, tmp_path, expected):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    dataset = raydata.score(raydata.read_pairs(path), str(tiny_model), workers=2, device="cpu", dtype="fp32")
    rows = dataset.take_all()
    close_by_id(rows, expected)
    assert {r["id"]: (r["extra"], r["tag"]) for r in rows} == {p["id"]: (p["extra"], p["tag"]) for p in PAIRS}
    assert set(rows[0]) == {
        "id",
        "query",
        "document",
        "instruction",
        "extra",
        "tag",
        "qrr_source",
        "qrr_record",
        "score",
    }
    # each row's file and place in it, which a run goes on from
    assert {(r["qrr_source"], r["qrr_record"] - 1) for r in rows} == {(path, p["id"]) for p in PAIRS}


def test_parquet_with_an_instruction_column(raydata, tiny_model, tmp_path, reranker):
    rows = [{"id": n, "query": f"q{n % 3}", "document": f"doc {n}", "instruction": None if n % 2 else "Judge"}
            for n in range(200)]  # fmt: skip
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    scored = raydata.score(raydata.read_pairs(str(tmp_path / "pairs.parquet")), str(tiny_model), workers=1,
                           device="cpu", dtype="fp32").take_all()  # fmt: skip
    want = reranker.score([(r["query"], r["document"], r["instruction"]) for r in rows])
    close_by_id(scored, {r["id"]: s for r, s in zip(rows, want, strict=True)})
    assert "_qrr_source" not in scored[0]


def test_a_killed_actor_loses_no_rows_and_repeats_none(raydata, tmp_path):
    from qrr.testing import FakeModel
    from tests.tiny import tokenizer_files

    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    gate, pids = tmp_path / "gate", tmp_path / "pids"
    gate.write_text("2")  # each actor's model runs two forward passes, then waits
    pids.mkdir()
    model = FakeModel(str(tokenizer_files()), pids=pids, gate=gate)
    dataset = raydata.score(raydata.read_pairs(path), model, workers=2, batch_size=100)
    out = tmp_path / "out"
    failure = []
    writer = threading.Thread(target=_run, args=(failure, dataset.write_parquet, str(out)))
    writer.start()
    deadline = time.monotonic() + 120
    while len(list(pids.iterdir())) < 2:  # both actors have loaded the model
        assert time.monotonic() < deadline, "the actors never started"
        time.sleep(0.05)
    time.sleep(1)  # and are held at the gate, mid-run
    victim = int(next(iter(sorted(pids.iterdir()))).name)
    os.kill(victim, signal.SIGKILL)
    gate.write_text("1000000")
    writer.join(300)
    assert not writer.is_alive() and not failure, failure
    assert not _alive(victim)  # the kill landed mid-run; its batches were redone by a live actor
    rows = pyarrow.parquet.read_table(out).to_pylist()
    assert sorted(r["id"] for r in rows) == list(range(len(PAIRS)))  # every row, exactly once
    fake = Reranker(FakeModel(str(tokenizer_files())))
    want = fake.score([(p["query"], p["document"]) for p in PAIRS])
    close_by_id(rows, {p["id"]: s for p, s in zip(PAIRS, want, strict=True)})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _run(failure: list, function, *args) -> None:
    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001  (reported by the test)
        failure.append(exc)


def test_a_malformed_row_names_its_file_and_line_or_is_skipped(raydata, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:5])
    with open(path, "a") as handle:
        handle.write('{"query": "q", "document": \n{"query": "q"}\n')
    from qrr.errors import InputError

    with pytest.raises(InputError, match=f"{path}:6: malformed JSON"):
        raydata.read_pairs(path).take_all()
    errors = raydata.ErrorLog.remote()
    rows = raydata.read_pairs(path, errors=errors).take_all()
    assert len(rows) == 5
    count, messages = ray.get(errors.report.remote())
    assert count == 2 and str(messages[1]) == f'{path}:7: missing field "document"'


def test_rows_alike_in_a_batch_all_count_and_a_retried_batch_none_again(raydata):
    from qrr.errors import InputError

    errors = raydata.ErrorLog.remote()
    error = InputError('p.parquet: a row\'s "document" must be a string, not null')
    for _attempt in range(2):  # the batch, then its retry after an actor died
        report = raydata._batch_reports(errors, ["q", "q", "q"], [None, "d", None])
        report(error)
        report(error)
    report = raydata._batch_reports(errors, ["q"], [None])  # another batch, its message the same
    report(error)
    count, messages = ray.get(errors.report.remote())
    assert (count, [str(m) for m in messages]) == (3, [str(error)] * 3)
    with pytest.raises(InputError):  # without a log: the error stops the run
        raydata._batch_reports(None, ["q"], [None])(error)


def test_parquet_rows_that_are_not_strings_and_instructions(raydata, tiny_model, tmp_path, cli, reranker):
    rows = [{"id": n, "query": "q", "document": None if n in (3, 4) else f"doc {n}",
             "instruction": "Judge" if n % 2 else None} for n in range(6)]  # fmt: skip
    parquet = tmp_path / "in" / "pairs.parquet"
    parquet.parent.mkdir()
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), parquet)
    failed = cli("score", str(parquet.parent), "--ray", "-o", str(tmp_path / "a"), model=tiny_model)
    assert failed.exit_code == 2
    assert failed.stderr.strip().splitlines()[-1] == f'error: {parquet}: a row\'s "document" must be a string, not null'
    # The runner keeps the traceback, and through it Ray's executor and the actors holding both CPUs (a real
    # qrr exits): let them go before the next run.
    del failed
    gc.collect()
    skipped = cli("score", str(parquet.parent), "--ray", "-o", str(tmp_path / "b"), "--on-error", "skip",
                  "-i", "Find a capital", model=tiny_model)  # fmt: skip
    assert skipped.exit_code == 0, skipped.output
    said = f'  {parquet}: a row\'s "document" must be a string, not null\n'
    # rows alike both counted (it said 1); rows, not lines, which Parquet has none of
    assert f"skipped 2 bad rows:\n{said}{said}" in skipped.stderr
    got = pyarrow.parquet.read_table(tmp_path / "b").to_pylist()
    # the row's own instruction where it has one, else -i's
    want = reranker.score([("q", r["document"], r["instruction"] or "Find a capital") for r in rows if r["document"]])
    close_by_id(got, {r["id"]: s for r, s in zip([r for r in rows if r["document"]], want, strict=True)})
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows[3:5]), parquet)  # every row bad: exit 2
    del skipped
    gc.collect()
    none = cli("score", str(parquet), "--ray", "-o", str(tmp_path / "c"), "--on-error", "skip", model=tiny_model)
    assert none.exit_code == 2
    assert none.stderr.splitlines()[-1] == "error: every row of the input was bad (2 skipped): no pair to score"


def test_an_instruction_on_the_command_line(cli, tiny_model, tmp_path, reranker):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:40])
    result = cli("score", path, "--ray", "-o", str(tmp_path / "out"), "-i", "Judge the passage", model=tiny_model)
    assert result.exit_code == 0, result.output
    want = reranker.score([(p["query"], p["document"], "Judge the passage") for p in PAIRS[:40]])
    close_by_id(pyarrow.parquet.read_table(tmp_path / "out").to_pylist(),
                {p["id"]: s for p, s in zip(PAIRS[:40], want, strict=True)})  # fmt: skip


def test_progress_counts_rows_not_rays_blocks(cli, tiny_model, tmp_path, monkeypatch):
    """Ray's progress said `MapBatches(ScoreStage): 0/1` for a whole run, a block of lines every 10 s in a log."""
    from qrr.cli import render, score

    monkeypatch.setattr(render._CountLines, "interval", 0.0)
    monkeypatch.setattr(score, "TALLY_EVERY", 0.05)
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:40])
    result = cli("score", path, "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    counted = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("scoring: ")]
    assert counted and counted[-1] == 40 and counted == sorted(counted), result.stderr
    # Ray Data's own progress is off, and its status lines (and the note that its bars are off) stay in its log
    assert "Progress bars disabled" not in result.stderr and "Execution plan" not in result.stderr
    # a folder's files are counted for the time left (a folder, the README's example, had no estimate)
    counts = []
    monkeypatch.setattr(score, "LineCount", lambda sources, done=0: counts.append(sources) or render.LineCount([]))
    folder = tmp_path / "in"
    folder.mkdir()
    names = [write_jsonl(folder / name, PAIRS[:5]) for name in ("a.jsonl", "b.jsonl")]
    assert cli("score", str(folder), "--ray", "-o", str(tmp_path / "out2"), model=tiny_model).exit_code == 0
    assert counts == [names]


def test_documents_cut_to_max_length_are_counted_as_without_ray(cli, tiny_model, tmp_path):
    rows = [{"id": n, "query": "q", "document": "word " * (10 if n % 3 else 400)} for n in range(9)]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    plain = cli("score", path, "--max-length", "200", model=tiny_model)
    assert plain.stderr == f"note: 3 documents cut to --max-length 200 ({path}:1, {path}:4, {path}:7)\n"
    result = cli("score", path, "--ray", "--workers", "2", "-o", str(tmp_path / "out"), "--max-length", "200",
                 model=tiny_model)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: 3 documents cut to --max-length 200\n" in result.stderr  # it said nothing on Ray


def test_blank_texts_and_texts_formatted_as_the_prompt_are_warned_of_as_without_ray(cli, tiny_model, tmp_path):
    rows = [{"id": n, "query": " " if n == 7 else "q", "document": "" if n in (2, 5) else "text"} for n in range(9)]
    path = write_jsonl(tmp_path / "pairs.jsonl", [*rows, {"id": 9, "query": "q", "document": "<Document>: text"}])
    framed = ("warning: a document starts or ends with '<Document>:', a marker of the prompt qrr writes around each "
              "pair: a text formatted as that prompt already (as vLLM's Qwen3-Reranker example formats them) gets the "
              "frame twice and another score; send the bare query and document, and the instruction apart, as "
              "--instruction\n")  # fmt: skip
    plain = cli("score", path, model=tiny_model)
    assert plain.stderr == (framed + f"warning: 3 pairs with a blank query or document ({path}:3, {path}:6, {path}:8) "
                            "scored as given: such a score says nothing of relevance\n")  # fmt: skip
    result = cli("score", path, "--ray", "--workers", "2", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    assert len(pyarrow.parquet.read_table(tmp_path / "out")) == 10  # scored as given
    assert result.stderr.count(framed) == 1  # told by an actor, said by the driver
    # where: the first three the actors reported (they score batches in no set order)
    said = re.search(r"^warning: 3 pairs with a blank query or document \((.*)\) scored as given: such a score says "
                     r"nothing of relevance$", result.stderr, re.MULTILINE)  # fmt: skip
    assert said, result.stderr
    assert sorted(said[1].split(", ")) == [f"{path}: record {n}" for n in (3, 6, 8)]
    none = cli("score", write_jsonl(tmp_path / "fine.jsonl", rows[:2]), "--ray", "-o", str(tmp_path / "o2"),
               model=tiny_model)  # fmt: skip
    assert none.exit_code == 0 and "warning" not in none.stderr  # none blank: no warning


def test_a_query_too_long_for_max_length_stops_the_run_or_is_skipped_as_without_ray(cli, tiny_model, tmp_path):
    rows = [{"id": n, "query": "long " * 200 if n == 2 else "q", "document": f"d{n}"} for n in range(4)]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    plain = cli("score", path, "--max-length", "100", model=tiny_model)
    said = plain.stderr.removeprefix(f"error: {path}:3: ")
    assert plain.exit_code == 2 and said.startswith("the query and instruction take ")
    failed = cli("score", path, "--ray", "-o", str(tmp_path / "a"), "--max-length", "100", model=tiny_model)
    assert failed.exit_code == 2, failed.output
    assert failed.stderr.strip().splitlines()[-1] == f"error: {path}: record 3: {said.strip()}"
    del failed  # its traceback holds the run's actors and their CPUs (see cpus_free_again)
    gc.collect()
    result = cli("score", path, "--ray", "-o", str(tmp_path / "b"), "--max-length", "100", "--on-error", "skip",
                 model=tiny_model)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"skipped 1 bad line:\n  {path}: record 3: {said}" in result.stderr
    assert sorted(r["id"] for r in pyarrow.parquet.read_table(tmp_path / "b").to_pylist()) == [0, 1, 3]


def test_a_batch_whose_every_row_is_skipped_leaves_no_row_and_the_run_goes_on(raydata, tiny_model):
    """It failed the whole run: `ArrowNotImplementedError: Function 'array_take' has no kernel matching input types
    (string, null)` (an empty list of places is Arrow's null type)."""
    errors = raydata.ErrorLog.remote()
    stage = raydata.ScoreStage(str(tiny_model), errors=errors, skip=True, max_length=100, device="cpu")
    long = pyarrow.Table.from_pylist([{"query": "long " * 200, "document": f"d{n}"} for n in range(3)])
    nulls = pyarrow.Table.from_pylist([{"query": "q", "document": None}] * 2)
    for batch in (long, nulls):
        out = stage(batch)
        assert out.num_rows == 0 and out.column_names == [*batch.column_names, "score"]
    assert ray.get(errors.report.remote())[0] == 5
    # skip without a log to report to raised at the first bad row all the same
    from qrr.errors import InputError

    with pytest.raises(InputError, match="^skip needs errors, an ErrorLog.remote"):
        raydata.score(ray.data.from_items([{"query": "q", "document": "d"}]), str(tiny_model), skip=True)
    # a stage of one's own alike, at its first batch (a row that is fine too: it would skip nothing unsaid)
    for stage in (raydata.ScoreStage(str(tiny_model), skip=True), raydata.RerankStage(str(tiny_model), skip=True)):
        with pytest.raises(InputError, match="^skip needs errors, an ErrorLog.remote"):
            stage(pyarrow.table({"query": ["q"], "document": ["d"]}))


def test_what_cannot_run_is_one_line(cli, tiny_model, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:5])
    cases = (
        (("nope.jsonl", "--ray", "-o", str(tmp_path / "a")), 2, "error: nope.jsonl: no such file or folder"),
        ((path, "--ray", "-o", str(tmp_path / "b"), "-m", str(tmp_path / "no-model")), 2,
         f"error: --model {tmp_path / 'no-model'}: no such folder"),
        ((path, "--ray", "-o", str(tmp_path / "c"), "--gpus-per-worker", "1"), 2,
         "error: --workers 1 x --gpus-per-worker 1 GPUs: the Ray cluster has 0"),
        ((path, "--ray", "-o", str(tmp_path / "d"), "-f", "json"), 2,
         "error: --format: not with --ray, which reads FILEs and writes --output shards"),
    )  # fmt: skip
    for args, code, message in cases:
        result = cli("score", *args, model=False if "-m" in args else tiny_model)
        assert result.exit_code == code and result.stderr.strip().splitlines()[-1].startswith(message), result.output
    # a run that stopped before its first shard leaves no folder behind (one holding _qrr_run.json and _qrr.lock)
    assert not any((tmp_path / name).exists() for name in "abcd")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"id": 1, "query": "q", "document": "d"}\n{"id": "two", "query": "q", "document": "d"}\n')
    result = cli("score", str(mixed), "--ray", "-o", str(tmp_path / "e"), model=tiny_model)
    assert result.exit_code == 2 and f"error: {mixed}: field 'id' holds values of different types" in result.stderr


def test_a_file_refused_whole_is_said_before_ray_starts(cli, tiny_model, tmp_path, raydata, monkeypatch):
    started = []
    monkeypatch.setattr(raydata, "start", lambda *a, real=raydata.start: started.append(a) or real(*a))
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", PAIRS[:3])
    (folder / "b.csv").write_text("query,document\nq,d\n")
    result = cli("score", str(folder), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(f"error: {folder / 'b.csv'}: CSV by its name, which qrr does not")
    assert started == [] and not (tmp_path / "out").exists()  # it was said once Ray and the actors had started
    skipped = cli("score", str(folder), "--ray", "-o", str(tmp_path / "out"), "--on-error", "skip", model=tiny_model)
    assert skipped.exit_code == 0 and len(started) == 1, skipped.output
    assert f"skipped 1 whole file:\n  {folder / 'b.csv'}: CSV by its name" in skipped.stderr
    assert len(pyarrow.parquet.read_table(tmp_path / "out").to_pylist()) == 3


def test_first_fields_looks_past_the_first_record_only_for_a_file_refused_whole(raydata, tmp_path):
    from qrr.errors import SourceError

    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"query": "q", "document": "d", "label": 1}])
    (folder / "b.jsonl").write_text(
        '[\n{"query": "q", "document": "d", "score": 0.5},\n{"query": "r", "document": "e"}\n]\n'
    )
    pyarrow.parquet.write_table(
        pyarrow.table({"query": ["q"], "document": ["d"], "score": [0.5]}), folder / "c.parquet"
    )
    first = {"query", "document", "label"}
    # a JSON array cut after its first line is no refusal, and a later Parquet file's columns are not the first's
    assert raydata.first_fields(str(folder), skip=False) == raydata.first_fields(str(folder)) == first
    (folder / "d.jsonl").write_text('{"query": "q", "document": "d"}\n', encoding="utf-16")
    assert raydata.first_fields(str(folder)) == first
    with pytest.raises(SourceError, match=f"^{folder / 'd.jsonl'}: UTF-16"):
        raydata.first_fields(str(folder), skip=False)
    assert raydata.first_fields(str(folder), files=3, skip=False) == first  # the files it looks at: 10 by default


def test_what_the_python_stage_cannot_run_is_said_before_any_actor_starts(raydata, tiny_model, tmp_path):
    from qrr.errors import InputError, ModelNameError, NotAModelError, qrr_cause

    items = ray.data.from_items([{"query": "q", "doc": "d"}])
    # it was a KeyError from inside an actor, after the model had loaded there
    with pytest.raises(InputError, match='^the input has no "document" column \\(it has query, doc\\); name the '
                                         "columns to score with query_column and document_column$"):  # fmt: skip
        raydata.score(items, str(tiny_model), workers=1)
    assert raydata.score(items, str(tiny_model), workers=1, document_column="doc", device="cpu").take_all()[0]["score"]
    # an actor failed to load it, was started again and failed again, and Ray said so in ~100 lines
    with pytest.raises(ModelNameError, match=f"^model {tmp_path / 'nope'}: no such folder"):
        raydata.score(items, str(tmp_path / "nope"), workers=1)
    with pytest.raises(NotAModelError, match=f"^{tmp_path}: no config.json"):
        raydata.score(items, str(tmp_path), workers=1)
    # a schema known only once read is checked by the actors, with the same message
    unread = raydata.read_pairs(write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:3]))
    with pytest.raises(InputError) as caught:  # Ray's wrapper of it, whose str() holds the actor's traceback
        raydata.score(unread, str(tiny_model), workers=1, document_column="passage", device="cpu").take_all()
    assert str(qrr_cause(caught.value)).startswith('the input has no "passage" column (it has query, document, ')


def test_an_empty_input(raydata, tiny_model, tmp_path, cli):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert raydata.score(raydata.read_pairs(str(path)), str(tiny_model), workers=1, device="cpu").take_all() == []
    result = cli("score", str(path), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith("scored 0 pairs in ")
    assert result.stderr.splitlines()[-1].endswith("; wrote nothing")


# -------------------------------------------------------------------------------------------------------- CLI


def test_qrr_score_on_ray_writes_what_qrr_score_prints(cli, tiny_model, tmp_path, expected):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    result = cli("score", path, "--ray", "--workers", "2", "--output", str(tmp_path / "out"), "-v", model=tiny_model)
    assert result.exit_code == 0, result.output
    # -v: what the actors ran, once (each actor tells it)
    said = f"actors: model {tiny_model} on cpu (fp32, 1 thread), transformers recipe, batch budget 1024 tokens\n"
    assert result.stderr.count(said) == 1, result.stderr
    rows = pyarrow.parquet.read_table(tmp_path / "out").to_pylist()
    close_by_id(rows, expected)
    assert result.stderr.splitlines()[-1].startswith("scored 3,000 pairs in ")
    assert result.stderr.splitlines()[-1].endswith(f"on 2 CPU actors; wrote {tmp_path / 'out'}")
    result = cli("score", path, "--ray", "-o", str(tmp_path / "lines"), "--output-format", "jsonl", model=tiny_model)
    assert result.stderr.splitlines()[-1].startswith("scored 3,000 pairs in ")
    shards = sorted((tmp_path / "lines").glob("*.jsonl"))  # beside them: _qrr_run.json
    assert shards and all(f.suffix == ".jsonl" for f in shards)
    lines = [json.loads(x) for f in shards for x in f.read_text().splitlines()]
    close_by_id(lines, expected)
    # every input column as it came (no "instruction" the input lacked), and scores in full, as parquet has them
    assert {tuple(row) for row in lines} == {("query", "document", "id", "extra", "tag", "qrr_source", "qrr_record",
                                              "score")}  # fmt: skip
    by_id = {r["id"]: r for r in rows}
    assert all(r == {k: v for k, v in by_id[r["id"]].items() if k != "instruction"} for r in lines)


def test_files_whose_ids_differ_in_type(cli, tiny_model, tmp_path):
    def folder(name: str, rows: int) -> str:
        (tmp_path / name).mkdir()
        write_jsonl(tmp_path / name / "a.jsonl", [{"id": n, "query": "q", "document": "d"} for n in range(rows)])
        write_jsonl(tmp_path / name / "b.jsonl", [{"id": f"s{n}", "query": "q", "document": "d"} for n in range(rows)])
        return str(tmp_path / name)

    # files of a batch's rows each (1,024) are scored apart, and written: it said "error: ArrowTypeError: Unable to
    # merge" (exit 1) after writing every row, counting them
    result = cli("score", folder("whole", 1024), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith("scored 2,048 pairs in ")
    assert (
        'note: the shards\' column "id" holds int64 in some, string in others (rows of different files differ): '
        "a reader that merges the shards will refuse them; give the column one type"
    ) in result.stderr
    shards = sorted((tmp_path / "out").glob("*.parquet"))
    ids = [r["id"] for f in shards for r in pyarrow.parquet.read_table(f).to_pylist()]
    assert sorted(i for i in ids if isinstance(i, int)) == list(range(1024)) and len(ids) == 2048
    # rows of both in one batch cannot be merged: one line, bad input (it was Ray's traceback, exit 1)
    small = folder("small", 3)
    result = cli("score", small, "--ray", "-o", str(tmp_path / "out2"), model=tiny_model)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        f"error: {small}: rows give a field different types (Unable to merge: Field id has "
        "incompatible types: int64 vs string); give each field one type")  # fmt: skip


def test_an_interrupted_ray_run_says_what_it_kept_and_what_it_skipped(cli, tiny_model, tmp_path, monkeypatch, raydata):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:5])
    with open(path, "a") as handle:
        handle.write("{oops\n")

    def interrupted(dataset, folder, fmt="parquet", note=None):  # a shard of two rows finished, then Ctrl-C
        for _ in dataset.iter_batches(batch_size=None):
            pass  # the read tasks report the bad line to the error log
        os.makedirs(folder, exist_ok=True)
        pyarrow.parquet.write_table(pyarrow.table({"score": [0.5, 0.5]}), os.path.join(folder, "a.parquet"))
        raise KeyboardInterrupt

    monkeypatch.setattr(raydata, "write", interrupted)
    out = tmp_path / "out"
    result = cli("score", path, "--ray", "-o", str(out), "--on-error", "skip", model=tiny_model)
    assert result.exit_code == 130, result.output
    # it said "error: interrupted", and nothing of the lines it had skipped
    assert f"skipped 1 bad line:\n  {path}:6: malformed JSON" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: interrupted with 2 scored rows in {out}; --resume {out} goes on with them (from JSONL or TSV input)"
    )


def test_an_interrupted_ray_run_goes_on_from_its_shards(cli, tiny_model, tmp_path, expected, raydata):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:40])
    out = tmp_path / "out"
    result = cli("score", path, "--ray", "--resume", str(out), model=tiny_model)  # nothing there yet: a plain run
    assert result.exit_code == 0 and "resuming" not in result.stderr, result.output
    # as an interrupted run leaves it: the shards of the first 25 records, and one cut off mid-write
    (shard,) = out.glob("*.parquet")
    rows = pyarrow.parquet.read_table(shard)
    pyarrow.parquet.write_table(rows.filter(pyarrow.compute.less_equal(rows["qrr_record"], 25)), shard)
    cut = out / f"{'0123456789abcdef' * 2}_000009-0.parquet"  # as Ray names a shard
    cut.write_bytes(b"PAR1 no footer yet")
    result = cli("score", path, "--ray", "--resume", str(out), model=tiny_model)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"{cut}: a shard cut off mid-write, removed (its rows are scored again)"
    assert lines[1] == f"resuming {out}: 25 pairs done" and lines[-1].startswith("scored 15 pairs in ")
    rows = pyarrow.parquet.read_table(out).to_pylist()
    assert sorted(r["qrr_record"] for r in rows) == list(range(1, 41))  # each once
    close_by_id(rows, {i: s for i, s in expected.items() if i < 40})
    # what is not this run's is refused before Ray starts: another set-up, other files, the other shard format
    for args, message in (
        ((path, "--max-length", "512"), f"{out}: its shards were scored with other max length (8192, not 512); go on "
                                        "with what wrote them, or give a new folder"),
        ((write_jsonl(tmp_path / "other.jsonl", PAIRS[:3]),), f"{out}: its shards were scored from other input files "
                                                              f"({tmp_path / 'other.jsonl'} is new); go on with what "
                                                              "wrote them, or give a new folder"),
        ((path, "--output-format", "jsonl"), f"{out}: its shards are parquet; give --output-format parquet to go on"),
    ):  # fmt: skip
        result = cli("score", *args, "--ray", "--resume", str(out), model=tiny_model)
        assert (result.exit_code, result.stderr.splitlines()[-1].startswith(f"error: {message}")) == (2, True), (
            result.output)  # fmt: skip
    # on one machine the record says what dtype auto was here: going on where it means another is refused
    here = devices.dtype_name(devices.resolve_dtype("auto", devices.resolve_device("cpu")))
    small, auto = write_jsonl(tmp_path / "small.jsonl", PAIRS[:3]), tmp_path / "auto"
    options = ("--ray", "-m", str(tiny_model), "--device", "cpu", "--resume", str(auto))  # --dtype auto, unsaid
    assert cli("score", small, *options, model=False).exit_code == 0
    assert json.loads((auto / "_qrr_run.json").read_text())["dtype"] == here
    other = "fp32" if here == "bf16" else "bf16"
    result = cli("score", small, *options, "--dtype", other, model=False)
    assert result.exit_code == 2 and result.stderr.splitlines()[-1].startswith(
        f'error: {auto}: its shards were scored with other dtype ("{here}", not "{other}")')  # fmt: skip
    # the instruction kept as its text: -i with the default's text goes on with a run that gave none
    assert json.loads((auto / "_qrr_run.json").read_text())["instruction"] == QWEN3.default_instruction
    result = cli("score", small, *options, "-i", QWEN3.default_instruction, model=False)
    assert result.exit_code == 0 and f"resuming {auto}: 3 pairs done" in result.stderr, result.output
    # the file that differs, not two lists of every file alike at first
    then = {"/d/a.jsonl": 10, "/d/b.jsonl": 20}
    assert raydata._changed(then, {**then, "/d/c.jsonl": 1, "/d/e.jsonl": 2}) == "/d/c.jsonl is new (and 1 more)"
    assert raydata._changed(then, {"/d/a.jsonl": 10}) == "/d/b.jsonl is gone"
    assert raydata._changed({}, then | {"/d/c.jsonl": 1}) == "/d/a.jsonl is new (and 2 more)"
    assert raydata._changed(then, {"/d/a.jsonl": 10, "/d/b.jsonl": 2_000}) == "/d/b.jsonl is 2,000 bytes, not 20"
    # Parquet input carries no place to go on from
    (tmp_path / "in").mkdir()
    pyarrow.parquet.write_table(pyarrow.table({"query": ["q"], "document": ["d"]}), tmp_path / "in" / "a.parquet")
    result = cli("score", str(tmp_path / "in"), "--ray", "--resume", str(tmp_path / "new"), model=tiny_model)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, f"error: {tmp_path / 'in'}: Parquet rows carry no place in their file to go on from; going on reads qrr's "
           "pair files (JSONL, TSV)")  # fmt: skip
    # a run with a typo in its input's name makes no folder
    result = cli("score", str(tmp_path / "nope.jsonl"), "--ray", "-o", str(tmp_path / "typo"), model=tiny_model)
    assert result.exit_code == 2 and not (tmp_path / "typo").exists()
    result = cli("score", path, "--ray", "-o", str(path), model=tiny_model)
    assert result.stderr.splitlines()[-1] == f"error: {path}: a file; the output of --ray is a folder of shards"


def test_done_records_of_json_lines_shards(raydata, tmp_path):
    a, b, c = (f"{'0123456789abcdef' * 2}_{n:06}.jsonl" for n in range(3))  # as Ray names them
    (tmp_path / a).write_text('{"score": 1, "qrr_source": "/p/x.jsonl", "qrr_record": 2}\n'
                              '{"score": 1, "qrr_source": "/p/y.jsonl", "qrr_record": 1}\n')  # fmt: skip
    (tmp_path / b).write_text('{"score": 1, "qrr_source": "/p/x.jsonl", "qrr_record": 1}\n{"sco')
    (tmp_path / "_notes.jsonl").write_text("not a shard")  # "_" and "." names and subfolders are not shards
    (tmp_path / "mine.jsonl").write_text('{"note": 1}')  # nor a file of the user's, cut short or not: it was deleted
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "d.jsonl").write_text('{"sco')
    done, rows, removed = raydata.done_records(str(tmp_path))  # the folder's shards say their format
    assert ({k: v.tolist() for k, v in done.items()}, rows) == ({"/p/x.jsonl": [2], "/p/y.jsonl": [1]}, 2)
    assert removed == [str(tmp_path / b)] and not (tmp_path / b).exists()
    (tmp_path / c).write_text('{"score": 1}\n')  # another run's, without the places
    from qrr.errors import InputError

    with pytest.raises(InputError, match="a shard without qrr_source and qrr_record"):
        raydata.done_records(str(tmp_path), "jsonl")
    (tmp_path / c).write_text('{"score": 1, "qrr_source": "/p/x.jsonl", "qrr_record": 3}\n{oops\n')
    with pytest.raises(InputError, match=rf"{c}:2: malformed JSON in a shard"):  # whole lines: not a cut
        raydata.done_records(str(tmp_path), "jsonl")
    assert all((tmp_path / name).exists() for name in ("_notes.jsonl", "mine.jsonl", "old/d.jsonl"))
    assert raydata.done_records(str(tmp_path / "none"), "jsonl") == ({}, 0, [])  # no folder: nothing done
    (tmp_path / f"{'0123456789abcdef' * 2}_000009.parquet").write_text("")
    with pytest.raises(InputError, match=f"^{tmp_path}: holds shards of both parquet and jsonl; say which with fmt$"):
        raydata.done_records(str(tmp_path))


def test_every_rows_fields_are_read_and_ids_past_int64_kept(raydata, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"query": "a", "document": "b"}\n{"query": "a", "document": "c", "id": "x2"}\n'
        '{"query": "a", "document": "d", "id": "x3", "extra": 5, "doc_id": 12345678901234567890}\n'
    )
    rows = sorted(raydata.read_pairs(str(path)).take_all(), key=lambda r: r["document"])
    # fields after the first row were dropped, and an id past int64 failed the read (OverflowError, exit 1)
    assert [(r["id"], r["extra"], r["doc_id"]) for r in rows] == [
        (None, None, None), ("x2", None, None), ("x3", 5, 12345678901234567890)]  # fmt: skip
    path.write_text(
        '{"query": "a", "document": "b", "id": -1}\n{"query": "a", "document": "c", "id": 12345678901234567890}\n'
    )
    from qrr.errors import InputError, qrr_cause

    with pytest.raises(InputError) as caught:
        raydata.read_pairs(str(path)).take_all()
    # (Ray adds its own lines to the error's str(); the CLI says its message)
    assert qrr_cause(caught.value).naming({}) == (
        f"{path}: field 'id' holds integers past 64 bits, or negative ones beside ones past 63; give them as strings"
    )


def test_rows_of_whole_shards_are_counted(raydata, tmp_path):
    (tmp_path / "lines").mkdir()
    (tmp_path / "lines" / "a.jsonl").write_text('{"score": 1}\n{"score": 2}\n')
    (tmp_path / "lines" / "b.jsonl").write_text('{"score": 3}\n{"sco')  # cut mid-write
    assert raydata.rows_at(str(tmp_path / "lines"), "jsonl") == 3
    (tmp_path / "shards").mkdir()
    pyarrow.parquet.write_table(pyarrow.table({"score": [0.5] * 4}), tmp_path / "shards" / "a.parquet")
    (tmp_path / "shards" / "b.parquet").write_bytes(b"PAR1 no footer yet")
    assert raydata.rows_at(str(tmp_path / "shards")) == 4
    assert raydata.rows_at(str(tmp_path / "none")) == 0


def test_qrr_score_on_ray_bad_lines_and_usage(cli, tiny_model, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:5])
    with open(path, "a") as handle:
        handle.write("{oops\n")
    failed = cli("score", path, "--ray", "-o", str(tmp_path / "a"), model=tiny_model)
    assert failed.exit_code == 2, failed.output
    assert failed.stderr.strip().splitlines()[-1].startswith(f"error: {path}:6: malformed JSON")
    del failed  # its traceback holds the run's actors and their CPUs (see cpus_free_again)
    gc.collect()
    skipped = cli("score", path, "--ray", "-o", str(tmp_path / "b"), "--on-error", "skip", model=tiny_model)
    assert skipped.exit_code == 0, skipped.output
    assert f"skipped 1 bad line:\n  {path}:6: malformed JSON" in skipped.stderr
    assert len(pyarrow.parquet.read_table(tmp_path / "b").to_pylist()) == 5
    bad = tmp_path / "bad.jsonl"  # every line bad: exit 2, as without Ray (it exited 0, "wrote nothing")
    bad.write_text('{oops\n{"query": "q"}\n')
    result = cli("score", str(bad), "--ray", "-o", str(tmp_path / "c"), "--on-error", "skip", model=tiny_model)
    assert result.exit_code == 2 and result.stderr.splitlines()[-1] == ("error: every line of the input was bad (2 "
                                                                        "skipped): no pair to score")  # fmt: skip
    assert "skipped 2 bad lines:" in result.stderr and "concurrent actors" not in result.stderr  # Ray's advice
    for args, message in (((path, "--ray"), "--ray needs --output DIR, the folder for the result shards"),
                          ((path, "--ray", "-o", str(tmp_path / "b")),
                           f"--output {tmp_path / 'b'}: the folder holds files already; give a new or empty one, or "
                           f"--resume {tmp_path / 'b'} to go on with its shards"),
                          ((path, "--ray", "-o", "x", "--resume", "y"), "--output and --resume: give one (with --ray, "
                           "--resume DIR is the output folder, gone on with where it holds shards)"),
                          (("--ray", "-o", "x"), "--ray reads FILEs or folders (local or remote), not stdin"),
                          ((path, "--workers", "2"), "--workers: only with --ray"),
                          ((path, "--ray", "-o", "x", "--text-field", "body"), "--text-field: only with -q, where "
                           "FILEs hold documents"),
                          ((path, "--ray", "-o", "x", "--with-fields"), "--with-fields: not with --ray, whose shards "
                           "carry every input column already"),
                          ((path, "-o", "x"), "--output: only with --ray (without it, results go to stdout: > FILE, "
                           "or --resume FILE to go on after a stop)")):  # fmt: skip
        result = cli("score", *args, model=tiny_model)
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")


def test_qrr_rerank_on_ray_writes_the_same_run(cli, tiny_model, beir_dir, tmp_path, monkeypatch):
    from qrr.cli import render

    counted = []  # the progress's pairs: they stayed at 0 on Ray, so the bar stood still and no time left was said
    monkeypatch.setattr(render._Lines, "pairs", lambda self, n: counted.append(n))
    args = [str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "5"]
    plain = cli("rerank", *args, model=tiny_model)
    assert sum(counted) == 25
    counted.clear()
    on_ray = cli("rerank", *args, "--ray", "--workers", "2", "--resume", str(tmp_path / "out.trec"), "-v",
                 model=tiny_model)  # fmt: skip
    assert on_ray.exit_code == 0, on_ray.output
    assert "reranked 5 queries (25 pairs) in " in on_ray.stderr
    # -v: what the actors ran, as a run here says its model (it said nothing of them)
    said = f"actors: model {tiny_model} on cpu (fp32, 1 thread), transformers recipe, batch budget 1024 tokens\n"
    assert said in on_ray.stderr
    assert counted == [5] * 5  # each query's pairs, as it is done
    got = [line.split() for line in (tmp_path / "out.trec").read_text().splitlines()]
    want = [line.split() for line in plain.stdout.splitlines()]
    assert [g[:4] for g in got] == [w[:4] for w in want]  # the same queries, documents and ranks, in order
    assert max(abs(float(g[4]) - float(w[4])) for g, w in zip(got, want, strict=True)) <= 1e-6


def test_qrr_rerank_on_ray_stops_at_or_skips_a_query_too_long_and_says_what_it_cut_as_without_ray(
    cli, tiny_model, beir_dir, tmp_path
):
    copy = tmp_path / "beir"
    shutil.copytree(beir_dir, copy)
    queries = (copy / "queries.jsonl").read_text().splitlines()
    queries[2] = json.dumps({"_id": "q2", "text": "long " * 200})
    (copy / "queries.jsonl").write_text("\n".join(queries) + "\n")
    corpus = [json.loads(line) for line in (copy / "corpus.jsonl").read_text().splitlines()]
    for n, doc in enumerate(corpus):  # documents cut to --max-length, and formatted as the prompt already
        doc["title"], doc["text"] = "", "<Document>: " + "word " * (200 if n % 2 else 4)
    (copy / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in corpus))
    args = [str(copy / "bm25.trec"), "--beir", str(copy), "--depth", "3", "--max-length", "100"]
    plain = cli("rerank", *args, "--on-error", "skip", model=tiny_model)
    said = plain.stderr.split("skipped 1 of the run's queries:\n")[1].splitlines()[0]
    notes = [line for line in plain.stderr.splitlines() if line.startswith(("note: ", "warning: "))]
    assert [note[:40] for note in notes] == [
        "warning: a document starts or ends with ",
        "note: 6 documents cut to --max-length 10",
    ]
    assert said.startswith("  query q2: the query and instruction take ") and "--max-length 100 leaves" in said
    failed = cli("rerank", *args, "--ray", model=tiny_model)
    assert failed.exit_code == 2 and failed.stderr.strip().splitlines()[-1] == f"error: {said.strip()}"
    del failed  # its traceback holds the run's actors and their CPUs (see cpus_free_again)
    gc.collect()
    skipped = cli("rerank", *args, "--ray", "--on-error", "skip", "--resume", str(tmp_path / "out.trec"),
                  model=tiny_model)  # fmt: skip
    assert skipped.exit_code == 0, skipped.output
    assert f"skipped 1 of the run's queries:\n{said}\n" in skipped.stderr
    assert "reranked 4 queries (12 pairs) in " in skipped.stderr  # not the skipped query's pairs
    # the actors' cut documents and framed text: Ray's run said neither
    assert [line for line in skipped.stderr.splitlines() if line.startswith(("note: ", "warning: "))] == notes
    got = [line.split()[:4] for line in (tmp_path / "out.trec").read_text().splitlines()]
    assert got == [line.split()[:4] for line in plain.stdout.splitlines()]  # q2 left out, as without Ray


def test_qrr_rerank_on_ray_goes_on_only_with_the_model_its_file_was_written_with(cli, tiny_model, tiny_tied_model,
                                                                                 beir_dir, tmp_path):  # fmt: skip
    out = tmp_path / "out.trec"
    args = [str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "3", "--resume", str(out)]
    assert cli("rerank", *args, model=tiny_model).exit_code == 0
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:7]))  # two queries of five done, a third begun
    before = out.read_bytes()
    # its actors score no result again, which tells another model: it went on, and the file mixed two models
    result = cli("rerank", *args, "--ray", model=tiny_tied_model)
    assert (result.exit_code, result.stderr) == (2, (
        f'error: --resume {out} was written with --model "{tiny_model}", not "{tiny_tied_model}" (as '
        f"{tmp_path / '.out.trec.qrr.json'} keeps), and no result is scored again here to tell one model named two "
        "ways from two models: go on with that model, or rerank into a new file\n"))  # fmt: skip
    assert out.read_bytes() == before  # refused before the unfinished query was cut off


def test_a_second_run_on_a_folder_stops_before_it_reads_or_writes(cli, tiny_model, tmp_path, raydata):
    """A job started again while the first still ran: both exited 0, and the folder held every row twice."""
    from qrr.pipelines import OutputBusy

    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:5])
    out = tmp_path / "out"
    running = raydata.claim_output(str(out))  # as the first run holds it
    try:
        with pytest.raises(OutputBusy, match=f"^output {out}: another run is writing it"):
            raydata.claim_output(str(out))
        for flag in ("--resume", "-o"):
            result = cli("score", path, "--ray", flag, str(out), model=tiny_model)
            named = "--resume" if flag == "--resume" else "--output"
            assert (result.exit_code, result.stderr) == (1, f"error: {named} {out}: another run is writing it (two "
                                                            "would write each result twice); let it finish, or stop "
                                                            "it and try again\n")  # fmt: skip
        assert [p.name for p in out.iterdir()] == ["_qrr.lock"]  # nothing read, nothing written
    finally:
        running.close()
    result = cli("score", path, "--ray", "--resume", str(out), model=tiny_model)
    assert result.exit_code == 0 and len(pyarrow.parquet.read_table(out)) == 5, result.output
    assert raydata.claim_output("s3://bucket/scored/") is None  # no lock reaches a remote folder
    # a folder of the user's own files is refused, and no lock file is left among them
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    result = cli("score", path, "--ray", "-o", str(tmp_path / "mine"), model=tiny_model)
    assert result.exit_code == 2 and "holds files already" in result.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_files_below_a_folder_named_with_a_dot_or_underscore_are_not_read(cli, tiny_model, tmp_path, expected):
    """Ray leaves them out at a folder's top level only: Spark's .crc and _SUCCESS one level down were read."""
    spark = tmp_path / "spark"
    (spark / "batch1" / ".hidden").mkdir(parents=True)
    write_jsonl(spark / "batch1" / "part-00000.json", PAIRS[:7])
    (spark / "batch1" / ".part-00000.json.crc").write_bytes(b"crc\x00\xff\xfe")
    (spark / "batch1" / "_SUCCESS").write_text("done\n")
    (spark / "batch1" / ".hidden" / "x.jsonl").write_text("not pairs\n")
    (spark / "_SUCCESS").write_text("done\n")
    result = cli("score", str(spark), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    close_by_id(pyarrow.parquet.read_table(tmp_path / "out").to_pylist(), {n: expected[n] for n in range(7)})
    # an output folder inside the input's would be read as input by the next run
    result = cli("score", str(spark), "--ray", "-o", str(spark / "scored"), model=tiny_model)
    said = f"error: {spark / 'scored'}: inside the input folder {spark}, whose files are read as pairs; give an "
    assert (result.exit_code, result.stderr) == (2, said + "output folder outside it\n")
    assert not (spark / "scored").exists()


def test_an_input_field_named_as_the_score_column(cli, tiny_model, tmp_path, raydata):
    """It was Ray's KeyError ('Field "score" exists 2 times in schema'), after the actors had loaded the model."""
    rows = [{**p, "score": 12.5} for p in PAIRS[:3]]
    path = write_jsonl(tmp_path / "bm25.jsonl", rows)
    said = 'the input has a "score" field already: name the column of scores otherwise with '
    result = cli("score", path, "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert (result.exit_code, result.stderr) == (2, f"error: {said}--score-column\n")
    assert not (tmp_path / "out").exists()
    # past an empty first file (Spark writes them), and in a Parquet file's columns
    (tmp_path / "spark").mkdir()
    (tmp_path / "spark" / "part-00000.json").write_text("")
    write_jsonl(tmp_path / "spark" / "part-00001.json", rows)
    (tmp_path / "pq").mkdir()
    pyarrow.parquet.write_table(pyarrow.table({"query": ["q"], "document": ["d"], "score": [1.0]}),
                                tmp_path / "pq" / "a.parquet")  # fmt: skip
    for source in ("spark", "pq"):
        result = cli("score", str(tmp_path / source), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
        assert (result.exit_code, result.stderr) == (2, f"error: {said}--score-column\n")
    result = cli("score", path, "--ray", "-o", str(tmp_path / "out"), "--score-column", "qrr", model=tiny_model)
    assert result.exit_code == 0, result.output
    table = pyarrow.parquet.read_table(tmp_path / "out").to_pylist()
    assert [r["score"] for r in table] == [12.5] * 3 and all(0 < r["qrr"] < 1 for r in table)
    # the shards' columns are the run's: going on with another name is refused
    result = cli("score", path, "--ray", "--resume", str(tmp_path / "out"), "--score-column", "q2", model=tiny_model)
    assert result.exit_code == 2 and "its shards were scored with other score column (\"qrr\", not \"q2\")" in (
        result.stderr)  # fmt: skip
    result = cli("score", path, "--score-column", "qrr", model=tiny_model)
    assert (result.exit_code, result.stderr) == (2, "error: --score-column: only with --ray\n")
    for name in ("", "qrr_source"):
        result = cli("score", path, "--ray", "-o", str(tmp_path / "o2"), "--score-column", name, model=tiny_model)
        assert (result.exit_code, result.stderr) == (2, f"error: --score-column {name!r}: name a column that is not "
                                                        "empty and not one qrr reads or writes (query, document, "
                                                        "instruction, qrr_source, qrr_record)\n")  # fmt: skip
    # where only a later record has it, the actors say so
    with pytest.raises(Exception) as caught:
        raydata.score(raydata.read_pairs(path), str(tiny_model), workers=1, device="cpu").take_all()
    from qrr.errors import qrr_cause

    assert str(qrr_cause(caught.value)).startswith(f"{path}: {said}score_column")
    # of a batch of two files, the file of the row that has it (the first row's was named)
    stage = raydata.ScoreStage("fake")
    batch = pyarrow.table({"query": ["q", "q"], "document": ["d", "d"], "score": [None, 3.0],
                           "_qrr_source": ["a.jsonl", "b.jsonl"]})  # fmt: skip
    with pytest.raises(InputError, match=f"^b.jsonl: {re.escape(said)}"):
        stage(batch)


def test_a_stage_whose_options_cannot_run_says_so_at_its_first_batch_or_before(raydata, tiny_model, cli, tmp_path):
    """Raised in an actor's constructor, the error killed it; Ray started it again, it died again, and the run
    ended in a hundred lines of traceback (exit 1) for a max length that leaves no room."""
    stage = raydata.ScoreStage(str(tiny_model), max_length=20)  # its Reranker refused: said where it runs
    with pytest.raises(InputError, match="^max_length 20 leaves no room: the prompt frame alone takes 48 tokens"):
        stage(pyarrow.table({"query": ["q"], "document": ["d"]}))
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:3])
    (tmp_path / "made").mkdir()  # a folder of the user's, empty: kept, and as empty as it was
    for out in ("out/a/b", "made"):
        result = cli("score", path, "--ray", "-o", str(tmp_path / out), "--max-length", "20", model=tiny_model)
        said = "error: --max-length 20 leaves no room: the prompt frame alone takes 48 tokens"
        assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, said)
    # stopped at the first batch: the folders it made for the shards are taken back with its record and lock
    assert not (tmp_path / "out").exists() and list((tmp_path / "made").iterdir()) == []
    items = ray.data.from_items([{"query": "q", "document": "d"}])
    with pytest.raises(TypeError, match="^got an unexpected keyword argument 'max_lenght': the options are "
                                        "Reranker's \\(device, dtype, "):  # fmt: skip
        raydata.score(items, str(tiny_model), workers=1, max_lenght=100)
    # an instruction column named is one to read: a typo scored every row with the default instruction
    with pytest.raises(InputError, match='^the input has no "task" column \\(it has query, document\\)'):
        raydata.score(items, str(tiny_model), workers=1, instruction_column="task")
    with pytest.raises(InputError, match='^the input has no "task" column'):
        raydata.ScoreStage("fake", instruction_column="task")(pyarrow.table({"query": ["q"], "document": ["d"]}))
    # a run's stage alike: its Reranker's error at its first batch, an option it does not take before any actor
    stage = raydata.RerankStage(str(tiny_model), max_length=20)
    batch = {"qid": numpy.array(["q1"]), "query": numpy.array(["q"]), "docids": numpy.array([["d"]], dtype=object),
             "texts": numpy.array([["text"]], dtype=object)}  # fmt: skip
    with pytest.raises(InputError, match="^max_length 20 leaves no room"):
        stage(batch)
    from qrr import pipelines

    inputs = pipelines.RunInputs({"q1": {"d": 1.0}}, [pipelines.Job("q1", "q", ("d",))], {"d": "text"})
    with pytest.raises(TypeError, match="^got an unexpected keyword argument 'score_column': the options are "
                                        "Reranker's \\(device, [^)]*\\)$"):  # fmt: skip
        next(raydata.rerank(inputs, str(tiny_model), workers=1, score_column="x"))
    with pytest.raises(TypeError, match='^ScoreStage takes batches as pyarrow tables, not dict: give '
                                        'map_batches\\(ScoreStage, batch_format="pyarrow", '):  # fmt: skip
        raydata.ScoreStage("fake")({"query": numpy.array(["q"]), "document": numpy.array(["d"])})
    with pytest.raises(InputError, match="^model must be a model name, hub repo id or folder, not int$"):
        raydata.score(items, 5, workers=1)  # it failed in the actors
    with pytest.raises(InputError, match="^workers must be at least 1, not 0$"):  # it ran one actor
        raydata.score(items, str(tiny_model), workers=0)


def test_the_python_api_checks_at_the_call(raydata, tiny_model, tmp_path):
    """From a tour of qrr.raydata in a pipeline of one's own."""
    from qrr import pipelines
    from qrr.errors import ModelNameError

    items = ray.data.from_items([{"query": "q", "document": "d"}])
    scored = raydata.score(items, str(tiny_model), workers=1)
    # a stage's error comes as its own class, which except InputError catches (Ray's UDF error said nothing of it)
    with pytest.raises(InputError, match='a row\'s "query" must be a string, not null'):
        raydata.score(ray.data.from_items([{"query": None, "document": "d"}]), str(tiny_model), workers=1).take_all()
    # Ray's names for where the actors go: said in score's own words
    with pytest.raises(TypeError, match=r"; where the actors go: workers=N, gpus_per_worker=G$"):
        raydata.score(items, str(tiny_model), concurrency=2, num_gpus=0)
    with pytest.raises(TypeError, match=r"; where the actors go: placement=Placement\(\.\.\.\)$"):
        raydata.score(items, str(tiny_model), compute=None)
    # a model that is not there: at the call, not at the first next() of the generator it returned
    inputs = pipelines.RunInputs({"q1": {"d": 1.0}}, [pipelines.Job("q1", "q", ("d",))], {"d": "text"})
    with pytest.raises(ModelNameError, match="no such folder"):
        raydata.rerank(inputs, str(tmp_path / "nowhere"), workers=1)
    # a format write does not write: refused (csv wrote JSON lines)
    for call in (
        lambda: raydata.write(scored, str(tmp_path / "out"), "csv"),
        lambda: raydata.rows_at(str(tmp_path), "csv"),
        lambda: raydata.done_records(str(tmp_path), "csv"),
    ):
        with pytest.raises(InputError, match="^fmt 'csv': shards are parquet or jsonl$"):
            call()
    assert type(raydata.write(scored, str(tmp_path / "lines"), "jsonl")) is int  # was numpy's int64


def test_inputs_that_cannot_be_read_are_one_line_before_ray_starts(cli, tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    (tmp_path / "cut.jsonl.gz").write_bytes(b"not gzip at all")
    for source, said in (("empty", "no files to read (names that start with . or _ are left out)"),
                         ("cut.jsonl.gz", "cannot read (")):  # fmt: skip
        result = cli("score", str(tmp_path / source), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {tmp_path / source}: {said}"), result.stderr
        assert not (tmp_path / "out").exists()


def test_cpu_actors_that_would_take_every_cpu_of_a_cluster(raydata):
    """With --ray-address, each CPU actor reserves one CPU: as many actors as the cluster's CPUs left none to the
    read tasks, and the run waited forever, printing only Ray's progress."""
    from qrr.errors import InputError

    with pytest.raises(InputError, match="^workers 4: each CPU actor takes one of the Ray cluster's 4 CPUs, and the "
                                         "input's read tasks need one left; give at most 3$"):  # fmt: skip
        raydata.Placement(4, local=False)
    assert raydata.Placement(3, local=False).cpus == 1


def test_a_run_record_names_a_model_however_it_was_given(raydata, tiny_model, monkeypatch):
    monkeypatch.chdir(tiny_model.parent)
    assert models.model_key(tiny_model.name) == models.model_key(str(tiny_model)) == str(tiny_model)
    assert models.model_key("0.6b") == models.model_key("Qwen/Qwen3-Reranker-0.6B") == "Qwen/Qwen3-Reranker-0.6B"
