#!/usr/bin/env bash
# Several qrr processes at once on one machine's CPUs: N `qrr rank` at once with torch's threads as they come, N at
# once with OMP_NUM_THREADS=1 each, and N one after another; prints each way's wall time for the N.
#   bash benchmarks/parallel_runs.sh MODEL_DIR DOCS.jsonl [N=3]
set -euo pipefail
usage="usage: parallel_runs.sh MODEL_DIR DOCS.jsonl [N]"
model=${1:?$usage} docs=${2:?$usage} n=${3:-3}
one() { qrr rank -m "$model" -q "gravity" "$docs" -f jsonl > /dev/null; }
all() {  # wait for each, so that a run that failed (out of memory, say) fails the benchmark, not just ends early
  local pids=() pid
  for _ in $(seq "$n"); do "$@" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
}
at_once() { all one; }
at_once_one_thread() { OMP_NUM_THREADS=1 all one; }  # exported to the runs it starts
in_turn() { for _ in $(seq "$n"); do one; done; }
timed() {  # label, then the command that runs the N
  local start=$EPOCHREALTIME
  "${@:2}"
  awk -v a="$start" -v b="$EPOCHREALTIME" -v label="$1" 'BEGIN { printf "%-48s %7.1f s\n", label, b - a }'
}
echo "$n runs of qrr rank, $(wc -l < "$docs") documents each; $(nproc) CPUs"
timed "at once, torch's threads as they come" at_once
timed "at once, OMP_NUM_THREADS=1 each" at_once_one_thread
timed "one after another" in_turn
