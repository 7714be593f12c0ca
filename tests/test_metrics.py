import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from selfalign import metrics as M


def test_ece_by_hand():
    probs = [0.1, 0.3, 0.35, 0.8, 1.0]
    labels = [0, 1, 0, 1, 1]
    # bins: [.1,.2): acc 0 conf .1 | [.3,.4): acc .5 conf .325 | [.8,.9): acc 1 conf .8 | [.9,1]: acc 1 conf 1
    expected = 1 / 5 * 0.1 + 2 / 5 * 0.175 + 1 / 5 * 0.2 + 0
    assert M.ece(labels, probs) == pytest.approx(expected) == pytest.approx(0.13)
    bins = M.reliability_bins(labels, probs)
    assert [b["count"] for b in bins] == [0, 1, 0, 2, 0, 0, 0, 0, 1, 1]
    assert bins[3]["accuracy"] == 0.5 and bins[3]["confidence"] == pytest.approx(0.325)
    assert bins[0]["accuracy"] is None and bins[0]["confidence"] is None
    assert M.ece([1, 0], [1.0, 0.0]) == 0.0


def _numpy_ece(y, p, n_bins):
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        m = (p >= lo) & ((p < hi) if b < n_bins - 1 else (p <= hi))
        if m.any():
            total += m.sum() / len(p) * abs(y[m].mean() - p[m].mean())
    return total


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_ece_matches_numpy_reimplementation(n_bins):
    rng = np.random.default_rng(1)
    p = rng.random(500)
    y = (rng.random(500) < p ** 2).astype(int)
    assert M.ece(y, p, n_bins) == pytest.approx(_numpy_ece(y, p, n_bins))
    assert sum(b["count"] for b in M.reliability_bins(y, p, n_bins)) == 500


def test_brier_and_auroc():
    assert M.brier([1, 0, 1], [0.9, 0.2, 0.4]) == pytest.approx((0.01 + 0.04 + 0.36) / 3)
    assert M.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.auroc([1, 1], [0.2, 0.3]) is None
    assert M.brier([1, 1], [0.9, 0.8]) == pytest.approx((0.01 + 0.04) / 2)
    rng = np.random.default_rng(2)
    p = rng.random(200)
    y = (rng.random(200) < p).astype(int)
    assert M.brier(y, p) == pytest.approx(brier_score_loss(y, p))
    assert M.auroc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_bootstrap_ci_contains_point_and_is_reproducible():
    rng = np.random.default_rng(3)
    p = rng.random(300)
    y = (rng.random(300) < p).astype(int)
    a = M.bootstrap_ci(M.auroc, y, p, n_boot=200, seed=7)
    assert a[1] <= a[0] <= a[2]
    assert a == M.bootstrap_ci(M.auroc, y, p, n_boot=200, seed=7)
    assert a != M.bootstrap_ci(M.auroc, y, p, n_boot=200, seed=8)
    assert a[0] == pytest.approx(roc_auc_score(y, p))
    e = M.bootstrap_ci(M.ece, y, p, n_boot=200, seed=0)
    assert e[1] <= e[0] <= e[2]
    assert M.bootstrap_ci(M.brier, y, p, n_boot=0) == (M.brier(y, p), None, None)


def test_bootstrap_drops_undefined_resamples():
    # AUROC is None on resamples with one class; the interval comes from the others
    y, s = np.array([0, 1, 1, 1]), np.array([0.1, 0.9, 0.8, 0.7])
    point, lo, hi = M.bootstrap_ci(M.auroc, y, s, n_boot=100, seed=0)
    assert point == lo == hi == 1.0
    assert M.bootstrap_ci(M.auroc, np.ones(4), s, n_boot=10) == (None, None, None)


def test_grouped_bootstrap_resamples_whole_groups():
    # two questions of 50 identical rows: a question-level bootstrap sees two units, a row-level one sees 100
    x = np.r_[np.zeros(50), np.ones(50)]
    g = np.r_[["q0"] * 50, ["q1"] * 50]
    _, lo, hi = M.bootstrap_ci(np.mean, x, n_boot=400, seed=0, groups=g)
    assert (lo, hi) == (0.0, 1.0)
    _, lo, hi = M.bootstrap_ci(np.mean, x, n_boot=400, seed=0)
    assert 0.3 < lo < 0.5 < hi < 0.7

    sizes = {0: 3, 1: 1, 2: 5, 3: 2}
    ids = np.concatenate([[k] * n for k, n in sizes.items()])

    def whole_groups(i):
        counts = np.bincount(i, minlength=4)
        assert all(counts[k] % n == 0 for k, n in sizes.items())
        return float(len(np.unique(i)))

    M.bootstrap_ci(whole_groups, ids, n_boot=100, seed=1, groups=ids)
    with pytest.raises(ValueError):
        M.bootstrap_ci(np.mean, x, groups=g[:10])


def test_selection_accuracy_by_hand():
    groups = [
        [(0.9, 1), (0.1, 0)],  # right
        [(0.2, 1), (0.8, 0)],  # wrong
        [(0.5, 0), (0.5, 1)],  # tie: the first option, wrong
        [(0.3, 0), (0.7, 1), (0.7, 0)],  # tie: the first 0.7, right
    ]
    assert M.selection_correct(groups).tolist() == [1.0, 0.0, 0.0, 1.0]
    assert M.selection_accuracy(groups) == 0.5
    assert M.selection_accuracy([[(0.1, True)]]) == 1.0


def test_paired_bootstrap_sign():
    rng = np.random.default_rng(4)
    a = (rng.random(200) < 0.8).astype(float)
    b = a * (rng.random(200) < 0.6)  # B is right only where A is, and less often
    diff, lo, hi, frac = M.paired_bootstrap(np.mean, (a,), (b,), n_boot=300, seed=0)
    assert diff == pytest.approx(a.mean() - b.mean()) and diff > 0
    assert 0 < lo <= diff <= hi
    assert frac == 0.0
    diff, lo, hi, frac = M.paired_bootstrap(np.mean, (b,), (a,), n_boot=300, seed=0)
    assert diff < 0 and hi < 0 and frac == 1.0
    assert M.paired_bootstrap(np.mean, (a,), (a,), n_boot=50) == (0.0, 0.0, 0.0, 1.0)
    # two-array metrics and groups work too
    y = np.r_[np.zeros(100), np.ones(100)]
    good, bad = y * 0.8 + 0.1, np.full(200, 0.5)
    diff, lo, hi, frac = M.paired_bootstrap(M.auroc, (y, good), (y, bad), n_boot=100, groups=np.arange(200) // 2)
    assert diff == pytest.approx(0.5) and lo == hi == 0.5 and frac == 0.0
    with pytest.raises(ValueError):
        M.paired_bootstrap(np.mean, (a,), (a[:10],))
