#!/usr/bin/env bash
# Several qrr processes at once on one machine's CPUs: N `qrr rank` at once with torch's threads as they come, N at
# once with OMP_NUM_THREADS=1 each, and N one after another; prints each way's wall time for the N.
#   bash benchmarks/parallel_runs.sh MODEL_DIR DOCS.jsonl [N=3]
set -euo pipefail
model=${1:?usage: parallel_runs.sh MODEL_DIR DOCS.jsonl [N]} docs=${2:?usage: parallel_runs.sh MODEL_DIR DOCS.jsonl [N]}
n=${3:-3}
one() { qrr rank -m "$model" -q "gravity" "$docs" -f jsonl > /dev/null; }
timed() {  # label, then the command that runs the N
  local start end
  start=$(date +%s.%N)
  "${@:2}"
  end=$(date +%s.%N)
  printf '%-48s %7.1f s\n' "$1" "$(echo "$end - $start" | bc)"
}
at_once() { for _ in $(seq "$n"); do one & done; wait; }
at_once_one_thread() { for _ in $(seq "$n"); do OMP_NUM_THREADS=1 one & done; wait; }
in_turn() { for _ in $(seq "$n"); do one; done; }
echo "$n runs of qrr rank, $(wc -l < "$docs") documents each; $(nproc) CPUs"
timed "at once, torch's threads as they come" at_once
timed "at once, OMP_NUM_THREADS=1 each" at_once_one_thread
timed "one after another" in_turn
