"""Numbers the book states about each study, computed from the result tables.

The notebooks glue these into their prose, so no number in the text is typed by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import claims, stats
from .profiles import get_profile
from .studies import AXES, IDENTITY

#: How each method is named in tables, sentences and legends.
LABELS = {"softmax": "Softmax", "ova": "OvA", "asymmetric_softmax": "Asymmetric softmax"}


def per_seed(table: pd.DataFrame, x: str, y: str, *, expert_kind: str | None = None) -> pd.DataFrame:
    """Mean of ``y`` over experts for each (method, replicate, x), the replicate being the
    training seed, or the data draw where the table holds several (see
    :func:`l2dlib.stats.units`); optionally one kind of expert. The replicate column is
    named ``seed`` either way."""
    unit = stats.units(table)[0]
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


def describe_change(study: str, dataset: str, table: pd.DataFrame, method: str) -> str:
    """How ``method``'s ECE changes along the study's axis: the fitted change over the grid
    with its 95% interval, and, where the paper makes a claim on it, the paper's effect, *m*
    and the verdict of the claim registry (:mod:`l2dlib.claims`)."""
    axis = AXES[study]
    claim = next(
        (c for c in claims.CLAIMS if (c.dataset, c.study, c.method, c.statistic) == (dataset, study, method, "change")),
        None,
    )
    lo, hi = table[axis.column].min(), table[axis.column].max()
    if claim is not None and claim.applies(table):
        row = claims.judge(claim, table)
        paper = "" if claim.paper_effect is None else f"the paper: {claim.paper_effect:+.4f}; "
        sign = "±" if claim.kind == "flat" else ""
        return (
            f"changes by {_interval(row)} from {axis.symbol} = {lo:g} to {hi:g} "
            f"({paper}*m* = {sign}{claim.margin:.4f}): **{row['verdict']}**"
        )
    est = stats.fitted_change(table, method, axis.column, expert_kind=axis.expert_kind)
    if est.n == 0:
        return "cannot be judged (one point)"
    mean, low, high = est.interval()
    interval = f"[{low:+.4f}, {high:+.4f}]" if np.isfinite(low) else "(one replicate, no interval)"
    return f"changes by {mean:+.4f} {interval} from {axis.symbol} = {lo:g} to {hi:g} (no claim of the paper)"


ECE_VARIANTS = {
    "ece_10": "ECE, 10 bins",
    "ece": "ECE, 20 bins (the paper's)",
    "ece_30": "ECE, 30 bins",
    "ece_adaptive": "adaptive ECE, 20 equal-mass bins",
    "smooth_ece": "smooth ECE (no bins)",
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


def trend_sentences(study: str, dataset: str, table: pd.DataFrame) -> str:
    """One sentence per method: the mean ECE at the smallest and largest point of the
    study's axis and :func:`describe_change`."""
    axis = AXES[study]
    means = mean_by(table, axis.column, "ece", expert_kind=axis.expert_kind)
    lo, hi = means.index.min(), means.index.max()
    return " ".join(
        f"{LABELS.get(m, m)}: {means.loc[lo, m]:.4f} at {axis.symbol} = {lo:g}, {means.loc[hi, m]:.4f} at "
        f"{axis.symbol} = {hi:g}; it {describe_change(study, dataset, table, m)}."
        for m in LABELS
        if m in means.columns
    )


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
    label = info["data_label"]
    data = (
        label
        if isinstance(label, str)
        else f"{len(label)} draws of our MoG generator (data seeds {info['data_seeds']})"
    )
    model = get_profile(info["dataset"], profile).description
    model = f" ({model})" if model and info["dataset"] == "cifar10" else ""
    made = f"Data: {data}; profile `{profile}`{model}, seeds {info['seeds']}, device {info['device']}. "
    return made + trend_sentences(study, info["dataset"], table)


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


