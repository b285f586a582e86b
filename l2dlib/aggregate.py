"""Summaries of the result tables: means over seeds, method rankings, failed models, and
what the MoG data page states about a draw. Numbers only; the prose is in :mod:`l2dlib.report`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import stats
from .studies import IDENTITY

#: How each method is named in tables, sentences and legends.
LABELS = {"softmax": "Softmax", "ova": "OvA", "asymmetric_softmax": "Asymmetric softmax", "decoupled": "Decoupled"}


def per_seed(table: pd.DataFrame, x: str, y: str, *, expert_kind: str | None = None) -> pd.DataFrame:
    """Mean of ``y`` over experts for each (method, replicate, x), the replicate being the
    training seed, or the data draw where the table holds several (see
    :func:`l2dlib.stats.units`); optionally one kind of expert. The replicate column is
    named ``seed`` either way."""
    unit = stats.units(table)[0]
    table = stats.select_experts(table, expert_kind)
    out = table.groupby(["method", unit, x], as_index=False)[y].mean()
    return out.rename(columns={unit: "seed"})


def mean_by(table: pd.DataFrame, x: str, y: str = "ece", *, expert_kind: str | None = None) -> pd.DataFrame:
    """Mean over seeds of the per-seed values: rows ``x``, one column per method."""
    return per_seed(table, x, y, expert_kind=expert_kind).groupby(["method", x])[y].mean().unstack(0)


def summary(table: pd.DataFrame, x: str, *, expert_kind: str | None = None) -> pd.DataFrame:
    """ECE (of ``expert_kind`` experts, or averaged over all) and system accuracy, mean
    over seeds, per ``x``; columns (metric, method), methods in the legend's order and named
    as in the legend."""
    parts = {
        "ECE": mean_by(table, x, "ece", expert_kind=expert_kind),
        "system accuracy": mean_by(table, x, "system_accuracy"),
    }
    for name, part in parts.items():
        parts[name] = part[[m for m in LABELS if m in part.columns]].rename(columns=LABELS)
    return pd.concat(parts, axis=1)


ECE_VARIANTS = {
    "ece_10": "ECE, 10 bins",
    "ece": "ECE, 20 bins (the paper's)",
    "ece_30": "ECE, 30 bins",
    "ece_adaptive": "adaptive ECE, 20 equal-mass bins",
    "smooth_ece": "smooth ECE (no bins)",
    "ece_uncapped": "ECE, 20 bins, estimates not capped",
    "brier": "Brier score (capped estimates)",
}


def train_test_gap(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, means over its configurations: the classifier's accuracy on its own
    training split and on the test split, and the surrogate loss on both, with their gaps
    (the overconfidence a network that fits its training set brings). The training accuracy
    is NaN where a table predates it."""
    if "train_classifier_accuracy" not in table:
        table = table.assign(train_classifier_accuracy=np.nan)
    configs = table.groupby("config_key", sort=False).first()
    out = configs.groupby("method", sort=False).agg(
        configurations=("seed", "size"),
        train_accuracy=("train_classifier_accuracy", "mean"),
        test_accuracy=("classifier_accuracy", "mean"),
        train_loss=("train_loss", "mean"),
        test_loss=("test_loss", "mean"),
    )
    out.insert(3, "accuracy_gap", out["train_accuracy"] - out["test_accuracy"])
    out["loss_gap"] = out["test_loss"] - out["train_loss"]
    return out.loc[[m for m in LABELS if m in out.index]]


def method_ranking(
    table: pd.DataFrame, *, expert_kind: str | None = None, columns: dict[str, str] = ECE_VARIANTS
) -> pd.DataFrame:
    """Mean over seeds (of the mean over experts and configurations) of each calibration
    metric per method, and the methods ranked from best (lowest) to worst."""
    table = stats.select_experts(table, expert_kind)
    per_seed_means = table.groupby(["method", "seed"])[list(columns)].mean()
    means = per_seed_means.groupby("method").mean().T
    means.index = [columns[c] for c in means.index]
    means["ranking (best first)"] = [" < ".join(row.sort_values().index) for _, row in means.iterrows()]
    return means


def ranking_is_stable(ranking: pd.DataFrame, rows: list[str]) -> bool:
    """Whether the given rows of :func:`method_ranking` rank the methods identically."""
    return ranking.loc[rows, "ranking (best first)"].nunique() == 1


BINNINGS = ("ece_10", "ece", "ece_30", "ece_adaptive")


def below_all_others(table: pd.DataFrame, method: str, column: str = "classifier_accuracy") -> dict:
    """How many of ``method``'s models score below every model of the other methods on a
    per-model ``column`` (e.g. a classifier that failed to train): count, models, this
    method's worst value and the other methods' worst value."""
    model = [c for c in IDENTITY[1:] if c in table]  # method first; one study's table
    per_model = table.groupby(model, dropna=False)[column].first()
    mine = per_model.loc[method]
    worst_other = float(per_model.drop(index=method, level="method").min())
    return {
        "count": int((mine < worst_other).sum()),
        "models": int(len(mine)),
        "worst": float(mine.min()),
        "worst_other": worst_other,
    }


def degeneracy_numbers(increasing: pd.DataFrame, dependence: pd.DataFrame) -> dict[str, float]:
    """How often the softmax estimate exceeds 1 (largest mean over seeds along each study's
    axis) and how much capping lowers its ECE (mean over rows), in both MoG studies."""
    out = {}
    for name, table, x in (("inc", increasing, "num_experts"), ("dep", dependence, "expert_p")):
        sm = table[table["method"] == "softmax"]
        out[f"frac_{name}_max"] = float(sm.groupby(x)["frac_estimates_above_1"].mean().max())
        out[f"cap_gap_{name}"] = float((sm["ece_uncapped"] - sm["ece"]).mean())
    return out


def mog_facts(params, points: int) -> dict[str, float]:
    """What the MoG page states about a draw, from its true densities: the Bayes-optimal
    classifier accuracy, its error on clusters 1 and 2 (do they overlap?), the share of
    points in the experts' region (clusters 2, 3), the best system's accuracy with an oracle
    on that region, and the ECE noise floor at ``points`` test points."""
    from .data import mog
    from .experts import oracle
    from .studies import EXPERT_REGION

    x, y = mog.sample(params, 200_000, np.random.default_rng(0))
    pred = mog.posteriors(params, x).argmax(1)
    middle = np.isin(y, (1, 2))
    expert = oracle(EXPERT_REGION["mog"])
    floor, spread = mog.noise_floor(params, (expert,), points, repeats=100)
    return {
        "bayes_accuracy": mog.bayes_accuracy(params, step=0.05),
        "bayes_error_clusters_1_2": float((pred[middle] != y[middle]).mean()),
        "expert_region_share": float(np.isin(y, EXPERT_REGION["mog"]).mean()),
        "bayes_system_accuracy": mog.bayes_accuracy(params, (expert,), step=0.05),
        "noise_floor": floor,
        "noise_floor_sd": spread,
    }


def params_table(params) -> pd.DataFrame:
    """A draw's parameters, one row per cluster."""
    return pd.DataFrame(
        {
            "points (of 20,000)": params.counts(20_000),
            "mean": [f"({m[0]:.3f}, {m[1]:.3f})" for m in params.means],
            "variances": [f"({v[0]:.3f}, {v[1]:.3f})" for v in params.variances],
        },
        index=pd.Index(range(4), name="cluster"),
    )
