"""What every front end runs: score a stream of pairs, rank documents for a query, rerank a first-stage run (and
go on with an interrupted one). Each returns its results with its own ``Stats``; none prints or renders (but for a
tqdm bar where ``show_progress_bar`` asks): progress and messages go to the callbacks a front end passes.

Reranking a run from Python::

    from qrr import Reranker, pipelines

    inputs = pipelines.read_run_inputs("bm25.trec", "scifact/queries.jsonl", "scifact/corpus.jsonl", depth=100)
    # TREC, tag "qrr" ("qrr.jsonl" for JSON lines); where qrr.trec exists, the queries it
    # completes are skipped and an unfinished one cut off: the same call again goes on after an interruption
    done = pipelines.rerank_run(Reranker("0.6b"), inputs, "qrr.trec")
    print(done.stats)

Scoring pairs into a file, going on where an interrupted run stopped::

    from qrr import Reranker, formats, pipelines

    output = pipelines.ScoresOutput.checked("scores.jsonl")
    pipelines.score_run(Reranker("0.6b"), formats.read_pairs("pairs.jsonl"), output)

The package's modules: ``streams`` (score a stream of pairs, rank a query), ``scores`` (a stream scored into a file
that a run goes on with), ``runs`` (rerank a first-stage run) and ``files`` (the outputs' locks and kept settings,
which both kinds of file share); every public name is here.
"""

# every name as before the split; __all__ (what help shows, and import *) is the API, the rest what the front
# ends share
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
    check_scorer,
    check_sink,
    no_room,
    rank_records,
    score_records,
)

# the API: the four tasks first, then what they take and give, then the steps they are made of
__all__ = [
    "score_records", "score_run", "rank_records", "rerank_run", "read_run_inputs",
    "RunInputs", "Job", "RunOutput", "ScoresOutput", "ScoredChunk", "ScoredRun", "Reranked", "DEFAULT_DEPTH",
    "Missing", "OutputBusy",
    "top", "plan", "with_rest", "ranked", "rerank_jobs", "write_reranked", "resume_point", "check_written", "no_room",
    "call_room",
]  # fmt: skip
