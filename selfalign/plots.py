"""Figures, drawn off-screen (matplotlib's Agg canvas; no display and no global pyplot state)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from selfalign.metrics import ece, reliability_bins


def reliability_diagram(labels: Sequence[int], probs: Sequence[float], path: str | os.PathLike, title: str,
                        n_bins: int = 10) -> Path:
    """Save a reliability diagram as PNG: accuracy per equal-width bin vs the diagonal, and a count histogram."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bins = reliability_bins(labels, probs, n_bins)
    width = 1.0 / n_bins
    lefts = [b["lo"] for b in bins]
    fig = Figure(figsize=(5, 6), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(lefts, [b["accuracy"] or 0.0 for b in bins], width=width, align="edge", edgecolor="black",
            color="tab:blue", label="accuracy")
    top.bar(lefts, [(b["confidence"] - b["accuracy"]) if b["count"] else 0.0 for b in bins], width=width,
            bottom=[b["accuracy"] or 0.0 for b in bins], align="edge", color="tab:red", alpha=0.3, label="gap")
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("fraction true")
    top.set_title(f"{title}\nECE = {ece(labels, probs, n_bins):.3f} ({n_bins} equal-width bins)")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(lefts, [b["count"] for b in bins], width=width, align="edge", edgecolor="black", color="gray")
    bottom.set_xlabel("P(True)")
    bottom.set_ylabel("count")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
