"""Errors speak of parameters; front ends name them their own way."""

from __future__ import annotations

from qrr.errors import InputError, Interrupted, QrrError


def test_naming_replaces_whole_parameter_names_only():
    error = InputError("max_length 80 leaves 32 for the query; raise max_length (max_lengths stay)", "max_length")
    assert str(error) == "max_length 80 leaves 32 for the query; raise max_length (max_lengths stay)"
    assert error.naming({"max_length": "--max-length"}) == (
        "--max-length 80 leaves 32 for the query; raise --max-length (max_lengths stay)"
    )
    assert (
        error.naming(lambda p: p.upper())
        == "MAX_LENGTH 80 leaves 32 for the query; raise MAX_LENGTH (max_lengths stay)"
    )
    assert error.naming({}) == str(error)  # a name the front end does not map stays as it is


def test_several_parameters_and_none():
    error = InputError("output x.trec holds a trec run, not fmt jsonl", "output", "fmt")
    assert (
        error.naming({"output": "--resume", "fmt": "--format"})
        == "--resume x.trec holds a trec run, not --format jsonl"
    )
    assert QrrError("no parameter here: fmt").naming({"fmt": "--format"}) == "no parameter here: fmt"


def test_exit_codes_and_interrupted_counts():
    assert (QrrError("x").exit_code, InputError("x").exit_code, Interrupted("x").exit_code) == (1, 2, 130)
    stopped = Interrupted("interrupted after 2 of 5 queries", 2, 5, "out.trec")
    assert (stopped.done, stopped.total, stopped.path) == (2, 5, "out.trec")
