"""Evaluations: each writes per-item rows (JSONL) and a summary JSON (see ``evals.results``).

Each task is declared once in ``selfalign.registry`` (``group="eval"``): ``selfalign eval <task>`` and a recipe's
``eval.tasks`` both read it there. Modules are imported only when a task is used.
"""
