#!/bin/sh
# Start, or resume after a crash / kill -9, the cross-task SK-Tuning study (xtask_study.py) in the background on one
# core. Progress: runs/xtask/progress.log (a line every 30 s); driver output: runs/xtask/driver.out.
#   benchmarks/effect/xtask_run.sh            # the study (rerun to resume; refused while one is running)
#   benchmarks/effect/xtask_run.sh --only summary
cd "$(dirname "$0")/../.." || exit 1
PY=${PY:-$PWD/.venv/bin/python}  # the checkout's venv (make setup); or PY=... for another
mkdir -p runs/xtask
PYTHONPATH="$PWD" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
SELFALIGN_DATA=${SELFALIGN_DATA:-$PWD/../shared/data} \
  setsid nohup "$PY" benchmarks/effect/xtask_study.py "$@" >> runs/xtask/driver.out 2>&1 < /dev/null &
echo "started pid $!; progress: tail -f $PWD/runs/xtask/progress.log"
