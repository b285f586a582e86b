import numpy as np
import pytest
import relplot
import torch

from l2dlib import metrics


def _ece_by_hand(conf, corr, n_bins):
    """Straightforward loop: cap at 1, bin [b/n, (b+1)/n) with 1.0 in the last bin."""
    conf = [min(max(c, 0.0), 1.0) for c in conf]
    total = 0.0
    for b in range(n_bins):
        members = [i for i, c in enumerate(conf) if min(int(c * n_bins), n_bins - 1) == b]
        if members:
            acc = sum(corr[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            total += len(members) / len(conf) * abs(acc - avg)
    return total


def test_ece_hand_case_with_capping():
    # Two bins. [0, .5): 0.2, 0.2 with one right -> |0.5 - 0.2| * 2/4.
    # [.5, 1]: 0.9 and 1.7 (capped to 1.0), both right -> |1 - 0.95| * 2/4.
    assert metrics.ece([0.2, 0.2, 0.9, 1.7], [0, 1, 1, 1], n_bins=2) == pytest.approx(0.175)


def test_ece_capping_equals_passing_one():
    assert metrics.ece([1.7, 3.0, 0.4], [1, 0, 1]) == metrics.ece([1.0, 1.0, 0.4], [1, 0, 1])


def test_ece_matches_loop_on_random_data():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1.3, 500)
    corr = (rng.uniform(size=500) < np.clip(conf, 0, 1) ** 2).astype(int)
    for n_bins in (1, 10, 20, 30):
        assert metrics.ece(conf, corr, n_bins) == pytest.approx(_ece_by_hand(list(conf), list(corr), n_bins))


def test_ece_accepts_tensors_and_perfect_calibration_is_zero():
    conf = torch.tensor([0.25] * 4 + [0.75] * 4)
    corr = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0])
    assert metrics.ece(conf, corr) == pytest.approx(0.0)


def test_reliability_bins_reproduce_ece():
    rng = np.random.default_rng(1)
    conf, corr = rng.uniform(size=300), rng.integers(0, 2, 300)
    bins = metrics.reliability_bins(conf, corr, 20)
    assert bins["count"].sum() == 300
    full = bins[bins["count"] > 0]
    ece = (full["count"] / 300 * (full["accuracy"] - full["confidence"]).abs()).sum()
    assert ece == pytest.approx(metrics.ece(conf, corr, 20))


def test_uncapped_ece_averages_raw_estimates():
    # one bin [0.5, 1]: estimates 0.9 and 1.7 (binned as 1.0), both right.
    assert metrics.ece([0.9, 1.7], [1, 1], n_bins=2) == pytest.approx(0.05)  # |1 - 0.95|
    assert metrics.ece([0.9, 1.7], [1, 1], n_bins=2, cap=False) == pytest.approx(0.3)  # |1 - 1.3|


def test_adaptive_ece_by_hand():
    # 4 points, 2 equal-mass bins after sorting: {0.1, 0.3} and {0.6, 1.4->1.0}
    conf, corr = [0.6, 0.1, 1.4, 0.3], [0, 0, 1, 1]
    expected = (abs(1 - 0.4) + abs(1 - 1.6)) / 4
    assert metrics.adaptive_ece(conf, corr, n_bins=2) == pytest.approx(expected)


def test_brier_caps_estimates():
    assert metrics.brier([1.5, 0.2], [1, 1]) == pytest.approx((0 + 0.64) / 2)


def test_accuracy_and_coverage():
    assert metrics.accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5
    assert metrics.coverage(torch.tensor([0, 0, 2, 0])) == 0.75