def study_numbers(study: str, table: pd.DataFrame, dataset: str = "mog") -> dict[str, float | int | str]:
    """The numbers a study page glues into its prose: per method the ECE at the first and
    last x, :func:`describe_change` and the mean system accuracy; the x range; the seed count."""
    axis = AXES[study]
    means = mean_by(table, axis.column, "ece", expert_kind=axis.expert_kind)
    out: dict[str, float | int | str] = {}
    for method in means.columns:
        out[f"{method}_first"], out[f"{method}_last"] = float(means[method].iloc[0]), float(means[method].iloc[-1])
        out[f"{method}_verdict"] = describe_change(study, dataset, table, method)
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
            table, info = find_table(results_dir, dataset, study, profile, from_bins=True)
            tables[dataset, study] = table
            if table is not None:
                labels[dataset] = data_title(info, dataset, profile)
            elif (note := missing_results(study, dataset, profile)) not in notes:
                notes.append(note)
    return tables, labels, notes


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


# ------------------------------------------------------------------ claims and verdicts
# Every verdict shown comes from the registry in l2dlib.claims, judged on the tables found.

REGIMES = {  # MoG profile -> how the claim table names it
    "paper": "the paper's data, our schedule",
    "quick": "the paper's data, our schedule (3 seeds)",
    "faithful": "the paper's data, the authors' schedule",
    "draws": "10 draws of our generator, our schedule",
    "smoke": "smoke test data",
}
SHORT_REGIMES = {  # (dataset, profile) -> its column in the findings table
    ("mog", "paper"): "MoG, our schedule",
    ("mog", "quick"): "MoG, our schedule (3 seeds)",
    ("mog", "faithful"): "MoG, the authors' schedule",
    ("mog", "draws"): "MoG, 10 data draws",
    ("cifar10", "frozen_features"): "CIFAR-10, CPU features",
    ("cifar10", "paper"): "CIFAR-10, fast ResNet",
    ("cifar10", "faithful"): "CIFAR-10, WideResNet",
}
MOG_STUDIES = ("increasing_experts", "expert_dependence", "authors_experts")
CIFAR_STUDIES = ("increasing_experts", "expert_dependence", "specialized_experts")


def profile_tables(results_dir, dataset: str, profile: str, *, from_bins: bool = False) -> dict | None:
    """The tables of the studies the claims of ``dataset`` read (study -> table or None) for
    one profile; None where none exist. ``from_bins``: see :func:`l2dlib.results.find_table`."""
    from .results import find_table

    studies = MOG_STUDIES if dataset == "mog" else CIFAR_STUDIES
    tables = {s: find_table(results_dir, dataset, s, profile, from_bins=from_bins)[0] for s in studies}
    return None if all(t is None for t in tables.values()) else tables


def judged(results_dir, dataset: str, profile: str) -> pd.DataFrame | None:
    """:func:`l2dlib.claims.judge_all` on one profile's tables (None where none exist)."""
    tables = profile_tables(results_dir, dataset, profile)
    return None if tables is None else claims.judge_all(dataset, tables)


ESTIMATORS = {  # ECE columns the robustness table judges the claims under
    "ece": "20 bins (the paper's)",
    "ece_10": "10 bins",
    "ece_30": "30 bins",
    "ece_adaptive": "20 equal-mass bins",
    "ece_l2_debiased": "debiased l2, 20 bins",
    "smooth_ece": "smooth ECE",
}


def robustness(results_dir, dataset: str, profile: str) -> pd.DataFrame | None:
    """The ECE claims' verdicts on one profile's tables under each of :data:`ESTIMATORS`
    (rows: claims; columns: estimators); None where no table exists."""
    tables = profile_tables(results_dir, dataset, profile, from_bins=True)
    if tables is None:
        return None
    columns = {}
    for column, name in ESTIMATORS.items():
        judged = claims.judge_all(dataset, tables, ece=column)
        if judged.empty:  # no claim applies (e.g. only methods the paper does not judge)
            return None
        judged = judged[judged["key"].map(lambda k: claims.BY_KEY[k].metric == "ece")]
        columns[name] = judged.set_index("claim")["verdict"]
    out = pd.DataFrame(columns)
    out.insert(len(out.columns), "same under all", (out.nunique(axis=1) == 1).map({True: "yes", False: "**no**"}))
    return out.reset_index()


