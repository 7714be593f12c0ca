"""Confidence metrics and bootstrap intervals. Thin wrappers over scikit-learn where it has them."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels``; None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels)
    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))


def brier(labels: Sequence[int], probs: Sequence[float]) -> float:
    """Mean squared error between P(label = 1) and the 0/1 label (scikit-learn's brier_score_loss)."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(np.asarray(labels, dtype=int), np.asarray(probs, dtype=float), labels=[0, 1]))


ECE_BINNING = ("equal-width bins over [0, 1]; bin k holds k/n <= p < (k+1)/n, the last bin also holds p = 1; "
               "ECE = sum_b |B_b|/N * |accuracy_b - confidence_b|")


def _bin_index(probs: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.floor(probs * n_bins).astype(int), 0, n_bins - 1)


def reliability_bins(labels: Sequence[int], probs: Sequence[float], n_bins: int = 10) -> list[dict]:
    """Per bin (see ECE_BINNING): bounds, count, mean confidence and accuracy (None for an empty bin)."""
    y, p = np.asarray(labels, dtype=float), np.asarray(probs, dtype=float)
    idx = _bin_index(p, n_bins)
    out = []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": n,
                    "confidence": float(p[m].mean()) if n else None, "accuracy": float(y[m].mean()) if n else None})
    return out


def ece(labels: Sequence[int], probs: Sequence[float], n_bins: int = 10) -> float:
    """Expected calibration error of P(label = 1).

    Equal-width bins over [0, 1]: bin k holds k/n <= p < (k+1)/n and the last bin also holds p = 1.
    ECE = sum over bins of |B|/N * |mean label in B - mean prob in B|; empty bins contribute 0.
    """
    bins = reliability_bins(labels, probs, n_bins)
    n = sum(b["count"] for b in bins)
    if n == 0:
        raise ValueError("ece of an empty set")
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def selection_correct(groups: Sequence[Sequence[tuple[float, int]]]) -> np.ndarray:
    """Per question (a list of (score, is_correct) options): 1.0 if the top-scored option is correct.

    Ties go to the first option with the top score.
    """
    out = np.empty(len(groups))
    for i, g in enumerate(groups):
        if not len(g):
            raise ValueError(f"question {i} has no options")
        scores = np.asarray([s for s, _ in g], dtype=float)
        out[i] = float(bool(g[int(np.argmax(scores))][1]))
    return out


def selection_accuracy(groups: Sequence[Sequence[tuple[float, int]]]) -> float:
    """Fraction of questions whose top-scored option is correct (ties: the first)."""
    return float(selection_correct(groups).mean())


# --- bootstrap ------------------------------------------------------------------------------------------
def _resamples(n: int, groups, n_boot: int, seed: int):
    """Yield ``n_boot`` index arrays: rows drawn with replacement, or whole groups when ``groups`` is given."""
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_boot):
            yield rng.integers(0, n, n)
        return
    g = np.asarray(groups)
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} entries for {n} rows")
    _, codes = np.unique(g, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(codes))[:-1])
    for _ in range(n_boot):
        yield np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])


def _arrays(arrays) -> tuple[list[np.ndarray], int]:
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ValueError("arrays of different lengths")
    return arrs, n


def bootstrap_ci(metric_fn: Callable[..., float | None], *arrays, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05, groups: Sequence | None = None) -> tuple:
    """(point, low, high): the metric and its percentile bootstrap interval at level 1 - alpha.

    Rows of ``arrays`` are resampled jointly; with ``groups`` (one key per row), whole groups are resampled
    (e.g. all options of a question). Resamples where the metric is None (e.g. AUROC of one class) are
    dropped; low/high are None when none is left or ``n_boot`` is 0.
    """
    arrs, n = _arrays(arrays)
    point = metric_fn(*arrs)
    vals = [metric_fn(*(a[idx] for a in arrs)) for idx in _resamples(n, groups, n_boot, seed)]
    vals = np.asarray([v for v in vals if v is not None], dtype=float)
    if point is None or not len(vals):
        return point, None, None
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return point, float(lo), float(hi)


def paired_bootstrap(metric_fn: Callable[..., float | None], arrays_a: Sequence, arrays_b: Sequence,
                     n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                     groups: Sequence | None = None) -> tuple:
    """(diff, low, high, frac_le_0) for metric(A) - metric(B) on the same items.

    ``arrays_a`` / ``arrays_b`` are the metric's arguments for each system, row-aligned (row i is the same
    item). The same resampled rows (or groups) are used for both systems. ``frac_le_0`` is the fraction of
    resampled differences <= 0: a one-sided p-value-like number for "A is better than B".
    """
    a, n = _arrays(arrays_a)
    b, nb = _arrays(arrays_b)
    if n != nb:
        raise ValueError(f"systems have {n} and {nb} rows; a paired bootstrap needs the same items")

    def diff(idx=None):
        ma = metric_fn(*(x if idx is None else x[idx] for x in a))
        mb = metric_fn(*(x if idx is None else x[idx] for x in b))
        return None if ma is None or mb is None else ma - mb

    point = diff()
    vals = np.asarray([v for v in (diff(idx) for idx in _resamples(n, groups, n_boot, seed)) if v is not None])
    if point is None or not len(vals):
        return point, None, None, None
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(point), float(lo), float(hi), float((vals <= 0).mean())