def test_bad_input():
    with pytest.raises(ValueError, match="n_bins >= 1, got 0"):
        metrics.ece([0.5], [1], n_bins=0)
    with pytest.raises(ValueError, match="3 values but correct has 2"):
        metrics.ece([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.ece([float("nan")], [1])


def test_binomial_mad_matches_the_pmf_sum():
    import math

    for n, p in ((10, 0.3), (57, 0.91), (2000, 0.25), (1, 0.5), (5, 0.0)):
        k = np.arange(n + 1)
        log_pmf = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
        pmf = np.exp(log_pmf + k * math.log(max(p, 1e-300)) + (n - k) * math.log1p(-p)) if p > 0 else k == 0
        assert metrics.binomial_mad(n, p) == pytest.approx(float((pmf * np.abs(k - n * p)).sum()), rel=1e-9, abs=1e-12)


def test_calibrated_floor_is_the_ece_of_a_simulated_calibrated_estimate():
    rng = np.random.default_rng(0)
    conf = np.repeat([0.125, 0.425, 0.775, 0.975], [300, 50, 900, 150])  # four bins, one value each
    sims = [metrics.ece(conf, rng.random(conf.size) < conf) for _ in range(4000)]
    bins = metrics.reliability_bins(conf, conf > 0.5)  # only counts and confidences are read
    floor = metrics.calibrated_floor(bins["count"], bins["confidence"])
    assert floor == pytest.approx(np.mean(sims), abs=3 * np.std(sims) / np.sqrt(len(sims)))


def test_debiased_l2_ece_by_hand_and_near_zero_when_calibrated():
    # Two bins: (n 4, conf 0.5, acc 0.75) and (n 6, conf 0.2, acc 0.5): squared gaps 0.0625 and
    # 0.09 less variances 0.1875 / 3 and 0.25 / 5, weighted 0.4 and 0.6.
    value = 0.4 * (0.0625 - 0.0625) + 0.6 * (0.09 - 0.05)
    assert metrics.debiased_l2_ece([4, 6], [0.5, 0.2], [0.75, 0.5]) == pytest.approx(value**0.5)
    rng = np.random.default_rng(1)
    conf = rng.uniform(0, 1, 20_000)
    debiased, plug_in, variance = [], [], []
    for _ in range(200):
        b = metrics.reliability_bins(conf, rng.random(conf.size) < conf)
        b = b[b["count"] > 0]
        debiased.append(metrics.debiased_l2_ece_squared(b["count"], b["confidence"], b["accuracy"]))
        plug_in.append(float((b["count"] * (b["accuracy"] - b["confidence"]) ** 2).sum() / b["count"].sum()))
        variance.append(float((b["count"] * b["accuracy"] * (1 - b["accuracy"]) / (b["count"] - 1)).sum() / 20_000))
    assert abs(np.mean(debiased)) < 3 * np.std(debiased) / np.sqrt(200) + 1e-6  # unbiased for the squared error
    assert np.mean(plug_in) == pytest.approx(np.mean(variance), rel=0.05)  # the plug-in is all sampling noise


def test_smooth_ece_hand_case_calibration_and_cap():
    # Constant 0.7 against a half-right outcome: the smoothed residual is 0.2 everywhere.
    assert metrics.smooth_ece(np.full(1000, 0.7), np.r_[np.ones(500), np.zeros(500)]) == pytest.approx(0.2, abs=1e-6)
    # A calibrated estimate shrinks towards 0 with n; a bias of 0.1 does not.
    rng = np.random.default_rng(0)
    f = rng.uniform(size=200_000)
    y = rng.uniform(size=f.size) < f
    assert metrics.smooth_ece(f, y) < 0.01
    assert metrics.smooth_ece(np.clip(f + 0.1, 0, 1), y) > 0.07
    # Values above 1 are capped before relplot sees them (it assumes [0, 1]).
    g = np.r_[np.full(100, 1.6), f[:900]]
    assert metrics.smooth_ece(g, y[:1000]) == relplot.smECE(np.clip(g, 0, 1), y[:1000].astype(float))
    assert metrics.smooth_ece(g, y[:1000]) != pytest.approx(relplot.smECE(g, y[:1000].astype(float)))