def table_markdown(table: pd.DataFrame | None, missing: str = "*(No results.)*") -> str:
    """A small DataFrame as a Markdown table (cells as they are)."""
    if table is None or table.empty:
        return missing
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def regimes(results_dir, mog_profiles, cifar_profile: str | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """Judged claims per (dataset, profile) whose tables exist: the MoG profiles, then the
    CIFAR-10 profile shown (:func:`shown_cifar_profile`)."""
    keys = [("mog", p) for p in dict.fromkeys(mog_profiles)]
    keys.append(("cifar10", shown_cifar_profile(results_dir, CIFAR_STUDIES, cifar_profile)))
    out = {k: judged(results_dir, *k) for k in keys}
    return {k: v for k, v in out.items() if v is not None and len(v)}


def regime_name(dataset: str, profile: str, *, short: bool = False) -> str:
    if short:
        return SHORT_REGIMES.get((dataset, profile), f"{dataset}, {profile}")
    if dataset == "mog":
        return f"{REGIMES.get(profile, profile)} (`{profile}`)"
    return f"CIFAR-10, {get_profile('cifar10', profile).description} (`{profile}`)"


def family(results: dict) -> tuple[int, float]:
    """How many intervals all claim tables hold, and each one's level under Bonferroni."""
    return claims.bonferroni(list(results.values()))


def _interval(row) -> str:
    """A row's estimate and interval, a level claim's as the value itself (not minus the level)."""
    level = row["kind"] == "level"  # a value, not a change: no sign
    shift, f = (row["paper effect"], ".4f") if level else (0.0, "+.4f")
    lo, hi = row["95% interval"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{row['estimate'] + shift:{f}} (one replicate, no interval)"
    return f"{row['estimate'] + shift:{f}} [{lo + shift:{f}}, {hi + shift:{f}}]"


def _paper_effect(claim: claims.Claim) -> str:
    if claim.paper_effect is None:
        return "direction only"
    if claim.kind == "level":
        return f"above {claim.paper_effect:.2f}"
    return f"{claim.paper_effect:+.4f} ({claim.paper_source})"


def _margin(claim: claims.Claim) -> str:
    if claim.kind == "level":
        return f"the level {claim.paper_effect:.2f}"
    sign = "±" if claim.kind == "flat" else ""
    return f"{sign}{claim.margin:.4f}: {claim.margin_source}"


def claims_markdown(results: dict, dataset: str, level: float | None = None) -> str:
    """One Markdown table of ``dataset``'s claims: the claim and its statistic, the paper's
    words and effect, *m* and where it comes from, then per regime the estimate, its 95%
    interval and the verdict; where the verdict changes under a Bonferroni correction at
    ``level``, the corrected one in brackets."""
    shown = {k: v.set_index("key") for k, v in results.items() if k[0] == dataset}
    keys = [c.key for c in claims.CLAIMS if any(c.key in v.index for v in shown.values())]
    if not keys:
        return f"*(No {'MoG' if dataset == 'mog' else 'CIFAR-10'} results to judge the claims by.)*"
    names = [regime_name(*k) for k in shown]
    lines = [
        "| claim (statistic) | the paper (section): its effect | *m* | " + " | ".join(names) + " |",
        "|" + " --- |" * (3 + len(names)),
    ]
    for key in keys:
        c = claims.BY_KEY[key]
        cells = []
        for v in shown.values():
            if key not in v.index:
                cells.append("-")
                continue
            row = v.loc[key]
            text = f"{_interval(row)}: **{row['verdict']}**"
            if level is not None and (after := claims.corrected_verdict(row, level)) != row["verdict"]:
                text += f" (Bonferroni: {after})"
            cells.append(text)
        lines.append(
            f'| {c.text} ({c.statistic_name}) | "{c.words}" (§{c.section}): {_paper_effect(c)} | '
            f"{_margin(c)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def findings(results: dict) -> pd.DataFrame:
    """The book's first table: one row per claim (the same claim on either dataset shares a
    row), the paper's words, and the verdict under each regime; "-" where a regime does not
    judge it (a CIFAR-10-only claim in a MoG column, or a table that is missing)."""
    columns = {regime_name(*k, short=True): v.set_index("key") for k, v in results.items()}
    rows: dict[str, dict] = {}
    for c in claims.CLAIMS:
        row = rows.setdefault(c.text, {"claim": c.text, "the paper": f'"{c.words}" (§{c.section})'})
        for name, v in columns.items():
            if c.key in v.index:
                row[name] = v.loc[c.key, "verdict"]
    table = pd.DataFrame([r for r in rows.values() if len(r) > 2], columns=["claim", "the paper", *columns])
    return table.fillna("-")


def paper_fig1a_text() -> str:
    """The paper's plotted Fig. 1 (a) values in words (:data:`l2dlib.claims.PAPER_FIG1A`)."""
    fig = claims.PAPER_FIG1A
    js = ", ".join(map(str, fig["num_experts"]))
    return (
        f"softmax ECE {', '.join(f'{v:.4f}' for v in fig['softmax'])} at J = {js}; "
        f"OvA {', '.join(f'{v:.4f}' for v in fig['ova'])}"
    )


def rule_markdown() -> str:
    """The verdict rule in one paragraph and a list (Markdown), *m* from the registry."""
    ece, acc = claims.MARGINS["ece"], claims.MARGINS["system_accuracy"]
    return (
        "Each claim's statistic is oriented so that the paper's direction is positive, and its 95% interval "
        "is placed against 0 and against a size that matters, *m*: half the paper's effect where the paper "
        f"gives numbers, else a practical margin of {ece:g} ECE (across a study's axis, or as a difference: "
        'about a fifth of the paper\'s MoG softmax rise, the spread of its own "roughly stable" OvA curve, '
        f"three times the MoG noise floor) or {acc:g} system accuracy.\n\n"
        "- **Direction claims**: **reproduced** when the interval lies above *m*; **direction reproduced, "
        "size unresolved** when it lies above 0 and contains *m*; **same direction, smaller** when it lies "
        "between 0 and *m*; **not reproduced** when it contains 0 but lies below *m* (the paper's effect is "
        "ruled out); **reversed** when it lies below 0; **inconclusive** when it contains both 0 and *m*.\n"
        "- **Flat claims** (an equivalence test): **holds** when the interval lies within ±*m*, **fails** "
        "when it lies wholly outside, **inconclusive** otherwise.\n"
        '- **Levels** ("above 40%"): **reproduced** or **not reproduced** by which side of the level '
        "the interval lies on, else **inconclusive**.\n\n"
        "Less data widens an interval, and a wider interval can only move a verdict towards inconclusive. "
        "An interval that cannot be computed (one replicate) is inconclusive. The replicates are training "
        "seeds: on MoG each seed is evaluated on a test sample of its own, so the intervals cover test-set "
        "sampling too; CIFAR-10's one test set is shared by all seeds, so its intervals cover training only."
    )


def multiplicity_markdown(results: dict) -> str:
    """How many intervals the claim tables hold, that they are not corrected, and how many
    verdicts survive a Bonferroni correction (the tables name those that do not)."""
    n, level = family(results)
    if n == 0:
        return ""
    changed = sum(
        claims.corrected_verdict(row, level) != row["verdict"] for v in results.values() for _, row in v.iterrows()
    )
    return (
        f"The claim tables on this page hold {n} intervals, each at 95% and not corrected for multiplicity. "
        f"Under a Bonferroni correction (each interval at {level:.2%}, for a family-wise 95%), {n - changed} of the "
        f"{n} verdicts stand; the tables give the corrected verdict in brackets where it differs."
    )


def markdown_html(text: str) -> str:
    """The little Markdown of :func:`rule_markdown` (paragraphs, "- " lists, **bold**,
    *italics*) as HTML, for pages that only HTML reaches."""
    import html
    import re

    def inline(t: str) -> str:
        t = html.escape(t, quote=False)
        t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
        return re.sub(r"\*(.+?)\*", r"<em>\1</em>", t)

    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{inline(line[2:])}</li>" for line in lines) + "</ul>")
        else:
            out.append(f"<p>{inline(' '.join(lines))}</p>")
    return "".join(out)


#: The first page's questions, each answered from the registry's verdicts of these claims.
QUESTIONS = (
    ("Is softmax less calibrated than OvA?", ("mog_gap", "cifar10_gap", "cifar10_specialists_gap")),
    (
        "Does the softmax ECE grow as experts are added?",
        ("mog_softmax_rises", "cifar10_softmax_rises", "cifar10_specialists_softmax_rises"),
    ),
    ("Does the random expert's softmax ECE reach the paper's 0.40?", ("mog_random_level", "cifar10_random_level")),
    (
        "Does the random expert's softmax ECE rise as the other experts improve?",
        ("mog_random_rises", "cifar10_random_rises"),
    ),
    (
        "Does the OvA ECE stay flat?",
        ("mog_ova_flat", "mog_random_ova_flat", "cifar10_ova_flat", "cifar10_random_ova_flat"),
    ),
    (
        "Is OvA's system accuracy higher than softmax's?",
        ("mog_accuracy", "cifar10_accuracy", "cifar10_specialists_accuracy"),
    ),
)
PLAIN = {  # verdict -> the answer in words
    "reproduced": "yes, at the paper's size",
    "direction reproduced, size unresolved": "yes in direction, size unresolved",
    "same direction, smaller": "yes, but much less than the paper says",
    "not reproduced": "no: the paper's effect is ruled out",
    "reversed": "no: the opposite",
    "inconclusive": "undecided",
    "holds": "yes",
    "fails": "no",
}
_PLAIN_LEVEL = {"reproduced": "yes", "not reproduced": "no", "inconclusive": "undecided"}
_PLAIN_MARGIN = {  # where the paper gives a direction only, the answer is against m
    "reproduced": "yes, by more than m = {m:g}",
    "same direction, smaller": "yes, but by less than m = {m:g}",
    "not reproduced": "no: an effect of m = {m:g} is ruled out",
}


def bottom_line(results: dict, primary: tuple[str, ...] = ("paper",)) -> list[str]:
    """The first page's plain sentences: each of :data:`QUESTIONS` answered per claim from
    the verdicts of the primary MoG profile(s) and the CIFAR-10 profile shown, with the
    estimate, its interval and the paper's effect."""
    shown = {k: v.set_index("key") for k, v in results.items() if k[0] == "cifar10" or k[1] in primary}
    out = []
    for question, keys in QUESTIONS:
        answers = []
        for key in keys:
            c = claims.BY_KEY[key]
            for (dataset, profile), v in shown.items():
                if key not in v.index:
                    continue
                row = v.loc[key]
                plain = (_PLAIN_LEVEL if c.kind == "level" else PLAIN)[row["verdict"]]
                if c.kind == "direction" and c.paper_effect is None:  # judged against m, not a paper size
                    plain = _PLAIN_MARGIN.get(row["verdict"], plain).format(m=c.margin)
                if row["verdict"] == "reversed" and row["95% interval"][0] > -c.margin:
                    plain = "no: a small effect the other way"  # smaller than m: not a reversal that matters
                where = regime_name(dataset, profile, short=True)
                if c.study == "specialized_experts":
                    where += ", specialists"
                elif c.study == "expert_dependence" and c.method == "ova":
                    where += ", random expert"
                paper = "" if c.paper_effect is None else f"; the paper: {_paper_effect(c)}"
                answers.append(f"{where}: {plain} ({row['statistic']}: {_interval(row)}{paper})")
        if answers:
            out.append(f"**{question}** " + "; ".join(answers) + ".")
    return out


def bottom_line_html(sentences: list[str]) -> str:
    """:func:`bottom_line` as an HTML list (it is pasted into the introduction)."""
    if not sentences:
        return "<p><em>No results to judge the paper's claims by.</em></p>"
    return markdown_html("\n".join(f"- {s}" for s in sentences))


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
