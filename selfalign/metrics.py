"""Confidence metrics. Thin wrappers over scikit-learn where it has them."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels``; None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels)
    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))
