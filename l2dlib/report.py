"""Numbers the book states about each study, computed from the result tables.

The notebooks glue these into their prose, so no number in the text is typed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .profiles import get_profile
from .studies import AXES

#: How each method is named in tables, sentences and legends.
LABELS = {"softmax": "Softmax", "ova": "OvA", "asymmetric_softmax": "Asymmetric softmax"}


def per_seed(table: pd.DataFrame, x: str, y: str, *, expert_kind: str | None = None) -> pd.DataFrame:
    """Mean of ``y`` over experts for each (method, replicate, x), the replicate being the
    training seed, or the data draw where the table holds several (see :func:`units`);
    optionally one kind of expert. The replicate column is named ``seed`` either way."""
    unit = units(table)[0]
    if expert_kind is not None:
        table = table[table["expert_kind"] == expert_kind]
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


def trend(table: pd.DataFrame, x: str, y: str = "ece", *, expert_kind: str | None = None) -> dict:
    """Per method: value at the smallest and largest x, and the least-squares slope over x
    (fitted per replicate, see :func:`per_seed`) with its 95% interval over replicates."""
    seeds = per_seed(table, x, y, expert_kind=expert_kind)
    out = {}
    for method, d in seeds.groupby("method"):
        slopes = [np.polyfit(g[x], g[y], 1)[0] for _, g in d.groupby("seed") if g[x].nunique() > 1]
        means = d.groupby(x)[y].mean()
        slope, lo, hi = mean_ci(slopes) if slopes else (float("nan"),) * 3
        out[method] = {
            "first": float(means.iloc[0]),
            "last": float(means.iloc[-1]),
            "slope": slope,
            "low": lo,
            "high": hi,
        }
    return out


def describe_trend(t: dict, *, per: str) -> str:
    """'rises' / 'falls' / 'stays flat within noise' by whether the slope's 95% interval
    excludes 0 (the rule of :func:`verdict`)."""
    slope, lo, hi = t["slope"], t["low"], t["high"]
    if not np.isfinite(slope):
        return "cannot be judged (one point)"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{'rises' if slope > 0 else 'falls'} ({slope:+.4f} per {per}; one seed, no interval)"
    interval = f"{slope:+.4f} per {per}, 95% interval [{lo:+.4f}, {hi:+.4f}]"
    if lo > 1e-12:  # 1e-12: rounding, not a trend
        return f"rises ({interval})"
    if hi < -1e-12:
        return f"falls ({interval})"
    return f"stays flat within noise ({interval})"


ECE_VARIANTS = {
    "ece_10": "ECE, 10 bins",
    "ece": "ECE, 20 bins (the paper's)",
    "ece_30": "ECE, 30 bins",
    "ece_adaptive": "adaptive ECE, 20 equal-mass bins",
    "ece_uncapped": "ECE, 20 bins, estimates not capped",
    "brier": "Brier score (capped estimates)",
}


def method_ranking(
    table: pd.DataFrame, *, expert_kind: str | None = None, columns: dict[str, str] = ECE_VARIANTS
) -> pd.DataFrame:
    """Mean over seeds (of the mean over experts and configurations) of each calibration
    metric per method, and the methods ranked from best (lowest) to worst."""
    if expert_kind is not None:
        table = table[table["expert_kind"] == expert_kind]
    per_seed_means = table.groupby(["method", "seed"])[list(columns)].mean()
    means = per_seed_means.groupby("method").mean().T
    means.index = [columns[c] for c in means.index]
    means["ranking (best first)"] = [" < ".join(row.sort_values().index) for _, row in means.iterrows()]
    return means


def ranking_is_stable(ranking: pd.DataFrame, rows: list[str]) -> bool:
    """Whether the given rows of :func:`method_ranking` rank the methods identically."""
    return ranking.loc[rows, "ranking (best first)"].nunique() == 1


def trend_sentences(table: pd.DataFrame, x: str, *, expert_kind: str | None = None, per: str, x_name: str) -> str:
    """One sentence per method: the mean ECE at the smallest and largest ``x`` and the
    verdict of :func:`describe_trend`."""
    out = []
    lo, hi = table[x].min(), table[x].max()
    for method, t in trend(table, x, expert_kind=expert_kind).items():
        out.append(
            f"{LABELS.get(method, method)}: {t['first']:.4f} at {x_name} = {lo:g}, "
            f"{t['last']:.4f} at {x_name} = {hi:g}; it {describe_trend(t, per=per)}."
        )
    return " ".join(out)


# CIFAR-10 profiles a page shows by default, in order of precedence: the paper's network and
# schedule, then the fast GPU network, then the CPU profile (frozen features + L2D heads).
CIFAR_SHOWN = ("faithful", "paper", "frozen_features")


def shown_cifar_profile(results_dir, studies, profile: str | None = None) -> str:
    """``profile`` if given; else the first of :data:`CIFAR_SHOWN` whose tables of all
    ``studies`` exist (GPU results take precedence), else the CPU profile."""
    from .results import find_table

    if profile is not None:
        get_profile("cifar10", profile)
        return profile
    for candidate in CIFAR_SHOWN:
        if all(find_table(results_dir, "cifar10", s, candidate)[0] is not None for s in studies):
            return candidate
    return CIFAR_SHOWN[-1]


def data_title(info: dict | None, dataset: str, profile: str) -> str:
    """A panel title's data line: MoG's data label and profile; for CIFAR-10 whether the data
    is canonical and what the model is (the profile's description)."""
    if dataset == "mog":
        return f"{info['data_label']} ({profile})" if info else f"mixture of Gaussians ({profile})"
    label = info["data_label"] if info else "CIFAR-10"
    data = "CIFAR-10, NON-CANONICAL JPEG copy" if "NON-CANONICAL" in label else label.split(";")[0]
    return f"{data}\n{get_profile(dataset, profile).description}"


def missing_results(study: str, dataset: str, profile: str) -> str:
    """Markdown saying that a study has no results for a profile, and the command that makes them."""
    command = f"python -m l2dlib run {study} --dataset {dataset} --profile {profile}"
    if get_profile(dataset, profile).needs_gpu:
        return f"No {dataset} results for profile `{profile}` exist yet: they need a GPU (`{command} --device cuda`)."
    return f"No {dataset} results for profile `{profile}` exist yet (`{command}`)."


def figure_block(table: pd.DataFrame | None, path: str, name: str | None, alt: str, caption: str, missing: str) -> str:
    """A page's MyST figure of committed results; where ``table`` is None, a note saying what
    is missing and how to make it instead of a figure of empty frames (the label ``name``
    stays, so links to the figure still land on the note)."""
    target = f"({name})=\n" if name else ""
    if table is None:
        return f"{target}:::{{admonition}} Not drawn: no results yet\n:class: note\n{missing}\n:::\n"
    label = f":name: {name}\n" if name else ""
    # A width makes Sphinx link the image to its full-resolution file.
    return f"```{{figure}} {path}\n{label}:width: 100%\n:alt: {alt}\n\n{caption}\n```\n"


def describe_results(
    study: str, table: pd.DataFrame | None, info: dict | None, profile: str, dataset: str = "cifar10"
) -> str:
    """Markdown for a page showing committed results: what data, profile, seeds and device
    made them and each method's ECE trend; or, when ``table`` is None, why there are none."""
    if table is None:
        return missing_results(study, dataset, profile)
    axis = AXES[study]
    label = info["data_label"]
    data = (
        label
        if isinstance(label, str)
        else f"{len(label)} draws of our MoG generator (data seeds {info['data_seeds']})"
    )
    model = get_profile(info["dataset"], profile).description
    model = f" ({model})" if model and info["dataset"] == "cifar10" else ""
    made = f"Data: {data}; profile `{profile}`{model}, seeds {info['seeds']}, device {info['device']}. "
    return made + trend_sentences(table, axis.column, expert_kind=axis.expert_kind, per=axis.per, x_name=axis.symbol)


def below_all_others(table: pd.DataFrame, method: str, column: str = "classifier_accuracy") -> dict:
    """How many of ``method``'s models score below every model of the other methods on a
    per-model ``column`` (e.g. a classifier that failed to train): count, models, this
    method's worst value and the other methods' worst value."""
    per_model = table.groupby(["method", "seed", "num_experts", "expert_p"], dropna=False)[column].first()
    mine = per_model.loc[method]
    worst_other = float(per_model.drop(index=method, level="method").min())
    return {
        "count": int((mine < worst_other).sum()),
        "models": int(len(mine)),
        "worst": float(mine.min()),
        "worst_other": worst_other,
    }


def describe_failures(table: pd.DataFrame, method: str, *, margin: float = 0.01) -> str:
    """A sentence on how many of ``method``'s classifiers fell below every other method's
    model; called a training problem only when its worst is ``margin`` below theirs."""
    if method not in set(table["method"]) or table["method"].nunique() < 2:
        return f"(This comparison needs {method} and at least one other method in `methods`.)"
    f = below_all_others(table, method)
    if f["count"] == 0:
        return (
            f"None of the {f['models']} {method} models has a classifier less accurate than every "
            f"model of the other methods (the worst of those reaches {f['worst_other']:.3f})."
        )
    text = (
        f"In {f['count']} of its {f['models']} models, the {method} classifier is less accurate than "
        f"every model of the other methods (its worst reaches {f['worst']:.3f}, theirs {f['worst_other']:.3f})"
    )
    if f["worst"] < f["worst_other"] - margin:
        return text + ": it trains less reliably here."
    return text + f", by less than {margin:.2f}: no sign of a training problem."


def study_numbers(study: str, table: pd.DataFrame) -> dict[str, float | int | str]:
    """The numbers a study page glues into its prose: per method the ECE at the first and
    last x, the trend's verdict and the mean system accuracy; the x range; the seed count."""
    axis = AXES[study]
    out: dict[str, float | int | str] = {}
    for method, t in trend(table, axis.column, "ece", expert_kind=axis.expert_kind).items():
        out[f"{method}_first"], out[f"{method}_last"] = t["first"], t["last"]
        out[f"{method}_verdict"] = describe_trend(t, per=axis.per)
        out[f"{method}_acc"] = float(table.loc[table["method"] == method, "system_accuracy"].mean())
    symbol = axis.symbol.lower()
    out[f"{symbol}_first"] = table[axis.column].min().item()
    out[f"{symbol}_last"] = table[axis.column].max().item()
    out["n_seeds"] = int(table["seed"].nunique())
    if "softmax" in set(table["method"]):
        out["frac_above_1"] = float(table.loc[table["method"] == "softmax", "frac_estimates_above_1"].mean())
    return out


def degeneracy_numbers(increasing: pd.DataFrame, dependence: pd.DataFrame) -> dict[str, float]:
    """How often the softmax estimate exceeds 1 (largest mean over seeds along each study's
    axis) and how much capping lowers its ECE (mean over rows), in both MoG studies."""
    out = {}
    for name, table, x in (("inc", increasing, "num_experts"), ("dep", dependence, "expert_p")):
        sm = table[table["method"] == "softmax"]
        out[f"frac_{name}_max"] = float(sm.groupby(x)["frac_estimates_above_1"].mean().max())
        out[f"cap_gap_{name}"] = float((sm["ece_uncapped"] - sm["ece"]).mean())
    return out


BINNINGS = ("ece_10", "ece", "ece_30", "ece_adaptive")


def describe_stability(ranking: pd.DataFrame) -> str:
    """Whether :func:`method_ranking` ranks the methods the same under every binning."""
    if ranking_is_stable(ranking, [ECE_VARIANTS[c] for c in BINNINGS]):
        return "the same under every binning"
    return "not the same under every binning"


def figure1_tables(results_dir, profiles: dict[str, str | None]) -> tuple[dict, dict[str, str], list[str]]:
    """What Figure 1 draws: per (dataset, study) the table on disk or None; per dataset the
    panel title's data line (:func:`data_title`); and a note for each missing table. A
    CIFAR-10 profile of None is chosen by :func:`shown_cifar_profile`."""
    from .results import find_table

    tables, labels, notes = {}, {}, []
    studies = ("increasing_experts", "expert_dependence")
    for dataset, profile in profiles.items():
        if dataset == "cifar10":
            profile = shown_cifar_profile(results_dir, studies, profile)
        labels[dataset] = data_title(None, dataset, profile)
        for study in studies:
            table, info = find_table(results_dir, dataset, study, profile)
            tables[dataset, study] = table
            if table is not None:
                labels[dataset] = data_title(info, dataset, profile)
            elif (note := missing_results(study, dataset, profile)) not in notes:
                notes.append(note)
    return tables, labels, notes


# ------------------------------------------------------------------ claims and verdicts


def t_quantile(q: float, df: int) -> float:
    """The q-quantile (q > 0.5) of Student's t with ``df`` degrees of freedom, by integrating
    its density (no scipy needed): 2.776 for q = 0.975, df = 4."""
    x = np.linspace(0.0, 200.0, 400_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    cdf = 0.5 + np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
    return float(np.interp(q, cdf, x))


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided t confidence interval over independent ``values``."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan"), float("nan")
    half = t_quantile(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def units(table: pd.DataFrame) -> list[str]:
    """The independent replicates of a table: data draws when it holds several (their seeds
    are averaged within a draw), else training seeds."""
    several = "data_seed" in table and table["data_seed"].nunique(dropna=True) > 1
    return ["data_seed"] if several else ["seed"]


def slope_ci(table: pd.DataFrame, method: str, x: str, y: str = "ece", *, expert_kind: str | None = None) -> tuple:
    """The least-squares slope of ``y`` (mean over experts) against ``x`` for ``method``:
    one slope per replicate (see :func:`units`), their mean and 95% interval."""
    d = table[table["method"] == method]
    if expert_kind is not None:
        d = d[d["expert_kind"] == expert_kind]
    by = units(table)
    per_x = d.groupby([*by, x])[y].mean().reset_index()
    slopes = [np.polyfit(g[x], g[y], 1)[0] for _, g in per_x.groupby(by) if g[x].nunique() > 1]
    return mean_ci(slopes)


def paired_difference(table: pd.DataFrame, a: str, b: str, y: str, *, expert_kind: str | None = None) -> tuple:
    """``a`` minus ``b`` on ``y`` (mean over experts and configurations), paired within each
    replicate (same seeds, data and grid): the mean difference and its 95% interval."""
    d = table if expert_kind is None else table[table["expert_kind"] == expert_kind]
    per = d.groupby(["method", *units(table)])[y].mean().unstack(0)
    return mean_ci((per[a] - per[b]).dropna())


def verdict(estimate: tuple, expect: str) -> str:
    """'holds', 'fails' or 'within noise' for an (estimate, low, high) interval and the sign
    a claim expects ('positive', 'negative' or 'zero'). A sign claim holds when the interval
    excludes zero on its side, fails when it excludes zero on the other, and is within noise
    otherwise; a 'stays flat' claim holds when the interval contains zero."""
    _, lo, hi = estimate
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "within noise"
    if expect == "zero":
        return "holds" if lo <= 1e-12 and hi >= -1e-12 else "fails"  # 1e-12: rounding
    if lo > 0:
        return "holds" if expect == "positive" else "fails"
    if hi < 0:
        return "holds" if expect == "negative" else "fails"
    return "within noise"


def value_ci(
    table: pd.DataFrame,
    method: str,
    x: str,
    at,
    y: str = "ece",
    *,
    baseline_at=None,
    threshold: float = 0.0,
    expert_kind: str | None = None,
) -> tuple:
    """``y`` (mean over experts) of ``method`` at ``x == at``, minus its value at
    ``x == baseline_at`` in the same replicate (paired) or else minus ``threshold``: mean
    and 95% interval over replicates (see :func:`units`)."""
    d = table[table["method"] == method]
    if expert_kind is not None:
        d = d[d["expert_kind"] == expert_kind]
    per = d.groupby([*units(table), x])[y].mean().unstack(x)
    return mean_ci((per[at] - (threshold if baseline_at is None else per[baseline_at])).dropna())


class _Claims(list):
    """Rows of a claims table: claim, the paper, estimate, 95% interval, unit, verdict."""

    def add(self, claim: str, paper: str, unit: str, est: tuple, expect: str) -> None:
        self.append(
            {
                "claim": claim,
                "the paper": paper,
                "estimate": est[0],
                "95% interval": (est[1], est[2]),
                "unit": unit,
                "verdict": verdict(est, expect),
            }
        )


def claims(
    increasing: pd.DataFrame | None, dependence: pd.DataFrame | None, authors: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The paper's claims on one dataset, each with its estimate, 95% interval and verdict;
    with ``authors`` (the authors_experts study) the J-trend claims once more with the
    expert of the authors' MoG script."""
    rows = _Claims()
    add = rows.add

    for table, suffix in ((increasing, "the number of experts J"), (authors, "J, the authors' expert")):
        if table is None:
            continue
        for method, expect, paper in (("softmax", "positive", "rises"), ("ova", "zero", "stays flat")):
            add(
                f"{LABELS[method]} ECE against {suffix}",
                paper,
                "slope per expert",
                slope_ci(table, method, "num_experts"),
                expect,
            )
        if table is increasing:
            add(
                "OvA's system accuracy above softmax's (increasing experts)",
                "slightly higher",
                "difference",
                paired_difference(increasing, "ova", "softmax", "system_accuracy"),
                "positive",
            )
            add(
                "Softmax ECE above OvA's (increasing experts)",
                "higher",
                "difference",
                paired_difference(increasing, "softmax", "ova", "ece"),
                "positive",
            )
    if dependence is not None:
        for method, expect, paper in (("softmax", "positive", "rises"), ("ova", "zero", "stays flat")):
            add(
                f"{LABELS[method]} ECE of the random expert against the others' quality p",
                paper,
                "slope per unit of p",
                slope_ci(dependence, method, "expert_p", expert_kind="random"),
                expect,
            )
    return pd.DataFrame(rows)


RANDOM_ECE_CLAIM = 0.40  # "reaching values above 40%" (Section 5.3, CIFAR-10 and MoG)


def cifar_claims(
    increasing: pd.DataFrame | None, dependence: pd.DataFrame | None, specialized: pd.DataFrame | None
) -> pd.DataFrame:
    """The paper's CIFAR-10 claims (Sections 5.2-5.4), each with its estimate, 95% interval
    over seeds and verdict: the claims of :func:`claims`, the dip of the softmax ECE at two
    experts, the random expert's softmax ECE above 40% at the best other experts, and the
    specialists' ECE trends and accuracy edge."""
    rows = _Claims(claims(increasing, dependence).to_dict("records"))
    if increasing is not None and {1, 2} <= set(increasing["num_experts"]):
        rows.add(
            "Softmax ECE at J = 2 below J = 1 (the dip at two experts)",
            "dips",
            "difference",
            value_ci(increasing, "softmax", "num_experts", 2, baseline_at=1),
            "negative",
        )
    if dependence is not None:
        top = float(dependence["expert_p"].max())
        rows.add(
            f"Softmax ECE of the random expert at p = {top:g}, minus {RANDOM_ECE_CLAIM:.0%}",
            f"above {RANDOM_ECE_CLAIM:.0%}",
            "ECE",
            value_ci(dependence, "softmax", "expert_p", top, threshold=RANDOM_ECE_CLAIM, expert_kind="random"),
            "positive",
        )
    if specialized is not None:
        for method, expect, paper in (("softmax", "positive", "accumulates error"), ("ova", "zero", "stable")):
            rows.add(
                f"{LABELS[method]} ECE against the number of specialists",
                paper,
                "slope per expert",
                slope_ci(specialized, method, "num_experts"),
                expect,
            )
        rows.add(
            "OvA's system accuracy above softmax's (specialists)",
            "slight edge",
            "difference",
            paired_difference(specialized, "ova", "softmax", "system_accuracy"),
            "positive",
        )
    return pd.DataFrame(rows)


def format_claims(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`claims` for reading: the interval as text, four decimals."""
    out = table.copy()
    out["estimate"] = [
        f"{e:+.4f} [{lo:+.4f}, {hi:+.4f}]" for e, (lo, hi) in zip(table["estimate"], table["95% interval"])
    ]
    return out.drop(columns=["95% interval"]).rename(columns={"estimate": "estimate [95% interval]"})


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


def by_claim(regimes: dict[str, pd.DataFrame | None]) -> list[tuple[str, str, dict]]:
    """The claims any regime judges, in order: (claim, the paper's statement, per regime with
    results its :func:`claims` row, or None where it does not judge that claim)."""
    indexed = {name: c.set_index("claim") for name, c in regimes.items() if c is not None and len(c)}
    out = []
    for claim in dict.fromkeys(claim for c in indexed.values() for claim in c.index):
        paper = next(c.loc[claim, "the paper"] for c in indexed.values() if claim in c.index)
        out.append((claim, paper, {name: c.loc[claim] if claim in c.index else None for name, c in indexed.items()}))
    return out


def claims_markdown(regimes: dict[str, pd.DataFrame], dataset: str = "MoG") -> str:
    """One Markdown table: claim | the paper | per regime, the estimate, its 95% interval
    and the verdict (the regimes' :func:`claims`, which list the same claims in order)."""
    rows = by_claim(regimes)
    if not rows:
        return f"*(No {dataset} results to judge the claims by.)*"
    names = list(rows[0][2])
    lines = ["| claim | the paper | " + " | ".join(names) + " |", "|" + " --- |" * (2 + len(names))]
    for claim, paper, judged in rows:
        cells = []
        for r in judged.values():
            if r is None:
                cells.append("-")
                continue
            lo, hi = r["95% interval"]
            cells.append(f"{r['estimate']:+.4f} [{lo:+.4f}, {hi:+.4f}] {r['unit']}: **{r['verdict']}**")
        lines.append(f"| {claim} | {paper} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


REGIMES = {  # MoG profile -> how the claim table names it
    "paper": "the paper's data, our schedule",
    "quick": "the paper's data, our schedule (3 seeds)",
    "faithful": "the paper's data, the authors' schedule",
    "draws": "10 draws of our generator, our schedule",
    "smoke": "smoke test data",
}


def mog_claims(results_dir, profile: str) -> pd.DataFrame | None:
    """:func:`claims` for one MoG profile (None where none of its tables exist)."""
    from .results import find_table

    studies = ("increasing_experts", "expert_dependence", "authors_experts")
    inc, dep, authors = (find_table(results_dir, "mog", s, profile)[0] for s in studies)
    return None if inc is None and dep is None else claims(inc, dep, authors)


def claims_by_regime(results_dir, profiles) -> dict[str, pd.DataFrame]:
    """:func:`claims` for each MoG profile whose tables exist (missing ones are left out)."""
    judged = {p: mog_claims(results_dir, p) for p in dict.fromkeys(profiles)}
    return {f"{REGIMES.get(p, p)} (`{p}`)": c for p, c in judged.items() if c is not None}


CIFAR_STUDIES = ("increasing_experts", "expert_dependence", "specialized_experts")


def shown_cifar_claims(results_dir, profile: str | None = None) -> tuple[str, pd.DataFrame | None]:
    """The CIFAR-10 profile shown (see :func:`shown_cifar_profile`) and its
    :func:`cifar_claims` (None where none of its tables exist)."""
    from .results import find_table

    profile = shown_cifar_profile(results_dir, CIFAR_STUDIES, profile)
    tables = [find_table(results_dir, "cifar10", s, profile)[0] for s in CIFAR_STUDIES]
    return profile, None if all(t is None for t in tables) else cifar_claims(*tables)


def cifar_claims_by_profile(results_dir, profile: str | None = None) -> dict[str, pd.DataFrame]:
    """:func:`shown_cifar_claims` keyed by the profile's description; empty where none of its
    tables exist."""
    profile, judged = shown_cifar_claims(results_dir, profile)
    if judged is None:
        return {}
    return {f"CIFAR-10, {get_profile('cifar10', profile).description} (`{profile}`)": judged}


SHORT_REGIMES = {  # (dataset, profile) -> its column in the findings table
    ("mog", "paper"): "MoG, our schedule",
    ("mog", "quick"): "MoG, our schedule (3 seeds)",
    ("mog", "faithful"): "MoG, the authors' schedule",
    ("mog", "draws"): "MoG, 10 data draws",
    ("cifar10", "frozen_features"): "CIFAR-10, CPU features",
    ("cifar10", "paper"): "CIFAR-10, fast ResNet",
    ("cifar10", "faithful"): "CIFAR-10, WideResNet",
}


def findings(results_dir, mog_profiles, cifar_profile: str | None = None) -> pd.DataFrame:
    """The book's first table: one row per claim of the paper, with its statement and the
    verdict under each regime whose tables exist (the MoG profiles, then the CIFAR-10
    profile shown); "-" where a regime does not test a claim."""
    regimes = {("mog", p): mog_claims(results_dir, p) for p in dict.fromkeys(mog_profiles)}
    shown, judged = shown_cifar_claims(results_dir, cifar_profile)
    regimes["cifar10", shown] = judged
    rows = by_claim({SHORT_REGIMES.get(k, ", ".join(k)): c for k, c in regimes.items()})
    names = list(rows[0][2]) if rows else []
    table = [
        {"claim": claim, "the paper": paper} | {n: "-" if r is None else r["verdict"] for n, r in judged.items()}
        for claim, paper, judged in rows
    ]
    return pd.DataFrame(table, columns=["claim", "the paper", *names])


def findings_html(table: pd.DataFrame) -> str:
    """:func:`findings` as an HTML table in the theme's style (pasted into the introduction:
    only HTML crosses pages), in the theme's container that scrolls sideways on a phone."""
    if table.empty:
        return "<p><em>No results to judge the paper's claims by.</em></p>"
    html = table.to_html(index=False, border=0, classes="table", escape=True).replace(' style="text-align: right;"', "")
    return f'<div class="pst-scrollable-table-container">{html}</div>'


def provenance_dropdown(info: dict | None, what: str) -> str:
    """A collapsed MyST dropdown under a figure: which table, profile, seeds, data, commit,
    device and date made it (empty where there is no table)."""
    if info is None:
        return ""
    label = info["data_label"]
    data = label if isinstance(label, str) else f"{len(label)} draws of our MoG generator"
    dirty = info["git_commit"].endswith("+dirty")
    rows = {
        "table": f"`{info['dataset']}/{info['study']}-{info['profile']}.csv`",
        "profile": f"`{info['profile']}`, seeds {', '.join(map(str, info['seeds']))}",
        "data": data,
        "commit": f"`{info['git_commit'][:12]}`" + " (with uncommitted changes)" * dirty,
        "device": info["device"],
        "created": info["created"],
        "configurations": f"{info['num_configs']} ({info['num_computed']} computed by the last run)",
    }
    body = "\n".join(f"- **{k}**: {v}" for k, v in rows.items())
    return f":::{{dropdown}} Provenance of {what}\n{body}\n:::\n"
