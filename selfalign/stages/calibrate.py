"""Moved to ``selfalign.evals.calibrate`` (calibrate is an evaluation). This name stays only so that scripts
started before the move (benchmarks/effect/skt_study.py imports ``output_paths`` lazily) keep running; new code
imports ``selfalign.evals.calibrate``. Remove it once no such script runs."""
from selfalign.evals.calibrate import CalibrateConfig, output_paths, run_calibrate  # noqa: F401
