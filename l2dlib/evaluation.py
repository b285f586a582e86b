"""From a trained model's test logits to table rows: estimators -> metrics -> rows.

One row per expert (the ECE with the paper's 20 bins, its variants, the system metrics),
one row per (expert, bin) for the reliability diagrams, and each test point's capped
estimate (float16) and outcome, which the cache keeps beside the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import estimators, metrics

RELIABILITY_BINS = 20
# What :func:`evaluate` returns per expert (the cache stores these; the rest of a table row
# comes from the configuration).
ROW_KEYS = (
    "expert",
    "ece",
    "system_accuracy",
    "classifier_accuracy",
    "coverage",
    "frac_estimates_above_1",
    "mean_estimate",
    "expert_accuracy",
    "ece_10",
    "ece_30",
    "ece_adaptive",
    "smooth_ece",
    "ece_uncapped",
    "brier",
    # The surrogate loss of the restored model (its own method's, nats per point), per split:
    # how far from the optimum training ended (filled in by the batch)
    "train_loss",
    "val_loss",
    "test_loss",
    # What the results are measured against (MoG, from the true densities; None on CIFAR-10):
    "ece_noise_floor",  # mean ECE of a perfectly calibrated estimate of this expert at this test size
    "ece_noise_floor_sd",
    "bayes_classifier_accuracy",
    "bayes_system_accuracy",  # the best system deferring to these experts
    "bayes_risk",  # the method's surrogate risk at the optimum, on these test points
)
LOSS_KEYS = ("train_loss", "val_loss", "test_loss")
# Per configuration, beside its rows (in the cache entry's top level, copied into each of its
# table rows): the epoch of the restored state, and the classifier's accuracy on its own
# training split (the train-test gap; None where older code did not record it).
CONFIG_KEYS = ("best_epoch", "train_classifier_accuracy")
REFERENCE_KEYS = ROW_KEYS[-5:]
# Columns of every study table, in order (what identifies a row, then the rest of ROW_KEYS).
COLUMNS = [
    "study",
    "dataset",
    "profile",
    "method",
    "seed",
    "num_experts",
    "expert_p",
    "expert",
    "expert_kind",
    *ROW_KEYS[1:],
    *CONFIG_KEYS,
    "data_label",
    "data_seed",
    "max_epochs",
    "lr",
    "patience",
    "config_key",
]
# Columns of the reliability-diagram tables (<study>-<profile>.reliability.csv).
RELIABILITY_COLUMNS = [
    "study",
    "method",
    "seed",
    "num_experts",
    "expert_p",
    "expert",
    "expert_kind",
    "bin_lower",
    "bin_upper",
    "count",
    "confidence",
    "accuracy",
    "data_seed",
    "max_epochs",
    "lr",
    "patience",
    "config_key",
]
BIN_KEYS = ("expert", "bin_lower", "bin_upper", "count", "confidence", "accuracy")


@dataclass(eq=False)
class Points:
    """Each test point's estimate of each expert's correctness, capped to [0, 1] and stored
    as float16 (the smooth ECE is computed from these very values, so it can be recomputed
    from them exactly), and whether the expert was right; both [N, J]."""

    estimates: np.ndarray  # float16
    correct: np.ndarray  # bool

    def __eq__(self, other: object) -> bool:  # the same values, bit for bit
        if not isinstance(other, Points):
            return NotImplemented
        return all(np.array_equal(a, b) for a, b in ((self.estimates, other.estimates), (self.correct, other.correct)))


def evaluate(
    logits: torch.Tensor, y: torch.Tensor, expert_preds: torch.Tensor, num_classes: int, method: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Points]:
    """Metrics on one split: logits [N, K+J], y [N], expert_preds [N, J].

    Returns (rows, bins, points): one dict per expert with :data:`ROW_KEYS`, one dict per
    (expert, bin) with :data:`BIN_KEYS` (confidence and accuracy None for an empty bin),
    and the :class:`Points`.
    """
    estimates = estimators.expert_correctness(logits, num_classes, method).cpu()  # [N, J]
    correct = (expert_preds == y.unsqueeze(1)).cpu()
    points = Points(estimates.clamp(0.0, 1.0).to(torch.float16).numpy(), correct.numpy())
    predictions = estimators.system_predictions(logits, expert_preds, num_classes, method)
    system = {
        "system_accuracy": metrics.accuracy(predictions, y),
        "classifier_accuracy": metrics.accuracy(logits[:, :num_classes].argmax(1), y),
        "coverage": metrics.coverage(estimators.defer(logits, num_classes, method)),
    }
    rows, bins = [], []
    for j in range(expert_preds.shape[1]):
        c, r = estimates[:, j], correct[:, j]
        rows.append(
            {
                "expert": j,
                "ece": metrics.ece(c, r, RELIABILITY_BINS),
                **system,
                "frac_estimates_above_1": float((c > 1).float().mean()),
                "mean_estimate": float(c.mean()),
                "expert_accuracy": float(r.float().mean()),
                "ece_10": metrics.ece(c, r, 10),
                "ece_30": metrics.ece(c, r, 30),
                "ece_adaptive": metrics.adaptive_ece(c, r, RELIABILITY_BINS),
                "smooth_ece": metrics.smooth_ece(points.estimates[:, j], r),
                "ece_uncapped": metrics.ece(c, r, RELIABILITY_BINS, cap=False),
                "brier": metrics.brier(c, r),
                **dict.fromkeys(LOSS_KEYS),  # filled in by the batch, which has the model
                **dict.fromkeys(REFERENCE_KEYS),  # filled in by the batch where the truth is known
            }
        )
        diagram = metrics.reliability_bins(c, r, RELIABILITY_BINS)
        bins += [{"expert": j, **b} for b in diagram.astype(object).where(diagram.notna(), None).to_dict("records")]
    return rows, bins, points


#: Columns computed from a table's reliability bins when a page reads it (not stored).
BIN_COLUMNS = ("ece_own_floor", "ece_l2_debiased")


def with_bin_metrics(table: pd.DataFrame, bins: pd.DataFrame) -> pd.DataFrame:
    """``table`` with, per configuration and expert, from that model's reliability bins:
    ``ece_own_floor``, the ECE a perfectly calibrated estimate would show in its bins
    (:func:`l2dlib.metrics.calibrated_floor`), and ``ece_l2_debiased``
    (:func:`l2dlib.metrics.debiased_l2_ece`); on any dataset."""
    from .metrics import calibrated_floor, debiased_l2_ece

    values = {
        key: (
            calibrated_floor(g["count"].to_numpy(), g["confidence"].to_numpy()),
            debiased_l2_ece(g["count"].to_numpy(), g["confidence"].to_numpy(), g["accuracy"].to_numpy()),
        )
        for key, g in bins.groupby(["config_key", "expert"], sort=False)
        if g["count"].sum() > 0
    }
    per = pd.DataFrame.from_dict(values, orient="index", columns=list(BIN_COLUMNS))
    per.index = pd.MultiIndex.from_tuples(per.index)
    index = pd.MultiIndex.from_frame(table[["config_key", "expert"]])
    return table.assign(**{c: per[c].reindex(index).to_numpy() for c in BIN_COLUMNS})
