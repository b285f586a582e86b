"""Intervals, the per-replicate statistics and the verdict rule, against hand computations."""

import numpy as np
import pandas as pd
import pytest

from l2dlib import stats


def test_t_quantiles_match_the_tables():
    for df, value in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)):
        assert stats.t_quantile(0.975, df) == pytest.approx(value, abs=1e-3)
    # Bonferroni levels: tails far out (tables: 636.62 and 31.60 for q = 0.9995)
    assert stats.t_quantile(0.9995, 1) == pytest.approx(636.62, abs=0.01)
    assert stats.t_quantile(0.9995, 2) == pytest.approx(31.60, abs=0.01)


def test_mean_ci_by_hand():
    mean, lo, hi = stats.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * (2.5**0.5) / 5**0.5  # t(0.975, 4) * sd / sqrt(n)
    assert mean == 3.0 and lo == pytest.approx(3 - half, abs=1e-4) and hi == pytest.approx(3 + half, abs=1e-4)
    assert np.isnan(stats.mean_ci([1.0])[1])


def _table(rows):
    return pd.DataFrame(rows, columns=["method", "seed", "num_experts", "expert", "expert_kind", "ece"])


def test_fitted_change_is_the_least_squares_rise_over_the_grid():
    # seed 0: ECE 0.1, 0.3, 0.2 at J = 1, 2, 3 (slope 0.05, span 2); seed 1: 0.2 everywhere
    rows = [("softmax", 0, j, e, "oracle", v) for j, v in ((1, 0.1), (2, 0.3), (3, 0.2)) for e in range(j)]
    rows += [("softmax", 1, j, e, "oracle", 0.2) for j in (1, 2, 3) for e in range(j)]
    est = stats.fitted_change(_table(rows), "softmax", "num_experts")
    assert est.values == pytest.approx((0.1, 0.0))


def test_a_paired_gap_weighs_each_configuration_once_not_each_expert():
    # At J = 1 softmax - ova = 0.3, at J = 3 it is 0.0 (three rows per method): per
    # configuration the mean gap is 0.15; per row it would be (0.3 + 3 * 0) / 4 = 0.075.
    rows = []
    for seed in (0, 1):
        rows += [("softmax", seed, 1, 0, "oracle", 0.4), ("ova", seed, 1, 0, "oracle", 0.1)]
        rows += [(m, seed, 3, e, "oracle", 0.2) for m in ("softmax", "ova") for e in range(3)]
    est = stats.paired_gap(_table(rows), "softmax", "ova", "ece", "num_experts")
    assert est.values == pytest.approx((0.15, 0.15))


def test_value_at_against_a_baseline_and_a_level():
    rows = [
        ("softmax", s, j, 0, "random", v)
        for s, (a, b) in enumerate(((0.10, 0.07), (0.12, 0.11)))
        for j, v in ((1, a), (2, b))
    ]
    t = _table(rows)
    assert stats.value_at(t, "softmax", "num_experts", 2, baseline_at=1, sign=-1).values == pytest.approx((0.03, 0.01))
    assert stats.value_at(t, "softmax", "num_experts", 2, level=0.4).values == pytest.approx((-0.33, -0.29))


# Real intervals from the committed tables (statistic oriented so the paper's direction is
# positive), one per branch, with the claim's m.
@pytest.mark.parametrize(
    "kind,low,high,m,word",
    [
        # MoG, the authors' schedule: softmax - OvA ECE [+0.0185, +0.0257], m = half of 0.0344
        ("direction", 0.0185, 0.0257, 0.0172, "reproduced"),
        # CIFAR-10 CPU features: softmax - OvA ECE [+0.0112, +0.0214], m = 0.02
        ("direction", 0.0112, 0.0214, 0.02, "direction reproduced, size unresolved"),
        # MoG, our schedule: softmax - OvA ECE [+0.0013, +0.0056]
        ("direction", 0.0013, 0.0056, 0.0172, "same direction, smaller"),
        # MoG, our schedule: softmax ECE(8) - ECE(1) [-0.0037, +0.0008], m = half of 0.0921
        ("direction", -0.0037, 0.0008, 0.0461, "not reproduced"),
        # CIFAR-10: softmax ECE(8) - ECE(1) [-0.0347, -0.0020]
        ("direction", -0.0347, -0.0020, 0.02, "reversed"),
        # CIFAR-10: softmax ECE(1) - ECE(2), the dip, [-0.0072, +0.0304]
        ("direction", -0.0072, 0.0304, 0.02, "inconclusive"),
        # MoG, our schedule: OvA ECE(8) - ECE(1) [-0.0067, +0.0013]
        ("flat", -0.0067, 0.0013, 0.02, "holds"),
        # MoG, the authors' schedule: OvA ECE(8) - ECE(1) [-0.0276, -0.0094]
        ("flat", -0.0276, -0.0094, 0.02, "inconclusive"),
        # The random expert's ECE of the example: 0.028 -> ECE falling by 0.03 +- 0.005
        ("flat", -0.035, -0.025, 0.02, "fails"),
        # MoG: random expert's softmax ECE at p = 0.95, 0.0153 [0.0066, 0.0240], minus 0.40
        ("level", 0.0066 - 0.4, 0.0240 - 0.4, 0.02, "not reproduced"),
        ("level", 0.41 - 0.4, 0.45 - 0.4, 0.02, "reproduced"),
        ("level", 0.35 - 0.4, 0.45 - 0.4, 0.02, "inconclusive"),
        ("direction", float("nan"), float("nan"), 0.02, "inconclusive"),
    ],
)
def test_each_branch_of_the_rule(kind, low, high, m, word):
    assert stats.verdict(kind, low, high, m) == word


def test_widening_an_interval_only_moves_a_verdict_towards_inconclusive():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        kind = rng.choice(["direction", "flat", "level"])
        centre, half, m = rng.normal(0, 0.03), rng.exponential(0.01) + 1e-4, rng.uniform(0.002, 0.05)
        seen = []
        for factor in (1, 1.5, 2, 3, 5, 10, 100, 1e4):
            seen.append(stats.verdict(kind, centre - half * factor, centre + half * factor, m))
        first = seen.index("inconclusive") if "inconclusive" in seen else len(seen)
        assert set(seen[first:]) <= {"inconclusive"}, (kind, centre, half, m, seen)
        assert seen[-1] == "inconclusive"  # enough widening: undecided


def test_bad_rule_input_is_refused():
    with pytest.raises(ValueError, match="margin must be positive"):
        stats.verdict("flat", -0.1, 0.1, 0.0)
    with pytest.raises(ValueError, match="unknown kind of claim 'sign'"):
        stats.verdict("sign", -0.1, 0.1, 0.02)
    with pytest.raises(ValueError, match="low end is above its high end"):
        stats.verdict("flat", 0.1, -0.1, 0.02)
