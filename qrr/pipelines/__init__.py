"""What every front end runs: score a stream of pairs, rank documents for a query, rerank a first-stage run (and
go on with an interrupted one). Each returns its results with its own ``Stats``; none prints or renders: progress
and messages go to the callbacks a front end passes.

Reranking a run from Python::

    from qrr import Reranker, pipelines

    inputs = pipelines.read_run_inputs("bm25.trec", "scifact/queries.jsonl", "scifact/corpus.jsonl", depth=100)
    output = pipelines.RunOutput.checked("qrr.trec")  # TREC, tag "qrr"
    output.prepare(inputs)  # where qrr.trec exists: skip the queries it completes
    done = pipelines.rerank_run(Reranker("0.6b"), inputs, output)
    print(done.stats)

Scoring pairs into a file, going on where an interrupted run stopped::

    from qrr import Reranker, formats, pipelines

    output = pipelines.ScoresOutput.checked("scores.jsonl")
    pipelines.score_run(Reranker("0.6b"), formats.read_pairs("pairs.jsonl"), output)

The package's modules: ``streams`` (score a stream of pairs, rank a query), ``scores`` (a stream scored into a file
that a run goes on with), ``runs`` (rerank a first-stage run) and ``files`` (the outputs' locks and kept settings,
which both kinds of file share); every public name is here.
"""

from qrr.errors import Missing, OutputBusy  # raised here, named here too
from qrr.pipelines.files import (
    RESCORED_TOLERANCE,
    SAYS_WHAT_TO_DO,
    SETTINGS_FILE,
    UNSAID,
    check_appendable,
    check_not_input,
    claim,
    file_size,
    locked,
    open_exclusive,
    settings_path,
    shown,
)
from qrr.pipelines.runs import (
    DEFAULT_DEPTH,
    Job,
    Reranked,
    RunInputs,
    RunOutput,
    Written,
    check_written,
    plan,
    ranked,
    read_run_inputs,
    rerank_jobs,
    rerank_run,
    resume_point,
    top,
    with_rest,
    write_reranked,
    written_results,
)
from qrr.pipelines.scores import GAPS_CHECKED, ScoredRun, ScoresOutput, score_run
from qrr.pipelines.streams import (
    CALL_BATCHES,
    READER,
    ScoredChunk,
    call_room,
    check_sink,
    no_room,
    rank_records,
    score_records,
)

__all__ = [
    "CALL_BATCHES",
    "DEFAULT_DEPTH",
    "GAPS_CHECKED",
    "Job",
    "Missing",
    "OutputBusy",
    "READER",
    "RESCORED_TOLERANCE",
    "Reranked",
    "RunInputs",
    "RunOutput",
    "SAYS_WHAT_TO_DO",
    "SETTINGS_FILE",
    "ScoredChunk",
    "ScoredRun",
    "ScoresOutput",
    "UNSAID",
    "Written",
    "call_room",
    "check_appendable",
    "check_not_input",
    "check_sink",
    "check_written",
    "claim",
    "file_size",
    "locked",
    "no_room",
    "open_exclusive",
    "plan",
    "rank_records",
    "ranked",
    "read_run_inputs",
    "rerank_jobs",
    "rerank_run",
    "resume_point",
    "score_records",
    "score_run",
    "settings_path",
    "shown",
    "top",
    "with_rest",
    "write_reranked",
    "written_results",
]
