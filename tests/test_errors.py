"""Errors speak of parameters; front ends name them their own way."""

from __future__ import annotations

import pytest

from qrr.errors import (
    InputError,
    Interrupted,
    ModelCheckError,
    ModelNameError,
    ModelNotFoundError,
    NotAModelError,
    PairError,
    QrrError,
)


def test_naming_replaces_the_marked_names_only():
    error = InputError("{max_length} 80 leaves 32 for the query; raise {max_length} (max_length stays)", "max_length")
    assert str(error) == "max_length 80 leaves 32 for the query; raise max_length (max_length stays)"
    assert error.naming({"max_length": "--max-length"}) == (
        "--max-length 80 leaves 32 for the query; raise --max-length (max_length stays)"
    )
    assert (
        error.naming(lambda p: p.upper())
        == "MAX_LENGTH 80 leaves 32 for the query; raise MAX_LENGTH (max_length stays)"
    )
    assert error.naming({}) == str(error)  # a name the front end does not map is said as it is


def test_values_that_hold_a_parameters_name_stay_as_they_are():
    error = InputError("{model} ./models/model: no such folder", "model")
    assert error.naming({"model": "--model"}) == "--model ./models/model: no such folder"
    error = InputError("{output} /data/output/x.trec: the file holds a trec run, not {fmt} jsonl", "output", "fmt")
    assert error.naming({"output": "--resume", "fmt": "--format"}) == (
        "--resume /data/output/x.trec: the file holds a trec run, not --format jsonl"
    )
    assert QrrError("no parameter here: fmt").naming({"fmt": "--format"}) == "no parameter here: fmt"


def test_a_pair_error_shifts_and_survives_pickling():
    import pickle

    error = PairError(7, "{max_length} 100 is too small", "max_length")
    assert str(error) == "pair 7: max_length 100 is too small" and error.exit_code == 2
    again = pickle.loads(pickle.dumps(error.shifted(40)))  # as Ray hands an actor's error back
    assert (type(again), again.pair, again.naming({"max_length": "--max-length"})) == (
        PairError,
        47,
        "pair 47: --max-length 100 is too small",
    )


def test_exit_codes_and_interrupted_counts():
    assert (QrrError("x").exit_code, InputError("x").exit_code, Interrupted("x").exit_code) == (1, 2, 130)
    # bad input is a ValueError too, as CrossEncoder's are: an application's except (ValueError, TypeError) took none
    assert isinstance(InputError("x"), ValueError) and not isinstance(QrrError("x"), ValueError)
    # a model that is not there, or not whole, is a runtime error; a name that names nothing, or a folder that holds
    # no Qwen3-Reranker, is bad input
    codes = [e("x").exit_code for e in (ModelNotFoundError, ModelCheckError, ModelNameError, NotAModelError)]
    assert codes == [1, 1, 2, 2]
    assert isinstance(ModelNameError("x"), ModelNotFoundError)
    stopped = Interrupted("interrupted after 2 of 5 queries", 2, 5, "out.trec")
    assert (stopped.done, stopped.total, stopped.path) == (2, 5, "out.trec")
    assert (stopped.how, stopped.exit_code) == ("interrupted", 130)
    terminated = Interrupted("terminated after 2 of 5 queries", 2, 5, "out.trec", terminated=True)
    assert (terminated.how, terminated.exit_code, Interrupted("x").exit_code) == ("terminated", 143, 130)
    # a KeyboardInterrupt, not an Exception: a loop that goes on past `except Exception` still stops on Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        try:
            raise stopped
        except Exception:  # noqa: BLE001
            pass
    assert not isinstance(stopped, QrrError) and str(stopped) == "interrupted after 2 of 5 queries"


def test_an_error_pickles_with_its_parameter_marks():
    import pickle

    from qrr.errors import ModelNameError

    for error in (InputError("x.jsonl:3: {max_length} 100 is too small", "max_length"),
                  ModelNameError("{model} is empty", "model")):  # fmt: skip
        again = pickle.loads(pickle.dumps(error))  # as Ray hands an actor's error back: a front end names its flags
        assert type(again) is type(error) and again.params == error.params
        assert again.naming(lambda p: "--" + p.replace("_", "-")) == error.naming(lambda p: "--" + p.replace("_", "-"))
        assert "--" in again.naming(lambda p: "--" + p.replace("_", "-"))


def test_every_error_pickles_whole_so_a_worker_process_hands_it_back():
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from qrr.errors import Missing, PairError, Stopped

    stopped = Stopped(InputError("{top_k} is bad", "top_k"), 3, 10, "out.trec")
    errors = [stopped, Missing("query q7 is not in queries.jsonl", "query"), PairError(4, "empty query"),
              Interrupted("terminated after 2 of 5 queries", 2, 5, "out.trec", terminated=True)]  # fmt: skip
    for error in errors:
        again = pickle.loads(pickle.dumps(error))
        assert (type(again), str(again), vars(again).keys()) == (type(error), str(error), vars(error).keys())
    again = pickle.loads(pickle.dumps(stopped))
    assert (again.done, again.total, again.path, again.exit_code, type(again.cause)) == (3, 10, "out.trec", 2,
                                                                                        InputError)  # fmt: skip
    assert again.naming({"top_k": "--top-k"}).startswith("--top-k is bad; 3 of 10 queries are in out.trec")
    assert pickle.loads(pickle.dumps(errors[1])).kind == "query"
    assert pickle.loads(pickle.dumps(errors[3])).exit_code == 143
    cycle = Interrupted("interrupted after 1 of 2 queries", 1, 2)
    cycle.partial = {"me": cycle}  # a cycle through its attributes: they were lost, unsaid
    again = pickle.loads(pickle.dumps(cycle))
    assert (again.done, again.partial["me"] is again, str(again)) == (1, True, "interrupted after 1 of 2 queries")
    # a process pool hands a worker's error back pickled: it broke the pool (Stopped's __init__ called again)
    with ProcessPoolExecutor(1) as pool, pytest.raises(Stopped) as raised:
        pool.submit(_raise, stopped).result(60)
    assert raised.value.path == "out.trec"


def _raise(error):
    raise error
