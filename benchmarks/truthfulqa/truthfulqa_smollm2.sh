#!/usr/bin/env bash
# The embedded model's TruthfulQA numbers (issue 5): MC1 / MC2 / Self-Eval selection on all 817 questions (the
# test-split numbers are the 730 test rows of the same run) and generation on the 730 test questions (offline judge).
# Usage: bash benchmarks/truthfulqa/truthfulqa_smollm2.sh [WORKDIR]   (default runs/tqa-smollm2; resumable: rerun to continue)
# Writes benchmarks/results/truthfulqa_smollm2.{md,json}. THREADS=1 (default) leaves the other core to other work.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/tqa-smollm2}
SA=${SA:-.venv/bin/selfalign}
export OMP_NUM_THREADS=${THREADS:-1} OMP_WAIT_POLICY=PASSIVE
mkdir -p "$W"
t0=$(date +%s)
$SA eval truthfulqa-mc --model smollm2-135m --split all --output "$W/mc_all.json"
t1=$(date +%s)
$SA eval truthfulqa-gen --model smollm2-135m --split test --output "$W/gen_test.json"
t2=$(date +%s)
.venv/bin/python benchmarks/truthfulqa/truthfulqa_summary.py "$W" --mc-seconds $((t1 - t0)) --gen-seconds $((t2 - t1)) \
  --threads "$OMP_NUM_THREADS"
