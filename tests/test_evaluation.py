"""``evaluate`` on a case small enough to work out by hand."""

import math

import numpy as np
import pytest
import torch

from l2dlib import metrics
from l2dlib.evaluation import BIN_KEYS, RELIABILITY_BINS, ROW_KEYS, evaluate


def _sigmoid(z):
    return 1 / (1 + math.exp(-z))


def test_evaluate_on_a_hand_made_case():
    # K = 2 classes, J = 1 expert, OvA (estimate = sigmoid of the deferral score).
    logits = torch.tensor(
        [
            [2.0, 0.0, 0.0],  # y 0: classifier right, kept; expert wrong, estimate 0.5
            [0.0, 2.0, 3.0],  # y 1: deferred (3 > 2); expert right
            [1.0, 0.0, 0.0],  # y 1: classifier wrong, kept; expert wrong, estimate 0.5
            [0.0, 1.0, 2.0],
        ]
    )  # y 0: deferred (2 > 1); expert right
    y = torch.tensor([0, 1, 1, 0])
    experts = torch.tensor([[1], [1], [0], [0]])
    rows, bins, points = evaluate(logits, y, experts, num_classes=2, method="ova")
    (row,) = rows
    assert set(row) == set(ROW_KEYS)
    s3, s2 = _sigmoid(3), _sigmoid(2)
    # ECE, 20 bins: [0.5, 0.55) holds two estimates of 0.5, both wrong: |0 - 1.0|;
    # s3 = 0.953 alone in the last bin, s2 = 0.881 alone in [0.85, 0.9): each |1 - s|.
    assert row["ece"] == pytest.approx((1.0 + (1 - s3) + (1 - s2)) / 4, abs=1e-7)
    assert row["classifier_accuracy"] == 0.5 and row["system_accuracy"] == 0.75 and row["coverage"] == 0.5
    assert row["expert_accuracy"] == 0.5 and row["frac_estimates_above_1"] == 0.0
    assert row["mean_estimate"] == pytest.approx((1 + s3 + s2) / 4, abs=1e-7)
    assert row["brier"] == pytest.approx((0.25 + (1 - s3) ** 2 + 0.25 + (1 - s2) ** 2) / 4, abs=1e-7)
    assert row["ece_10"] == pytest.approx(row["ece"], abs=1e-7)  # the same bins hold the same points
    assert len(bins) == RELIABILITY_BINS and all(set(b) == set(BIN_KEYS) for b in bins)
    filled = {b["bin_lower"]: (b["count"], b["accuracy"]) for b in bins if b["count"]}
    assert filled == {0.5: (2, 0.0), 0.85: (1, 1.0), 0.95: (1, 1.0)}
    assert all(b["confidence"] is None for b in bins if not b["count"])
    # The per-point estimates the cache keeps: capped, float16, with the outcomes.
    assert points.estimates.dtype == np.float16 and points.correct.tolist() == [[False], [True], [False], [True]]
    assert points.estimates[:, 0].tolist() == np.float16([0.5, s3, 0.5, s2]).tolist()
    assert row["smooth_ece"] == metrics.smooth_ece(points.estimates[:, 0], points.correct[:, 0])


def test_softmax_estimates_above_one_are_counted():
    # Eq. 2 = exp(g_perp - lse over classes): with g_perp = 1 above equal class scores 0,
    # exp(1 - log 2) = e / 2 > 1.
    logits = torch.tensor([[0.0, 0.0, 1.0]])
    rows, _, points = evaluate(logits, torch.tensor([0]), torch.tensor([[0]]), num_classes=2, method="softmax")
    assert points.estimates.tolist() == [[1.0]]  # capped before storage and the smooth ECE
    assert rows[0]["frac_estimates_above_1"] == 1.0
    assert rows[0]["mean_estimate"] == pytest.approx(math.e / 2, rel=1e-6)
    assert rows[0]["ece"] == pytest.approx(0.0) and rows[0]["ece_uncapped"] == pytest.approx(math.e / 2 - 1, rel=1e-6)
