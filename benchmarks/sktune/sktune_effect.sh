#!/usr/bin/env bash
# SK-Tuning before/after on the embedded model (issue 3's results file). Resumable: every stage skips finished work.
# Usage: bash benchmarks/sktune/sktune_effect.sh [WORKDIR]   (default runs/sktune; ~30-40 min on 2 CPU cores)
set -euo pipefail
W=${1:-runs/sktune}
SA=${SA:-.venv/bin/selfalign}
mkdir -p "$W"
# 1. data: all top-level BIG-bench tasks + TruthfulQA MC train split; two knowledge tasks held out entirely;
#    20% of the other tasks' questions held out (by hash); <=200 questions per task; classes balanced.
$SA sk-data --sources bigbench:all truthfulqa-mc --heldout-tasks general_knowledge human_organs_senses \
  --max-per-task 200 --output "$W/sk.jsonl"
# 2. a validation split (10% of training questions, by hash) for checkpoint choice
.venv/bin/python - "$W" <<'PY'
import json, sys, zlib
w = sys.argv[1]
with open(f"{w}/sk.jsonl") as f, open(f"{w}/train.jsonl", "w") as tr, open(f"{w}/valid.jsonl", "w") as va:
    for line in f:
        r = json.loads(line)
        (va if zlib.crc32(f"{r['task']}/{r['id']}".encode()) % 10 == 0 else tr).write(line)
PY
# 3. SK-Tuning (LoRA r=8, beta 0.1)
$SA sk-tune --data "$W/train.jsonl" --valid-data "$W/valid.jsonl" --output "$W/judge" --learning-rate 5e-4 \
  --max-steps 250 --eval-every 50 --batch-size 8
# 4. calibration before/after on (a) held-out questions, (b) held-out tasks, (c) TruthfulQA MC test (first 60 questions)
for m in base judge; do
  model=smollm2-135m; [ "$m" = judge ] && model="$W/judge"
  $SA calibrate --model "$model" --data "sk:$W/sk.heldout.jsonl" --output "$W/$m.heldout.json" --n-boot 500
  $SA calibrate --model "$model" --data "sk:$W/sk.heldout_tasks.jsonl" --output "$W/$m.heldout_tasks.json" --n-boot 500
  $SA calibrate --model "$model" --data truthfulqa-mc --split test --limit 60 --output "$W/$m.tqa.json" --n-boot 500
done
.venv/bin/python benchmarks/sktune/sktune_summary.py "$W" benchmarks/results/sktune_smollm2.md
