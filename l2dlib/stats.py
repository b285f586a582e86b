"""Intervals over independent replicates and the one verdict rule.

A replicate is a training seed, or a data draw where a table holds several (its seeds
averaged within the draw; :func:`units`). Every statistic here is computed once per
replicate; :class:`Estimate` keeps those values, so an interval can be had at any level
(the book's Bonferroni column recomputes them at 1 - 0.05 / n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Below this, a difference between interval ends is float rounding, not evidence.
ROUNDING = 1e-12


def t_quantile(q: float, df: int) -> float:
    """The q-quantile (q > 0.5) of Student's t with ``df`` degrees of freedom, by integrating
    its density (no scipy needed): 2.776 for q = 0.975, df = 4. Closed forms for df = 1 and
    2, whose tails reach past the grid at Bonferroni levels."""
    if df == 1:
        return math.tan(math.pi * (q - 0.5))
    if df == 2:
        return (2 * q - 1) / math.sqrt(2 * q * (1 - q))
    x = np.linspace(0.0, 200.0, 400_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    cdf = 0.5 + np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
    return float(np.interp(q, cdf, x))


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided t confidence interval over independent ``values``."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()) if len(v) else float("nan"), float("nan"), float("nan")
    half = t_quantile(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


@dataclass(frozen=True)
class Estimate:
    """One statistic's value per independent replicate."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    def interval(self, level: float = 0.95) -> tuple[float, float, float]:
        """(mean, low, high): the mean and its two-sided t interval at ``level``."""
        return mean_ci(self.values, level)

    def scaled(self, factor: float) -> Estimate:
        return Estimate(tuple(v * factor for v in self.values))


#: The expert whose ECE the dependence study reads: its expert 0, whose own quality stays
#: fixed while the others' p varies (the random expert; with human experts, a plain crowd member).
FIXED_EXPERT = "fixed"


def select_experts(table: pd.DataFrame, which: str | None) -> pd.DataFrame:
    """The rows of some experts: all (None), the :data:`FIXED_EXPERT` (expert 0), or those
    of one expert kind."""
    if which is None:
        return table
    if which == FIXED_EXPERT:
        return table[table["expert"] == 0]
    return table[table["expert_kind"] == which]


def units(table: pd.DataFrame) -> list[str]:
    """The independent replicates of a table: data draws when it holds several (their seeds
    are averaged within a draw), else training seeds."""
    several = "data_seed" in table and table["data_seed"].nunique(dropna=True) > 1
    return ["data_seed"] if several else ["seed"]


def _per_configuration(
    table: pd.DataFrame, method: str | None, x: str, y: str, expert_kind: str | None
) -> pd.DataFrame:
    """Mean of ``y`` over experts per (replicate, x[, method]): each configuration once."""
    d = table if method is None else table[table["method"] == method]
    d = select_experts(d, expert_kind)
    by = [*units(table), x] + (["method"] if method is None else [])
    return d.groupby(by, dropna=False)[y].mean().reset_index()


def fitted_change(table: pd.DataFrame, method: str, x: str, y: str = "ece", *, expert_kind: str | None = None):
    """The least-squares line of ``y`` (mean over experts) against ``x``, fitted per
    replicate, as its rise over the grid: slope x (largest x - smallest x), in ``y``'s units
    ("ECE(8) - ECE(1)" read off the fitted line)."""
    per_x = _per_configuration(table, method, x, y, expert_kind)
    by = units(table)
    span = float(per_x[x].max() - per_x[x].min())
    slopes = [np.polyfit(g[x], g[y], 1)[0] for _, g in per_x.groupby(by) if g[x].nunique() > 1]
    return Estimate(tuple(float(s) * span for s in slopes))


def paired_gap(table: pd.DataFrame, a: str, b: str, y: str, x: str, *, expert_kind: str | None = None) -> Estimate:
    """``a`` minus ``b`` on ``y``, paired within each replicate (same seeds, data and grid),
    averaged over the grid ``x`` with each configuration weighted once (not once per expert)."""
    per = _per_configuration(table, None, x, y, expert_kind).pivot_table(
        index=[*units(table), x], columns="method", values=y
    )
    gaps = (per[a] - per[b]).dropna().groupby(level=units(table)).mean()
    return Estimate(tuple(float(v) for v in gaps))


def value_at(
    table: pd.DataFrame,
    method: str,
    x: str,
    at,
    y: str = "ece",
    *,
    baseline_at=None,
    level: float = 0.0,
    expert_kind: str | None = None,
    sign: float = 1.0,
) -> Estimate:
    """``sign`` x (``y`` of ``method`` at ``x == at`` minus its value at ``x == baseline_at``
    in the same replicate, or else minus ``level``), per replicate."""
    per = _per_configuration(table, method, x, y, expert_kind).pivot_table(index=units(table), columns=x, values=y)
    base = level if baseline_at is None else per[baseline_at]
    return Estimate(tuple(float(v) for v in (sign * (per[at] - base)).dropna()))


# ------------------------------------------------------------------ the verdict rule

DIRECTION_VERDICTS = (
    "reproduced",
    "direction reproduced, size unresolved",
    "same direction, smaller",
    "not reproduced",
    "reversed",
    "inconclusive",
)
FLAT_VERDICTS = ("holds", "fails", "inconclusive")
LEVEL_VERDICTS = ("reproduced", "not reproduced", "inconclusive")


def verdict(kind: str, low: float, high: float, margin: float) -> str:
    """The verdict on a claim from a 95% interval [low, high] of its statistic, oriented so
    that the paper's direction is positive, and a size that matters ``margin`` (> 0).

    - ``direction``: above ``margin`` -> reproduced; above 0 and containing ``margin`` ->
      direction reproduced, size unresolved; between 0 and ``margin`` -> same direction,
      smaller; containing 0 but below ``margin`` -> not reproduced (the paper's effect is
      ruled out); below 0 -> reversed; containing both 0 and ``margin`` -> inconclusive.
    - ``flat`` (an equivalence test): inside (-margin, margin) -> holds; wholly outside
      [-margin, margin] -> fails; else inconclusive.
    - ``level`` (the statistic is the value minus the paper's level): above 0 -> reproduced;
      below 0 -> not reproduced; else inconclusive.

    An interval that cannot be computed (one replicate) is inconclusive. Widening an
    interval about its centre can only move a verdict towards inconclusive, never away.
    """
    if margin <= 0:
        raise ValueError(f"the margin must be positive, got {margin}")
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > high:
        raise ValueError(f"an interval's low end is above its high end: [{low}, {high}]")
    zero_in = low <= ROUNDING and high >= -ROUNDING
    if kind == "direction":
        margin_in = low <= margin <= high
        if zero_in and margin_in:
            return "inconclusive"
        if zero_in:
            return "not reproduced"
        if high < 0:
            return "reversed"
        if low > margin:
            return "reproduced"
        return "direction reproduced, size unresolved" if margin_in else "same direction, smaller"
    if kind == "flat":
        if -margin < low and high < margin:
            return "holds"
        if low > margin or high < -margin:
            return "fails"
        return "inconclusive"
    if kind == "level":
        if zero_in:
            return "inconclusive"
        return "reproduced" if low > 0 else "not reproduced"
    raise ValueError(f"unknown kind of claim {kind!r} (expected direction, flat or level)")
