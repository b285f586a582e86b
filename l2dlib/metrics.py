"""Calibration and deferral metrics. Inputs may be numpy arrays or torch tensors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _validated(confidence, correct, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"expected n_bins >= 1, got {n_bins!r}")
    conf = _as_numpy(confidence).astype(np.float64).ravel()
    corr = _as_numpy(correct).astype(np.float64).ravel()
    if conf.shape != corr.shape:
        raise ValueError(f"confidence has {conf.size} values but correct has {corr.size}")
    if conf.size == 0:
        raise ValueError("expected at least one confidence value, got none")
    if np.isnan(conf).any():
        raise ValueError("confidence contains NaN")
    return conf, corr


def _binned(confidence, correct, n_bins: int, cap: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin counts, summed confidences and summed correctness over ``n_bins`` equal-width bins.

    Bin b holds confidences in [b/n, (b+1)/n); 1.0 goes in the last bin. Confidences are
    clipped to [0, 1] for binning (the softmax estimator can exceed 1); with ``cap`` the
    clipped values are also what is averaged, without it the raw ones.
    """
    conf, corr = _validated(confidence, correct, n_bins)
    clipped = np.clip(conf, 0.0, 1.0)
    idx = np.minimum((clipped * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sum_conf = np.bincount(idx, weights=clipped if cap else conf, minlength=n_bins)
    sum_corr = np.bincount(idx, weights=corr, minlength=n_bins)
    return count, sum_conf, sum_corr


def ece(confidence, correct, n_bins: int = 20, *, cap: bool = True) -> float:
    """Expected calibration error with equal-width bins, weighted by bin count.

    Parameters
    ----------
    confidence : array-like of shape (n,)
        Estimated probability of being correct; values above 1 are capped at 1.
    correct : array-like of shape (n,)
        1 where the event happened (the expert was right), else 0.
    n_bins : int
        Number of equal-width bins on [0, 1].
    cap : bool
        Average the capped confidences (the paper's ECE). ``cap=False`` bins the same way
        but averages the raw estimates, showing what the cap hides.

    Examples
    --------
    Bin [0, 0.5) holds 0.2, 0.2 (one right): |1 - 0.4|; bin [0.5, 1] holds 0.9 and 1.7
    capped to 1 (both right): |2 - 1.9|; so ECE = (0.6 + 0.1) / 4.

    >>> round(ece([0.2, 0.2, 0.9, 1.7], [0, 1, 1, 1], n_bins=2), 6)
    0.175
    """
    count, sum_conf, sum_corr = _binned(confidence, correct, n_bins, cap)
    return float(np.abs(sum_corr - sum_conf).sum() / count.sum())


def adaptive_ece(confidence, correct, n_bins: int = 20) -> float:
    """ECE with equal-mass bins: the points sorted by (capped) confidence and cut into
    ``n_bins`` groups of (nearly) equal size (Nixon et al., 2019)."""
    conf, corr = _validated(confidence, correct, n_bins)
    conf = np.clip(conf, 0.0, 1.0)
    order = np.argsort(conf, kind="stable")
    total = 0.0
    for group in np.array_split(order, min(n_bins, conf.size)):
        total += abs(corr[group].sum() - conf[group].sum())
    return float(total / conf.size)


def smooth_ece(confidence, correct) -> float:
    """The smooth ECE of Błasiok & Nakkiran (ICLR 2024), by their package ``relplot``
    (``relplot.smECE``: kernel smoothing of the residuals, bandwidth chosen by the data; no
    bins to choose). The estimates are capped to [0, 1] first: relplot assumes that range,
    and the softmax estimator can exceed 1."""
    import relplot  # here, not at the top: it imports scikit-learn (a second on start-up)

    conf, corr = _validated(confidence, correct, 1)
    return float(relplot.smECE(np.clip(conf, 0.0, 1.0), corr))


def brier(confidence, correct) -> float:
    """Brier score of the capped estimate: mean of (min(max(c, 0), 1) - correct)^2."""
    conf, corr = _validated(confidence, correct, 1)
    return float(np.mean((np.clip(conf, 0.0, 1.0) - corr) ** 2))


def reliability_bins(confidence, correct, n_bins: int = 20) -> pd.DataFrame:
    """One row per bin: bounds, count, mean (capped) confidence and observed frequency.

    Empty bins have NaN means. ``sum(count/n * |accuracy - confidence|)`` over non-empty
    bins equals :func:`ece`.
    """
    count, sum_conf, sum_corr = _binned(confidence, correct, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin_lower": np.arange(n_bins) / n_bins,
                "bin_upper": np.arange(1, n_bins + 1) / n_bins,
                "count": count.astype(np.int64),
                "confidence": sum_conf / count,
                "accuracy": sum_corr / count,
            }
        )


def accuracy(predictions, y) -> float:
    """Fraction of predictions equal to the label."""
    p, t = _as_numpy(predictions).ravel(), _as_numpy(y).ravel()
    if p.shape != t.shape:
        raise ValueError(f"predictions have {p.size} values but y has {t.size}")
    return float((p == t).mean())


def coverage(deferral) -> float:
    """Fraction of points the classifier keeps (rejector output 0)."""
    return float((_as_numpy(deferral) == 0).mean())


def binomial_mad(n: int, p: float) -> float:
    """E|X - n p| for X ~ Binomial(n, p), in closed form (de Moivre):
    2 (k + 1) C(n, k + 1) p^(k + 1) (1 - p)^(n - k), k = floor(n p)."""
    if n <= 0 or p <= 0.0 or p >= 1.0:
        return 0.0
    k = math.floor(n * p)
    if k >= n:
        return 0.0
    log = math.lgamma(n + 1) - math.lgamma(k + 2) - math.lgamma(n - k) + (k + 1) * math.log(p)
    return 2.0 * (k + 1) * math.exp(log + (n - k) * math.log1p(-p))


def calibrated_floor(counts, confidences) -> float:
    """The ECE a perfectly calibrated estimate would show with these bins: each bin's
    points right with its mean confidence, so the expected gap is E|X/n - c| per bin,
    weighted by size. A model's own noise floor, from its reliability bins (the points of
    one bin are taken at the bin's mean confidence)."""
    counts = _as_numpy(counts).astype(np.int64)
    conf = np.clip(np.nan_to_num(_as_numpy(confidences).astype(np.float64)), 0.0, 1.0)
    total = counts.sum()
    if total == 0:
        raise ValueError("expected at least one point in the bins, got none")
    return float(sum(binomial_mad(int(n), float(c)) for n, c in zip(counts, conf)) / total)


def debiased_l2_ece_squared(counts, confidences, accuracies) -> float:
    """The debiased estimate of the squared l2 (binned) calibration error of Kumar, Liang &
    Ma (2019) from reliability bins: sum_b n_b/N [(acc_b - conf_b)^2 - acc_b (1 - acc_b) /
    (n_b - 1)]. The subtracted term is the sampling variance of a bin's accuracy, so for a
    calibrated estimate its expectation is 0 at any test size (it can come out negative),
    where the plug-in ECE keeps its noise floor. Bins of one point carry no variance
    estimate and are left out."""
    n = _as_numpy(counts).astype(np.float64)
    conf, acc = (np.nan_to_num(_as_numpy(a).astype(np.float64)) for a in (confidences, accuracies))
    if n.sum() == 0:
        raise ValueError("expected at least one point in the bins, got none")
    use = n > 1
    terms = (acc[use] - conf[use]) ** 2 - acc[use] * (1 - acc[use]) / (n[use] - 1)
    return float((n[use] * terms).sum() / n.sum())


def debiased_l2_ece(counts, confidences, accuracies) -> float:
    """sqrt(max(0, :func:`debiased_l2_ece_squared`)): the debiased l2 ECE, on the ECE's scale."""
    return math.sqrt(max(0.0, debiased_l2_ece_squared(counts, confidences, accuracies)))
