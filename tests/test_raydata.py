"""qrr as a Ray Data stage, on a local Ray instance the tests start (2 cores, more logical CPUs so the read tasks
run beside two actors): scores, pass-through columns, a killed actor, bad rows, empty input, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pyarrow
import pyarrow.parquet
import pytest

from qrr import Reranker

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


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


def test_two_actors_score_as_one_process_with_every_column_passed_through(raydata, tiny_model, tmp_path, expected):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    dataset = raydata.score(raydata.read_pairs(path), str(tiny_model), workers=2, threads=1, device="cpu",
                            dtype="fp32")  # fmt: skip
    rows = dataset.take_all()
    close_by_id(rows, expected)
    assert {r["id"]: (r["extra"], r["tag"]) for r in rows} == {p["id"]: (p["extra"], p["tag"]) for p in PAIRS}
    assert set(rows[0]) == {"id", "query", "document", "instruction", "extra", "tag", "score"}


def test_parquet_with_an_instruction_column(raydata, tiny_model, tmp_path, reranker):
    rows = [{"id": n, "query": f"q{n % 3}", "document": f"doc {n}", "instruction": None if n % 2 else "Judge"}
            for n in range(200)]  # fmt: skip
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    scored = raydata.score(raydata.read_pairs(str(tmp_path / "pairs.parquet")), str(tiny_model), workers=1,
                           device="cpu", dtype="fp32").take_all()  # fmt: skip
    want = reranker.score([(r["query"], r["document"], r["instruction"]) for r in rows])
    close_by_id(scored, {r["id"]: s for r, s in zip(rows, want, strict=True)})
    assert "_qrr_source" not in scored[0]


def test_a_killed_actor_is_replaced_and_every_row_comes_out_once(raydata, tmp_path):
    from qrr.testing import FakeModel
    from tests.tiny import tokenizer_files

    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    model = FakeModel(str(tokenizer_files()), delay=0.02)  # slow enough to be caught mid-run
    dataset = raydata.score(raydata.read_pairs(path), model, workers=2, threads=1, batch_size=100)
    out = tmp_path / "out"
    failure = []
    writer = threading.Thread(target=lambda: _run(failure, dataset.write_parquet, str(out)))
    writer.start()
    victim = _wait_for_actor(lambda: any(out.glob("*.parquet")) if out.exists() else False)
    os.kill(victim, signal.SIGKILL)
    writer.join(300)
    assert not failure, failure
    rows = pyarrow.parquet.read_table(out).to_pylist()
    assert sorted(r["id"] for r in rows) == list(range(len(PAIRS)))  # every row, exactly once
    fake = Reranker(FakeModel(str(tokenizer_files())))
    want = fake.score([(p["query"], p["document"]) for p in PAIRS])
    close_by_id(rows, {p["id"]: s for p, s in zip(PAIRS, want, strict=True)})


def _run(failure: list, function, *args) -> None:
    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001  (reported by the test)
        failure.append(exc)


def _wait_for_actor(started, timeout: float = 120) -> int:
    """The pid of a live scoring actor (Ray names its process after the stage), once the run has written its
    first shard."""
    from pathlib import Path

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        actors = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and b"ScoreStage" in (proc / "cmdline").read_bytes():
                    actors.append(int(proc.name))
            except OSError:
                continue
        if len(actors) >= 2 and started():
            return actors[0]
        time.sleep(0.05)
    raise AssertionError("the actors never started scoring")


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
    assert count == 2 and messages[1] == f'{path}:7: missing field "document"'


def test_an_empty_input(raydata, tiny_model, tmp_path, cli):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert raydata.score(raydata.read_pairs(str(path)), str(tiny_model), workers=1, device="cpu").take_all() == []
    result = cli("score", str(path), "--ray", "-o", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith("scored 0 pairs in ")


# -------------------------------------------------------------------------------------------------------- CLI


def test_qrr_score_on_ray_writes_what_qrr_score_prints(cli, tiny_model, tmp_path, expected):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    result = cli("score", path, "--ray", "--workers", "2", "--output", str(tmp_path / "out"), model=tiny_model)
    assert result.exit_code == 0, result.output
    rows = pyarrow.parquet.read_table(tmp_path / "out").to_pylist()
    close_by_id(rows, expected)
    assert result.stderr.splitlines()[-1].startswith("scored 3,000 pairs in ")
    assert result.stderr.splitlines()[-1].endswith(f"on 2 CPU actor(s); wrote {tmp_path / 'out'}")
    result = cli("score", path, "--ray", "-o", str(tmp_path / "lines"), "--output-format", "jsonl", model=tiny_model)
    lines = [json.loads(x) for f in sorted((tmp_path / "lines").iterdir()) for x in f.read_text().splitlines()]
    close_by_id(lines, expected)


def test_qrr_score_on_ray_bad_lines_and_usage(cli, tiny_model, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:5])
    with open(path, "a") as handle:
        handle.write("{oops\n")
    failed = cli("score", path, "--ray", "-o", str(tmp_path / "a"), model=tiny_model)
    assert failed.exit_code == 2, failed.output
    assert failed.stderr.strip().splitlines()[-1].startswith(f"error: {path}:6: malformed JSON")
    skipped = cli("score", path, "--ray", "-o", str(tmp_path / "b"), "--on-error", "skip", model=tiny_model)
    assert skipped.exit_code == 0, skipped.output
    assert f"skipped 1 bad line(s):\n  {path}:6: malformed JSON" in skipped.stderr
    assert len(pyarrow.parquet.read_table(tmp_path / "b").to_pylist()) == 5
    for args, message in (((path, "--ray"), "--ray needs --output DIR, the folder for the result shards"),
                          ((path, "--ray", "-o", str(tmp_path / "b")),
                           f"--output {tmp_path / 'b'}: the folder holds files already; give a new or empty one"),
                          (("--ray", "-o", "x"), "--ray reads FILEs or folders (local or remote), not stdin"),
                          ((path, "--workers", "2"), "--workers: only with --ray"),
                          ((path, "-o", "x"), "--output: only with --ray")):  # fmt: skip
        result = cli("score", *args, model=tiny_model)
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")


def test_qrr_rerank_on_ray_writes_the_same_run(cli, tiny_model, beir_dir, tmp_path):
    args = [str(beir_dir / "bm25.trec"), "--beir", str(beir_dir), "--depth", "5"]
    plain = cli("rerank", *args, model=tiny_model)
    on_ray = cli("rerank", *args, "--ray", "--workers", "2", "--resume", str(tmp_path / "out.trec"), model=tiny_model)
    assert on_ray.exit_code == 0, on_ray.output
    assert "reranked 5 queries (25 pairs) in " in on_ray.stderr
    got = [line.split() for line in (tmp_path / "out.trec").read_text().splitlines()]
    want = [line.split() for line in plain.stdout.splitlines()]
    assert [g[:4] for g in got] == [w[:4] for w in want]  # the same queries, documents and ranks, in order
    assert max(abs(float(g[4]) - float(w[4])) for g, w in zip(got, want, strict=True)) <= 1e-6
